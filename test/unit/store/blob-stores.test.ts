import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { FsBlobStore } from '../../../src/store/fs-blob-store.js';
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js';
import { TrackedBlobStore } from '../../../src/store/tracked-blob-store.js';
import { InsufficientStorageError } from '../../../src/store/errors.js';
import { failureOf } from '../../../src/oci/failure.js';
import { describeBlobStore } from './blob-store.conformance.js';

const dirs: string[] = [];
async function fsStore(): Promise<FsBlobStore> {
  const dir = await mkdtemp(join(tmpdir(), 'layerd-blobstore-'));
  dirs.push(dir);
  return new FsBlobStore(dir).init();
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describeBlobStore('filesystem', fsStore);
describeBlobStore('memory', async () => new MemoryBlobStore());
// The node's store: the usage-accounting wrapper passes the contract (its change stream too) as it stands.
describeBlobStore('tracked filesystem', async () => new TrackedBlobStore(await fsStore()).init());

describe('FsBlobStore specifics', () => {
  it('refuses a writer for more bytes than the disk has free, before creating anything', async () => {
    const store = await fsStore();
    const err = await store.createWriter({ expectedSize: Number.MAX_SAFE_INTEGER }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientStorageError);
    expect(failureOf(err)).toBe('no-space');
    expect(await readdir(join(store.root, 'uploads'))).toEqual([]);
    // A size that fits is taken.
    const writer = await store.createWriter({ expectedSize: 1 });
    await writer.abort();
  });

  it('resumes a writer after a restart and re-hashes the bytes at commit', async () => {
    const first = await fsStore();
    const writer = await first.createWriter();
    await writer.append(Readable.from([Buffer.from('hello ')]));
    // A new store on the same directory: the process restarted, the running hash is gone.
    const second = new FsBlobStore(first.root);
    const resumed = await second.resumeWriter(writer.id);
    expect(resumed?.size()).toBe(6);
    await resumed!.append(Readable.from([Buffer.from('world')]), { at: 6 });
    const digest = digestOf(Buffer.from('hello world'));
    await resumed!.commit(digest);
    expect(await second.stat(digest)).toEqual({ digest, size: 11 });
  });

  it('lays blobs out by algorithm and hex prefix, and leaves no upload data after commit', async () => {
    const store = await fsStore();
    const digest = digestOf(Buffer.from('x'));
    await store.put(Readable.from([Buffer.from('x')]), digest);
    const hex = digest.slice('sha256:'.length);
    expect(store.blobPath(digest)).toBe(join(store.root, 'blobs', 'sha256', hex.slice(0, 2), hex));
    expect(await readdir(join(store.root, 'uploads'))).toEqual([]);
  });
});
