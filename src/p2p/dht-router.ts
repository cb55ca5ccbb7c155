// ContentRouter over libp2p's Kademlia DHT. Provides and re-provides follow a ProvideSweep: keys are
// grouped by keyspace region, a region is walked once (kad-dht's getClosestPeers) and each of its keys
// goes by ADD_PROVIDER to its `replication` closest peers among those found (kad-sweep.ts), instead of a
// full kad-dht provide (a walk and up to 20 ADD_PROVIDER) per key. New blobs go promptly; re-provides are
// spread over the interval in keyspace order, and the whole is paced by a request budget, so a node that
// just pulled an image, or restarted with 5,000 blobs, never bursts.
import type { KadDHT } from '@libp2p/kad-dht';
import type { Libp2p, PeerId } from '@libp2p/interface';
import type { CID } from 'multiformats/cid';
import type { Digest } from '../oci/index.js';
import { digestToCid } from './cid.js';
import type { ContentRouter, FindOptions, Provider } from './content-router.js';
import { KadSweepExecutor } from './kad-sweep.js';
import { blobKadKey, kadKeyOf, keyPosition, sweepRegionBits } from './keyspace.js';
import { DHT_PROTOCOL } from './libp2p-node.js';
import { ProvideSweep } from './provide-sweep.js';
import { SweepDriver, type SweepClock } from './provide-sweep-driver.js';

export interface DhtRouterOptions {
  /** Bootstrap peers are configured: until one is in the routing table, lookups cannot find anything. */
  expectPeers?: boolean;
  /** How often every held blob is announced again (default DEFAULT_REPROVIDE_INTERVAL_MS; records must live longer: libp2p-node.ts). */
  reprovideIntervalMs?: number;
  /** Peers each blob's record goes to (default DEFAULT_REPLICATION). */
  replication?: number;
  /**
   * DHT requests a second provides may spend (default DEFAULT_PROVIDE_RATE): the burst bound. The average
   * is what the interval and replication make it (blobs × replication / interval, plus a walk per region).
   */
  maxRequestsPerSecond?: number;
  /** The kad protocol id (default layerd's). */
  protocol?: string;
  clock?: SweepClock;
  log?: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * Peers each record goes to: 10 of the k = 20 closest. A lookup walks to a key's 20 closest peers, so a
 * record is found while any of its 10 holders is up and still among those 20. Every provider of a blob
 * sends to the same 10, so they fail together: all 10 gone before the next re-provide takes about half
 * the cluster failing at once (0.5^10 ≈ 0.1% of blobs; scripts/sim/dht-sim.mjs --churn measures it), and
 * 10 closer peers joining a key's neighbourhood takes the cluster doubling within an interval. 20 (kad's
 * default) would cost twice the requests for a margin that only matters past such failures.
 */
export const DEFAULT_REPLICATION = 10;
/**
 * 5,000 blobs × 10 peers every 16 h is 0.87 requests/s, plus a walk per region (the target is 1/s). The
 * records live twice as long (node/p2p.ts): a blob's first re-provide comes within 1.5 intervals of its
 * first provide, every later one an interval after the one before, so a record is always redone with a
 * quarter of its 32 h left or more (kad-dht's own default lifetime is 48 h, PROVIDERS_VALIDITY).
 */
export const DEFAULT_REPROVIDE_INTERVAL_MS = 16 * 3_600_000;
/** kad-dht's k (its kBucketSize default: layerd does not change it). */
const K = 20;
/** What a region walk is expected to cost, charged before it runs (the rest, or the change, after). */
export const SWEEP_WALK_REQUESTS = 20;
/**
 * Requests a second at most: a second holds the rate, the half second saved while idle, and what a walk
 * cost beyond its charge, so 20 keeps the busiest second under 50 (at 25 the simulator saw 51 once, in a
 * cold start of 5,000 blobs). A restart with 5,000 blobs then takes 5,000 × 10 / 20 s ≈ 42 min to announce.
 */
export const DEFAULT_PROVIDE_RATE = 20;

