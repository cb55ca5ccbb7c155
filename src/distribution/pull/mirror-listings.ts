// Tags and referrers of a seed's repositories, for a node that mirrors the seed. A listing has no digest
// to cache it by: a tag list is asked of the seed once per tag TTL and paged here, referrers every time
// (artifactType and the seed's own paging passed through). Answers are remembered: while the seed cannot
// be reached, the node answers with what it last knew, marked stale as a stale tag is. What the seed
// says comes checked through the SeedRegistry seam (bounded, parsed); how much of it to follow, keep
// and pass on is decided here.
import type { Logger } from 'pino';
import { normalizeRepository, OciError, type Descriptor, type Digest, type RepositoryName, type Tag } from '../../oci/index.js';
import type { RepositoryStore } from '../../store/index.js';
import { SeedError, type SeedRegistry, type TagPageQuery } from '../../seed/index.js';
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
  /** The seed of each registry mirrored, by registry name. */
  seeds: ReadonlyMap<string, SeedRegistry>;
  /** The cache of one seed's repositories (the tags it resolved, the referrers it was told of). */
  cacheFor: (registry: string) => Promise<RepositoryStore>;
  /** How long a tag list from the seed is trusted before asking again (the tag TTL). */
  tagTtlMs: number;
  serveStale: boolean;
  log: Pick<Logger, 'warn'>;
}

/** Tag names remembered from seed answers, over every repository (the oldest repositories go first). */
const MAX_REMEMBERED_TAGS = 200_000;
/** Pages of a seed's tag list followed for one listing. */
const MAX_SEED_PAGES = 100;
/** Query parameters passed on to the seed's referrers endpoint (a paged answer's Link carries its own). */
const MAX_FORWARDED_PARAMS = 8;
const MAX_FORWARDED_QUERY_CHARS = 2048;
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export class MirrorListings {
  /** The tags each seed repository last listed, and when (key registry/repo); Map order is age, oldest first. */
  private readonly known = new Map<string, { tags: readonly Tag[]; at: number }>();
  private knownCount = 0;
  /** Clients listing one repository at once share one walk of the seed's list. */
  private readonly tagFlights = new SingleFlight<Tag[]>();

  constructor(private readonly opts: MirrorListingOptions) {}

  /** Whether listings of this registry can be had: only from its seed. */
  serves(registry: string): boolean {
    return this.opts.seeds.has(registry);
  }

  private seed(registry: string): SeedRegistry {
    const seed = this.opts.seeds.get(registry);
    if (!seed) throw new OciError('NAME_UNKNOWN', `no seed registry is configured for ${registry}`);
    return seed;
  }

  // ---- tags ----

  /**
   * A seed repository's tags, paged here by `n` and `last` in this node's order. The seed is asked for
   * its whole list (following its own pages): seeds differ in what they do with n and last (distribution
   * 2.8 ignores both and answers in no order), so paging them through could skip or repeat tags. The
   * list is then trusted for the tag TTL, so a client walking the pages sees one list.
   */
  async tags(registry: string, name: RepositoryName, n?: number, last?: string): Promise<TagsAnswer> {
    const seed = this.seed(registry);
    const repo = normalizeRepository(registry, name);
    const key = `${registry}/${repo}`;
    let all: Tag[];
    let stale = false;
    const fresh = this.known.get(key);
    if (fresh && Date.now() - fresh.at < this.opts.tagTtlMs) {
      all = [...fresh.tags];
    } else {
      try {
        all = await this.tagFlights.run(key, () => this.fetchTags(seed, key, repo));
      } catch (err) {
        const known = err instanceof SeedError && err.unavailable && this.opts.serveStale ? await this.knownTags(registry, repo, key) : undefined;
        if (!known) throw toClientError(err, 'MANIFEST_UNKNOWN', `repository ${repo} not known to ${registry}`);
        this.opts.log.warn({ registry, repository: repo, tags: known.length, reason: (err as Error).message }, 'seed unreachable: serving a stale tag list');
        all = known;
        stale = true;
      }
    }
    const page = paginate(all, n, last);
    return { tags: page.items, next: page.next !== undefined && n !== undefined ? { n, last: page.next } : undefined, stale };
  }

  /** Every tag the seed lists, following its pages (only their n and last, never its URLs). */
  private async fetchTags(seed: SeedRegistry, key: string, repo: RepositoryName): Promise<Tag[]> {
    const tags = new Set<Tag>();
    const asked = new Set<string>();
    let page: TagPageQuery | undefined;
    for (let pages = 0; ; pages++) {
      if (pages >= MAX_SEED_PAGES) throw new SeedError(seed.name, 'protocol', `tag list of ${repo}: more than ${MAX_SEED_PAGES} pages`);
      asked.add(pageKey(page));
      const answer = await seed.listTags(repo, page);
      if (!answer) {
        this.forget(key);
        throw new OciError('NAME_UNKNOWN', `repository ${repo} not known to ${seed.name}`);
      }
      for (const t of answer.tags) tags.add(t);
      if (tags.size > MAX_REMEMBERED_TAGS) throw new SeedError(seed.name, 'protocol', `tag list of ${repo}: more than ${MAX_REMEMBERED_TAGS} tags`);
      // No next page, or one already asked for (a seed going round in circles): the list is complete.
      if (answer.next === undefined || asked.has(pageKey(answer.next))) break;
      page = answer.next;
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
    const seed = this.seed(registry);
    const repo = normalizeRepository(registry, name);
    const artifactType = params.get('artifactType') ?? undefined;
    const forwarded = forwardable(params);
    if (!forwarded) throw new OciError('UNSUPPORTED', 'too many or too long query parameters', { status: 400 });
    let answer: ReferrersAnswer;
    try {
      const page = await seed.referrers(repo, subject, forwarded);
      // No referrers API at the seed (or no such repository): the client falls back to the tag schema.
      if (!page) throw new OciError('NAME_UNKNOWN', `repository ${repo} not known to ${registry}, or it has no referrers API`);
      // The seed's next page is passed on as this node's own parameters are: bounded, never `ns`.
      const next = page.next && forwardable(page.next);
      answer = { manifests: page.manifests, filtered: artifactType !== undefined && page.filtered, stale: false };
      if (next && next.size > 0) answer.next = next;
    } catch (err) {
      if (err instanceof SeedError && err.unavailable && this.opts.serveStale) {
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

/** A tag page's identity, to notice a seed whose pages go round in circles. */
function pageKey(page: TagPageQuery | undefined): string {
  return `${page?.n ?? ''} ${page?.last ?? ''}`;
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
