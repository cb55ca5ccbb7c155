// node: the composition root. The config, parsed once from flags, environment and file, and the
// assembly of a node from its subsystems, started and stopped in one declared order.
// It may import every layer, and it must never import the cli: nothing but the cli imports node.

export { ConfigError, envName, flagSpecs, loadConfig, optionsHelp } from './config.js';
