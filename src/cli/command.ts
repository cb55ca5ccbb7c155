// What every `layerd` command shares: its shape, the two kinds of failure (and their exit codes), and the
// flags every command that talks to a node takes (--node, --json).
import { parseArgs } from 'node:util';

/** Bad flags or bad input: the user can fix the command line. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The command was right but something at run time failed (node unreachable, node error). Exit code 1. */
export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

export interface Command {
  summary: string;
  help(): string;
  run(args: string[]): Promise<void>;
}

export type FlagSpecs = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

export const DEFAULT_NODE = 'http://127.0.0.1:5000';

/** A command's "Options:" lines: its own flags, then --node and --json, in aligned columns. */
export function nodeOptionsHelp(own: [flag: string, text: string][] = []): string {
  const rows: [string, string][] = [
    ...own,
    ['--node URL', `the node's HTTP endpoint (default ${DEFAULT_NODE}; env LAYERD_NODE)`],
    ['--user USER[:PASSWORD]', "credentials for a node that asks for them (/api writes, private repositories): an htpasswd user, or a token's name and the token; env LAYERD_USER, the password also from LAYERD_PASSWORD"],
    ['--json', 'machine output: one JSON document on stdout'],
  ];
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return `Options:\n${rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n')}`;
}

export function parseFlags(args: string[], options: FlagSpecs, positionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
}

export interface NodeFlags {
  node: string;
  /** `Basic ...` from --user (or LAYERD_USER and LAYERD_PASSWORD), if given. */
  authorization?: string;
  json: boolean;
  positionals: string[];
  values: Record<string, string | boolean | Array<string | boolean> | undefined>;
}

/** Parses a node command's arguments: --node and --json plus `extra` flags; `maxPositionals` operands. */
export function nodeFlags(args: string[], extra: FlagSpecs = {}, maxPositionals = 0): NodeFlags {
  const { values, positionals } = parseFlags(args, { node: { type: 'string' }, user: { type: 'string' }, json: { type: 'boolean' }, ...extra }, true);
  if (positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[maxPositionals])}`);
  const raw = (values.node as string | undefined) ?? process.env.LAYERD_NODE ?? DEFAULT_NODE;
  const authorization = basicAuthorization((values.user as string | undefined) ?? process.env.LAYERD_USER, process.env.LAYERD_PASSWORD);
  return { node: parseNodeUrl(raw), authorization, json: values.json === true, positionals, values };
}

/**
 * The Basic Authorization header of `USER[:PASSWORD]`; the password may come from the environment
 * instead (so it stays out of `ps` and shell history). There is no prompt: commands run in scripts.
 */
export function basicAuthorization(user: string | undefined, envPassword: string | undefined): string | undefined {
  if (user === undefined || user === '') return undefined;
  const colon = user.indexOf(':');
  const name = colon >= 0 ? user.slice(0, colon) : user;
  const password = colon >= 0 ? user.slice(colon + 1) : envPassword;
  if (name === '') throw new UsageError('--user: want USER[:PASSWORD], the user is empty');
  if (password === undefined || password === '') throw new UsageError(`--user: no password for ${JSON.stringify(name.slice(0, 64))}: give USER:PASSWORD or set LAYERD_PASSWORD`);
  return `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
}

/** The node's base URL, without a trailing slash; only http(s) makes sense for a node. */
export function parseNodeUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new UsageError(`--node: invalid URL ${JSON.stringify(raw)}: want e.g. ${DEFAULT_NODE}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--node: ${JSON.stringify(raw)} must be an http or https URL`);
  if (url.search || url.hash) throw new UsageError(`--node: ${JSON.stringify(raw)} must not have a query or fragment`);
  return url.toString().replace(/\/+$/, '');
}

/** Writes one JSON document on stdout, the whole of a command's machine output. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
