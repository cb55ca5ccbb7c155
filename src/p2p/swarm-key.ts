// The pre-shared key of a private peer network, in the swarm key file format IPFS and libp2p share:
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits: 32 random bytes>
// @libp2p/pnet's own decoder accepts anything whose third line decodes to 32 bytes; this one is strict,
// so a truncated or mangled file fails at start with a reason instead of making a network of one.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { inspect } from 'node:util';

const HEADER = '/key/swarm/psk/1.0.0/';
const ENCODING = '/base16/';
export const SWARM_KEY_BYTES = 32;

/**
 * A swarm key. Its bytes are reachable only through `fileBytes()`: printing, logging or serializing it
 * (console.log, pino, JSON.stringify, util.inspect) shows "[swarm key]", never the key.
 */
export class SwarmKey {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.byteLength !== SWARM_KEY_BYTES) throw new Error(`a swarm key is ${SWARM_KEY_BYTES} bytes, not ${key.byteLength}`);
    this.#key = Buffer.from(key);
  }

  static generate(): SwarmKey {
    return new SwarmKey(randomBytes(SWARM_KEY_BYTES));
  }

  /** The key in the file format (what @libp2p/pnet's preSharedKey takes, and what keygen writes). */
  fileText(): string {
    return `${HEADER}\n${ENCODING}\n${this.#key.toString('hex')}\n`;
  }

  fileBytes(): Uint8Array {
    return new TextEncoder().encode(this.fileText());
  }

  equals(other: SwarmKey): boolean {
    return this.#key.equals(other.#key);
  }

  toString(): string {
    return '[swarm key]';
  }

  toJSON(): string {
    return '[swarm key]';
  }

  [inspect.custom](): string {
    return '[swarm key]';
  }
}

/** Parses a swarm key file's text; the error says what is wrong, never what the key is. */
export function parseSwarmKey(text: string): SwarmKey {
  // Editors add a BOM, CRLF line ends or trailing blank lines; none of it changes the key.
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== HEADER) throw new Error(`not a swarm key: the first line must be ${HEADER}`);
  if (lines[1] === undefined) throw new Error(`the second line must be ${ENCODING}`);
  if (lines[1] !== ENCODING) throw new Error(`unsupported key encoding ${JSON.stringify(lines[1].slice(0, 40))}: only ${ENCODING} is supported`);
  const hex = lines[2] ?? '';
  if (lines.length > 3) throw new Error('unexpected text after the key (a swarm key file has three lines)');
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new Error('the key line must be hexadecimal digits only');
  if (hex.length !== SWARM_KEY_BYTES * 2) throw new Error(`the key line must be ${SWARM_KEY_BYTES * 2} hex digits, not ${hex.length}`);
  return new SwarmKey(Buffer.from(hex, 'hex'));
}

export interface SwarmKeyFile {
  path: string;
  key: SwarmKey;
  /** The file's permission bits: a key others can read is worth a warning. */
  mode: number;
}

/** A key file is three short lines: anything bigger is not one (and /dev/zero must not be read). */
const MAX_FILE_BYTES = 4096;

/** Reads and parses a swarm key file; synchronous, as configuration is loaded before anything starts. */
export function readSwarmKeyFile(path: string): SwarmKeyFile {
  let text: string;
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    if (st.size > MAX_FILE_BYTES) throw new Error(`${path} is ${st.size} bytes: too big for a swarm key file`);
    mode = st.mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code ? `cannot read ${path}: ${code}` : (err as Error).message);
  }
  try {
    return { path, key: parseSwarmKey(text), mode };
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
}
