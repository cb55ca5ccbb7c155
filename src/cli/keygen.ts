// `layerd keygen`: a new random swarm key for a private peer network (serve --psk-file). Written with
// mode 0600, and never over an existing file: overwriting a cluster's key would cut this host off it.
import { writeFileSync } from 'node:fs';
import { SwarmKey } from '../p2p/index.js';
import { RuntimeError, UsageError, parseFlags, type Command } from './command.js';

export const keygen: Command = {
  summary: 'create a swarm key for a private peer network',
  help: () => `Usage: layerd keygen [--out FILE]

Creates a random pre-shared key for a private peer network, in the swarm key format of IPFS and libp2p
(/key/swarm/psk/1.0.0/, /base16/, 64 hex digits). Give every node of the cluster the same file with
"layerd serve --psk-file FILE": nodes without it cannot connect to them. Keep it secret, like a password.

Options:
  --out FILE  write the key to FILE, readable by its owner only (mode 0600); an existing FILE is never
              overwritten. Without --out the key is printed on stdout.`,
  async run(args) {
    const { values, positionals } = parseFlags(args, { out: { type: 'string' } }, true);
    if (positionals.length > 0) throw new UsageError(`keygen: unexpected argument ${JSON.stringify(positionals[0])} (try: layerd keygen --help)`);
    const out = values.out as string | undefined;
    if (out === '') throw new UsageError('keygen: --out needs a file name');
    const text = SwarmKey.generate().fileText();
    if (out === undefined) {
      process.stdout.write(text);
      return;
    }
    try {
      // 'wx': created here or not at all; the mode is set at creation, so no moment exists where others may read it.
      writeFileSync(out, text, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new RuntimeError(`keygen: ${out} already exists: not overwriting it (remove it first, or choose another --out)`);
      throw new RuntimeError(`keygen: cannot write ${out}: ${code ?? (err as Error).message}`);
    }
    process.stderr.write(`layerd: wrote a new swarm key to ${out} (mode 0600); start every node with --psk-file ${out}\n`);
  },
};
