// The provide sweep's network side in the daemon: a region's walk is one kad-dht getClosestPeers toward a
// key of the region (its public API), and a key's announcement is ADD_PROVIDER (kad-provide.ts) to the
// `replication` peers closest to the key among those the walk found. Each walk also estimates the
// network's size, from which the sweep's regions are sized (sweepRegionBits).
import type { KadDHT } from '@libp2p/kad-dht';
import type { Libp2p, PeerId, PeerInfo } from '@libp2p/interface';
import type { Digest } from '../oci/index.js';
import { digestToCid } from './cid.js';
import { sendAddProvider } from './kad-provide.js';
import { blobKadKey, closestTo, estimateNetworkSize, kadKeyOf, keyRegion, type KadKey } from './keyspace.js';
import type { SweepExecutor } from './provide-sweep-driver.js';

export interface KadSweepOptions {
  protocol: string;
  /** Peers each key's record goes to. */
  replication: number;
  /** kad-dht's k: how many peers a walk returns. */
  k: number;
  /** The sweep's current region bits (which walk peers count as the region's). */
  regionBits(): number;
  /**
   * Told the network's size (median of the last few walks' estimates) at the end of the batch after a
   * walk: the sweep's regions may change only between batches, not while a walk is being recorded.
   */
  onNetworkSize(peers: number): void;
  /** One ADD_PROVIDER, dial to close (default 5 s). */
  sendTimeoutMs?: number;
  /** One walk (default 30 s). */
  walkTimeoutMs?: number;
  /** A peer an ADD_PROVIDER failed to is skipped this long (default 2 min). */
  downMs?: number;
  now?: () => number;
}

interface PeerRef {
  id: PeerId;
  key: KadKey;
  info: PeerInfo;
}

/** Peers remembered from walks, for the announcements that follow them (oldest forgotten first). */
const MAX_KNOWN_PEERS = 4096;
const SIZE_ESTIMATES = 9;

export class KadSweepExecutor implements SweepExecutor {
  private readonly known = new Map<string, PeerRef>();
  private readonly down = new Map<string, number>();
  private readonly estimates: number[] = [];
  private pendingSize: number | undefined;
  private readonly now: () => number;
  /** ADD_PROVIDER messages sent and failed, walks made. */
  readonly counts = { sent: 0, failed: 0, walks: 0 };

  constructor(
    private readonly libp2p: Libp2p<{ dht: KadDHT }>,
    private readonly o: KadSweepOptions,
  ) {
    this.now = o.now ?? Date.now;
  }

  async walk(region: number, key: string): Promise<{ peers: string[]; requests: number }> {
    const target = blobKadKey(key as Digest);
    const bits = this.o.regionBits();
    const final: PeerRef[] = [];
    const heard: PeerRef[] = [];
    let requests = 0;
    const signal = AbortSignal.timeout(this.o.walkTimeoutMs ?? 30_000);
    for await (const event of this.libp2p.services.dht.getClosestPeers(digestToCid(key as Digest).multihash.bytes, { signal })) {
      if (event.name === 'SEND_QUERY') requests++;
      else if (event.name === 'FINAL_PEER') final.push(this.remember(event.peer));
      else if (event.name === 'PEER_RESPONSE') for (const p of event.closer) heard.push(this.remember(p));
    }
    this.counts.walks++;
    this.estimated(estimateNetworkSize(target, final.map((p) => p.key), this.o.k));
    // Peers of the region heard of on the way in count too: a region a little over k peers is still covered.
    const self = this.libp2p.peerId.toString();
    const inRegion = heard.filter((p) => keyRegion(p.key, bits) === region);
    const peers = new Set([...final, ...inRegion].map((p) => p.id.toString()).filter((id) => id !== self));
    return { peers: [...peers], requests };
  }

  /** ADD_PROVIDER of each key to its closest live peers among `peers`; a key fails when no peer took it. */
  async announce(keys: string[], peers: string[] | undefined): Promise<{ failed: string[]; requests: number }> {
    const failed: string[] = [];
    let requests = 0;
    for (const key of keys) {
      const targets = this.targetsFor(blobKadKey(key as Digest), peers ?? []);
      const cid = digestToCid(key as Digest);
      const results = await Promise.allSettled(targets.map((p) => this.send(p, cid.multihash.bytes)));
      requests += targets.length;
      if (!results.some((r) => r.status === 'fulfilled')) failed.push(key);
    }
    if (this.pendingSize !== undefined) this.o.onNetworkSize(this.pendingSize);
    this.pendingSize = undefined;
    return { failed, requests };
  }

  private targetsFor(key: KadKey, ids: string[]): PeerRef[] {
    const now = this.now();
    const live = ids.flatMap((id) => {
      const ref = this.known.get(id);
      const until = this.down.get(id);
      if (until !== undefined && until <= now) this.down.delete(id);
      return ref && (until === undefined || until <= now) ? [ref] : [];
    });
    return closestTo(key, live, this.o.replication);
  }

  private async send(peer: PeerRef, key: Uint8Array): Promise<void> {
    try {
      await sendAddProvider(this.libp2p, { id: peer.id, addrs: peer.info.multiaddrs }, key, { protocol: this.o.protocol, timeoutMs: this.o.sendTimeoutMs });
      this.counts.sent++;
    } catch (err) {
      this.counts.failed++;
      this.down.set(peer.id.toString(), this.now() + (this.o.downMs ?? 120_000));
      throw err;
    }
  }

  private remember(info: PeerInfo): PeerRef {
    const id = info.id.toString();
    const ref = this.known.get(id) ?? { id: info.id, key: kadKeyOf(info.id.toMultihash().bytes), info };
    if (info.multiaddrs.length > 0) ref.info = info;
    this.known.delete(id); // re-inserted last: the map's order is oldest-seen first
    this.known.set(id, ref);
    if (this.known.size > MAX_KNOWN_PEERS) this.known.delete(this.known.keys().next().value!);
    return ref;
  }

  private estimated(n: number): void {
    this.estimates.push(n);
    if (this.estimates.length > SIZE_ESTIMATES) this.estimates.shift();
    const sorted = [...this.estimates].sort((a, b) => a - b);
    this.pendingSize = sorted[Math.floor(sorted.length / 2)]!;
  }
}
