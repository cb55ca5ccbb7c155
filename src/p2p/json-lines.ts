// The framing layerd's own libp2p protocols start with: one JSON object on one line, then (for blobs)
// raw bytes. A line is short; a longer one is a protocol error, not a reason to buffer.
import type { Stream } from '@libp2p/interface';

const MAX_LINE = 1024;

/** A peer sent bytes that are not a frame of the protocol: the stream is answered "bad request" or closed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

function chunkBytes(chunk: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : chunk.subarray();
}

/** Reads one line from a stream; returns it with whatever bytes followed it. */
export async function readLine(
  source: AsyncIterator<Uint8Array | { subarray(): Uint8Array }>,
  maxLine = MAX_LINE,
): Promise<{ line: string; rest: Uint8Array }> {
  let buf = Buffer.alloc(0);
  for (;;) {
    const next = await source.next();
    if (next.done) throw new FrameError('stream ended before a complete line');
    buf = Buffer.concat([buf, chunkBytes(next.value)]);
    const split = splitLine(buf, maxLine);
    if (split) return split;
  }
}

/**
 * The first line of the bytes a peer sent so far, with what followed it; undefined while no newline has
 * come. FrameError once the line is longer than `maxLine` (by its newline, or by the bytes held).
 */
export function splitLine(buf: Buffer, maxLine = MAX_LINE): { line: string; rest: Buffer } | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl > maxLine || (nl < 0 && buf.length > maxLine)) throw new FrameError('line too long');
  if (nl < 0) return undefined;
  return { line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 1) };
}

/** One line's JSON value; FrameError when it is not JSON. */
export function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    throw new FrameError(`not a JSON line: ${JSON.stringify(line.slice(0, 80))}`);
  }
}

/** The JSON object a line must hold (a peer's request or answer); FrameError otherwise. */
export function parseJsonObject(line: string): Record<string, unknown> {
  const value = parseJsonLine(line);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FrameError('want a JSON object');
  return value as Record<string, unknown>;
}

export function encodeLine(obj: object): Uint8Array {
  return Buffer.from(`${JSON.stringify(obj)}\n`);
}

export function writeLine(stream: Pick<Stream, 'send'>, obj: object): void {
  stream.send(encodeLine(obj));
}
