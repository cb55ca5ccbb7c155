// Tags and referrers of a seed's repositories, for a node that mirrors the seed. A listing has no digest
// to cache it by: a tag list is asked of the seed once per tag TTL and paged here, referrers every time
// (artifactType and the seed's own paging passed through). Answers are remembered: while the seed cannot
// be reached, the node answers with what it last knew, marked stale as a stale tag is. Everything the seed says is hostile until checked: bodies are bounded, the JSON's shape
// is checked, and every tag and digest is parsed before anything is served or kept.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { parseDigest, type Digest } from '../../oci/index.js';
import { OciError } from '../../oci/index.js';
import { MAX_MANIFEST_BYTES, MediaType, type Descriptor } from '../../oci/index.js';
import { isTag, normalizeRepository, type RepositoryName, type Tag } from '../../oci/index.js';
import type { RepositoryStore } from '../../store/index.js';
import { UpstreamError } from '../../seed/index.js';
import { readBody } from '../../seed/index.js';
import { headerOf, type UpstreamRegistry } from '../../seed/index.js';
import { toClientError } from './mirror.js';
import { paginate } from '../registry/index.js';
import { SingleFlight } from '../download/index.js';

export interface TagsAnswer {
  tags: string[];
  /** Where the next page starts (the `n` and `last` of its request), when there is one. */
  next?: { n: number; last: string };
  /** Answered from what the node knew, because the seed could not be reached. */
  stale: boolean;
}

export interface ReferrersAnswer {
  manifests: Descriptor[];
  /** Whether the artifactType filter was applied (the spec's OCI-Filters-Applied). */
  filtered: boolean;
  /** The query of the next page, when the answer is paged (the seed's, minus anything of this node's). */
  next?: URLSearchParams;
  stale: boolean;
}

export interface MirrorListingOptions {
  upstreams: ReadonlyMap<string, UpstreamRegistry>;
  /** The cache of one seed's repositories (the tags it resolved, the referrers it was told of). */
  cacheFor: (registry: string) => Promise<RepositoryStore>;
  /** How long a tag list from the seed is trusted before asking again (the tag TTL). */
  tagTtlMs: number;
  serveStale: boolean;
  log: Pick<Logger, 'warn'>;
}

/** A tag list is names of at most 128 characters: 4 MiB is some 30,000 of them. */
const MAX_TAG_LIST_BYTES = 4 * 1024 * 1024;
/** Tag names remembered from seed answers, over every repository (the oldest repositories go first). */
const MAX_REMEMBERED_TAGS = 200_000;
/** Pages of a seed's tag list followed for one listing. */
const MAX_SEED_PAGES = 100;
/** Query parameters passed on to the seed's referrers endpoint (a paged answer's Link carries its own). */
const MAX_FORWARDED_PARAMS = 8;
const MAX_FORWARDED_QUERY_CHARS = 2048;
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** RFC 6838's media type grammar (type/subtype), bounded. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const MAX_ANNOTATIONS = 256;
const MAX_ANNOTATION_CHARS = 64 * 1024;

export class MirrorListings {
  /** The tags each seed repository last listed, and when (key registry/repo); Map order is age, oldest first. */
  private readonly known = new Map<string, { tags: readonly Tag[]; at: number }>();
  private knownCount = 0;
  /** Clients listing one repository at once share one walk of the seed's list. */
  private readonly tagFlights = new SingleFlight<Tag[]>();

  constructor(private readonly opts: MirrorListingOptions) {}

  /** Whether listings of this registry can be had: only from its seed. */
  serves(registry: string): boolean {
    return this.opts.upstreams.has(registry);
  }

  private upstream(registry: string): UpstreamRegistry {
    const up = this.opts.upstreams.get(registry);
    if (!up) throw new OciError('NAME_UNKNOWN', `no seed registry is configured for ${registry}`);
    return up;
  }

  // ---- tags ----

