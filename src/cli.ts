#!/usr/bin/env -S node --initial-heap-size=128 --max-semi-space-size=4
// (The flags: with V8's default small first heap, a node receiving a blob over a 25 Mbit/s link ran a full garbage
// collection about every second, promoting little; a 128 MiB first heap cut a rollout's CPU by ~10-20%
// (scripts/bench/rollout.mjs). Its young generation, left to V8, grew to 16-64 MiB on a relaying node and filled
// between scavenges with dead byte buffers (socket reads, noise frames, file chunks): their memory is malloc's,
// freed only when a scavenge finds them dead, and glibc's main arena kept what it had grown to. Relaying hosts
// peaked at 150-320 MiB RSS. Semi-spaces of at most 4 MiB: scavenges come every few MiB and the arena stays
// smaller. Peak RSS of the relaying hosts of a 100 MiB rollout at 20 Mbit/s: 8 hosts 157 MiB median (192 max)
// → 131-132 (149-150), 16 hosts 168 (235) → 140 (165), and the hosts' CPU no higher (-10% in those runs).
// 1 MiB was worse: in-flight buffers were promoted and waited for a full collection (n1 175 MiB).
// Every way layerd ships starts it through this line: the `layerd` bin, `npm start`, the image's ENTRYPOINT;
// the test helpers and cluster scripts read the flags from here.)
// The layerd command. A failure ends as one line on stderr: exit code 2 for what the user can fix on the
// command line (flags, config, an image reference), 1 for what failed at run time.
import './polyfill.js';
import { configure, gc, keygen, ls, parseFlags, pullCommand, rollout, RuntimeError, status, UsageError, type Command } from './cli/index.js';
import { ConfigError, envName, flagSpecs, loadConfig, optionsHelp } from './node/index.js';
import { VERSION } from './version.js';

const USAGE = `layerd: peer-to-peer container-image layer distribution daemon

Usage:
  layerd serve [options]   run a node: an OCI registry (/v2) on this host
  layerd status            show a node's status
  layerd pull IMAGE        pull an image into a node's cache, through its /v2 endpoint
  layerd ls                list the images a node holds
  layerd gc                reclaim a node's unreferenced content
  layerd rollout IMAGE     have every node of the cluster pre-fetch an image
  layerd keygen [--out F]  create a swarm key for a private peer network (serve --psk-file)
  layerd configure RUNTIME point docker, containerd or podman at the local node as its mirror
  layerd --version         print the version
  layerd help              this text

status, pull, ls, gc and rollout talk to a running node: --node URL (default http://127.0.0.1:5000, env
LAYERD_NODE), --json for machine output. Exit codes: 0 ok, 1 failure at run time, 2 bad usage.

Run "layerd <command> --help" for a command's options.`;

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run a node',
    help: () => `Usage: layerd serve [options]\n\nOptions (flag > environment > config file > default):\n${optionsHelp()}`,
    async run(args) {
      const { values } = parseFlags(args, flagSpecs());
      const file = (values.config as string | undefined) ?? process.env[envName('config')];
      const config = loadConfig({ flags: values, env: process.env, file });
      // Loaded here, not at the top: the node's libraries (libp2p, fastify) would slow every client command.
      const { startNode } = await import('./node/node.js');
      const node = await startNode(config);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        node.logger.info({ signal }, 'shutting down');
        // In-flight transfers get a grace period; after it the process ends anyway.
        const timer = setTimeout(() => process.exit(0), 10_000);
        timer.unref();
        node.close().then(
          () => process.exit(0),
          (err) => {
            node.logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      // A promise nobody handled is a bug, but one stray rejection (a peer that hung up at the wrong
      // moment) must not take down every pull on the host: log it loudly and go on serving.
      process.on('unhandledRejection', (reason) => {
        node.logger.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) }, 'unhandled rejection');
      });
    },
  },
  status,
  pull: pullCommand,
  ls,
  gc,
  rollout,
  keygen,
  configure,
};

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (first === '--version' || first === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const command = COMMANDS[first];
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(first)} (try: layerd help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help()}\n`);
    return;
  }
  await command.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof ConfigError) {
    process.stderr.write(`layerd: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as NodeJS.ErrnoException;
  if (e && (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL')) {
    process.stderr.write(`layerd: listen: ${e.message}\n`);
    process.exit(2);
  }
  // A RuntimeError's message is already one line; anything else is a bug, but still gets one line.
  const message = err instanceof RuntimeError ? err.message : (e?.message ?? String(err));
  process.stderr.write(`layerd: ${message.split('\n')[0]}\n`);
  process.exit(1);
});
