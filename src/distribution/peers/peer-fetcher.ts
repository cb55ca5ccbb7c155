// Fetching a blob from peers: find providers in the DHT (short timeout, recent answers cached), rank
// them, and pull the blob: from a sole provider in one stream (its bytes go to the writer as they
// arrive), from several in ranges at once. A range whose provider fails moves to another; a range that
// lags is hedged on an idle provider and the first copy wins. Only bounded buffers are held (parallel ×
// rangeBytes, or the stream's own window), and the bytes are emitted in order. Nothing here is
// trusted: the caller verifies the whole blob (streaming it to clients meanwhile, the last byte held
// back), and on a mismatch every provider that contributed is penalized (without per-range hashes the
// culprit cannot be singled out). A download another way left part way goes on from its offset.
import { Readable } from 'node:stream';
import type { Digest } from '../../oci/index.js';
import { failureOf } from '../../oci/index.js';
import type { ByteRange } from '../../oci/index.js';
import type { ContentRouter, Provider } from '../../p2p/index.js';
import type { PeerBlob } from '../../p2p/index.js';
import { DigestMismatchError } from '../../store/index.js';
import type { PeerScores } from './peer-scores.js';
import { SizeConflictError, UnconfirmedClaimError, type DownloadSource, type FetchedBody } from '../download/index.js';

/** What blob resolution needs from the peer-to-peer layer (a seam: tests use an in-memory one). */
export interface PeerNetwork {
  readonly router: ContentRouter;
  fetch(peer: Provider, digest: Digest, range: ByteRange | undefined, signal?: AbortSignal): Promise<PeerBlob>;
  /**
   * When no node holds the blob: the peer whose seed download this node should follow, or undefined
   * when this node is to fetch it itself (see p2p/fetch-claims.ts). `failed` names fetchers that could
   * not serve. Absent: every node fetches for itself.
   */
  whoFetches?(digest: Digest, failed: readonly string[]): Promise<Provider | undefined>;
  /** This node, a chain's head, holds the whole blob now: its chain can end (see p2p/fetch-claims.ts). */
  releaseClaim?(digest: Digest): Promise<void>;
  /**
   * This node heads the blob's chain in a running rollout's order (see p2p/fetch-claims.ts): it is the
   * one to take the blob from the seed, and every other node of the rollout waits on it.
   */
  headsOrder?(digest: Digest): boolean;
}

export interface PeerFetcherOptions {
  lookupTimeoutMs?: number;
  maxProviders?: number;
  /** Size of one range; blobs up to this size come from one provider. */
  rangeBytes?: number;
  /** Ranges in flight at once. */
  parallel?: number;
  /** Ranges one provider is asked for at once. */
  perPeer?: number;
  /** A range running longer than this (and twice the typical range time) is hedged. */
  hedgeAfterMs?: number;
  /** How long a lookup's answer is reused. */
  lookupCacheMs?: number;
  /**
   * How long a chain predecessor may take to answer before this node stops following it: an honest one
   * answers once its own download starts (it waits up to 30 s for that), one that never answers must not
   * hold a client's request forever.
   */
  followAnswerMs?: number;
  /**
   * The largest blob a peer may claim when nothing says what size the blob has (default 1 TiB): a claim
   * beyond it is a lie, whatever the disk could hold.
   */
  maxBlobBytes?: number;
  /**
   * A claim no descriptor confirmed and larger than this (default 64 MiB) is checked against the seed's
   * size (a HEAD) once the first range is in: the most a lying peer can make this node read by digest
   * alone, where a seed can say. Smaller blobs never wait on the seed.
   */
  confirmClaimsAbove?: number;
  onLookup?: (ms: number, found: number) => void;
  /** Told of every range a peer sent in full (for per-peer traffic). */
  onRangeFetched?: (peer: string, bytes: number) => void;
  log?: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** After the first provider is found, how long a lookup goes on collecting others. */
const LOOKUP_GRACE_MS = 20;
/** How long to wait before asking a provider that answered busy again (if no slot frees sooner). */
const BUSY_RETRY_MS = 100;
/** Fetchers whose seed download a node tries to follow before it asks the seed itself. */
const MAX_FETCHERS_FOLLOWED = 2;
/** Chain predecessors that may fail mid-download before a node gives up on peers for the blob. */
const MAX_FOLLOW_RETRIES = 3;
/** Busy answers one range tolerates before it gives up on peers. */
const MAX_BUSY_ANSWERS = 50;

/** A peer announced a size the blob cannot have: it is penalized, and not read from. */
class ImpossibleClaimError extends Error {
  constructor(peer: string, claimed: number, why: string) {
    super(`peer ${peer} claimed ${claimed} bytes, ${why}`);
    this.name = 'ImpossibleClaimError';
  }
}

export class PeerFetcher {
  private readonly lookups = new Map<Digest, { at: number; providers: Provider[] }>();
  /**
   * Ranges in flight per provider, across every download of this node: a pull fetches several layers
   * at once, and each provider serves a peer only so many transfers (--max-uploads-per-peer).
   */
  private readonly load = new Map<string, number>();
  private capacityWaiters: Array<() => void> = [];
  private readonly o: Required<Omit<PeerFetcherOptions, 'onLookup' | 'onRangeFetched' | 'log'>> & Pick<PeerFetcherOptions, 'onLookup' | 'onRangeFetched' | 'log'>;

