// ContentRouter over libp2p's Kademlia DHT. Provides and re-provides follow a ProvideSweep: new blobs go
// promptly, re-provides are spread over the interval in keyspace order (kad-dht's own reprovider would
// redo every record that came due in an hourly check at once), and the whole is paced by a request
// budget, so a node that just pulled an image, or restarted with 5,000 blobs, never bursts.
// js kad-dht offers no supported way to send ADD_PROVIDER to peers of our choosing, so each announcement
// is still a full kad-dht provide (a walk plus ADD_PROVIDER to the k closest): the sweep's region walks
// run only in the simulator (src/sim/dht) until then.
import type { KadDHT } from '@libp2p/kad-dht';
import type { Libp2p } from '@libp2p/interface';
import type { Digest } from '../oci/index.js';
import { digestToCid } from './cid.js';
import type { ContentRouter, FindOptions, Provider } from './content-router.js';
import { blobKadKey, kadKeyOf, keyPosition } from './keyspace.js';
import { ProvideSweep } from './provide-sweep.js';
import { SweepDriver, type SweepClock, type SweepExecutor } from './provide-sweep-driver.js';

export interface DhtRouterOptions {
  /** Bootstrap peers are configured: until one is in the routing table, lookups cannot find anything. */
  expectPeers?: boolean;
  /** How often every held blob is announced again (default 12 h). */
  reprovideIntervalMs?: number;
  /**
   * DHT requests a second provides may spend (default 25). One provide (~40 requests) goes at once after
   * a quiet spell, the next when the budget has paid for it: at most ~65 in any one second.
   */
  maxRequestsPerSecond?: number;
  clock?: SweepClock;
  log?: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** A full kad-dht provide: a walk (~10–30 requests in a LAN cluster) and ADD_PROVIDER to up to 20 peers. */
const REQUESTS_PER_PROVIDE = 40;

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
  /** Provides made and failed, for metrics. */
  readonly counts = { provides: 0, failures: 0 };

  constructor(
    private readonly libp2p: Libp2p<{ dht: KadDHT }>,
    private readonly opts: DhtRouterOptions = {},
  ) {
    const rate = opts.maxRequestsPerSecond ?? 25;
    const sweep = new ProvideSweep({
      intervalMs: opts.reprovideIntervalMs ?? 12 * 3_600_000,
      regionBits: 0, // without region walks, grouping by region buys nothing
      // Each node sweeps from its own place in the cycle, so a cluster started together re-provides spread out.
      phase: keyPosition(kadKeyOf(libp2p.peerId.toMultihash().bytes)),
      maxBatch: 1, // a provide is ~40 requests already: one at a time keeps each second's burst to about one
      gatherMs: 0, // gathering new keys pays off only with region walks to share
    });
    const executor: SweepExecutor = { announce: (keys) => this.announce(keys as Digest[]) };
    this.driver = new SweepDriver(sweep, executor, opts.clock ?? realClock, {
      maxRequestsPerSecond: rate,
      requestsPerKey: REQUESTS_PER_PROVIDE,
      walkRequests: 0,
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

  /** One batch of the sweep: a kad-dht provide per digest, in turn; counts the requests they sent. */
  private async announce(digests: Digest[]): Promise<{ failed: string[]; requests: number }> {
    const failed: string[] = [];
    let requests = 0;
    for (const digest of digests) {
      const started = Date.now();
      try {
        for await (const event of this.libp2p.services.dht.provide(digestToCid(digest))) if (event.name === 'SEND_QUERY') requests++;
        this.counts.provides++;
        this.opts.log?.debug({ digest, ms: Date.now() - started }, 'provided');
      } catch (err) {
        this.counts.failures++;
        failed.push(digest);
        this.opts.log?.warn({ digest, reason: (err as Error).message }, 'provide failed');
      }
    }
    return { failed, requests };
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

  async withdraw(digest: Digest): Promise<void> {
    this.driver.remove(digest);
    // Drops our own record (kad-dht's reprovider would otherwise redo it). Records other nodes hold
    // expire on their own, so fetchers must expect providers that no longer have the blob.
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
