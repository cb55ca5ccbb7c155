// Property tests for the parsers at the HTTP edge: whatever a client sends, each returns a value or
// throws an OciError with the right code, never anything else (a TypeError or RangeError would become a
// 500); and what is valid survives a round trip. fast-check prints the seed and the shrunk input of a failure.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { algorithmOf, ALGORITHMS, hexOf, makeDigest, parseDigest, type Algorithm } from '../../../src/oci/digest.js';
import { OciError, type ErrorCode } from '../../../src/oci/errors.js';
import { MAX_MANIFEST_BYTES, MediaType, parseManifest } from '../../../src/oci/manifest.js';
import { contentRange, parseChunkRange, parseRangeHeader } from '../../../src/oci/range.js';
import {
  formatImageReference,
  parseImageReference,
  parseManifestReference,
  parseRegistryName,
  parseRepositoryName,
  parseTag,
  referenceString,
} from '../../../src/oci/reference.js';

const RUNS = { numRuns: 1_000 };

/** Calls fn; returns its value, or the OciError's code; fails the property on any other throw. */
function valueOrOci<T>(fn: () => T, codes: ErrorCode[]): { value?: T; code?: ErrorCode } {
  try {
    return { value: fn() };
  } catch (err) {
    if (!(err instanceof OciError)) throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.message} instead of an OciError`);
    if (!codes.includes(err.code)) throw new Error(`threw ${err.code}, want one of ${codes.join(', ')}`);
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
    return { code: err.code };
  }
}

const hex = (n: number) => fc.uint8Array({ minLength: n / 2, maxLength: n / 2 }).map((b) => Buffer.from(b).toString('hex'));
const algorithm = fc.constantFrom(...(Object.keys(ALGORITHMS) as Algorithm[]));
const validDigest = algorithm.chain((a) => hex(ALGORITHMS[a]).map((h) => `${a}:${h}`));
/** Strings near the digest grammar: right and wrong algorithms, case, lengths and separators. */
const digestLike = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  validDigest,
  validDigest.map((d) => d.toUpperCase()),
  validDigest.map((d) => d.slice(0, -1)),
  validDigest.map((d) => `${d}0`),
  fc.tuple(fc.constantFrom('sha256', 'sha512', 'md5', 'SHA256', 'sha384', 'blake3', 'sha256+b64', 'a.b', ''), fc.constantFrom(':', '::', '='), fc.stringMatching(/^[0-9a-fA-FxyZ=_-]{0,140}$/)).map(([a, s, h]) => `${a}${s}${h}`),
);

describe('digests', () => {
  it('parse to a Digest or DIGEST_INVALID, for any string', () => {
    fc.assert(
      fc.property(digestLike, (text) => {
        const r = valueOrOci(() => parseDigest(text), ['DIGEST_INVALID']);
        if (r.value !== undefined) expect(r.value).toBe(text);
      }),
      RUNS,
    );
  });

  it('round-trip when valid: algorithm and hex come back out', () => {
    fc.assert(
      fc.property(validDigest, (text) => {
        const d = parseDigest(text);
        expect(makeDigest(algorithmOf(d), hexOf(d))).toBe(text);
        expect(hexOf(d)).toHaveLength(ALGORITHMS[algorithmOf(d)]);
      }),
      RUNS,
    );
  });
});

const component = fc.stringMatching(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/).filter((s) => s.length <= 40);
const validName = fc.array(component, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')).filter((n) => n.length <= 255);
const validTag = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/);
const nameLike = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  validName,
  validName.map((n) => `${n}/`),
  validName.map((n) => n.toUpperCase()),
  validName.map((n) => `../${n}`),
  fc.constantFrom('', '.', '..', 'a//b', 'a/../b', '%2e%2e', 'a'.repeat(300), '_catalog', 'a/b/', '/a'),
);

describe('references', () => {
  it('repository names parse or fail NAME_INVALID', () => {
    fc.assert(
      fc.property(nameLike, (text) => {
        const r = valueOrOci(() => parseRepositoryName(text), ['NAME_INVALID']);
        if (r.value !== undefined) expect(r.value).toBe(text);
      }),
      RUNS,
    );
  });

  it('tags parse or fail TAG_INVALID; manifest references parse as a tag or a digest', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), validTag, digestLike, fc.string({ unit: 'binary' })), (text) => {
        valueOrOci(() => parseTag(text), ['TAG_INVALID']);
        const r = valueOrOci(() => parseManifestReference(text), ['TAG_INVALID', 'DIGEST_INVALID']);
        if (r.value !== undefined) expect(referenceString(r.value)).toBe(text);
      }),
      RUNS,
    );
  });

  it('registry names parse or fail NAME_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.domain(), fc.tuple(fc.domain(), fc.nat(99999)).map(([d, p]) => `${d}:${p}`), fc.ipV6().map((ip) => `[${ip}]:5000`)), (text) => {
        valueOrOci(() => parseRegistryName(text), ['NAME_INVALID']);
      }),
      RUNS,
    );
  });

  it('image references parse or fail with a name, tag or digest error, for any string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.tuple(nameLike, fc.constantFrom(':', '@', '/'), fc.oneof(validTag, digestLike)).map((p) => p.join(''))), (text) => {
        valueOrOci(() => parseImageReference(text), ['NAME_INVALID', 'TAG_INVALID', 'DIGEST_INVALID']);
      }),
      RUNS,
    );
  });

  it('image references round-trip through formatImageReference', () => {
    const registry = fc.oneof(fc.constant('docker.io'), fc.constant('ghcr.io'), fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).map(([d, p]) => `${d}:${p}`));
    fc.assert(
      fc.property(registry, validName, fc.option(validTag, { nil: undefined }), fc.option(validDigest, { nil: undefined }), (reg, name, tag, digest) => {
        const text = `${reg}/${name}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
        const ref = parseImageReference(text);
        expect(parseImageReference(formatImageReference(ref))).toEqual(ref);
        expect(ref.digest).toBe(digest);
        expect(ref.tag).toBe(tag ?? (digest ? undefined : 'latest'));
      }),
      RUNS,
    );
  });
});

