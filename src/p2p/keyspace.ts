// Where a key sits in the Kademlia keyspace. kad-dht routes a CID by SHA-256 of its multihash bytes, so
// a blob's place is fixed by its digest: its position (the first 32 bits as a fraction), its region (a
// prefix of those bits), and which peers are closest to it (XOR distance between the 256-bit keys).
import { createHash } from 'node:crypto';
import type { Digest } from '../oci/index.js';
import { digestToCid } from './cid.js';

/** A 256-bit kad key. */
export type KadKey = Uint8Array;

export function kadKeyOf(bytes: Uint8Array): KadKey {
  return createHash('sha256').update(bytes).digest();
}

/** The kad key kad-dht routes a blob's provider records by. */
export function blobKadKey(digest: Digest): KadKey {
  return kadKeyOf(digestToCid(digest).multihash.bytes);
}

/** The key's place in [0, 1): uniform for hashed keys, and keys of one region are contiguous. */
export function keyPosition(key: KadKey): number {
  return top32(key) / 2 ** 32;
}

/** The key's region: its first `bits` bits (0 ≤ bits ≤ 24), regions 0 … 2^bits − 1 in keyspace order. */
export function keyRegion(key: KadKey, bits: number): number {
  if (bits <= 0) return 0;
  return Math.floor(top32(key) / 2 ** (32 - bits));
}

/**
 * Prefix bits that leave about `perRegion` peers (or more) in each region of a `peers`-node network:
 * the closest `perRegion` peers to any key of a region then all lie in or next to it, so one walk
 * toward the region finds them for every key.
 */
export function regionBitsFor(peers: number, perRegion: number): number {
  if (peers <= perRegion) return 0;
  return Math.min(24, Math.floor(Math.log2(peers / perRegion)));
}

/**
 * Region bits for the provide sweep: regions of k/2 to k peers. A walk finds the k peers closest to its
 * target, and every peer of a prefix region is closer to any key of it than every peer outside, so a
 * walk toward one key of a region of at most k peers finds them all: each key of the region then has
 * its true closest peers among those found (with at least `replication` peers in the region).
 */
export function sweepRegionBits(peers: number, k: number): number {
  return regionBitsFor(peers, Math.max(1, Math.floor(k / 2)));
}

/**
 * How many peers the network holds, from one walk: the k-th closest of N random ids lies about k/N of
 * the keyspace from any target. `closest` are the walk's peers (nearest first or not); fewer than k
 * means the walk met every peer there is (this node not counted). Rough (±~25% for k = 20): callers
 * take a median of several.
 */
export function estimateNetworkSize(target: KadKey, closest: readonly KadKey[], k: number): number {
  if (closest.length < k) return closest.length + 1;
  let far = 0;
  for (const key of closest) far = Math.max(far, distanceFraction(target, key));
  return far > 0 ? Math.round(k / far) : Number.MAX_SAFE_INTEGER;
}

/** The XOR distance as a fraction of the keyspace, from its first 56 bits. */
function distanceFraction(a: KadKey, b: KadKey): number {
  let f = 0;
  for (let i = 0; i < 7; i++) f = f * 256 + (a[i]! ^ b[i]!);
  return f / 2 ** 56;
}

/**
 * Whether a walk toward `target` that found `found` (its k closest: every peer nearer than the farthest
 * of them; `complete` when it met fewer than k, i.e. every peer) surely holds the `n` closest peers to
 * `key`. In the XOR metric d(target, p) = d(target, key) XOR d(key, p); every peer nearer to `key` than
 * its n-th found one lies within d(target, key) | (2^b − 1) of the target (b the bit length of that
 * distance), so when that is below the farthest found, none of them was missed.
 */
export function walkCovers(target: KadKey, found: readonly KadKey[], complete: boolean, key: KadKey, n: number): boolean {
  if (complete) return true;
  if (found.length < n) return false;
  const radius = found.reduce((r, p) => (distance(target, p) > r ? distance(target, p) : r), 0n);
  const nth = found.map((p) => distance(key, p)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[n - 1]!;
  const spread = nth === 0n ? 0n : (1n << BigInt((nth - 1n).toString(2).length)) - 1n;
  return (distance(target, key) | spread) < radius;
}

function distance(a: KadKey, b: KadKey): bigint {
  let d = 0n;
  for (let i = 0; i < a.length; i++) d = (d << 8n) | BigInt(a[i]! ^ b[i]!);
  return d;
}

/** A key in the middle of a region: the target of the region's walk. */
export function regionTarget(region: number, bits: number): KadKey {
  const key = new Uint8Array(32);
  const first = bits <= 0 ? 0x80000000 : (region * 2 ** (32 - bits) + 2 ** (31 - bits)) >>> 0;
  new DataView(key.buffer).setUint32(0, first);
  return key;
}

/** Negative when `a` is closer to `target` than `b` (XOR metric). */
export function compareDistance(target: KadKey, a: KadKey, b: KadKey): number {
  for (let i = 0; i < target.length; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

/** The `n` of `peers` closest to `target`. */
export function closestTo<T extends { key: KadKey }>(target: KadKey, peers: readonly T[], n: number): T[] {
  return [...peers].sort((a, b) => compareDistance(target, a.key, b.key)).slice(0, n);
}

function top32(key: KadKey): number {
  return ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
}
