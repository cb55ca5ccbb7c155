// The contract every BlobStore implementation passes (the seam's one shared suite): run it with
// describeBlobStore(name, factory) from a *.test.ts file.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import type { BlobInfo, BlobStore } from '../../../src/store/blob-store.js';
import type { BlobChange } from '../../../src/store/change-stream.js';
import { BlobNotFoundError, DigestMismatchError, OffsetMismatchError } from '../../../src/store/errors.js';

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function source(...parts: string[]): Readable {
  return Readable.from(parts.map((p) => Buffer.from(p)));
}

/** A source that yields some bytes and then fails, as a client that disconnects mid-upload. */
function failingSource(first: string): AsyncIterable<Uint8Array> {
  return (async function* () {
    yield Buffer.from(first);
    throw Object.assign(new Error('client went away'), { code: 'ECONNRESET' });
  })();
}

export function describeBlobStore(name: string, create: () => Promise<BlobStore>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    const content = 'layer bytes '.repeat(1000);
    const digest = digestOf(Buffer.from(content));

    it('puts a blob under its digest and reads it back whole and by range', async () => {
      const store = await create();
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.put(source(content), digest)).toEqual({ digest, size: content.length });
      expect(await store.stat(digest)).toEqual({ digest, size: content.length });
      const whole = await store.open(digest);
      expect(whole.size).toBe(content.length);
      expect((await readAll(whole.stream)).toString()).toBe(content);
      const part = await store.open(digest, { start: 6, end: 10 });
      expect(part.size).toBe(content.length);
      expect((await readAll(part.stream)).toString()).toBe(content.slice(6, 11));
    });

    it('verifies sha512 digests too', async () => {
      const store = await create();
      const d512 = digestOf(Buffer.from(content), 'sha512');
      await store.put(source(content), d512);
      expect((await readAll((await store.open(d512)).stream)).toString()).toBe(content);
    });

    it('stores and serves an empty blob', async () => {
      const store = await create();
      const empty = digestOf(Buffer.alloc(0));
      await store.put(source(), empty);
      const blob = await store.open(empty);
      expect(blob.size).toBe(0);
      expect((await readAll(blob.stream)).length).toBe(0);
    });

    it('refuses content that does not match the digest and keeps nothing', async () => {
      const store = await create();
      await expect(store.put(source('other bytes'), digest)).rejects.toBeInstanceOf(DigestMismatchError);
      const writer = await store.createWriter();
      await writer.append(source('other bytes'));
      let verified = false;
      await expect(writer.commit(digest, { onVerified: () => (verified = true) })).rejects.toBeInstanceOf(DigestMismatchError);
      expect(verified).toBe(false);
      await writer.abort();
      expect(await store.stat(digest)).toBeUndefined();
      await expect(store.open(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
      for await (const info of store.list()) expect.unreachable(`unexpected blob ${info.digest}`);
    });

    it('makes written bytes visible only at commit, across several appends', async () => {
      const store = await create();
      const writer = await store.createWriter();
      expect(await writer.append(source(content.slice(0, 100)))).toBe(100);
      expect(await writer.append(source(content.slice(100)), { at: 100 })).toBe(content.length);
      expect(writer.size()).toBe(content.length);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.resumeWriter(writer.id)).toBeDefined();
      await writer.commit(digest);
      expect(await store.stat(digest)).toEqual({ digest, size: content.length });
      expect(await store.resumeWriter(writer.id)).toBeUndefined();
    });

    it('rejects an append at the wrong offset and leaves the writer as it was', async () => {
      const store = await create();
      const writer = await store.createWriter();
      await writer.append(source('abc'));
      await expect(writer.append(source("def"), { at: 5 })).rejects.toBeInstanceOf(OffsetMismatchError);
      expect(writer.size()).toBe(3);
      await writer.append(source("def"), { at: 3 });
      await writer.commit(digestOf(Buffer.from('abcdef')));
    });

    it('rolls a writer back to its last good size when a source fails part way', async () => {
      const store = await create();
      const writer = await store.createWriter();
      await writer.append(source('abc'));
      await expect(writer.append(failingSource('XYZ'))).rejects.toThrow(/went away/);
      expect(writer.size()).toBe(3);
      await writer.append(source('def'));
      const d = digestOf(Buffer.from('abcdef'));
      await writer.commit(d);
      expect((await readAll((await store.open(d)).stream)).toString()).toBe('abcdef');
    });

    it('with keepLanded, keeps what landed of a failed append (hash included) and goes on from there', async () => {
      const store = await create();
      const writer = await store.createWriter();
      await writer.append(source('abc'));
      const seen: number[] = [];
      await expect(writer.append(failingSource('def'), { keepLanded: true, onProgress: (n) => seen.push(n) })).rejects.toThrow(/went away/);
      expect(writer.size()).toBe(6);
      expect(seen.at(-1)).toBe(6);
      // Another failure with nothing landed changes nothing; then the rest comes from elsewhere.
      await expect(writer.append(failingSource(''), { keepLanded: true, at: 6 })).rejects.toThrow(/went away/);
      expect(writer.size()).toBe(6);
      await writer.append(source('ghi'), { at: 6, keepLanded: true });
      const reader = await writer.openReader();
      expect(Buffer.from(await reader.read(0, 9)).toString()).toBe('abcdefghi');
      await reader.close();
      const d = digestOf(Buffer.from('abcdefghi'));
      await writer.commit(d);
      expect((await readAll((await store.open(d)).stream)).toString()).toBe('abcdefghi');
    });

    it('reports progress and lets readers follow bytes already written, through the commit', async () => {
      const store = await create();
      const writer = await store.createWriter();
      const seen: number[] = [];
      await writer.append(source('abc', 'defg'), { onProgress: (n) => seen.push(n) });
      expect(seen.at(-1)).toBe(7); // a store may land several chunks in one write
      expect(seen.every((n, i) => i === 0 || n > seen[i - 1]!)).toBe(true);
      const reader = await writer.openReader();
      expect(Buffer.from(await reader.read(2, 4)).toString()).toBe('cdef');
      await writer.append(source('hij'));
      expect(Buffer.from(await reader.read(0, 10)).toString()).toBe('abcdefghij');
      const d = digestOf(Buffer.from('abcdefghij'));
      expect(await store.stat(d)).toBeUndefined();
      let verified = false;
      await writer.commit(d, { onVerified: () => (verified = true) });
      expect(Buffer.from(await reader.read(7, 3)).toString()).toBe('hij');
      await reader.close();
      expect(await store.stat(d)).toEqual({ digest: d, size: 10 });
      expect(verified).toBe(true);
    });

    it('drops an aborted writer', async () => {
      const store = await create();
      const writer = await store.createWriter();
      await writer.append(source(content));
      await writer.abort();
      expect(await store.resumeWriter(writer.id)).toBeUndefined();
      expect(await store.stat(digest)).toBeUndefined();
    });

    it('keeps one copy when the same blob is put twice, and deletes it', async () => {
      const store = await create();
      await store.put(source(content), digest);
      await store.put(source(content), digest);
      const listed: Digest[] = [];
      for await (const info of store.list()) listed.push(info.digest);
      expect(listed).toEqual([digest]);
      expect(await store.delete(digest)).toBe(true);
      expect(await store.delete(digest)).toBe(false);
      expect(await store.stat(digest)).toBeUndefined();
    });

    // What the usage index (and so collection and eviction) is built from at start: list() names every
    // committed blob with its size and nothing being written; a deleted blob can be committed again.
    it('lists committed blobs with their sizes, not bytes still being written, and takes a blob back after its delete', async () => {
      const store = await create();
      const other = Buffer.from('other blob');
      await store.put(source(content), digest);
      await store.put(Readable.from([other]), digestOf(other, 'sha512'));
      const pending = await store.createWriter();
      await pending.append(source('not yet'));
      const listed: Array<{ digest: Digest; size: number }> = [];
      for await (const info of store.list()) listed.push({ digest: info.digest, size: info.size });
      expect(listed.sort((a, b) => (a.digest < b.digest ? -1 : 1))).toEqual(
        [{ digest, size: content.length }, { digest: digestOf(other, 'sha512'), size: other.length }].sort((a, b) => (a.digest < b.digest ? -1 : 1)),
      );
      expect(await store.delete(digest)).toBe(true);
      const after: Digest[] = [];
      for await (const info of store.list()) after.push(info.digest);
      expect(after).toEqual([digestOf(other, 'sha512')]);
      await pending.commit(digestOf(Buffer.from('not yet')));
      await store.put(source(content), digest);
      expect(await store.stat(digest)).toEqual({ digest, size: content.length });
    });

    it('does not resume writers it never made', async () => {
      const store = await create();
      expect(await store.resumeWriter('00000000-0000-4000-8000-000000000000')).toBeUndefined();
      expect(await store.resumeWriter('../../etc')).toBeUndefined();
    });

    describeChangeStream(create);
  });
}

