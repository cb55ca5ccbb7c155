// The ContentRouter seam: who holds which blob. The DHT implementation (dht-router.ts) is the real one;
// MemoryContentRouter is its twin for unit tests of resolution policy. Both pass one conformance suite.
import type { Digest } from '../oci/index.js';

export interface Provider {
  /** The provider's peer id. */
  id: string;
  /** Where it can be dialled, when the router knows. */
  addrs: string[];
}

export interface FindOptions {
  signal?: AbortSignal;
  /** Stop after this many providers. */
  limit?: number;
}

export interface ContentRouter {
  /** Announce that this node holds the blob. */
  provide(digest: Digest): Promise<void>;
  /**
   * Providers of the blob, other than this node; ends when the search is done. Once `opts.signal`
   * aborts it yields nothing more and ends promptly, by returning or by throwing (the signal's reason or
   * an AbortError): callers keep what was yielded before.
   */
  findProviders(digest: Digest, opts?: FindOptions): AsyncIterable<Provider>;
  /**
   * Stop announcing the blob (it was evicted or deleted). Lookups elsewhere may still name this node
   * until the records it already handed out expire: at once for the memory twin, within the provider
   * record's lifetime plus one cleanup round for the DHT (kad-dht has no message that revokes a record).
   */
  withdraw(digest: Digest): Promise<void>;
  /**
   * Resolves when lookups can be answered (the routing table has peers, or none are expected), or
   * after `timeoutMs` at the latest.
   */
  ready(timeoutMs?: number): Promise<void>;
}

/** A shared "network" for MemoryContentRouters: digest → provider ids. */
export class MemoryRoutingNetwork {
  readonly records = new Map<Digest, Set<string>>();
}

export class MemoryContentRouter implements ContentRouter {
  constructor(
    readonly id: string,
    private readonly network: MemoryRoutingNetwork,
  ) {}

  async provide(digest: Digest): Promise<void> {
    let set = this.network.records.get(digest);
    if (!set) this.network.records.set(digest, (set = new Set()));
    set.add(this.id);
  }

  async *findProviders(digest: Digest, opts: FindOptions = {}): AsyncIterable<Provider> {
    let n = 0;
    for (const id of this.network.records.get(digest) ?? []) {
      if (opts.signal?.aborted) return;
      if (id === this.id) continue;
      yield { id, addrs: [] };
      if (opts.limit !== undefined && ++n >= opts.limit) return;
    }
  }

  async withdraw(digest: Digest): Promise<void> {
    this.network.records.get(digest)?.delete(this.id);
  }

  async ready(): Promise<void> {}
}