const realClock: SweepClock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export class DhtContentRouter implements ContentRouter {
  private readonly driver: SweepDriver;
  private readonly executor: KadSweepExecutor;
  private readonly ownRecord: ((cid: CID) => Promise<void>) | undefined;
  /** Announcements made and failed (keys), for metrics. */
  readonly counts = { provides: 0, failures: 0 };

  constructor(
    private readonly libp2p: Libp2p<{ dht: KadDHT }>,
    private readonly opts: DhtRouterOptions = {},
  ) {
    const rate = opts.maxRequestsPerSecond ?? DEFAULT_PROVIDE_RATE;
    this.ownRecord = ownProviderRecords(libp2p.services.dht, libp2p.peerId);
    const replication = opts.replication ?? DEFAULT_REPLICATION;
    const sweep = new ProvideSweep({
      intervalMs: opts.reprovideIntervalMs ?? DEFAULT_REPROVIDE_INTERVAL_MS,
      regionBits: 0, // until the first walk tells the network's size
      // Each node sweeps from its own place in the cycle, so a cluster started together re-provides spread out.
      phase: keyPosition(kadKeyOf(libp2p.peerId.toMultihash().bytes)),
      // A batch's requests fit half a second of the rate: a burst stays near the rate.
      maxBatch: Math.max(1, Math.floor(rate / 2 / replication)),
      gatherMs: 200, // an image's layers arrive together: they share the walks of their regions
      // A small cluster's one region would keep its first walk a whole interval: a node that started
      // among few peers would never see the cluster grow (nor learn its size and cut finer regions).
      maxWalkReuseMs: 20 * 60_000,
    });
    this.executor = new KadSweepExecutor(libp2p, {
      protocol: opts.protocol ?? DHT_PROTOCOL,
      replication,
      k: K,
      regionBits: () => sweep.currentRegionBits,
      onNetworkSize: (n) => sweep.setRegionBits(sweepRegionBits(n, K)),
      pay: (n) => this.driver.pay(n),
      walkRequests: SWEEP_WALK_REQUESTS,
    });
    const executor = {
      walk: (region: number, key: string) => this.executor.walk(region, key),
      announce: (keys: string[], peers: string[] | undefined) => this.announce(keys, peers),
    };
    this.driver = new SweepDriver(sweep, executor, opts.clock ?? realClock, {
      maxRequestsPerSecond: rate,
      requestsPerKey: replication,
      walkRequests: SWEEP_WALK_REQUESTS,
      onError: (err) => opts.log?.warn({ reason: err.message }, 'provide sweep failed'),
    });
    // Announcing before the DHT runs would reach nobody and count as done: run the sweep while libp2p does.
    if (libp2p.status === 'started') this.driver.start();
    libp2p.addEventListener('start', () => this.driver.start());
    libp2p.addEventListener('stop', () => this.driver.stop());
  }

  /** Schedules the blob for announcing; resolves once its first announcement was tried. */
  provide(digest: Digest): Promise<void> {
    return this.driver.add(digest, blobKadKey(digest));
  }

  /** ADD_PROVIDER of each key to its closest peers of the region's walk; counted, and logged per digest (tests wait for "provided"). */
  private async announce(keys: string[], peers: string[] | undefined): Promise<{ failed: string[]; requests: number; prepaid: number }> {
    const started = Date.now();
    const result = await this.executor.announce(keys, peers);
    const failed = new Set(result.failed);
    const ms = Date.now() - started;
    for (const digest of keys) {
      if (failed.has(digest)) {
        this.counts.failures++;
        this.opts.log?.warn({ digest, peers: peers?.length ?? 0, reason: 'no peer took the record' }, 'provide failed');
      } else {
        this.counts.provides++;
        await this.ownRecord?.(digestToCid(digest as Digest));
        this.opts.log?.debug({ digest, ms }, 'provided');
      }
    }
    return result;
  }

  /**
   * Resolves once the blob's first announcement was tried (at once when none is pending), or after
   * `maxWaitMs`. A claim chain's head ends its chain only then: the next node to miss the blob must find
   * this one in the DHT, or it would head a new chain and take a second copy from the seed.
   */
  announced(digest: Digest, maxWaitMs = 30_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      timer.unref();
      void this.driver.announced(digest).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async *findProviders(digest: Digest, opts: FindOptions = {}): AsyncIterable<Provider> {
    const self = this.libp2p.peerId.toString();
    const seen = new Set<string>();
    for await (const peer of this.libp2p.contentRouting.findProviders(digestToCid(digest), { signal: opts.signal })) {
      const id = peer.id.toString();
      if (id === self || seen.has(id)) continue;
      seen.add(id);
      yield { id, addrs: peer.multiaddrs.map((a) => a.toString()) };
      if (opts.limit !== undefined && seen.size >= opts.limit) return;
    }
  }

  /**
   * Stops announcing the blob and drops this node's own record of it (kad-dht's reprovider would redo
   * it). Records other nodes hold expire on their own, so fetchers must expect providers that no longer
   * have the blob.
   */
  async withdraw(digest: Digest): Promise<void> {
    this.driver.remove(digest);
    await this.libp2p.services.dht.cancelReprovide(digestToCid(digest));
  }

  /**
   * Resolves once the routing table holds a peer (a provide or lookup before that reaches nobody), or
   * at once when this node has no peers to expect (no bootstrap list, no connection); gives up after
   * `timeoutMs` rather than hang.
   */
  async ready(timeoutMs = 10_000): Promise<void> {
    const dht = this.libp2p.services.dht as unknown as { routingTable?: { size: number } };
    const end = Date.now() + timeoutMs;
    const expecting = () => this.opts.expectPeers === true || this.libp2p.getConnections().length > 0;
    while ((dht.routingTable?.size ?? 1) === 0 && expecting() && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Writes this node's own provider record into kad-dht's store, as kad-dht's provide does first: a node
 * asked for providers of a blob it holds then names itself (a joining node's bootstrap peer often holds
 * what it looks for), and kad-dht's reprovider, which redoes own records near the end of their life, is
 * the safety net for a key the sweep failed to announce for long. kad-dht's interface has no call for
 * it, so its store is reached as slowDhtMaintenance reaches its timers; undefined when not found (a unit
 * test checks it is, so an upgrade that renames it fails there).
 */
export function ownProviderRecords(dht: unknown, self: PeerId): ((cid: CID) => Promise<void>) | undefined {
  const providers = (dht as { providers?: { addProvider?: unknown } }).providers;
  if (typeof providers?.addProvider !== 'function') return undefined;
  const add = providers.addProvider as (cid: CID, peer: PeerId) => Promise<void>;
  return (cid) => add.call(providers, cid, self);
}