  /**
   * A seed repository's tags, paged here by `n` and `last` in this node's order. The seed is asked for
   * its whole list (following its own pages): seeds differ in what they do with n and last (distribution
   * 2.8 ignores both and answers in no order), so paging them through could skip or repeat tags. The
   * list is then trusted for the tag TTL, so a client walking the pages sees one list.
   */
  async tags(registry: string, name: RepositoryName, n?: number, last?: string): Promise<TagsAnswer> {
    const up = this.upstream(registry);
    const repo = normalizeRepository(registry, name);
    const key = `${registry}/${repo}`;
    let all: Tag[];
    let stale = false;
    const fresh = this.known.get(key);
    if (fresh && Date.now() - fresh.at < this.opts.tagTtlMs) {
      all = [...fresh.tags];
    } else {
      try {
        all = await this.tagFlights.run(key, () => this.fetchTags(up, key, repo));
      } catch (err) {
        const known = err instanceof UpstreamError && err.unavailable && this.opts.serveStale ? await this.knownTags(registry, repo, key) : undefined;
        if (!known) throw toClientError(err, 'MANIFEST_UNKNOWN', `repository ${repo} not known to ${registry}`);
        this.opts.log.warn({ registry, repository: repo, tags: known.length, reason: (err as Error).message }, 'seed unreachable: serving a stale tag list');
        all = known;
        stale = true;
      }
    }
    const page = paginate(all, n, last);
    return { tags: page.items, next: page.next !== undefined && n !== undefined ? { n, last: page.next } : undefined, stale };
  }

  /** Every tag the seed lists, following its Link pages (never its URLs: only their n and last). */
  private async fetchTags(up: UpstreamRegistry, key: string, repo: RepositoryName): Promise<Tag[]> {
    const tags = new Set<Tag>();
    const asked = new Set<string>();
    let query = '';
    for (let pages = 0; ; pages++) {
      if (pages >= MAX_SEED_PAGES) throw new UpstreamError(up.name, 'protocol', `tag list of ${repo}: more than ${MAX_SEED_PAGES} pages`);
      asked.add(query);
      const res = await up.request('GET', repo, `tags/list${query}`, { accept: 'application/json' });
      if (res.statusCode === 404) {
        res.resume();
        this.forget(key);
        throw new OciError('NAME_UNKNOWN', `repository ${repo} not known to ${up.name}`);
      }
      checkStatus(up, res);
      for (const t of parseTagList(up, await bodyOf(up, res, MAX_TAG_LIST_BYTES, 'tag list'))) tags.add(t);
      if (tags.size > MAX_REMEMBERED_TAGS) throw new UpstreamError(up.name, 'protocol', `tag list of ${repo}: more than ${MAX_REMEMBERED_TAGS} tags`);
      const next = nextOfLink(headerOf(res, 'link'), (params) => {
        const q = new URLSearchParams();
        const n = params.get('n');
        const last = params.get('last');
        if (n !== null && /^\d{1,9}$/.test(n)) q.set('n', n);
        if (last !== null && isTag(last)) q.set('last', last);
        return q.size > 0 ? `?${q}` : undefined;
      });
      // No next page, or one already asked for (a seed going round in circles): the list is complete.
      if (next === undefined || asked.has(next)) break;
      query = next;
    }
    const list = [...tags];
    this.remember(key, list);
    return list;
  }

  /** The seed's latest complete list replaces what was known of the repository. */
  private remember(key: string, tags: Tag[]): void {
    this.forget(key);
    this.known.set(key, { tags, at: Date.now() });
    this.knownCount += tags.length;
    for (const [k] of this.known) {
      if (this.knownCount <= MAX_REMEMBERED_TAGS || k === key) break;
      this.forget(k);
    }
  }

  private forget(key: string): void {
    const entry = this.known.get(key);
    if (!entry) return;
    this.knownCount -= entry.tags.length;
    this.known.delete(key);
  }

