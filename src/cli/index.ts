// cli: the layerd command. `serve` runs a node; the other commands are clients of a node's /api.
// It may import oci, p2p (keygen), http's /api schemas and node's config. It must never import
// store, distribution or seed: a command talks to a node, never to its data.

export { RuntimeError, UsageError, parseFlags, type Command } from './command.js';
export { gc, ls, pullCommand, rollout, status } from './commands.js';
export { configure } from './configure-command.js';
export { keygen } from './keygen.js';
