// The framing layerd's own libp2p protocols start with: one JSON object on one line, then (for blobs)
// raw bytes. A line is short; a longer one is a protocol error, not a reason to buffer.
import type { Stream } from '@libp2p/interface';

const MAX_LINE = 1024;

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
    if (next.done) throw new Error('stream ended before a complete line');
    buf = Buffer.concat([buf, chunkBytes(next.value)]);
    const nl = buf.indexOf(0x0a);
    if (nl >= 0) {
      if (nl > maxLine) throw new Error('line too long');
      return { line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 1) };
    }
    if (buf.length > maxLine) throw new Error('line too long');
  }
}

export function encodeLine(obj: object): Uint8Array {
  return Buffer.from(`${JSON.stringify(obj)}\n`);
}

export function writeLine(stream: Pick<Stream, 'send'>, obj: object): void {
  stream.send(encodeLine(obj));
}
