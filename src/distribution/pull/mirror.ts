// The mirror: content of other registries (the seeds), fetched on demand and kept. Manifests by digest
// are immutable and kept for good; tags are re-resolved at the seed once their TTL has passed, and a
// known tag is served stale (and said to be) while the seed cannot be reached. Blobs are fetched once
// per digest however many clients ask (SharedDownload), streamed to clients as they land (the last byte
// held until the digest verifies), verified, then kept.
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  DescriptorSizes,
  errnoOf,
  failureOf,
  insufficientStorage,
  normalizeRepository,
  OciError,
  referenceString,
  type ByteRange,
  type Digest,
  type ManifestReference,
  type RepositoryName,
  type Tag,
} from '../../oci/index.js';
import { readSmallBlob, type BlobStore, type RepositoryStore } from '../../store/index.js';
import { SeedError, type SeedRegistry } from '../../seed/index.js';
import type { BlobAnswer, ManifestAnswer, Source } from '../answers.js';
import type { ServableBlob } from '../../p2p/index.js';
import type { PeerFetcher } from '../peers/index.js';
import { SharedDownloads, NoSourceError, SingleFlight, type DownloadSource } from '../download/index.js';

export interface MirrorOptions {
  blobs: BlobStore;
  /** The seed of each registry mirrored, by registry name. */
  seeds: ReadonlyMap<string, SeedRegistry>;
  /** The cache of one seed's repositories: manifests, tags, and which blobs were fetched for what. */
  cacheFor: (registry: string) => Promise<RepositoryStore>;
  tagTtlMs: number;
  serveStale: boolean;
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** Peers to ask for blobs before the seed (absent when P2P is off). */
  peers?: PeerFetcher;
  /** Told of every manifest fetched from a seed and kept. */
  onManifestFetched?: (digest: Digest) => void;
  /** Told when a client's request joins a download already running for the blob. */
  onJoin?: (digest: Digest) => void;
  /** Told of every blob fetched and committed, with where it came from. */
  onBlobFetched?: (digest: Digest, size: number, source: Source) => void;
  /**
   * Whether a download for this repository (as the client named it, and normalized) may be offered to
   * peers while it runs: announced early, joined to a fetch chain, relayed. Absent: always.
   */
  offersToPeers?: (name: RepositoryName, repo: RepositoryName) => boolean;
  /**
   * Whether bytes this node holds may be served by digest alone, standing in for a peer fetch (a
   * registry with no seed): only where a peer would be offered them, i.e. some public repository links
   * the blob. Absent: always.
   */
  heldForPeers?: (digest: Digest) => Promise<boolean>;
}

/** How many times a request waits out a download it may not join before it gives up. */
const MAX_WAITS = 3;
/**
 * How long a peer's ask for a range of a striped download waits here for the range's first byte to land
 * before it is told 'pending' (it asks again at once): a long poll, one question per few seconds per
 * chunk waited on, not one per pause. Well inside the asker's wait for an answer (followAnswerMs).
 */
const RANGE_WAIT_MS = 5_000;

export class Mirror {
  private readonly downloads = new SharedDownloads();
  private readonly tagFlights = new SingleFlight<ManifestAnswer>();
  private readonly digestFlights = new SingleFlight<ManifestAnswer>();
  /** When each tag was last confirmed at its seed (memory only: after a restart every tag is re-checked once). */
  private readonly tagConfirmed = new Map<string, number>();
  /** Downloads running for a repository whose blobs peers may have (only those are relayed). */
  private readonly offered = new Set<Digest>();
  /** The repositories (registry/repo) each running download was vouched for: their caches link the blob once it is stored. */
  private readonly fetchedFor = new WeakMap<object, Map<string, { registry: string; repo: RepositoryName }>>();
  /** Blob sizes the seed's manifests give: what a peer's claimed size is held against. */
  private readonly sizes = new DescriptorSizes();

  constructor(private readonly opts: MirrorOptions) {}

