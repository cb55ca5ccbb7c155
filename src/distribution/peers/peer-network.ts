// What fetching from peers needs of the peer-to-peer layer, and the fetcher's settings: shared by the
// provider lookup, the chain follower and the ranged download.
import type { ByteRange, Digest } from '../../oci/index.js';
import type { ContentRouter, PeerBlob, Provider } from '../../p2p/index.js';

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
  /**
   * The blob comes as stripes in a running rollout (its stripe trees: see rollout/stripe-trees.ts): each
   * stripe from its own parent. Undefined: it comes whole, as above.
   */
  stripeRoute?(digest: Digest): StripeRoute | undefined;
}

/**
 * Where a node takes a blob's stripes from. Stripe s is the chunks i of `chunkBytes` with i mod k = s;
 * each comes from the stripe's parent, which serves what it holds of the blob as it lands.
 */
export interface StripeRoute {
  readonly k: number;
  readonly chunkBytes: number;
  /** Who sends stripe s now (read at every chunk: the rollout's keeper may repoint it meanwhile). */
  parent(stripe: number): string;
  /**
   * Asked for a chunk its stripe's parent failed: a node that never waits on this one (the rollout's origin,
   * which takes the blob from the seed). Not another stripe's parent: that node may take this very stripe
   * from this node, and each would wait on the other until a timeout (a 32-host bench: 138 chunks stalled
   * 45 s each that way).
   */
  readonly fallback?: string;
  /** Bytes of stripe s handed on (the node's per-stripe progress). */
  got?(stripe: number, bytes: number): void;
  /**
   * The parent of stripe s failed or stalled a chunk. The route names it to the keeper (which demotes it)
   * only after repeated failures: a parent merely slow for one chunk keeps its place. Not even a dial that
   * timed out counts at once: on loaded hosts a live, connected parent's stream took over 5 s to open (94
   * times on 32 hosts), and a dead parent fails every chunk asked of it within a few seconds anyway (the
   * origin also removes it once its reports stop).
   */
  failed?(stripe: number, parent: string): void;
  /** The parent of stripe s sent a whole chunk: its failures so far were passing ones. */
  served?(stripe: number, parent: string): void;
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
   * How long a chain predecessor may keep answering 'pending' (alive, its own download not begun) before
   * this node passes it over. Long: on a host starved of CPU a node's download may start a minute late,
   * and passing it over costs a copy more from the seed or on an uplink.
   */
  followPendingMs?: number;
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
  /**
   * A stripe parent that sends no byte of the chunk being handed on for this long is passed over for the
   * chunk (another stripe's parent is asked): a stalled parent is found before the stream's idle timeout.
   */
  stripeStallMs?: number;
  onLookup?: (ms: number, found: number) => void;
  /** Told of every range a peer sent in full (for per-peer traffic). */
  onRangeFetched?: (peer: string, bytes: number) => void;
  log?: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * The options with their defaults filled in. One object, shared by reference by every part of a fetcher,
 * each reading it when it acts: scripts/bench/peer-fetcher-overrides.mjs changes it in place.
 */
export type FetcherSettings = Required<Omit<PeerFetcherOptions, 'onLookup' | 'onRangeFetched' | 'log'>> & Pick<PeerFetcherOptions, 'onLookup' | 'onRangeFetched' | 'log'>;

export function settingsOf(opts: PeerFetcherOptions): FetcherSettings {
  return {
    lookupTimeoutMs: 2_000,
    maxProviders: 8,
    rangeBytes: 8 * 1024 * 1024,
    parallel: 6,
    perPeer: 4,
    hedgeAfterMs: 3_000,
    lookupCacheMs: 10_000,
    followAnswerMs: 40_000,
    followPendingMs: 600_000,
    maxBlobBytes: 2 ** 40,
    confirmClaimsAbove: 64 * 1024 * 1024,
    stripeStallMs: 15_000,
    ...opts,
  };
}

/** One download's ask of the peers, and whom its bytes came from. */
export interface Wanted {
  readonly digest: Digest;
  /** The size the blob's descriptor gives, when one does: a peer claiming another size lies. */
  readonly expected: number | undefined;
  /** The peers whose bytes are in the blob so far: all are blamed if it does not verify. */
  readonly contributors: Set<string>;
}
