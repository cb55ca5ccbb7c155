// HTTP byte ranges: the `Range` request header on blob GETs (RFC 9110, a single range only) and the
// `Content-Range` header on chunked upload PATCHes (the OCI spec's `<start>-<end>`, inclusive).
import { OciError } from './errors.js';

/** An inclusive byte range [start, end]. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeRequest = { kind: 'none' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * Interprets a Range header against a representation of `size` bytes. A header in another unit is
 * ignored (RFC 9110 lets a server serve the whole representation); a malformed bytes range or more
 * than one range is RANGE_INVALID, since layerd serves single ranges only.
 */
export function parseRangeHeader(header: string | undefined, size: number): RangeRequest {
  if (header === undefined || header.trim() === '') return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: 'none' };
  const spec = m[1]!.trim();
  if (spec.includes(',')) throw new OciError('RANGE_INVALID', 'multiple ranges are not supported');
  const parts = /^(\d*)-(\d*)$/.exec(spec);
  if (!parts || (parts[1] === '' && parts[2] === '')) throw new OciError('RANGE_INVALID', `invalid range: ${spec.slice(0, 100)}`);
  const [, first, last] = parts as unknown as [string, string, string];
  if (first === '') {
    // Suffix range: the last N bytes.
    const n = clampedInt(last);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  // Positions past the representation mean "to its end" (RFC 9110), however many digits they have.
  const start = clampedInt(first);
  let end = last === '' ? Number.MAX_SAFE_INTEGER : clampedInt(last);
  if (end < start) throw new OciError('RANGE_INVALID', `invalid range: ${spec}`);
  if (start >= size) return { kind: 'unsatisfiable' };
  if (end >= size) end = size - 1;
  return { kind: 'range', range: { start, end } };
}

function clampedInt(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

function safeInt(digits: string): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n)) throw new OciError('RANGE_INVALID', 'range out of bounds');
  return n;
}

/** `Content-Range: bytes 0-99/1000` for a 206 response. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/**
 * The chunk range of an upload PATCH: `<start>-<end>` (the spec's form), also accepting the
 * RFC form `bytes <start>-<end>/<total|*>` some clients send.
 */
export function parseChunkRange(header: string): ByteRange {
  const m = /^\s*(?:bytes\s+)?(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/i.exec(header);
  if (!m) throw new OciError('RANGE_INVALID', `invalid Content-Range: ${header.slice(0, 100)}`);
  const start = safeInt(m[1]!);
  const end = safeInt(m[2]!);
  if (end < start) throw new OciError('RANGE_INVALID', `invalid Content-Range: ${header.slice(0, 100)}`);
  return { start, end };
}

/** The upload-progress `Range` header: `0-<last byte>`; `0-0` before the first byte, as distribution does. */
export function uploadedRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}