  /** Whether manifests of this registry can be had: only from its seed. */
  serves(registry: string): boolean {
    return this.opts.seeds.has(registry);
  }

  /** Whether blobs of this registry can be had: from its seed, or from peers by digest alone. */
  servesBlobs(registry: string): boolean {
    return this.opts.seeds.has(registry) || this.opts.peers !== undefined;
  }

  private seed(registry: string): SeedRegistry {
    const seed = this.opts.seeds.get(registry);
    if (!seed) throw new OciError('NAME_UNKNOWN', `no seed registry is configured for ${registry}`);
    return seed;
  }

  // ---- manifests ----

  async manifest(registry: string, name: RepositoryName, ref: ManifestReference): Promise<ManifestAnswer> {
    const seed = this.seed(registry);
    const repo = normalizeRepository(registry, name);
    const cache = await this.opts.cacheFor(registry);
    if (ref.kind === 'digest') {
      const cached = await this.cachedManifest(cache, repo, ref.digest);
      if (cached) return cached;
      return this.digestFlights.run(`${registry}/${repo}@${ref.digest}`, () =>
        this.fetchManifest(seed, cache, repo, ref).catch((err) => {
          throw toClientError(err, 'MANIFEST_UNKNOWN', `manifest ${ref.digest} not found in ${registry}/${repo}`);
        }),
      );
    }
    return this.manifestByTag(seed, cache, registry, repo, ref.tag);
  }

  private async manifestByTag(seed: SeedRegistry, cache: RepositoryStore, registry: string, repo: RepositoryName, tag: Tag): Promise<ManifestAnswer> {
    const key = `${registry}/${repo}:${tag}`;
    const cachedDigest = await cache.getTag(repo, tag);
    const cached = cachedDigest ? await this.cachedManifest(cache, repo, cachedDigest) : undefined;
    if (cached && Date.now() - (this.tagConfirmed.get(key) ?? -Infinity) < this.opts.tagTtlMs) return cached;
    try {
      return await this.tagFlights.run(key, () => this.resolveTag(seed, cache, key, repo, tag, cached !== undefined));
    } catch (err) {
      if (err instanceof SeedError && err.unavailable && cached && this.opts.serveStale) {
        this.opts.log.warn({ registry, repository: repo, tag, digest: cached.record.digest, reason: err.message }, 'seed unreachable: serving a stale tag');
        return { ...cached, stale: true };
      }
      throw toClientError(err, 'MANIFEST_UNKNOWN', `manifest ${tag} not found in ${registry}/${repo}`);
    }
  }

  /**
   * Re-checking a tag we hold starts with a HEAD: when it still points at the same manifest, no body
   * crosses the wire (and Docker Hub does not count a HEAD against the pull limit). A tag never seen
   * goes straight to a GET, one round trip instead of two.
   */
  private async resolveTag(seed: SeedRegistry, cache: RepositoryStore, key: string, repo: RepositoryName, tag: Tag, known: boolean): Promise<ManifestAnswer> {
    let answer: ManifestAnswer | undefined;
    let named: Digest | undefined;
    if (known) {
      const head = await seed.headManifest(repo, { kind: 'tag', tag });
      if (!head) {
        await cache.deleteTag(repo, tag);
        throw new OciError('MANIFEST_UNKNOWN', `manifest ${tag} not found in ${seed.name}/${repo}`);
      }
      named = head.digest;
      answer = named ? await this.cachedManifest(cache, repo, named) : undefined;
    }
    // By digest when the HEAD named one: the tag may move between the two requests, the digest cannot.
    if (!answer) answer = await this.fetchManifest(seed, cache, repo, named ? { kind: 'digest', digest: named } : { kind: 'tag', tag });
    await cache.setTag(repo, tag, answer.record.digest);
    this.tagConfirmed.set(key, Date.now());
    return answer;
  }

