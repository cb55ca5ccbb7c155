// The bytes of a blob being written that landed beyond its contiguous prefix: a striped download's chunks
// arrive out of order, each written at its offset as it comes. The map says which extents are on file, so
// a reader may serve them at once and the writer hashes each once the prefix reaches it (the digest is
// still taken over the blob in order). Pure: the writer holds the prefix and passes it in.

/** Bytes [start, end) on file. */
export interface Extent {
  start: number;
  end: number;
}

export class LandedMap {
  /** Sorted, disjoint, none touching another (adjacent ones are merged). */
  private extents: Extent[] = [];

  get empty(): boolean {
    return this.extents.length === 0;
  }

  /**
   * Why `length` bytes at `start` may not land, or undefined when they may: they must lie past the prefix,
   * overlap nothing landed, and (with `limit`, the blob's size) end inside the blob. A region written twice
   * could hold two sources' bytes where the hash saw one.
   */
  refuse(prefix: number, start: number, length: number, limit?: number): string | undefined {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0) return `bad region ${start}+${length}`;
    const end = start + length;
    if (start < prefix) return `bytes ${start}-${end - 1} overlap the ${prefix} bytes written in order`;
    if (limit !== undefined && end > limit) return `bytes ${start}-${end - 1} run past the blob's ${limit} bytes`;
    const hit = this.extents.find((e) => e.start < end && start < e.end);
    return hit ? `bytes ${start}-${end - 1} overlap bytes ${hit.start}-${hit.end - 1} landed already` : undefined;
  }

  /** Records landed bytes (refuse() said they may land). */
  add(start: number, length: number): void {
    if (length === 0) return;
    let merged: Extent = { start, end: start + length };
    const kept: Extent[] = [];
    for (const e of this.extents) {
      if (e.end === merged.start || e.start === merged.end) merged = { start: Math.min(e.start, merged.start), end: Math.max(e.end, merged.end) };
      else kept.push(e);
    }
    kept.push(merged);
    this.extents = kept.sort((a, b) => a.start - b.start);
  }

  /** Bytes readable in one run from `position`: to the prefix's end, or to its extent's end; 0 when it has not landed. */
  runFrom(prefix: number, position: number): number {
    if (position < prefix) return prefix - position;
    const e = this.extents.find((x) => x.start <= position && position < x.end);
    return e ? e.end - position : 0;
  }

  /** The extent that begins at `prefix`, taken out of the map: the prefix is to grow over it. */
  takeAt(prefix: number): Extent | undefined {
    const i = this.extents.findIndex((e) => e.start === prefix);
    if (i < 0) return undefined;
    return this.extents.splice(i, 1)[0];
  }

  clear(): void {
    this.extents = [];
  }
}
