// Fetching a blob from peers, as one download source: follow the chain of fetch claims when there is one
// (chain-follower.ts), else find the blob's holders (provider-lookup.ts) and take it from them, whole or
// in ranges (range-download.ts, planned by range-plan.ts). Nothing here is trusted: the caller verifies
// the whole blob (streaming it to clients meanwhile, the last byte held back), and on a mismatch every
// provider that contributed is penalized (without per-range hashes the culprit cannot be singled out).
// A download another way left part way goes on from its offset.
import type { Digest } from '../../oci/index.js';
import type { Provider } from '../../p2p/index.js';
import { DigestMismatchError } from '../../store/index.js';
import type { PeerScores } from './peer-scores.js';
import { SizeConflictError, UnconfirmedClaimError, type DownloadSource, type FetchedBody } from '../download/index.js';
import { ChainFollower } from './chain-follower.js';
import { ChainPlace } from './chain-place.js';
import { ClaimJudge } from './claims.js';
import { settingsOf, type FetcherSettings, type PeerFetcherOptions, type PeerNetwork, type Wanted } from './peer-network.js';
import { ProviderLookup } from './provider-lookup.js';
import { RangeDownloader } from './range-download.js';
import { stripedDownload, type StripeDeps } from './stripe-download.js';

export type { PeerFetcherOptions, PeerNetwork, StripeRoute } from './peer-network.js';

export class PeerFetcher {
  /**
   * The resolved options, one object every part reads when it acts (scripts/bench/peer-fetcher-overrides.mjs
   * changes it in place before the first lookup).
   */
  private readonly o: FetcherSettings;
  private readonly lookup: ProviderLookup;
  private readonly chain: ChainFollower;
  private readonly judge: ClaimJudge;
  private readonly stripes: StripeDeps;
  private readonly holders: RangeDownloader;

  constructor(
    private readonly net: PeerNetwork,
    private readonly scores: PeerScores,
    opts: PeerFetcherOptions = {},
  ) {
    this.o = settingsOf(opts);
    this.judge = new ClaimJudge(scores, this.o);
    this.lookup = new ProviderLookup(net.router, scores, this.o);
    this.chain = new ChainFollower(net, scores, this.judge, this.o);
    this.holders = new RangeDownloader(net, scores, this.judge, this.o);
    this.stripes = { net, scores, judge: this.judge, o: this.o };
  }

  /** Providers of the digest, ranked; [] when none answer within the lookup timeout. */
  providers(digest: Digest): Promise<Provider[]> {
    return this.lookup.providers(digest);
  }

  forget(digest: Digest): void {
    this.lookup.forget(digest);
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
    const want: Wanted = { digest, expected: opts.size, contributors: new Set<string>() };
    const { expected, contributors } = want;
    // Claims that only the disk's room could refuse (nothing said the size): judged once the blob is kept.
    const unconfirmed: Array<{ peers: string[]; size: number }> = [];
    // Whom this node follows, and the chain predecessors that failed this download (see chain-place.ts).
    const place = new ChainPlace();
    let head = false;
    // In a striped rollout: stripes first; once they fail the download, the rest comes the usual way.
    let striping = claim && this.net.stripeRoute !== undefined;
    let striped = false;
    return {
      name: 'peer',
      open: async (from) => {
        // Going on from an offset, the bytes before it are in the blob too: their senders stay contributors.
        if (from === 0) contributors.clear();
        place.lead();
        const route = striping ? this.net.stripeRoute?.(digest) : undefined;
        striped = route !== undefined;
        const body = route ? await stripedDownload(this.stripes, want, route, from) : await this.open(want, from, claim, place.failed, (id) => place.follow(id));
        head = !striped && place.follows === undefined;
        if (body && expected === undefined && opts.confirmSize && body.size !== undefined && body.size > Math.max(this.o.confirmClaimsAbove, this.o.rangeBytes)) {
          return { ...body, confirmed: await this.judge.confirm(digest, body, [...contributors], opts.confirmSize) };
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
        if (!striped) return place.retry();
        this.o.log?.warn({ digest }, 'striped download failed: the rest of the blob comes the usual way');
        striping = striped = false;
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
   * The blob from the providers, from byte `start` on (0: the whole blob; more: the rest of a transfer
   * that failed at that byte): whole from a sole provider, else in ranges (see range-download.ts).
   */
  download(digest: Digest, providers: Provider[], contributors: Set<string>, expected: number | undefined, start = 0): Promise<FetchedBody> {
    return this.holders.download({ digest, expected, contributors }, providers, start);
  }

  /**
   * One with a predecessor in the blob's chain follows it at once (no DHT lookup, which also keeps later
   * nodes off the seed fetcher's uplink). The head of a chain (or a node with no coordinator) looks for
   * nodes holding the blob and takes it from them if any. Undefined when no provider is known: this node
   * is the one to ask the seed; an error when providers were known but none could send the first range
   * (so the failure is reported and the lookup forgotten before the seed is asked).
   */
  private async open(want: Wanted, from: number, claim: boolean, failedFetchers: readonly string[], onFollow: (id: string) => void): Promise<FetchedBody | undefined> {
    // Peers this node avoids (bad bytes, or a chain place they never served) are reported as failed, so
    // the coordinator drops them from the chain instead of handing them to this node or anyone else.
    const failed = [...failedFetchers, ...this.scores.banned()];
    if (claim) {
      const followed = await this.chain.follow(want, from, failed, onFollow);
      if (followed) return followed;
    }
    // This node heads a chain, a new one or one whose head it replaces: before the seed, the nodes that
    // hold the whole blob (a chain ends once its head has it, so a node whose predecessor died late
    // finds the holders here instead of fetching the blob from the seed again).
    if (failed.length > 0) this.forget(want.digest);
    // The head of a rollout's order goes to the seed at once: the rest of the rollout follows it, and a
    // DHT walk at a rollout's start (1–2 s in its burst) would hold up every node behind it.
    if (claim && failed.length === 0 && this.net.headsOrder?.(want.digest)) return undefined;
    const providers = await this.providers(want.digest);
    return providers.length > 0 ? this.holders.download(want, providers, from) : undefined;
  }
}