  private async cachedManifest(cache: RepositoryStore, repo: RepositoryName, digest: Digest): Promise<ManifestAnswer | undefined> {
    const record = await cache.getManifest(repo, digest);
    if (!record) return undefined;
    try {
      const bytes = await readSmallBlob(this.opts.blobs, digest);
      this.sizes.note(bytes, record.mediaType);
      return { record, bytes, source: 'local', stale: false };
    } catch {
      return undefined; // its bytes are gone (evicted): fetch again
    }
  }

  /** Fetches a manifest (its bytes checked by the seed against the digest asked for or announced) and keeps it. */
  private async fetchManifest(seed: SeedRegistry, cache: RepositoryStore, repo: RepositoryName, ref: ManifestReference): Promise<ManifestAnswer> {
    const fetched = await seed.getManifest(repo, ref);
    if (!fetched) throw new OciError('MANIFEST_UNKNOWN', `manifest ${referenceString(ref)} not found in ${seed.name}/${repo}`);
    const { bytes, digest } = fetched;
    const record = { digest, mediaType: fetched.mediaType, size: bytes.length };
    this.sizes.note(bytes, record.mediaType);
    await this.opts.blobs.put(Readable.from([bytes]), digest);
    this.opts.onManifestFetched?.(digest);
    await cache.putManifest(repo, record);
    return { record, bytes, source: 'upstream', stale: false };
  }

  // ---- blobs ----

  /**
   * A blob for one repository of a registry: the bytes this node holds when they are held for it (see
   * held()), else from peers, else from the seed (the order of `sources`). With no seed for the
   * registry, peers alone may still have it, by digest.
   *
   * Content is served for a name only as the seed (or, with no seed, the peers) would serve it: the
   * store is content-addressed and shared by every repository, pushed or cached, so holding the bytes
   * says nothing about whether this repository has them. Otherwise anyone could read a private
   * repository's layer under any name, and a HEAD would tell a pushing client that its new repository
   * already has a layer its manifest PUT then refuses.
   */
  async blob(registry: string, name: RepositoryName, digest: Digest, head: boolean): Promise<BlobAnswer> {
    const seed = this.opts.seeds.get(registry);
    const { peers } = this.opts;
    if (!seed && !peers) throw new OciError('NAME_UNKNOWN', `no seed registry is configured for ${registry}`);
    const repo = normalizeRepository(registry, name);
    const cache = await this.opts.cacheFor(registry);
    for (let waits = 0; ; waits++) {
      const held = await this.held(cache, seed, repo, digest);
      if (held) return held;
      const running = this.downloads.get(digest);
      if (!running || (await this.mayJoin(running, registry, seed, repo, digest))) return this.fetchBlob(registry, seed, name, repo, digest, head);
      // Another repository's download that nothing vouches for this one (its content is private, and
      // there is no seed to ask): wait until it is over, then look again as if it had never run.
      if (waits >= MAX_WAITS) throw new OciError('BLOB_UNKNOWN', `blob ${digest} not found in ${registry}/${repo}`, { detail: { digest } });
      await running.done.catch(() => undefined);
    }
  }

  /**
   * The held bytes, when they may be served for this repository: its cache links them (they were
   * fetched for it before); or the seed says now that the repository has the blob (a HEAD, no bytes
   * cross; then the cache links them too); or, with no seed, a peer would be offered them.
   */
  private async held(cache: RepositoryStore, seed: SeedRegistry | undefined, repo: RepositoryName, digest: Digest): Promise<BlobAnswer | undefined> {
    const { blobs } = this.opts;
    const local = await blobs.stat(digest);
    if (!local) return undefined;
    const answer: BlobAnswer = { digest, size: local.size, source: 'local', open: async (range) => (await blobs.open(digest, range)).stream };
    if ((await cache.hasBlob(repo, digest)) || (await cache.getManifest(repo, digest))) return answer;
    if (seed) {
      await this.headBlob(seed, repo, digest);
      await cache.linkBlob(repo, digest);
      return answer;
    }
    return (await (this.opts.heldForPeers?.(digest) ?? true)) ? answer : undefined;
  }

