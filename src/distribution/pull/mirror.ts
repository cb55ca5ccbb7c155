// The mirror: content of other registries (the seeds), fetched on demand and kept. Manifests by digest
// are immutable and kept for good; tags are re-resolved at the seed once their TTL has passed, and a
// known tag is served stale (and said to be) while the seed cannot be reached. Blobs are fetched once
// per digest however many clients ask (SharedDownload), streamed to clients as they land (the last byte
// held until the digest verifies), verified, then kept.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { algorithmOf, digestOf, parseDigest, type Digest } from '../../oci/index.js';
import { insufficientStorage, OciError } from '../../oci/index.js';
import { errnoOf, failureOf } from '../../oci/index.js';
import { ACCEPT_ALL_MANIFESTS, MAX_MANIFEST_BYTES, bareMediaType, isManifestMediaType, parseManifest } from '../../oci/index.js';
import type { ByteRange } from '../../oci/index.js';
import { normalizeRepository, type ManifestReference, type RepositoryName, type Tag } from '../../oci/index.js';
import { readSmallBlob, type BlobStore } from '../../store/index.js';
import type { RepositoryStore } from '../../store/index.js';
import { UpstreamError } from '../../seed/index.js';
import { readBody } from '../../seed/index.js';
import { headerOf, type UpstreamRegistry } from '../../seed/index.js';
import type { BlobAnswer, ManifestAnswer, Source } from '../answers.js';
import type { ServableBlob } from '../../p2p/index.js';
import type { PeerFetcher } from '../peers/index.js';
import { DescriptorSizes } from '../../oci/index.js';
import { DownloadRegistry, NoSourceError, type DownloadSource } from '../download/index.js';
import { SingleFlight } from '../download/index.js';

export interface MirrorOptions {
  blobs: BlobStore;
  upstreams: ReadonlyMap<string, UpstreamRegistry>;
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

export class Mirror {
  private readonly downloads = new DownloadRegistry();
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
    return this.opts.upstreams.has(registry);
  }

  /** Whether blobs of this registry can be had: from its seed, or from peers by digest alone. */
  servesBlobs(registry: string): boolean {
    return this.opts.upstreams.has(registry) || this.opts.peers !== undefined;
  }

  private upstream(registry: string): UpstreamRegistry {
    const up = this.opts.upstreams.get(registry);
    if (!up) throw new OciError('NAME_UNKNOWN', `no seed registry is configured for ${registry}`);
    return up;
  }

  // ---- manifests ----

  async manifest(registry: string, name: RepositoryName, ref: ManifestReference): Promise<ManifestAnswer> {
    const up = this.upstream(registry);
    const repo = normalizeRepository(registry, name);
    const cache = await this.opts.cacheFor(registry);
    if (ref.kind === 'digest') {
      const cached = await this.cachedManifest(cache, repo, ref.digest);
      if (cached) return cached;
      return this.digestFlights.run(`${registry}/${repo}@${ref.digest}`, () =>
        this.fetchManifest(up, cache, repo, ref.digest, ref.digest).catch((err) => {
          throw toClientError(err, 'MANIFEST_UNKNOWN', `manifest ${ref.digest} not found in ${registry}/${repo}`);
        }),
      );
    }
    return this.manifestByTag(up, cache, registry, repo, ref.tag);
  }