  constructor(
    private readonly net: PeerNetwork,
    private readonly scores: PeerScores,
    opts: PeerFetcherOptions = {},
  ) {
    this.o = {
      lookupTimeoutMs: 2_000,
      maxProviders: 8,
      rangeBytes: 8 * 1024 * 1024,
      parallel: 6,
      perPeer: 4,
      hedgeAfterMs: 3_000,
      lookupCacheMs: 10_000,
      followAnswerMs: 40_000,
      maxBlobBytes: 2 ** 40,
      confirmClaimsAbove: 64 * 1024 * 1024,
      ...opts,
    };
  }

  private releaseCapacity(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when some provider's load drops (or after a short pause, so a busy answer is retried). */
  private capacity(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, BUSY_RETRY_MS);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
      this.capacityWaiters.push(done);
    });
  }

  /** Providers of the digest, ranked; [] when none answer within the lookup timeout. */
  async providers(digest: Digest): Promise<Provider[]> {
    const cached = this.lookups.get(digest);
    if (cached && Date.now() - cached.at < this.o.lookupCacheMs) return this.scores.rank(cached.providers);
    const started = Date.now();
    const found: Provider[] = [];
    // A walk can take tens of ms after the first provider turns up: give others a short grace, not the
    // whole walk, before the fetch starts.
    // One controller and plain timers: on Node 20 a signal from AbortSignal.any over AbortSignal.timeout
    // can be collected before it fires, and the lookup then never ended (the fuzzer found such a GET).
    const enough = new AbortController();
    const signal = enough.signal;
    const budget = setTimeout(() => enough.abort(new Error('lookup timeout')), this.o.lookupTimeoutMs);
    let grace: NodeJS.Timeout | undefined;
    try {
      // A node that just joined has no routing-table peer yet: wait for one within the same budget.
      await this.net.router.ready(this.o.lookupTimeoutMs);
      for await (const p of this.net.router.findProviders(digest, { signal, limit: this.o.maxProviders })) {
        found.push(p);
        grace ??= setTimeout(() => enough.abort(), LOOKUP_GRACE_MS);
      }
    } catch {
      // a timed-out, cut-short or failed lookup still returns what it found
    } finally {
      clearTimeout(budget);
      clearTimeout(grace);
    }
    this.o.onLookup?.(Date.now() - started, found.length);
    if (found.length > 0) {
      if (this.lookups.size > 1000) this.lookups.clear();
      this.lookups.set(digest, { at: Date.now(), providers: found });
    }
    return this.scores.rank(found);
  }

  forget(digest: Digest): void {
    this.lookups.delete(digest);
  }

  /** Tells the cluster this node has (or is fetching from the seed) the blob. */
  announce(digest: Digest): void {
    void this.net.router.provide(digest).catch(() => undefined);
  }

  /** Takes back an announcement of a download that failed. */
  withdraw(digest: Digest): void {
    void this.net.router.withdraw(digest).catch(() => undefined);
  }

  /**
   * A download source over the peers: nothing to offer when no peer has the blob. `claim: false` keeps
   * this node out of the blob's fetch chain (a download it must not pass on: see blob-sharing.ts); it
   * then takes the blob only from nodes that hold it whole.
   */
  source(digest: Digest, opts: { claim?: boolean; size?: number; confirmSize?: () => Promise<number | undefined> } = {}): DownloadSource {
    const claim = opts.claim ?? true;
    const expected = opts.size;
    const contributors = new Set<string>();
    // Claims that only the disk's room could refuse (nothing said the size): judged once the blob is kept.
    const unconfirmed: Array<{ peers: string[]; size: number }> = [];
    // Chain predecessors that failed this download: the coordinator is told, and hands this node on to
    // the one before them, instead of this node (and every node after it) going to the seed.
    const failedFetchers: string[] = [];
    let following: string | undefined;
    let head = false;
    return {
      name: 'peer',
      open: async (from) => {
        // Going on from an offset, the bytes before it are in the blob too: their senders stay contributors.
        if (from === 0) contributors.clear();
        const body = await this.open(digest, contributors, failedFetchers, (id) => (following = id), claim, expected, from);
        head = following === undefined;
        if (body && expected === undefined && opts.confirmSize && body.size !== undefined && body.size > Math.max(this.o.confirmClaimsAbove, this.o.rangeBytes)) {
          return { ...body, confirmed: await this.confirmClaim(digest, body, [...contributors], opts.confirmSize) };
        }
        return body && { ...body, confirmed: expected !== undefined };
      },
      stored: (info) => {
        if (head && claim && this.net.whoFetches) void this.net.releaseClaim?.(digest).catch(() => undefined);
        for (const c of unconfirmed) {
          if (c.size === info.size) continue;
          for (const id of c.peers) this.scores.corrupt(id);
          this.o.log?.warn({ digest, peers: c.peers, claimed: c.size, size: info.size }, 'peers claimed a size the blob does not have: penalized');
        }
      },
      retry: () => {
        if (!following || failedFetchers.length >= MAX_FOLLOW_RETRIES) return false;
        failedFetchers.push(following);
        following = undefined;
        return true;
      },
      failed: (err) => {
        this.forget(digest);
        if (err instanceof UnconfirmedClaimError) unconfirmed.push({ peers: [...contributors], size: err.claimed });
        this.o.log?.debug({ digest, peers: [...contributors], reason: err.message }, 'peer download failed: falling back');
        if (err instanceof DigestMismatchError) {
          for (const id of contributors) this.scores.corrupt(id);
          this.o.log?.warn({ digest, peers: [...contributors] }, 'peers sent bytes that did not verify: penalized');
        } else if (err instanceof SizeConflictError && err.by === 'upstream') {
          // The seed, going on from where these peers' bytes ended, gives the blob another size: they lied.
          for (const id of contributors) this.scores.corrupt(id);
          this.o.log?.warn({ digest, peers: [...contributors], claimed: err.had, size: err.claimed }, 'peers claimed a size the seed does not give the blob: penalized');
        }
      },
    };
  }

  /**
   * Nothing to offer when no provider is known; an error when providers were known but none could send
   * the first range (so the failure is reported and the lookup forgotten before the seed is asked).
   */
  /**
   * Nodes missing a blob at the same moment form a chain at its coordinator: one with a predecessor
   * follows it at once (no DHT lookup, which also keeps later nodes off the seed fetcher's uplink). The
   * head of a chain (or a node with no coordinator) looks for nodes holding the blob, takes it in ranges
   * from them if any, and otherwise returns undefined: it is the one to ask the seed.
   */
  private async open(digest: Digest, contributors: Set<string>, failedFetchers: readonly string[], onFollow: (id: string) => void, claim: boolean, expected: number | undefined, from = 0): Promise<FetchedBody | undefined> {
    // Peers this node avoids (bad bytes, or a chain place they never served) are reported as failed, so
    // the coordinator drops them from the chain instead of handing them to this node or anyone else.
    const failed = [...failedFetchers, ...this.scores.banned()];
    for (let i = 0; i <= MAX_FETCHERS_FOLLOWED && claim && this.net.whoFetches; i++) {
      const predecessor = await this.net.whoFetches(digest, failed).catch(() => undefined);
      if (!predecessor || failed.includes(predecessor.id)) break;
      const body = await this.followStream(digest, predecessor, contributors, onFollow, expected, from);
      if (body) return body;
      failed.push(predecessor.id);
    }
    // This node heads a chain, a new one or one whose head it replaces: before the seed, the nodes that
    // hold the whole blob (a chain ends once its head has it, so a node whose predecessor died late
    // finds the holders here instead of fetching the blob from the seed again).
    if (failed.length > 0) this.forget(digest);
    // The head of a rollout's order goes to the seed at once: the rest of the rollout follows it, and a
    // DHT walk at a rollout's start (1–2 s in its burst) would hold up every node behind it.
    if (claim && failed.length === 0 && this.net.headsOrder?.(digest)) return undefined;
    const providers = await this.providers(digest);
    return providers.length > 0 ? this.download(digest, providers, contributors, expected, from) : undefined;
  }

  /**
   * One stream for the whole blob, written as it arrives: the node before this one sends its bytes as they
   * land, and the node after this one reads this node's the same way, so a chain of nodes moves a blob
   * with a delay of moments per hop, not of a range. Undefined when the predecessor cannot serve.
   */
  private async followStream(digest: Digest, predecessor: Provider, contributors: Set<string>, onFollow: (id: string) => void, expected: number | undefined, from = 0): Promise<FetchedBody | undefined> {
    // Only the answer has a deadline: the body follows the predecessor's own download, at its pace.
    const answer = new AbortController();
    const timer = setTimeout(() => answer.abort(new Error(`no answer in ${this.o.followAnswerMs} ms`)), this.o.followAnswerMs);
    try {
      // From `from` on, to the end (the predecessor cuts the range at the blob's size).
      const blob = await this.net.fetch(predecessor, digest, from > 0 ? { start: from, end: Number.MAX_SAFE_INTEGER } : undefined, answer.signal);
      clearTimeout(timer);
      try {
        this.judgeClaim(digest, predecessor.id, blob.size, expected);
      } catch (err) {
        blob.body.destroy();
        throw err;
      }
      contributors.add(predecessor.id);
      onFollow(predecessor.id);
      blob.body.once('end', () => this.o.onRangeFetched?.(predecessor.id, blob.length));
      this.o.log?.debug({ digest, fetcher: predecessor.id }, 'following a peer\'s download');
      return { size: blob.size, start: blob.start, stream: blob.body };
    } catch (err) {
      clearTimeout(timer);
      if (err instanceof ImpossibleClaimError) {
        // judged and penalized already
      } else if (answer.signal.aborted) {
        this.scores.unresponsive(predecessor.id);
        this.o.log?.warn({ digest, fetcher: predecessor.id, waitedMs: this.o.followAnswerMs }, 'a peer took a place in a fetch chain and never answered: avoided');
      } else this.o.log?.debug({ digest, fetcher: predecessor.id, reason: (err as Error).message }, 'could not follow a peer\'s download');
      return undefined;
    }
  }

  /**
   * A size a peer announced, held against what this node trusts: the size a manifest's descriptor gives
   * (`expected`), else the largest blob any peer may claim. A claim that cannot be true is that peer's
   * lie, not this node's problem: it is penalized like bad bytes, and none of its bytes are read.
   */
  private judgeClaim(digest: Digest, peer: string, claimed: number, expected: number | undefined): void {
    let why: string | undefined;
    if (expected !== undefined && claimed !== expected) why = `the blob's descriptor says ${expected}`;
    else if (claimed > this.o.maxBlobBytes) why = `beyond the limit of ${this.o.maxBlobBytes}`;
    if (why === undefined) return;
    this.scores.corrupt(peer);
    this.o.log?.warn({ digest, peer, claimed, expected, limit: this.o.maxBlobBytes }, 'a peer claimed a size the blob cannot have: penalized');
    throw new ImpossibleClaimError(peer, claimed, why);
  }

  /**
   * A large claim that no descriptor confirmed (a blob asked for by digest alone): the seed is asked its
   * size (a HEAD, no body) before more than the first range is read, so a lying peer can make this node
   * read at most confirmClaimsAbove bytes, not whatever the disk holds. True when the seed confirms
   * the claim; false when it cannot say (down, or it lacks the blob: peers are all there is); a size
   * that differs is the claimants' lie, penalized, and the download goes on to the next source.
   */
  private async confirmClaim(digest: Digest, body: FetchedBody, claimants: string[], confirmSize: () => Promise<number | undefined>): Promise<boolean> {
    const trusted = await confirmSize().catch(() => undefined);
    if (trusted === undefined) return false;
    if (trusted === body.size) return true;
    body.stream.destroy();
    for (const id of claimants) this.scores.corrupt(id);
    this.o.log?.warn({ digest, peers: claimants, claimed: body.size, size: trusted }, 'peers claimed a size the seed does not give the blob: penalized');
    throw new ImpossibleClaimError(claimants.join(', '), body.size!, `the seed says ${trusted}`);
  }

  /**
   * The blob from the providers, from byte `start` on (0: the whole blob; more: the rest of a transfer
   * that failed at that byte). One provider: one stream for all of it (see whole()). Several: ranges
   * spread over them, hedged when one lags.
   */
  async download(digest: Digest, providers: Provider[], contributors: Set<string>, expected: number | undefined, start = 0): Promise<FetchedBody> {
    if (providers.length === 1) {
      const body = await this.whole(digest, providers[0]!, contributors, expected, start);
      if (body) return body;
    }
    return this.ranged(digest, providers, contributors, expected, start);
  }

  /**
   * One stream from one provider for the whole blob (or all of it from `start`): the cheapest way to move
   * it (each stream more on a connection costs both ends CPU per byte, and ranges cost a request and a
   * response each), and its bytes go to the writer as they arrive. A stall is the blob protocol's idle
   * timeout; a failure mid-way fails the download, whose caller resumes from where it broke or goes to the
   * next source. Undefined when the provider answered busy (the ranged path waits for its slots).
   */
  private async whole(digest: Digest, peer: Provider, contributors: Set<string>, expected: number | undefined, start: number): Promise<FetchedBody | undefined> {
    const load = this.load;
    load.set(peer.id, (load.get(peer.id) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      load.set(peer.id, (load.get(peer.id) ?? 1) - 1);
      this.releaseCapacity();
    };
    const started = Date.now();
    let blob: PeerBlob;
    try {
      blob = await this.net.fetch(peer, digest, start > 0 ? { start, end: Number.MAX_SAFE_INTEGER } : undefined);
    } catch (err) {
      release();
      if (failureOf(err) === 'busy') return undefined;
      this.scores.failure(peer.id);
      throw new Error(`no provider could send ${digest}: ${(err as Error).message}`);
    }
    try {
      this.judgeClaim(digest, peer.id, blob.size, expected);
      if (blob.start !== start) throw new Error(`peer ${peer.id} answered from byte ${blob.start}, not ${start}`);
    } catch (err) {
      blob.body.destroy();
      release();
      throw err;
    }
    contributors.add(peer.id);
    let done = false;
    blob.body.once('end', () => {
      done = true;
      release();
      // A clean end short of the announced length is no complete answer (the download fails on it too).
      if (blob.received && blob.received() !== blob.length) return this.scores.failure(peer.id);
      this.scores.success(peer.id, blob.length, Date.now() - started);
      this.o.onRangeFetched?.(peer.id, blob.length);
    });
    blob.body.once('close', () => {
      if (done) return;
      release();
      // A body its consumer dropped is no failure of the peer's; one that errored is.
      if (blob.body.errored) this.scores.failure(peer.id);
    });
    return { size: blob.size, start, stream: blob.body };
  }

  private async ranged(digest: Digest, providers: Provider[], contributors: Set<string>, expected: number | undefined, start: number): Promise<FetchedBody> {
    const run = new AbortController();
    const load = this.load;
    const durations: number[] = [];
    let head: { data: Buffer[]; size: number };
    try {
      head = await this.fetchRange(digest, { start, end: start + this.o.rangeBytes - 1 }, providers, load, durations, contributors, run.signal, expected);
    } catch (err) {
      throw new Error(`no provider could send ${digest}: ${(err as Error).message}`);
    }
    if (head.size - start <= this.o.rangeBytes) return { size: head.size, start, stream: Readable.from(head.data, { objectMode: false }) };
    // One range of read-ahead: the parallel window, not Readable.from's default of 16 items, bounds how
    // many ranges are held in memory.
    const ranges = this.assemble(digest, head.size, start, expected, providers, head.data, contributors, load, durations, run);
    return { size: head.size, start, stream: Readable.from(ranges, { highWaterMark: 1 }) };
  }

  private async *assemble(digest: Digest, size: number, from: number, expected: number | undefined, providers: Provider[], head: Buffer[], contributors: Set<string>, load: Map<string, number>, durations: number[], run: AbortController): AsyncGenerator<Buffer> {
    const count = Math.ceil((size - from) / this.o.rangeBytes);
    const chunks: Array<Promise<Buffer[]> | undefined> = [Promise.resolve(head)];
    const launch = (index: number) => {
      const start = from + index * this.o.rangeBytes;
      const range = { start, end: Math.min(size, start + this.o.rangeBytes) - 1 };
      // Every later range's provider must agree with the size the first one gave.
      const p = this.fetchRange(digest, range, providers, load, durations, contributors, run.signal, expected, size).then((r) => r.data);
      p.catch(() => undefined);
      chunks[index] = p;
    };
    let next = 1;
    try {
      for (let i = 0; i < count; i++) {
        while (next < count && next <= i + this.o.parallel) launch(next++);
        const data = await chunks[i]!;
        chunks[i] = undefined;
        yield* data;
      }
    } finally {
      run.abort();
    }
  }

  /**
   * One range, from the least-loaded usable provider; moved on failure, hedged when it lags, given up
   * when the download is abandoned (runSignal). The first range also learns the blob's size.
   */
  private async fetchRange(
    digest: Digest,
    range: ByteRange,
    providers: Provider[],
    load: Map<string, number>,
    durations: number[],
    contributors: Set<string>,
    runSignal: AbortSignal,
    expected: number | undefined,
    /** The size the blob's first range came with, for the later ranges. */
    agreed?: number,
  ): Promise<{ data: Buffer[]; size: number }> {
    const tried = new Set<string>();
    let busyAnswers = 0;
    const pick = (): Provider | undefined =>
      this.scores
        .rank(providers.filter((p) => !tried.has(p.id) && (load.get(p.id) ?? 0) < this.o.perPeer))
        .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0))[0];
    const attempt = async (peer: Provider, own: AbortSignal): Promise<{ data: Buffer[]; size: number }> => {
      const signal = AbortSignal.any([own, runSignal]);
      tried.add(peer.id);
      load.set(peer.id, (load.get(peer.id) ?? 0) + 1);
      const started = Date.now();
      try {
        const blob = await this.net.fetch(peer, digest, range, signal);
        try {
          this.judgeClaim(digest, peer.id, blob.size, expected);
          // Without a descriptor, which of the two lies is unknown: this range just moves to another provider.
          if (agreed !== undefined && blob.size !== agreed) throw new Error(`peer ${peer.id} claimed ${blob.size} bytes, another provider ${agreed}`);
        } catch (err) {
          blob.body.destroy();
          throw err;
        }
        const length = Math.min(range.end, blob.size - 1) - range.start + 1;
        if (blob.start !== range.start || blob.length !== Math.max(0, length)) throw new Error('peer answered another range');
        const data = await collect(blob.body, Math.max(0, length));
        const ms = Date.now() - started;
        durations.push(ms);
        this.scores.success(peer.id, Math.max(0, length), ms);
        this.o.onRangeFetched?.(peer.id, Math.max(0, length));
        contributors.add(peer.id);
        return { data, size: blob.size };
      } catch (err) {
        if (err instanceof ImpossibleClaimError) {
          // penalized already (judgeClaim)
        } else if (failureOf(err) === 'busy') {
          // Not a failure: the provider is serving others. It may be asked again once a slot frees.
          tried.delete(peer.id);
          busyAnswers++;
        } else if (!signal.aborted) this.scores.failure(peer.id);
        throw err;
      } finally {
        load.set(peer.id, (load.get(peer.id) ?? 1) - 1);
        this.releaseCapacity();
      }
    };
    let lastError: unknown = new Error(`no provider left for ${digest} bytes ${range.start}-${range.end}`);
    for (;;) {
      if (runSignal.aborted) throw lastError;
      const peer = pick();
      if (!peer) {
        // Untried providers that are all at their limit: wait for a slot rather than overrun them.
        const waiting = providers.some((p) => !tried.has(p.id)) && busyAnswers <= MAX_BUSY_ANSWERS;
        if (!waiting) throw lastError;
        await this.capacity(runSignal);
        continue;
      }
      const primary = new AbortController();
      const first = attempt(peer, primary.signal);
      const typical = durations.length ? durations.slice().sort((a, b) => a - b)[Math.floor(durations.length / 2)]! : 0;
      const hedgeAfter = Math.max(this.o.hedgeAfterMs, 2 * typical);
      try {
        return await raceWithHedge(first, hedgeAfter, () => {
          const spare = pick();
          if (!spare) return undefined;
          const hedge = new AbortController();
          return { promise: attempt(spare, hedge.signal), abort: () => hedge.abort() };
        }, () => primary.abort());
      } catch (err) {
        lastError = err;
      }
    }
  }
}


