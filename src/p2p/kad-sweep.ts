// The provide sweep's network side in the daemon: a region's walk is one kad-dht getClosestPeers toward a
// key of the region (its public API), and a key's announcement is ADD_PROVIDER (kad-provide.ts) to the
// `replication` peers closest to the key among those the walk found. Each walk also estimates the
// network's size, from which the sweep's regions are sized (sweepRegionBits). Whether a walk surely
// found a key's closest peers is checked per key (walkCovers), so a wrong estimate costs walks, never
// records on the wrong peers.
import type { KadDHT } from '@libp2p/kad-dht';
import type { Libp2p, PeerId, PeerInfo } from '@libp2p/interface';
import type { Digest } from '../oci/index.js';
import { digestToCid } from './cid.js';
import { sendAddProvider } from './kad-provide.js';
import { blobKadKey, closestTo, estimateNetworkSize, kadKeyOf, keyRegion, walkCovers, type KadKey } from './keyspace.js';
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
  /** Pays for `n` requests before an extra walk goes (the driver's token bucket: SweepDriver.pay). */
  pay?(n: number): Promise<void>;
  /** What a walk is expected to cost (paid before an extra walk). */
  walkRequests?: number;
  /** One ADD_PROVIDER, dial to close (default 5 s). */
  sendTimeoutMs?: number;
  /** One walk (default 30 s). */
  walkTimeoutMs?: number;
  /** A peer an ADD_PROVIDER failed to is skipped this long (default 2 min). */
  downMs?: number;
  now?: () => number;
}

/** What a walk surely found: every peer nearer to `target` than the farthest of `found`, or all (`complete`). */
interface Ball {
  target: KadKey;
  found: KadKey[];
  complete: boolean;
  /**
   * A region walk whose k closest reach past the region: the region holds fewer than k peers and the walk
   * found them all, so each key of it has its closest peers of the region among them (the regime the
   * simulator shows exact). A region walk that stayed inside (the size estimate was low) fits nothing.
   */
  fits: boolean;
}

interface PeerRef {
  id: PeerId;
  key: KadKey;
  info: PeerInfo;
}

/** Peers remembered from walks, for the announcements that follow them (oldest forgotten first). */
const MAX_KNOWN_PEERS = 4096;
const SIZE_ESTIMATES = 9;
/** Walks made for keys their region's walk did not cover, kept for the keys that follow (keyspace order). */
const OWN_WALKS = 4;

export class KadSweepExecutor implements SweepExecutor {
  private readonly known = new Map<string, PeerRef>();
  /**
   * What each walk's peer list surely covers, by the list itself: the sweep hands back the very array a
   * walk returned (it keeps it for the region), so a list that is not a walk's is never taken for one.
   */
  private readonly balls = new WeakMap<readonly string[], Ball>();
  private ownWalks: string[][] = [];
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
    const bits = this.o.regionBits();
    const w = await this.walkToward(key);
    // Peers of the region heard of on the way in are candidates too (the coverage check still holds:
    // they are real peers, so the closest among more candidates are no farther).
    const inRegion = w.heard.filter((p) => keyRegion(p.key, bits) === region);
    const peers = this.ids([...w.final, ...inRegion]);
    this.balls.set(peers, { ...w.ball, fits: w.final.some((p) => keyRegion(p.key, bits) !== region) });
    return { peers, requests: w.requests };
  }

  /**
   * ADD_PROVIDER of each key to its closest live peers among `peers`; a key fails when no peer took it.
   * A key the region's walk does not cover (it stayed inside its region, which is then larger than the
   * estimate meant, and walkCovers cannot vouch for the key) gets a walk of its own first, paid for at
   * the sweep's rate and kept for the keys after it.
   */
  async announce(keys: string[], peers: string[] | undefined): Promise<{ failed: string[]; requests: number; prepaid: number }> {
    const failed: string[] = [];
    let requests = 0;
    let prepaid = 0;
    for (const key of keys) {
      const kadKey = blobKadKey(key as Digest);
      let candidates = [peers ?? [], ...this.ownWalks].find((ids) => this.covers(ids, kadKey));
      if (!candidates) {
        await this.o.pay?.(this.o.walkRequests ?? 0);
        prepaid += this.o.walkRequests ?? 0;
        const w = await this.walkToward(key);
        requests += w.requests;
        candidates = this.ids(w.final);
        this.balls.set(candidates, w.ball);
        this.ownWalks.unshift(candidates);
        this.ownWalks.length = Math.min(this.ownWalks.length, OWN_WALKS);
      }
      const targets = this.targetsFor(kadKey, candidates);
      const cid = digestToCid(key as Digest);
      const results = await Promise.allSettled(targets.map((p) => this.send(p, cid.multihash.bytes)));
      requests += targets.length;
      if (!results.some((r) => r.status === 'fulfilled')) failed.push(key);
    }
    if (this.pendingSize !== undefined) this.o.onNetworkSize(this.pendingSize);
    this.pendingSize = undefined;
    return { failed, requests, prepaid: Math.min(prepaid, requests) };
  }

  /** One kad-dht walk toward the key: its k closest (FINAL_PEER), the peers heard of, what it cost. */
  private async walkToward(key: string): Promise<{ final: PeerRef[]; heard: PeerRef[]; requests: number; ball: Ball }> {
    const target = blobKadKey(key as Digest);
    const self = this.libp2p.peerId.toString();
    const final: PeerRef[] = [];
    const heard: PeerRef[] = [];
    let requests = 0;
    const signal = AbortSignal.timeout(this.o.walkTimeoutMs ?? 30_000);
    for await (const event of this.libp2p.services.dht.getClosestPeers(digestToCid(key as Digest).multihash.bytes, { signal })) {
      if (event.name === 'SEND_QUERY') requests++;
      else if (event.name === 'FINAL_PEER' && event.peer.id.toString() !== self) final.push(this.remember(event.peer));
      else if (event.name === 'PEER_RESPONSE') for (const p of event.closer) if (p.id.toString() !== self) heard.push(this.remember(p));
    }
    this.counts.walks++;
    this.estimated(estimateNetworkSize(target, final.map((p) => p.key), this.o.k));
    return { final, heard, requests, ball: { target, found: final.map((p) => p.key), complete: final.length < this.o.k, fits: false } };
  }

  /** Whether the walk that gave `ids` surely found the key's `replication` closest peers. */
  private covers(ids: readonly string[], key: KadKey): boolean {
    const ball = this.balls.get(ids);
    return ball !== undefined && (ball.fits || walkCovers(ball.target, ball.found, ball.complete, key, this.o.replication));
  }

  private ids(refs: PeerRef[]): string[] {
    return [...new Set(refs.map((p) => p.id.toString()))];
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
