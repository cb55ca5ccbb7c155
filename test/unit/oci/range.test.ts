import { describe, expect, it } from 'vitest';
import { OciError } from '../../../src/oci/errors.js';
import { contentRange, parseChunkRange, parseRangeHeader, uploadedRange } from '../../../src/oci/range.js';

describe('Range header', () => {
  it('is absent or ignored when not a bytes range', () => {
    expect(parseRangeHeader(undefined, 10)).toEqual({ kind: 'none' });
    expect(parseRangeHeader('', 10)).toEqual({ kind: 'none' });
    expect(parseRangeHeader('items=0-1', 10)).toEqual({ kind: 'none' });
  });

  it('parses closed, open and suffix ranges, clamped to the size', () => {
    expect(parseRangeHeader('bytes=0-0', 10)).toEqual({ kind: 'range', range: { start: 0, end: 0 } });
    expect(parseRangeHeader('bytes=2-4', 10)).toEqual({ kind: 'range', range: { start: 2, end: 4 } });
    expect(parseRangeHeader('bytes=5-', 10)).toEqual({ kind: 'range', range: { start: 5, end: 9 } });
    expect(parseRangeHeader('bytes=5-100', 10)).toEqual({ kind: 'range', range: { start: 5, end: 9 } });
    expect(parseRangeHeader('bytes=-3', 10)).toEqual({ kind: 'range', range: { start: 7, end: 9 } });
    expect(parseRangeHeader('bytes=-30', 10)).toEqual({ kind: 'range', range: { start: 0, end: 9 } });
    expect(parseRangeHeader('bytes=4-99999999999999999999999', 10)).toEqual({ kind: 'range', range: { start: 4, end: 9 } });
    expect(parseRangeHeader('bytes=-99999999999999999999999', 10)).toEqual({ kind: 'range', range: { start: 0, end: 9 } });
  });

  it('reports ranges past the end as unsatisfiable', () => {
    expect(parseRangeHeader('bytes=10-', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRangeHeader('bytes=20-30', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRangeHeader('bytes=0-0', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRangeHeader('bytes=-0', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRangeHeader('bytes=99999999999999999999-', 10)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each(['bytes=', 'bytes=-', 'bytes=a-b', 'bytes=5-2', 'bytes=0-1,3-4'])(
    'rejects %j with RANGE_INVALID',
    (header) => {
      try {
        parseRangeHeader(header, 10);
        expect.unreachable();
      } catch (err) {
        expect((err as OciError).code).toBe('RANGE_INVALID');
        expect((err as OciError).status).toBe(416);
      }
    },
  );

  it('formats Content-Range', () => {
    expect(contentRange({ start: 2, end: 4 }, 10)).toBe('bytes 2-4/10');
  });
});

describe('upload chunk ranges', () => {
  it('accepts the spec form and the RFC form', () => {
    expect(parseChunkRange('0-1023')).toEqual({ start: 0, end: 1023 });
    expect(parseChunkRange('bytes 1024-2047/*')).toEqual({ start: 1024, end: 2047 });
    expect(parseChunkRange('bytes 5-9/10')).toEqual({ start: 5, end: 9 });
  });

  it.each(['', '5', '9-5', 'a-b', '-5', 'bytes=0-5'])('rejects %j', (header) => {
    expect(() => parseChunkRange(header)).toThrow(OciError);
  });

  it('reports progress as 0-<last byte>', () => {
    expect(uploadedRange(0)).toBe('0-0');
    expect(uploadedRange(1)).toBe('0-0');
    expect(uploadedRange(1024)).toBe('0-1023');
  });
});