  private async manifestByTag(up: UpstreamRegistry, cache: RepositoryStore, registry: string, repo: RepositoryName, tag: Tag): Promise<ManifestAnswer> {
    const key = `${registry}/${repo}:${tag}`;
    const cachedDigest = await cache.getTag(repo, tag);
    const cached = cachedDigest ? await this.cachedManifest(cache, repo, cachedDigest) : undefined;
    if (cached && Date.now() - (this.tagConfirmed.get(key) ?? -Infinity) < this.opts.tagTtlMs) return cached;
    try {
      return await this.tagFlights.run(key, () => this.resolveTag(up, cache, key, repo, tag, cached !== undefined));
    } catch (err) {
      if (err instanceof UpstreamError && err.unavailable && cached && this.opts.serveStale) {
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
  private async resolveTag(up: UpstreamRegistry, cache: RepositoryStore, key: string, repo: RepositoryName, tag: Tag, known: boolean): Promise<ManifestAnswer> {
    let answer: ManifestAnswer | undefined;
    let headerDigest: Digest | undefined;
    if (known) {
      const head = await up.request('HEAD', repo, `manifests/${tag}`, { accept: ACCEPT_ALL_MANIFESTS });
      head.resume();
      if (head.statusCode === 404) {
        await cache.deleteTag(repo, tag);
        throw new OciError('MANIFEST_UNKNOWN', `manifest ${tag} not found in ${up.name}/${repo}`);
      }
      checkStatus(up, head);
      headerDigest = digestHeader(head);
      answer = headerDigest ? await this.cachedManifest(cache, repo, headerDigest) : undefined;
    }
    // By digest when the HEAD named one: the tag may move between the two requests, the digest cannot.
    if (!answer) answer = await this.fetchManifest(up, cache, repo, headerDigest ?? tag, headerDigest);
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

  /** GETs a manifest and keeps it only if its bytes match the digest asked for or announced. */
  private async fetchManifest(up: UpstreamRegistry, cache: RepositoryStore, repo: RepositoryName, reference: string, expected: Digest | undefined): Promise<ManifestAnswer> {
    const res = await up.request('GET', repo, `manifests/${reference}`, { accept: ACCEPT_ALL_MANIFESTS });
    if (res.statusCode === 404) {
      res.resume();
      throw new OciError('MANIFEST_UNKNOWN', `manifest ${reference} not found in ${up.name}/${repo}`);
    }
    checkStatus(up, res);
    let bytes: Buffer;
    try {
      bytes = await readBody(res, MAX_MANIFEST_BYTES);
    } catch (err) {
      throw new UpstreamError(up.name, 'protocol', `manifest body: ${(err as Error).message}`);
    }
    const want = expected ?? digestHeader(res);
    const digest = digestOf(bytes, want ? algorithmOf(want) : 'sha256');
    if (want && digest !== want) {
      throw new UpstreamError(up.name, 'protocol', `manifest ${reference} has digest ${digest}, not ${want}: refused`);
    }
    const contentType = headerOf(res, 'content-type');
    const record = { digest, mediaType: manifestMediaType(bytes, contentType), size: bytes.length };
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
    const up = this.opts.upstreams.get(registry);
    const { peers } = this.opts;
    if (!up && !peers) throw new OciError('NAME_UNKNOWN', `no seed registry is configured for ${registry}`);
    const repo = normalizeRepository(registry, name);
    const cache = await this.opts.cacheFor(registry);
    for (let waits = 0; ; waits++) {
      const held = await this.held(cache, up, repo, digest);
      if (held) return held;
      const running = this.downloads.get(digest);
      if (!running || (await this.mayJoin(running, registry, up, repo, digest))) return this.fetchBlob(registry, up, name, repo, digest, head);
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
  private async held(cache: RepositoryStore, up: UpstreamRegistry | undefined, repo: RepositoryName, digest: Digest): Promise<BlobAnswer | undefined> {
    const { blobs } = this.opts;
    const local = await blobs.stat(digest);
    if (!local) return undefined;
    const answer: BlobAnswer = { digest, size: local.size, source: 'local', open: async (range) => (await blobs.open(digest, range)).stream };
    if ((await cache.hasBlob(repo, digest)) || (await cache.getManifest(repo, digest))) return answer;
    if (up) {
      await this.headBlob(up, repo, digest);
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
  private async mayJoin(download: object, registry: string, up: UpstreamRegistry | undefined, repo: RepositoryName, digest: Digest): Promise<boolean> {
    const vouched = this.fetchedFor.get(download);
    const key = `${registry}/${repo}`;
    if (vouched?.has(key)) return true;
    if (up) {
      await this.headBlob(up, repo, digest);
      vouched?.set(key, { registry, repo });
      return true;
    }
    return this.offered.has(digest);
  }

  private async fetchBlob(registry: string, up: UpstreamRegistry | undefined, name: RepositoryName, repo: RepositoryName, digest: Digest, head: boolean): Promise<BlobAnswer> {
    const { blobs, peers } = this.opts;
    const offer = this.opts.offersToPeers?.(name, repo) ?? true;
    let download = this.downloads.get(digest);
    if (download && !head) this.opts.onJoin?.(digest);
    // A HEAD is answered by the seed without fetching; with no seed, only by fetching (and verifying).
    if (!download && head && up) return this.headBlob(up, repo, digest);
    if (!download) {
      const sources: DownloadSource[] = [];
      // Peers' claimed sizes are held against the manifest's descriptor. With none (a blob asked for by
      // digest alone), a large claim is checked against a seed HEAD once its first range is in: not before
      // every peer fetch, which would put the seed (and its timeout, when it is down) in front of each,
      // but before a liar could make this node read much (see PeerFetcherOptions.confirmClaimsAbove).
      const confirmSize = up ? () => this.headBlob(up, repo, digest).then((a) => a.size) : undefined;
      if (peers) sources.push(peers.source(digest, { claim: offer, size: this.sizes.get(digest), confirmSize }));
      if (up) {
        sources.push({
          name: 'upstream',
          open: async (from) => {
            const body = await this.openBlob(up, repo, digest, from);
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
   * for peers to follow as its bytes land; undefined when none is.
   */
  async relay(digest: Digest, waitMs: number): Promise<ServableBlob | undefined> {
    const download = this.downloads.get(digest);
    if (!download || !this.offered.has(digest) || !(await download.relayable(waitMs))) return undefined;
    return { size: download.size!, open: async (range) => download.follow(range, { unverified: true }) };
  }

  private async headBlob(up: UpstreamRegistry, repo: RepositoryName, digest: Digest): Promise<BlobAnswer> {
    let res: IncomingMessage;
    try {
      res = await up.request('HEAD', repo, `blobs/${digest}`);
      res.resume();
      if (res.statusCode === 404) throw new OciError('BLOB_UNKNOWN', `blob ${digest} not found in ${up.name}/${repo}`);
      checkStatus(up, res);
    } catch (err) {
      throw toClientError(err, 'BLOB_UNKNOWN', `blob ${digest} not found in ${up.name}/${repo}`);
    }
    const size = Number(headerOf(res, 'content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw toClientError(new UpstreamError(up.name, 'protocol', 'blob HEAD without a length'), 'BLOB_UNKNOWN', '');
    return { digest, size, source: 'upstream', open: async () => Readable.from([]) };
  }

  /**
   * The blob's bytes from `from` on: a download that another source left part way goes on with a Range.
   * A seed that answers the Range with 200 sends the whole blob (start 0): the download skips what it has.
   */
  private async openBlob(up: UpstreamRegistry, repo: RepositoryName, digest: Digest, from = 0) {
    const res = await up.request('GET', repo, `blobs/${digest}`, from > 0 ? { range: `bytes=${from}-` } : {});
    if (res.statusCode === 404) {
      res.resume();
      throw new OciError('BLOB_UNKNOWN', `blob ${digest} not found in ${up.name}/${repo}`);
    }
    if (from > 0 && res.statusCode === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headerOf(res, 'content-range')?.trim() ?? '');
      const [start, end, size] = range ? [Number(range[1]), Number(range[2]), Number(range[3])] : [];
      if (start !== from || !Number.isSafeInteger(size) || end !== size! - 1) {
        res.destroy();
        throw new UpstreamError(up.name, 'protocol', `answered a Range from ${from} with Content-Range ${headerOf(res, 'content-range') ?? '(none)'}`);
      }
      return { size, start, stream: res };
    }
    checkStatus(up, res);
    const length = Number(headerOf(res, 'content-length'));
    return { size: Number.isSafeInteger(length) && length >= 0 ? length : undefined, start: 0, stream: res };
  }
}

function digestHeader(res: IncomingMessage): Digest | undefined {
  const value = headerOf(res, 'docker-content-digest');
  if (!value) return undefined;
  try {
    return parseDigest(value.trim());
  } catch {
    return undefined;
  }
}

/** Anything but 200 from the seed is an error here; 404s are handled by the callers before this. */
function checkStatus(up: UpstreamRegistry, res: IncomingMessage): void {
  const status = res.statusCode ?? 0;
  if (status === 200) return;
  res.resume();
  throw new UpstreamError(up.name, 'status', `answered ${status}`, status);
}

/** The media type to serve a fetched manifest with: the seed's Content-Type if it names one, else the body's. */
function manifestMediaType(bytes: Buffer, contentType: string | undefined): string {
  const declared = bareMediaType(contentType);
  if (declared && isManifestMediaType(declared)) return declared;
  try {
    return parseManifest(bytes, contentType).mediaType;
  } catch {
    return declared ?? 'application/octet-stream';
  }
}

/** What a seed failure means to a client: an OCI error with a status that says whose fault it is. */
export function toClientError(err: unknown, notFound: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', notFoundMessage: string): OciError {
  if (err instanceof OciError) return err;
  // This node's disk, not the seed: a full disk must not read as a seed failure.
  if (failureOf(err) === 'no-space') return insufficientStorage((err as Error).message);
  if (!(err instanceof UpstreamError)) {
    // A body that broke off or timed out mid-way: the seed's fault as far as the client can tell.
    const timedOut = errnoOf(err) === 'ETIMEDOUT';
    return new OciError('UNAVAILABLE', `fetch failed: ${(err as Error)?.message ?? String(err)}`, { status: timedOut ? 504 : 502 });
  }
  if (err.kind === 'timeout') return new OciError('UNAVAILABLE', err.message, { status: 504 });
  if (err.kind === 'unreachable') return new OciError('UNAVAILABLE', err.message, { status: 503 });
  if (err.kind === 'protocol') return new OciError('UNAVAILABLE', err.message, { status: 502 });
  switch (err.status) {
    case 404:
      return new OciError(notFound, notFoundMessage);
    case 401:
    case 403:
      return new OciError('DENIED', `${err.message}: access to the seed was refused`, { status: 403 });
    case 429:
      return new OciError('TOOMANYREQUESTS', err.message);
    default:
      return new OciError('UNAVAILABLE', err.message, { status: 502 });
  }
}
