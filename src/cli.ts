#!/usr/bin/env node
// The layerd command. Every failure a user can cause ends as one line on stderr and exit code 2.
import './polyfill.js';
import { parseArgs } from 'node:util';
import { ConfigError, envName, flagSpecs, loadConfig, optionsHelp } from './config.js';
import { startNode } from './node.js';
import { VERSION } from './version.js';

const USAGE = `layerd: peer-to-peer container-image layer distribution daemon

Usage:
  layerd serve [options]   run a node: an OCI registry (/v2) on this host
  layerd --version         print the version
  layerd help              this text

Run "layerd <command> --help" for a command's options.`;

class UsageError extends Error {}

interface Command {
  summary: string;
  help(): string;
  run(args: string[]): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run a node',
    help: () => `Usage: layerd serve [options]\n\nOptions (flag > environment > config file > default):\n${optionsHelp()}`,
    async run(args) {
      const { values } = parseFlags(args, flagSpecs());
      const file = (values.config as string | undefined) ?? process.env[envName('config')];
      const config = loadConfig({ flags: values, env: process.env, file });
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
    },
  },
};

function parseFlags(args: string[], options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
}

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
  process.stderr.write(`layerd: ${e?.message ?? String(err)}\n`);
  process.exit(1);
});