  /**
   * Whether a request for this repository may follow a download already running for the digest: one
   * started or vouched for this repository; else the seed says the repository has the blob; else (no
   * seed) the download is public content, which peers would be offered too.
   */
  private async mayJoin(download: object, registry: string, seed: SeedRegistry | undefined, repo: RepositoryName, digest: Digest): Promise<boolean> {
    const vouched = this.fetchedFor.get(download);
    const key = `${registry}/${repo}`;
    if (vouched?.has(key)) return true;
    if (seed) {
      await this.headBlob(seed, repo, digest);
      vouched?.set(key, { registry, repo });
      return true;
    }
    return this.offered.has(digest);
  }

  private async fetchBlob(registry: string, seed: SeedRegistry | undefined, name: RepositoryName, repo: RepositoryName, digest: Digest, head: boolean): Promise<BlobAnswer> {
    const { blobs, peers } = this.opts;
    const offer = this.opts.offersToPeers?.(name, repo) ?? true;
    let download = this.downloads.get(digest);
    if (download && !head) this.opts.onJoin?.(digest);
    // A HEAD is answered by the seed without fetching; with no seed, only by fetching (and verifying).
    if (!download && head && seed) return this.headBlob(seed, repo, digest);
    if (!download) {
      const sources: DownloadSource[] = [];
      // Peers' claimed sizes are held against the manifest's descriptor. With none (a blob asked for by
      // digest alone), a large claim is checked against a seed HEAD once its first range is in: not before
      // every peer fetch, which would put the seed (and its timeout, when it is down) in front of each,
      // but before a liar could make this node read much (see PeerFetcherOptions.confirmClaimsAbove).
      const confirmSize = seed ? () => this.headBlob(seed, repo, digest).then((a) => a.size) : undefined;
      if (peers) sources.push(peers.source(digest, { claim: offer, size: this.sizes.get(digest), confirmSize }));
      if (seed) {
        sources.push({
          name: 'upstream',
          open: async (from) => {
            const body = await this.openBlob(seed, repo, digest, from);
            // Announced while it downloads: a node that misses the blob now follows this download
            // instead of asking the seed too (peers verify what they get).
            if (offer) peers?.announce(digest);
            return body;
          },
          failed: () => offer && peers?.withdraw(digest),
        });
      }
      download = this.downloads.start(blobs, digest, sources);
      const mine = download;
      const vouched = new Map([[`${registry}/${repo}`, { registry, repo }]]);
      this.fetchedFor.set(mine, vouched);
      void mine.done.catch(() => undefined).finally(() => {
        if (this.downloads.get(digest) !== mine) this.offered.delete(digest);
      });
      const started = Date.now();
      download.done
        .then(async (info) => {
          this.opts.log.info({ registry, repository: repo, digest, size: info.size, ms: Date.now() - started, source: download!.source }, 'blob fetched');
          // Every repository it was fetched for links it (those that joined were vouched for by the seed).
          for (const v of vouched.values()) await (await this.opts.cacheFor(v.registry)).linkBlob(v.repo, digest);
          this.opts.onBlobFetched?.(digest, info.size, download!.source ?? 'upstream');
        })
        .catch((err: Error) => this.opts.log.warn({ registry, repository: repo, digest, reason: err.message }, 'blob fetch failed: nothing kept'));
    }
    const running = download;
    // A public request joining a private download makes it offerable: the bytes are public content.
    if (offer) this.offered.add(digest);
    let answer: Awaited<ReturnType<typeof running.answer>>;
    try {
      await running.started;
      // The size and source as they are now (a download that dropped its bytes may be starting over).
      answer = await running.answer();
    } catch (err) {
      const cause = err instanceof NoSourceError ? new OciError('BLOB_UNKNOWN', `no peer has ${digest}`) : err;
      throw toClientError(cause, 'BLOB_UNKNOWN', `blob ${digest} not found in ${registry}/${repo}`);
    }
    const stored = running.done.then(() => undefined);
    stored.catch(() => undefined); // a client that never asks for it must not leave a rejection unhandled
    return {
      digest,
      size: answer.size,
      source: answer.source,
      stored,
      verified: running.checked,
      // Tied to the bytes this answer was made from: if they are dropped, the client is cut.
      open: async (range?: ByteRange) => running.follow(range, { generation: answer.generation }),
    };
  }