/** A change as one line, for comparing sequences. */
const line = (c: BlobChange) => (c.kind === 'committed' ? `committed ${c.digest} ${c.size}` : `deleted ${c.digest}`);

/** The store's change stream: what usage accounting, quota checks and announcing are built on. */
function describeChangeStream(create: () => Promise<BlobStore>): void {
  describe('change stream', () => {
    const a = Buffer.from('blob a');
    const b = Buffer.from('blob b');
    const da = digestOf(a);
    const db = digestOf(b, 'sha512');

    it('tells of each commit (put or writer) as it completes, when the blob is readable, and of each delete of a blob it held', async () => {
      const store = await create();
      const seen: string[] = [];
      const visible: Array<Promise<BlobInfo | undefined>> = [];
      // The call under way: a change is told before the call that made it returns.
      let during = 'nothing';
      store.subscribe((change) => {
        seen.push(`${line(change)} during ${during}`);
        visible.push(store.stat(change.digest));
      });
      during = 'put';
      await store.put(Readable.from([a]), da);
      during = 'nothing';
      const writer = await store.createWriter();
      await writer.append(Readable.from([b]));
      during = 'commit';
      await writer.commit(db);
      during = 'delete';
      expect(await store.delete(da)).toBe(true);
      during = 'nothing';
      expect(await store.delete(da)).toBe(false); // nothing there: no change
      expect(seen).toEqual([`committed ${da} ${a.length} during put`, `committed ${db} ${b.length} during commit`, `deleted ${da} during delete`]);
      // Told once the change was made: each blob committed was readable, the deleted one gone.
      expect(await Promise.all(visible)).toEqual([{ digest: da, size: a.length }, { digest: db, size: b.length }, undefined]);
    });

    it('tells nothing of a write that fails, is refused or is aborted', async () => {
      const store = await create();
      const seen: string[] = [];
      store.subscribe((change) => seen.push(line(change)));
      await expect(store.put(Readable.from([b]), da)).rejects.toBeInstanceOf(DigestMismatchError);
      const mismatched = await store.createWriter();
      await mismatched.append(Readable.from([b]));
      await expect(mismatched.commit(da)).rejects.toBeInstanceOf(DigestMismatchError);
      await mismatched.abort();
      const failed = await store.createWriter();
      await expect(failed.append(failingSource('part'))).rejects.toThrow(/went away/);
      await failed.abort();
      const aborted = await store.createWriter();
      await aborted.append(Readable.from([a]));
      await aborted.abort();
      expect(seen).toEqual([]);
    });

    it('tells listeners in the order they subscribed, changes in the order they happened, and none after unsubscribing', async () => {
      const store = await create();
      const seen: string[] = [];
      const stopFirst = store.subscribe((change) => seen.push(`first ${line(change)}`));
      const stopSecond = store.subscribe((change) => seen.push(`second ${line(change)}`));
      await store.put(Readable.from([a]), da);
      await store.put(Readable.from([b]), db);
      await store.delete(da);
      stopFirst();
      stopFirst(); // twice: harmless, and the other listener stays
      await store.delete(db);
      stopSecond();
      await store.put(Readable.from([a]), da);
      expect(seen).toEqual([
        `first committed ${da} ${a.length}`,
        `second committed ${da} ${a.length}`,
        `first committed ${db} ${b.length}`,
        `second committed ${db} ${b.length}`,
        `first deleted ${da}`,
        `second deleted ${da}`,
        `second deleted ${db}`,
      ]);
    });
  });
}
