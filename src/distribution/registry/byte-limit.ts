// A bound on the bytes a push may write. The limit is checked as bytes arrive, so a client that sends
// more than it declared (or declared nothing, with chunked encoding) is stopped at the bound, not after.
import type { Readable } from 'node:stream';
import { OciError } from '../../oci/index.js';
import type { ByteSource } from '../../store/index.js';

export function tooLarge(max: number): OciError {
  return new OciError('SIZE_INVALID', `blob exceeds the upload limit of ${max} bytes`, { status: 413, detail: { limit: max } });
}

/**
 * The bytes of `source` while they stay within `room`; past it, a 413 error. A request body is read
 * without being destroyed on the way out, so the HTTP layer can still answer on its connection.
 */
export async function* withinLimit(source: ByteSource, room: number, max: number): AsyncGenerator<Uint8Array> {
  const iterable = isReadable(source) ? source.iterator({ destroyOnReturn: false }) : source;
  let total = 0;
  for await (const chunk of iterable) {
    total += (chunk as Uint8Array).length;
    if (total > room) throw tooLarge(max);
    yield chunk as Uint8Array;
  }
}

function isReadable(source: ByteSource): source is Readable {
  return typeof (source as Readable).iterator === 'function';
}