  /** What the node knows of a repository's tags: the seed's last list, and every tag it resolved. */
  private async knownTags(registry: string, repo: RepositoryName, key: string): Promise<Tag[] | undefined> {
    const resolved = await (await this.opts.cacheFor(registry)).listTags(repo);
    const listed = this.known.get(key)?.tags;
    if (!resolved && !listed) return undefined;
    return [...new Set([...(listed ?? []), ...(resolved ?? [])])];
  }

  // ---- referrers ----

  /**
   * The seed's referrers of `subject`. `params` is the client's query, minus this node's own parameters:
   * artifactType, and whatever the seed put in a paged answer's Link.
   */
  async referrers(registry: string, name: RepositoryName, subject: Digest, params: URLSearchParams): Promise<ReferrersAnswer> {
    const up = this.upstream(registry);
    const repo = normalizeRepository(registry, name);
    const artifactType = params.get('artifactType') ?? undefined;
    const forwarded = forwardable(params);
    if (!forwarded) throw new OciError('UNSUPPORTED', 'too many or too long query parameters', { status: 400 });
    let answer: ReferrersAnswer;
    try {
      const res = await up.request('GET', repo, `referrers/${subject}${forwarded.size > 0 ? `?${forwarded}` : ''}`, { accept: MediaType.OciIndex });
      if (res.statusCode === 404) {
        // No referrers API at the seed (or no such repository): the client falls back to the tag schema.
        res.resume();
        throw new OciError('NAME_UNKNOWN', `repository ${repo} not known to ${registry}, or it has no referrers API`);
      }
      checkStatus(up, res);
      const manifests = parseReferrers(up, await bodyOf(up, res, MAX_MANIFEST_BYTES, 'referrers index'));
      const applied = (headerOf(res, 'oci-filters-applied') ?? '').split(',').map((f) => f.trim());
      const next = nextOfLink(headerOf(res, 'link'), (p) => forwardable(p));
      answer = { manifests, filtered: artifactType !== undefined && applied.includes('artifactType'), stale: false };
      if (next && next.size > 0) answer.next = next;
    } catch (err) {
      if (err instanceof UpstreamError && err.unavailable && this.opts.serveStale) {
        const stale = await this.knownReferrers(registry, repo, subject, artifactType);
        if (stale) {
          this.opts.log.warn({ registry, repository: repo, subject, referrers: stale.manifests.length, reason: err.message }, 'seed unreachable: serving stale referrers');
          return stale;
        }
      }
      throw toClientError(err, 'MANIFEST_UNKNOWN', `repository ${repo} not known to ${registry}`);
    }
    await this.rememberReferrers(registry, repo, subject, answer, forwarded.size === 0);
    return answer;
  }

  /** Kept in the seed's cache; a complete, unfiltered answer also drops referrers the seed no longer lists. */
  private async rememberReferrers(registry: string, repo: RepositoryName, subject: Digest, answer: ReferrersAnswer, complete: boolean): Promise<void> {
    const cache = await this.opts.cacheFor(registry);
    for (const d of answer.manifests) await cache.addReferrer(repo, subject, d);
    if (!complete || answer.next) return;
    const listed = new Set(answer.manifests.map((d) => d.digest));
    for (const old of await cache.listReferrers(repo, subject)) {
      if (!listed.has(old.digest)) await cache.removeReferrer(repo, subject, old.digest);
    }
  }

  private async knownReferrers(registry: string, repo: RepositoryName, subject: Digest, artifactType: string | undefined): Promise<ReferrersAnswer | undefined> {
    const all = await (await this.opts.cacheFor(registry)).listReferrers(repo, subject);
    if (all.length === 0) return undefined;
    // Filtered here, so the answer says it was.
    const manifests = artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType);
    return { manifests, filtered: artifactType !== undefined, stale: true };
  }
}