/**
 * Waits for `first`; if it is still running after `afterMs`, starts a hedge and takes whichever
 * succeeds first, aborting the other. Rejects only when every started attempt failed.
 */
async function raceWithHedge<T>(
  first: Promise<T>,
  afterMs: number,
  startHedge: () => { promise: Promise<T>; abort: () => void } | undefined,
  abortFirst: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hedgeReady = new Promise<{ promise: Promise<T>; abort: () => void } | undefined>((resolve) => {
    timer = setTimeout(() => resolve(startHedge()), afterMs);
  });
  try {
    const winner = await Promise.race([first.then((b) => ({ b })), hedgeReady.then((h) => ({ h }))]);
    if ('b' in winner) return winner.b;
    const hedge = winner.h;
    if (!hedge) return await first;
    try {
      const result = await Promise.any([first, hedge.promise]);
      abortFirst();
      hedge.abort();
      return result;
    } catch (err) {
      throw (err as AggregateError).errors?.[0] ?? err;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A range's bytes as the chunks they arrived in: they are fresh buffers of this stream alone, so they are
 * kept as they are (copying 8 MiB ranges into one buffer cost a fifth of a fetching node's CPU). Read with
 * 'data' events, not an async iterator: the iterator's read() joins everything the body holds into one
 * new buffer each time (Readable's fromList), which cost a fetching node 17% of its CPU with 8 MiB ranges.
 */
function collect(body: Readable, length: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let at = 0;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) {
        body.destroy();
        reject(err);
      } else resolve(chunks);
    };
    body.on('data', (c: Buffer) => {
      if (at + c.length > length) return settle(new Error('peer sent more bytes than it announced'));
      chunks.push(c);
      at += c.length;
    });
    body.once('end', () => settle(at === length ? undefined : new Error(`peer sent ${at} of ${length} bytes`)));
    body.once('error', (err) => settle(err));
    body.once('close', () => settle(new Error(`peer sent ${at} of ${length} bytes`)));
  });
}
