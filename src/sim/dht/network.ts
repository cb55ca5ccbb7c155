// A simulated Kademlia network: N nodes with random 256-bit ids and k-bucket routing tables (at most k
// peers per shared-prefix length, chosen at random from the whole network, as a well-settled DHT has
// them), and the provider records nodes hold. Distances use the ids' first 64 bits, plenty to order
// a network of millions.
import type { KadKey } from '../../p2p/index.js';
import type { Rng } from '../rng.js';

export class SimDhtNetwork {
  readonly keys: KadKey[];
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  /** Each node's routing table: peer indices. */
  readonly tables: Int32Array[];
  /** Provider records: key name → the nodes holding a record for it. */
  readonly records = new Map<string, Set<number>>();

  constructor(
    readonly size: number,
    readonly k: number,
    rng: Rng,
  ) {
    this.keys = Array.from({ length: size }, () => randomKey(rng));
    this.hi = Uint32Array.from(this.keys, (key) => word(key, 0));
    this.lo = Uint32Array.from(this.keys, (key) => word(key, 4));
    this.tables = Array.from({ length: size }, (_, i) => this.buildTable(i, rng));
  }

  private buildTable(self: number, rng: Rng): Int32Array {
    const counts = new Uint8Array(65);
    const out: number[] = [];
    for (const j of rng.shuffled(Array.from({ length: this.size }, (_, n) => n))) {
      if (j === self) continue;
      const b = sharedPrefix(this.hi[self]!, this.lo[self]!, this.hi[j]!, this.lo[j]!);
      if (counts[b]! >= this.k) continue;
      counts[b]!++;
      out.push(j);
    }
    return Int32Array.from(out);
  }

  /** The `n` peers in `node`'s table closest to the target (what a FIND_NODE / GET_PROVIDERS answer names). */
  closestKnown(node: number, th: number, tl: number, n: number): number[] {
    return nearest(this.tables[node]!, this.hi, this.lo, th, tl, n);
  }

  addRecord(key: string, holder: number): void {
    let set = this.records.get(key);
    if (!set) this.records.set(key, (set = new Set()));
    set.add(holder);
  }
}

/** The `n` of `ids` closest to (th, tl), nearest first: an insertion into a short sorted list, not a sort of all. */
export function nearest(ids: ArrayLike<number>, hi: Uint32Array, lo: Uint32Array, th: number, tl: number, n: number): number[] {
  const best: number[] = [];
  const dh: number[] = [];
  const dl: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const h = (hi[id]! ^ th) >>> 0;
    const l = (lo[id]! ^ tl) >>> 0;
    if (best.length === n && (h > dh[n - 1]! || (h === dh[n - 1]! && l >= dl[n - 1]!))) continue;
    let at = best.length === n ? n - 1 : best.length;
    while (at > 0 && (dh[at - 1]! > h || (dh[at - 1]! === h && dl[at - 1]! > l))) {
      best[at] = best[at - 1]!;
      dh[at] = dh[at - 1]!;
      dl[at] = dl[at - 1]!;
      at--;
    }
    best[at] = id;
    dh[at] = h;
    dl[at] = l;
  }
  return best;
}

export function word(key: KadKey, at: number): number {
  return ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0;
}

export function randomKey(rng: Rng): KadKey {
  const key = new Uint8Array(32);
  const view = new DataView(key.buffer);
  for (let i = 0; i < 8; i++) view.setUint32(i * 4, rng.u32());
  return key;
}

function sharedPrefix(ah: number, al: number, bh: number, bl: number): number {
  const h = (ah ^ bh) >>> 0;
  if (h !== 0) return Math.clz32(h);
  return 32 + Math.clz32((al ^ bl) >>> 0);
}