const rangeLike = fc.oneof(
  fc.string(),
  fc.tuple(fc.constantFrom('bytes=', 'BYTES =', 'bytes= ', 'items=', 'bytes ', ''), fc.oneof(fc.nat(), fc.constant(''), fc.bigInt({ min: 0n, max: 10n ** 30n })), fc.constantFrom('-', '--', ',', ''), fc.oneof(fc.nat(), fc.constant(''), fc.bigInt({ min: 0n, max: 10n ** 30n })), fc.constantFrom('', ',0-1', '/10', ' ')).map((p) => p.join('')),
);

describe('ranges', () => {
  it('a Range header is none, unsatisfiable, a range inside the blob, or RANGE_INVALID', () => {
    fc.assert(
      fc.property(rangeLike, fc.oneof(fc.nat(), fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER)), (header, size) => {
        const r = valueOrOci(() => parseRangeHeader(header, size), ['RANGE_INVALID']);
        if (r.value?.kind === 'range') {
          const { start, end } = r.value.range;
          expect(Number.isSafeInteger(start) && Number.isSafeInteger(end)).toBe(true);
          expect(0 <= start && start <= end && end < size).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('a satisfiable closed range round-trips into Content-Range', () => {
    fc.assert(
      fc.property(fc.nat(1e12), fc.nat(1e12), fc.nat(1e12), (a, b, extra) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const size = end + 1 + extra;
        expect(parseRangeHeader(`bytes=${start}-${end}`, size)).toEqual({ kind: 'range', range: { start, end } });
        expect(contentRange({ start, end }, size)).toBe(`bytes ${start}-${end}/${size}`);
      }),
      RUNS,
    );
  });

  it('a chunk Content-Range parses to start <= end or fails RANGE_INVALID, and round-trips', () => {
    fc.assert(
      fc.property(rangeLike, (header) => {
        const r = valueOrOci(() => parseChunkRange(header), ['RANGE_INVALID']);
        if (r.value) expect(r.value.start).toBeLessThanOrEqual(r.value.end);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        expect(parseChunkRange(`${start}-${end}`)).toEqual({ start, end });
        expect(parseChunkRange(`bytes ${start}-${end}/*`)).toEqual({ start, end });
      }),
      RUNS,
    );
  });
});

const descriptor = fc.record({ mediaType: fc.constantFrom('application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.config.v1+json', MediaType.OciManifest), digest: validDigest, size: fc.maxSafeNat() });
const validManifest = fc.record({ schemaVersion: fc.constant(2), mediaType: fc.constant(MediaType.OciManifest), config: descriptor, layers: fc.array(descriptor, { maxLength: 5 }) });
const validIndex = fc.record({ schemaVersion: fc.constant(2), mediaType: fc.constant(MediaType.OciIndex), manifests: fc.array(descriptor, { maxLength: 5 }) });
/** A valid document with one field replaced by anything JSON can hold, or removed. */
function mutated(doc: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> {
  const anyJson = fc.oneof(fc.jsonValue(), fc.constant(1e308), fc.constant(-1), fc.constant(2 ** 53), fc.constant(null), fc.constant(undefined));
  return fc.tuple(doc, fc.constantFrom('schemaVersion', 'mediaType', 'config', 'layers', 'manifests', 'subject', 'annotations', 'artifactType'), anyJson, fc.nat(4), fc.constantFrom('digest', 'size', 'mediaType', 'platform', 'annotations', 'urls')).map(([d, key, value, i, inner]) => {
    const copy = structuredClone(d) as Record<string, unknown>;
    const list = (copy.layers ?? copy.manifests) as Array<Record<string, unknown>>;
    if (i < list.length && i % 2 === 0) list[i]![inner] = value;
    else copy[key] = value;
    return copy;
  });
}
const contentType = fc.option(fc.oneof(fc.constantFrom(...Object.values(MediaType), 'application/json', `${MediaType.OciManifest}; charset=utf-8`, ';', ''), fc.string()), { nil: undefined });

describe('manifests', () => {
  it('any bytes parse to a manifest or fail MANIFEST_INVALID (SIZE_INVALID past the limit)', () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      mutated(validManifest).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      mutated(validIndex).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      fc.nat(5_000).map((depth) => Buffer.from(`{"schemaVersion":2,"manifests":[${'['.repeat(depth)}${']'.repeat(depth)}]}`)),
    );
    fc.assert(
      fc.property(body, contentType, (bytes, type) => {
        valueOrOci(() => parseManifest(bytes, type), ['MANIFEST_INVALID', 'SIZE_INVALID']);
      }),
      RUNS,
    );
  });

  it('a valid manifest or index parses to exactly its descriptors', () => {
    fc.assert(
      fc.property(fc.oneof(validManifest, validIndex), (doc) => {
        const m = parseManifest(Buffer.from(JSON.stringify(doc)), doc.mediaType);
        if ('config' in doc) expect(m.blobs.map((b) => b.digest)).toEqual([doc.config, ...doc.layers].map((d) => d.digest));
        else expect(m.manifests.map((d) => [d.digest, d.size])).toEqual(doc.manifests.map((d) => [d.digest, d.size]));
      }),
      RUNS,
    );
  });

  it('refuses a manifest over the limit and deep nesting without a stack overflow', () => {
    expect(valueOrOci(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20), undefined), ['SIZE_INVALID']).code).toBe('SIZE_INVALID');
    const depth = 300_000;
    const deep = Buffer.from(`{"schemaVersion":2,"mediaType":"${MediaType.OciIndex}","manifests":[],"x":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(valueOrOci(() => parseManifest(deep, undefined), ['MANIFEST_INVALID']).value?.isIndex).toBe(true);
  });
});
