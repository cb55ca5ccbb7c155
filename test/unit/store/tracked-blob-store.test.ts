// The usage index follows the store's change stream: whoever commits or deletes, the index agrees with
// the store, and a listener subscribed through the tracked store (the quota check) reads it current.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js';
import { TrackedBlobStore } from '../../../src/store/tracked-blob-store.js';

const bytes = Buffer.from('some layer');
const digest = digestOf(bytes);

describe('TrackedBlobStore', () => {
  it('indexes commits and deletes made beneath it too, at the time of its clock', async () => {
    const inner = new MemoryBlobStore();
    const tracked = await new TrackedBlobStore(inner, () => 42).init();
    await inner.put(Readable.from([bytes]), digest);
    expect(tracked.index.get(digest)).toMatchObject({ digest, size: bytes.length, lastUse: 42 });
    expect(await inner.delete(digest)).toBe(true);
    expect(tracked.index.get(digest)).toBeUndefined();
    expect(tracked.index.count).toBe(0);
  });

  it('has the index updated before a listener subscribed through it is told', async () => {
    const tracked = await new TrackedBlobStore(new MemoryBlobStore()).init();
    const seen: Array<{ kind: string; bytes: number }> = [];
    tracked.subscribe((change) => seen.push({ kind: change.kind, bytes: tracked.index.bytes }));
    await tracked.put(Readable.from([bytes]), digest);
    await tracked.delete(digest);
    expect(seen).toEqual([
      { kind: 'committed', bytes: bytes.length },
      { kind: 'deleted', bytes: 0 },
    ]);
  });

  it('holds a commit in its guard, so a sweep begun meanwhile spares the digest', async () => {
    const tracked = await new TrackedBlobStore(new MemoryBlobStore()).init();
    const writer = await tracked.createWriter();
    await writer.append(Readable.from([bytes]));
    const sweep = tracked.guard.begin();
    expect(sweep.spares(digest)).toBe(false);
    await writer.commit(digest);
    expect(sweep.spares(digest)).toBe(true); // marked by the commit
    sweep.end();
  });
});
