// When to announce which keys, after the "reprovide sweep" idea of go-libp2p-kad-dht: instead of one
// DHT walk per key, keys are grouped by keyspace region and a region is walked once, its closest peers
// then told about every key of the region. Re-provides sweep the keyspace in order over the interval
// (a key's turn is its keyspace position), so the cost is spread evenly instead of bursting at the start
// of a cycle, and each host starts its sweep at its own phase so a region's peers are not hit by every
// host at once. New keys go promptly, gathered a moment so an image's layers share walks.
// Pure: time is passed in, nothing is sent; a driver (provide-sweep-driver.ts) does the I/O.
import { keyPosition, keyRegion, type KadKey } from './keyspace.js';
import { MinHeap } from './min-heap.js';

export interface ProvideSweepOptions {
  /** Every key is announced again about this often (between half and one and a half of it). */
  intervalMs: number;
  /** Regions are the 2^regionBits prefixes of the keyspace (regionBitsFor). */
  regionBits: number;
  /** This host's offset into the cycle, in [0, 1). */
  phase: number;
  /** Most keys in one batch (a batch's requests should fit the driver's rate burst). */
  maxBatch: number;
  /** A region's walk answers for this long (default: the time the sweep spends on one region). */
  walkReuseMs?: number;
  /** The default walkReuseMs at most: walks that see joins and departures, and the network's size, often enough. */
  maxWalkReuseMs?: number;
  /** New keys wait this long for others of their region. */
  gatherMs?: number;
  /** A failed announcement is tried again after this long. */
  retryMs?: number;
}

export interface SweepBatch {
  region: number;
  /** The region's walk is stale or missing: walk before announcing. */
  walk: boolean;
  keys: string[];
}

interface Entry {
  key: string;
  position: number;
  region: number;
  due: number;
}

export class ProvideSweep {
  private readonly entries = new Map<string, Entry>();
  /** Entries by due time (lazy: an entry no longer in `entries`, or re-due, is skipped). */
  private readonly queue = new DueQueue<Entry>();
  private readonly walks = new Map<number, { at: number; peers: string[] }>();
  private regionBits: number;
  private walkReuseMs: number;
  private readonly gatherMs: number;
  private readonly retryMs: number;
  readonly counts = { batches: 0, walks: 0, announced: 0 };

  constructor(private readonly o: ProvideSweepOptions) {
    this.regionBits = o.regionBits;
    this.walkReuseMs = this.reuseFor(o.regionBits);
    this.gatherMs = o.gatherMs ?? 1_000;
    this.retryMs = o.retryMs ?? 60_000;
  }

  /**
   * Regions of another size (the daemon learns the network's size from its walks): every key's region
   * is recomputed and the walks made for the old regions are forgotten.
   */
  setRegionBits(bits: number): void {
    if (bits === this.regionBits) return;
    this.regionBits = bits;
    this.walkReuseMs = this.reuseFor(bits);
    this.walks.clear();
    for (const e of this.entries.values()) e.region = regionOfPosition(e.position, bits);
  }

  get currentRegionBits(): number {
    return this.regionBits;
  }

  private reuseFor(bits: number): number {
    return this.o.walkReuseMs ?? Math.max(60_000, Math.min(this.o.maxWalkReuseMs ?? Infinity, this.o.intervalMs / 2 ** bits));
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** A key to announce: soon (`fresh`, its records are not out there) or at its turn of the sweep. */
  add(key: string, kadKey: KadKey, now: number, fresh = true): void {
    if (this.entries.has(key)) return;
    const position = keyPosition(kadKey);
    const entry: Entry = { key, position, region: keyRegion(kadKey, this.regionBits), due: 0 };
    entry.due = fresh ? now + this.gatherMs : this.slotAfter(position, now);
    this.entries.set(key, entry);
    this.queue.push(entry, entry.due);
  }

  /** Drops the key from the schedule (withdrawn: evicted or deleted). */
  remove(key: string): void {
    this.entries.delete(key);
  }

  /** When the next key is due; undefined when nothing is scheduled. */
  nextDue(): number | undefined {
    this.dropStale();
    return this.queue.peekDue();
  }

  /**
   * The keys to announce now: those due, from the region of the earliest due one, at most maxBatch.
   * They are rescheduled to their next turn at once; `failed` brings a key back sooner.
   */
  next(now: number): SweepBatch | undefined {
    this.dropStale();
    const first = this.queue.peek();
    if (!first || first.due > now) return undefined;
    const keys: string[] = [];
    const other: Entry[] = [];
    while (keys.length < this.o.maxBatch) {
      this.dropStale();
      const e = this.queue.peek();
      if (!e || e.due > now) break;
      this.queue.pop();
      if (e.region !== first.region) {
        other.push(e);
        continue;
      }
      keys.push(e.key);
      e.due = this.slotAfter(e.position, now + this.o.intervalMs / 2);
      this.queue.push(e, e.due);
    }
    for (const e of other) this.queue.push(e, e.due);
    const walk = this.walkOf(first.region, now) === undefined;
    this.counts.batches++;
    this.counts.announced += keys.length;
    return { region: first.region, walk, keys };
  }

  /** The peers the region's walk found, while they answer for it. */
  walkOf(region: number, now: number): string[] | undefined {
    const w = this.walks.get(region);
    return w && now - w.at < this.walkReuseMs ? w.peers : undefined;
  }

  walked(region: number, peers: string[], now: number): void {
    this.counts.walks++;
    this.walks.set(region, { at: now, peers });
  }

  /** An announcement that failed: try the keys again after retryMs (if they are still held). */
  failed(keys: readonly string[], now: number): void {
    for (const key of keys) {
      const e = this.entries.get(key);
      if (!e) continue;
      e.due = now + this.retryMs;
      this.queue.push(e, e.due);
    }
  }

  /** The first time ≥ `after` that is this key's turn: the cycle starts at `phase`, keys come in keyspace order. */
  private slotAfter(position: number, after: number): number {
    const I = this.o.intervalMs;
    const offset = ((this.o.phase + position) % 1) * I;
    return offset + Math.ceil((after - offset) / I) * I;
  }

  private dropStale(): void {
    for (;;) {
      const top = this.queue.peekEntry();
      if (!top) return;
      const live = this.entries.get(top.item.key);
      if (live === top.item && top.item.due === top.due) return;
      this.queue.pop();
    }
  }
}

/** The region of a key at `position` (keyRegion of its key: position × 2^bits is exact in a double). */
function regionOfPosition(position: number, bits: number): number {
  return bits <= 0 ? 0 : Math.floor(position * 2 ** bits);
}

/** Entries by due time; the due is stored beside the entry so a rescheduled entry's old place is recognised. */
class DueQueue<T> {
  private readonly heap = new MinHeap<{ item: T; due: number }>((a, b) => a.due < b.due);

  push(item: T, due: number): void {
    this.heap.push({ item, due });
  }

  peekEntry(): { item: T; due: number } | undefined {
    return this.heap.peek();
  }

  peek(): T | undefined {
    return this.heap.peek()?.item;
  }

  peekDue(): number | undefined {
    return this.heap.peek()?.due;
  }

  pop(): void {
    this.heap.pop();
  }
}