  /**
   * A blob being fetched right now (from the seed, or from the peer before this node in a claim chain),
   * for peers to follow as its bytes land; undefined when none is; 'pending' when one runs but has not
   * begun writing within `waitMs` (this node itself waits on the node before it, or on a starved host):
   * the asker keeps its place behind this node instead of going elsewhere.
   */
  async relay(digest: Digest, waitMs: number): Promise<ServableBlob | 'pending' | undefined> {
    const download = this.downloads.get(digest);
    if (!download || !this.offered.has(digest)) return undefined;
    if (!(await download.relayable(waitMs))) return this.downloads.get(digest) === download && download.status !== 'failed' ? 'pending' : undefined;
    return {
      size: download.size!,
      open: async (range) => download.follow(range, { unverified: true }),
      ready: (range) => download.landedAt(range.start, RANGE_WAIT_MS),
    };
  }

  /** The seed's word that the repository has the blob, and its size (no bytes cross). */
  private async headBlob(seed: SeedRegistry, repo: RepositoryName, digest: Digest): Promise<BlobAnswer> {
    let stat: { size: number } | undefined;
    try {
      stat = await seed.statBlob(repo, digest);
    } catch (err) {
      throw toClientError(err, 'BLOB_UNKNOWN', `blob ${digest} not found in ${seed.name}/${repo}`);
    }
    if (!stat) throw new OciError('BLOB_UNKNOWN', `blob ${digest} not found in ${seed.name}/${repo}`);
    return { digest, size: stat.size, source: 'upstream', open: async () => Readable.from([]) };
  }

  /**
   * The blob's bytes from `from` on: a download that another source left part way goes on from there. A
   * seed that ignores the offset sends the whole blob (start 0): the download skips what it has.
   */
  private async openBlob(seed: SeedRegistry, repo: RepositoryName, digest: Digest, from = 0) {
    const blob = await seed.openBlob(repo, digest, from);
    if (!blob) throw new OciError('BLOB_UNKNOWN', `blob ${digest} not found in ${seed.name}/${repo}`);
    return blob;
  }
}

/** What a seed failure means to a client: an OCI error with a status that says whose fault it is. */
export function toClientError(err: unknown, notFound: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', notFoundMessage: string): OciError {
  if (err instanceof OciError) return err;
  // This node's disk, not the seed: a full disk must not read as a seed failure.
  if (failureOf(err) === 'no-space') return insufficientStorage((err as Error).message);
  if (!(err instanceof SeedError)) {
    // A body that broke off or timed out mid-way: the seed's fault as far as the client can tell.
    const timedOut = errnoOf(err) === 'ETIMEDOUT';
    return new OciError('UNAVAILABLE', `fetch failed: ${(err as Error)?.message ?? String(err)}`, { status: timedOut ? 504 : 502 });
  }
  if (err.kind === 'timeout') return new OciError('UNAVAILABLE', err.message, { status: 504 });
  if (err.kind === 'unreachable') return new OciError('UNAVAILABLE', err.message, { status: 503 });
  if (err.missing) return new OciError(notFound, notFoundMessage);
  if (err.denied) return new OciError('DENIED', `${err.message}: access to the seed was refused`, { status: 403 });
  if (err.throttled) return new OciError('TOOMANYREQUESTS', err.message);
  // A broken answer, or any other status.
  return new OciError('UNAVAILABLE', err.message, { status: 502 });
}
