// ContentRouter over libp2p's Kademlia DHT. Provides go through a bounded queue: in js kad-dht every
// provide is a full walk plus ADD_PROVIDER to up to 20 peers, and nothing batches them, so a node
// that just pulled an image must not fire one walk per layer all at once.
import type { KadDHT } from '@libp2p/kad-dht';
import type { Libp2p } from '@libp2p/interface';
import type { Digest } from '../oci/index.js';
import { digestToCid } from './cid.js';
import type { ContentRouter, FindOptions, Provider } from './content-router.js';

export interface DhtRouterOptions {
  /** Bootstrap peers are configured: until one is in the routing table, lookups cannot find anything. */
  expectPeers?: boolean;
  /** Provides running at once. */
  provideConcurrency?: number;
  log?: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class DhtContentRouter implements ContentRouter {
  private readonly queue: Array<{ digest: Digest; done: () => void }> = [];
  private active = 0;
  private readonly concurrency: number;
  /** Digests this node announces, so a withdrawn digest's queued provide is skipped. */
  private readonly provided = new Set<Digest>();
  /** Provides made and failed, for metrics. */
  readonly counts = { provides: 0, failures: 0 };

  constructor(
    private readonly libp2p: Libp2p<{ dht: KadDHT }>,
    private readonly opts: DhtRouterOptions = {},
  ) {
    this.concurrency = opts.provideConcurrency ?? 4;
  }

  provide(digest: Digest): Promise<void> {
    this.provided.add(digest);
    return new Promise((resolve) => {
      this.queue.push({ digest, done: resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      if (!this.provided.has(job.digest)) {
        job.done();
        continue;
      }
      this.active++;
      const started = Date.now();
      this.libp2p.contentRouting
        .provide(digestToCid(job.digest))
        .then(
          () => {
            this.counts.provides++;
            this.opts.log?.debug({ digest: job.digest, ms: Date.now() - started }, 'provided');
          },
          (err: Error) => {
            this.counts.failures++;
            this.opts.log?.warn({ digest: job.digest, reason: err.message }, 'provide failed');
          },
        )
        .finally(() => {
          this.active--;
          job.done();
          this.pump();
        });
    }
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
    this.provided.delete(digest);
    // Drops our own record (no more re-provides). Records other nodes hold expire on their own, so
    // fetchers must expect providers that no longer have the blob.
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