/** Anything but 200 from the seed is an error here; 404s are handled by the callers before this. */
function checkStatus(up: UpstreamRegistry, res: IncomingMessage): void {
  const status = res.statusCode ?? 0;
  if (status === 200) return;
  res.resume();
  throw new UpstreamError(up.name, 'status', `answered ${status}`, status);
}

async function bodyOf(up: UpstreamRegistry, res: IncomingMessage, max: number, what: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readBody(res, max);
  } catch (err) {
    throw new UpstreamError(up.name, 'protocol', `${what}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UpstreamError(up.name, 'protocol', `${what} is not JSON`);
  }
}

/** `{"name": ..., "tags": [...]}`; every tag must be one by the spec's grammar (null: none). */
function parseTagList(up: UpstreamRegistry, doc: unknown): Tag[] {
  const fail = (why: string) => new UpstreamError(up.name, 'protocol', `tag list refused: ${why}`);
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
function parseReferrers(up: UpstreamRegistry, doc: unknown): Descriptor[] {
  const fail = (why: string) => new UpstreamError(up.name, 'protocol', `referrers index refused: ${why}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('not a JSON object');
  const index = doc as { schemaVersion?: unknown; manifests?: unknown };
  if (index.schemaVersion !== 2) throw fail('schemaVersion is not 2');
  if (index.manifests === null || index.manifests === undefined) return [];
  if (!Array.isArray(index.manifests)) throw fail('manifests is not an array');
  const byDigest = new Map<Digest, Descriptor>();
  for (const [i, raw] of index.manifests.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(`manifests[${i}] is not an object`);
    const v = raw as Record<string, unknown>;
    if (typeof v.mediaType !== 'string' || !MEDIA_TYPE.test(v.mediaType)) throw fail(`manifests[${i}]: invalid mediaType`);
    let digest: Digest;
    try {
      digest = parseDigest(typeof v.digest === 'string' ? v.digest : '');
    } catch {
      throw fail(`manifests[${i}]: invalid digest`);
    }
    if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0 || v.size > MAX_MANIFEST_BYTES) throw fail(`manifests[${i}]: invalid size`);
    const d: Descriptor = { mediaType: v.mediaType, digest, size: v.size };
    if (v.artifactType !== undefined && v.artifactType !== null) {
      if (typeof v.artifactType !== 'string' || !MEDIA_TYPE.test(v.artifactType)) throw fail(`manifests[${i}]: invalid artifactType`);
      d.artifactType = v.artifactType;
    }
    if (v.annotations !== undefined && v.annotations !== null) d.annotations = annotationsOf(v.annotations, () => fail(`manifests[${i}]: invalid annotations`));
    byDigest.set(digest, d);
  }
  return [...byDigest.values()];
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
 * The next page a seed's `Link: <url>; rel="next"` names, read by `read` from its query; undefined when
 * there is none, or it cannot be read. Only the query is kept: this node builds its own URL around it.
 */
function nextOfLink<T>(link: string | undefined, read: (params: URLSearchParams) => T): T | undefined {
  if (!link || link.length > 8192) return undefined;
  for (const part of link.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/(^|;)\s*rel\s*=\s*"?next"?\s*(;|$)/i.test(m[2]!)) continue;
    try {
      const url = new URL(m[1]!, 'http://seed.invalid/');
      return read(url.searchParams);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The parameters passed on to the seed (and, from a seed's Link, to the client): never this node's `ns`,
 * bounded in number and length. Too many is the client's error; from a seed's Link, no next page.
 */
function forwardable(params: URLSearchParams): URLSearchParams | undefined {
  const out = new URLSearchParams();
  let chars = 0;
  for (const [k, v] of params) {
    if (k === 'ns' || !PARAM_NAME.test(k)) continue;
    chars += k.length + v.length;
    if (out.size >= MAX_FORWARDED_PARAMS || chars > MAX_FORWARDED_QUERY_CHARS) return undefined;
    out.append(k, v);
  }
  return out;
}
