// The bodies and headers of a seed's listings, parsed before anything is believed. Everything a seed
// says is hostile until checked: the JSON's shape is checked, every tag and digest is parsed, and a
// referrer descriptor is rebuilt from checked fields only. What a hostile seed wrote goes into no message.
import { isTag, MAX_MANIFEST_BYTES, parseDigest, type Descriptor, type Digest, type Tag } from '../oci/index.js';
import { SeedError } from './errors.js';

/** RFC 6838's media type grammar (type/subtype), bounded. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const MAX_ANNOTATIONS = 256;
const MAX_ANNOTATION_CHARS = 64 * 1024;
const MAX_LINK_CHARS = 8192;

/** A body as JSON, or a protocol failure naming what it was meant to be. */
export function jsonOf(seed: string, bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SeedError(seed, 'protocol', `${what} is not JSON`);
  }
}

/** `{"name": ..., "tags": [...]}`; every tag must be one by the spec's grammar (null: none). */
export function parseTagList(seed: string, doc: unknown): Tag[] {
  const fail = (why: string) => new SeedError(seed, 'protocol', `tag list refused: ${why}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('not a JSON object');
  const tags = (doc as { tags?: unknown }).tags;
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags)) throw fail('tags is not an array');
  const seen = new Set<Tag>();
  for (const t of tags) {
    // Not quoted back: what a hostile seed wrote goes into no answer.
    if (typeof t !== 'string' || !isTag(t)) throw fail('a tag that is not one by the spec\'s grammar');
    seen.add(t as Tag);
  }
  return [...seen];
}

/** An OCI index of referrer descriptors, rebuilt from checked fields only (anything else is dropped). */
export function parseReferrers(seed: string, doc: unknown): Descriptor[] {
  const fail = (why: string) => new SeedError(seed, 'protocol', `referrers index refused: ${why}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('not a JSON object');
  const index = doc as { schemaVersion?: unknown; manifests?: unknown };
  if (index.schemaVersion !== 2) throw fail('schemaVersion is not 2');
  if (index.manifests === null || index.manifests === undefined) return [];
  if (!Array.isArray(index.manifests)) throw fail('manifests is not an array');
  const byDigest = new Map<Digest, Descriptor>();
  for (const [i, raw] of index.manifests.entries()) {
    const d = referrerOf(raw, (why) => fail(`manifests[${i}]${why}`));
    byDigest.set(d.digest, d);
  }
  return [...byDigest.values()];
}

function referrerOf(raw: unknown, fail: (why: string) => Error): Descriptor {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(' is not an object');
  const v = raw as Record<string, unknown>;
  if (typeof v.mediaType !== 'string' || !MEDIA_TYPE.test(v.mediaType)) throw fail(': invalid mediaType');
  let digest: Digest;
  try {
    digest = parseDigest(typeof v.digest === 'string' ? v.digest : '');
  } catch {
    throw fail(': invalid digest');
  }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0 || v.size > MAX_MANIFEST_BYTES) throw fail(': invalid size');
  const d: Descriptor = { mediaType: v.mediaType, digest, size: v.size };
  if (v.artifactType !== undefined && v.artifactType !== null) {
    if (typeof v.artifactType !== 'string' || !MEDIA_TYPE.test(v.artifactType)) throw fail(': invalid artifactType');
    d.artifactType = v.artifactType;
  }
  if (v.annotations !== undefined && v.annotations !== null) d.annotations = annotationsOf(v.annotations, () => fail(': invalid annotations'));
  return d;
}

function annotationsOf(value: unknown, fail: () => Error): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail();
  const entries = Object.entries(value);
  let chars = 0;
  if (entries.length > MAX_ANNOTATIONS) throw fail();
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || k === '__proto__') throw fail();
    chars += k.length + v.length;
    if (chars > MAX_ANNOTATION_CHARS) throw fail();
    out[k] = v;
  }
  return out;
}

/**
 * The query of the next page a `Link: <url>; rel="next"` names; undefined when there is none, or it
 * cannot be read. Only the query is kept: a seed's URLs are never followed, the caller builds its own.
 */
export function nextOfLink(link: string | undefined): URLSearchParams | undefined {
  if (!link || link.length > MAX_LINK_CHARS) return undefined;
  for (const part of link.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/(^|;)\s*rel\s*=\s*"?next"?\s*(;|$)/i.test(m[2]!)) continue;
    try {
      return new URL(m[1]!, 'http://seed.invalid/').searchParams;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A tag list's next page from its Link's query: only an `n` and `last` that can be one are kept. */
export function tagPageOf(params: URLSearchParams | undefined): { n?: number; last?: Tag } | undefined {
  if (!params) return undefined;
  const n = params.get('n');
  const last = params.get('last');
  const page: { n?: number; last?: Tag } = {};
  if (n !== null && /^\d{1,9}$/.test(n)) page.n = Number(n);
  if (last !== null && isTag(last)) page.last = last as Tag;
  return page.n !== undefined || page.last !== undefined ? page : undefined;
}
