// Which blobs a node holds, how big, and in what order they were last used: the in-memory index that
// disk quota and eviction run on. It is rebuilt from the store at every start (sizes and last use from
// the files themselves), so after a crash it agrees with what is on disk by construction.
import type { Digest } from '../oci/index.js';

export interface UsageEntry {
  digest: Digest;
  size: number;
  /** Last read or write, ms since the epoch. */
  lastUse: number;
  /** Where the blob came from, when known this run (a push, a peer, a seed). */
  source?: string;
}

export class UsageIndex {
  /** Oldest use first: a Map keeps insertion order, and a use moves its entry to the end. */
  private readonly entries = new Map<Digest, UsageEntry>();
  private total = 0;

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.entries.size;
  }

  get(digest: Digest): UsageEntry | undefined {
    return this.entries.get(digest);
  }

  /** Adds a blob (or updates its size), as used at `lastUse`. */
  add(digest: Digest, size: number, lastUse: number, source?: string): void {
    const old = this.entries.get(digest);
    if (old) {
      this.total -= old.size;
      this.entries.delete(digest);
    }
    this.entries.set(digest, { digest, size, lastUse, source: source ?? old?.source });
    this.total += size;
  }

  /** Loads entries found on disk at start, in any order, with those already here: sorted once by last use, so the map's order is the use order. */
  load(entries: Iterable<UsageEntry>): void {
    const all = [...this.entries.values(), ...entries].sort((a, b) => a.lastUse - b.lastUse);
    this.entries.clear();
    this.total = 0;
    for (const e of all) this.add(e.digest, e.size, e.lastUse, e.source);
  }

  touch(digest: Digest, at: number): void {
    const e = this.entries.get(digest);
    if (!e) return;
    this.entries.delete(digest);
    e.lastUse = Math.max(e.lastUse, at);
    this.entries.set(digest, e);
  }

  remove(digest: Digest): UsageEntry | undefined {
    const e = this.entries.get(digest);
    if (!e) return undefined;
    this.entries.delete(digest);
    this.total -= e.size;
    return e;
  }

  /** Least recently used first. A snapshot: safe to remove entries while walking it. */
  leastRecentlyUsed(): UsageEntry[] {
    return [...this.entries.values()];
  }
}
