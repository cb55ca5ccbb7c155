// Writers taking a striped download's chunks out of order (writeAt): every store the node may use.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { FsBlobStore } from '../../../src/store/fs-blob-store.js';
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js';
import { TrackedBlobStore } from '../../../src/store/tracked-blob-store.js';
import { DigestMismatchError, LandingRefusedError } from '../../../src/store/errors.js';
import type { BlobStore, BlobWriter } from '../../../src/store/blob-store.js';
import type { Digest } from '../../../src/oci/index.js';

const dirs: string[] = [];
async function fsStore(): Promise<FsBlobStore> {
  const dir = await mkdtemp(join(tmpdir(), 'layerd-ooo-'));
  dirs.push(dir);
  return new FsBlobStore(dir).init();
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<BlobStore>]> = [
  ['filesystem', fsStore],
  ['memory', async () => new MemoryBlobStore()],
  ['tracked filesystem', async () => new TrackedBlobStore(await fsStore()).init()],
];

/** `blob` cut in chunks of `n` bytes. */
function chunks(blob: Buffer, n: number): Array<{ at: number; bytes: Buffer }> {
  const out: Array<{ at: number; bytes: Buffer }> = [];
  for (let at = 0; at < blob.length; at += n) out.push({ at, bytes: blob.subarray(at, at + n) });
  return out;
}

async function readAll(store: BlobStore, digest: Digest): Promise<Buffer> {
  const { stream } = await store.open(digest);
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

for (const [name, make] of stores) {
  describe(`${name}: bytes landing out of order`, () => {
    it('counts and hashes chunks as the prefix reaches them, whatever order they land in', async () => {
      const store = await make();
      const blob = randomBytes(5 * 4096 + 17);
      const digest = digestOf(blob);
      const w = (await store.createWriter()) as Required<BlobWriter>;
      const [c0, c1, c2, c3, c4, c5] = chunks(blob, 4096);
      expect(await w.writeAt(c3!.at, [c3!.bytes], blob.length)).toBe(0);
      expect(await w.writeAt(c5!.at, [c5!.bytes.subarray(0, 7), c5!.bytes.subarray(7)], blob.length)).toBe(0);
      expect(w.landedFrom(c3!.at + 10)).toBe(4096 - 10);
      expect(w.landedFrom(c1!.at)).toBe(0);
      // Landed ahead: readable at once.
      const reader = await w.openReader();
      expect(Buffer.from(await reader.read(c5!.at, 17))).toEqual(c5!.bytes);
      await reader.close();
      expect(await w.writeAt(c0!.at, [c0!.bytes], blob.length)).toBe(4096);
      expect(await w.writeAt(c2!.at, [c2!.bytes], blob.length)).toBe(4096);
      expect(await w.writeAt(c1!.at, [c1!.bytes], blob.length)).toBe(4 * 4096);
      expect(w.landedFrom(0)).toBe(4 * 4096);
      expect(await w.writeAt(c4!.at, [c4!.bytes], blob.length)).toBe(blob.length);
      await w.commit(digest);
      expect(await readAll(store, digest)).toEqual(blob);
    });

    it('fails the whole blob when one chunk has wrong bytes', async () => {
      const store = await make();
      const blob = randomBytes(3 * 1024);
      const w = (await store.createWriter()) as Required<BlobWriter>;
      const [c0, c1, c2] = chunks(blob, 1024);
      const bad = Buffer.from(c1!.bytes);
      bad[5] = bad[5]! ^ 0xff;
      await w.writeAt(c2!.at, [c2!.bytes]);
      await w.writeAt(c1!.at, [bad]);
      await w.writeAt(c0!.at, [c0!.bytes]);
      expect(w.size()).toBe(blob.length);
      await expect(w.commit(digestOf(blob))).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await store.stat(digestOf(blob))).toBeUndefined();
      await w.abort();
    });

    it('refuses overlapping, repeated and out-of-range chunks, and a commit with a gap', async () => {
      const store = await make();
      const blob = randomBytes(4 * 1024);
      const w = (await store.createWriter()) as Required<BlobWriter>;
      const [c0, , c2, c3] = chunks(blob, 1024);
      await w.writeAt(c0!.at, [c0!.bytes], blob.length);
      await w.writeAt(c2!.at, [c2!.bytes], blob.length);
      await expect(w.writeAt(c0!.at, [c0!.bytes], blob.length)).rejects.toBeInstanceOf(LandingRefusedError);
      await expect(w.writeAt(c2!.at, [c2!.bytes], blob.length)).rejects.toBeInstanceOf(LandingRefusedError);
      await expect(w.writeAt(c2!.at - 10, [Buffer.alloc(20)], blob.length)).rejects.toBeInstanceOf(LandingRefusedError);
      await expect(w.writeAt(c3!.at, [c3!.bytes, Buffer.alloc(1)], blob.length)).rejects.toBeInstanceOf(LandingRefusedError);
      await expect(w.writeAt(-1, [Buffer.alloc(1)], blob.length)).rejects.toBeInstanceOf(LandingRefusedError);
      await w.writeAt(c3!.at, [c3!.bytes], blob.length);
      // Bytes 1024-2047 never came: no commit, whatever the digest.
      await expect(w.commit(digestOf(blob))).rejects.toBeInstanceOf(LandingRefusedError);
      await w.abort();
    });

    it('an append after chunks landed ahead drops them and goes on in order', async () => {
      const store = await make();
      const blob = randomBytes(4 * 1024);
      const digest = digestOf(blob);
      const w = (await store.createWriter()) as Required<BlobWriter>;
      const [c0, , c2] = chunks(blob, 1024);
      await w.writeAt(c0!.at, [c0!.bytes]);
      await w.writeAt(c2!.at, [c2!.bytes]);
      await w.append(Readable.from([blob.subarray(1024)]), { at: 1024 });
      expect(w.landedFrom(3000)).toBe(blob.length - 3000);
      await w.commit(digest);
      expect(await readAll(store, digest)).toEqual(blob);
    });
  });
}
