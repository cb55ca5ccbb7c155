// What is announced to content routing follows the store's changes and, with private repositories, the
// sharing policy's. Over the in-memory stores and router.
import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { Announcer } from '../../../../src/distribution/sharing/announcer.js';
import { BlobSharing } from '../../../../src/distribution/sharing/blob-sharing.js';
import { RepositoryVisibility } from '../../../../src/distribution/sharing/repository-visibility.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import type { RepositoryName } from '../../../../src/oci/reference.js';
import { MemoryContentRouter, MemoryRoutingNetwork } from '../../../../src/p2p/content-router.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';

const bytes = Buffer.from('a layer');
const digest = digestOf(bytes);
const SELF = 'self';

/** Every step over the in-memory parts is a microtask: one turn of the event loop runs them all out. */
const settled = () => new Promise((r) => setImmediate(r));

function setup(privateRepos: string[] = []) {
  const network = new MemoryRoutingNetwork();
  const router = new MemoryContentRouter(SELF, network);
  const blobs = new MemoryBlobStore();
  const repos = new MemoryRepositoryStore();
  const sharing = new BlobSharing({ visibility: new RepositoryVisibility(privateRepos), sharePrivate: false, stores: async () => [repos] });
  sharing.follow(repos);
  const announcer = new Announcer(blobs, router, sharing);
  const announced = (d: Digest) => network.records.get(d)?.has(SELF) ?? false;
  return { network, router, blobs, repos, announcer, announced };
}

describe('Announcer', () => {
  it('announces every commit and withdraws every delete when nothing is private', async () => {
    const { blobs, announced } = setup();
    await blobs.put(Readable.from([bytes]), digest);
    await vi.waitFor(() => expect(announced(digest)).toBe(true));
    await blobs.delete(digest);
    await vi.waitFor(() => expect(announced(digest)).toBe(false));
  });

  it('with private repositories, announces a blob once a public repository links it and withdraws it when that link goes', async () => {
    const { blobs, repos, announced } = setup(['secret']);
    await blobs.put(Readable.from([bytes]), digest);
    await repos.linkBlob('secret/app' as RepositoryName, digest);
    await repos.linkBlob('team/app' as RepositoryName, digest);
    await vi.waitFor(() => expect(announced(digest)).toBe(true));
    await repos.unlinkBlob('team/app' as RepositoryName, digest);
    await vi.waitFor(() => expect(announced(digest)).toBe(false));
  });

  it('does not announce a public link to a blob no longer held', async () => {
    const { repos, announced } = setup(['secret']);
    await repos.linkBlob('team/app' as RepositoryName, digest);
    await settled();
    expect(announced(digest)).toBe(false);
  });

  it('announces nothing once stopped', async () => {
    const { blobs, announcer, announced, network } = setup();
    announcer.stop();
    await blobs.put(Readable.from([bytes]), digest);
    await settled();
    expect(announced(digest)).toBe(false);
    expect(network.records.size).toBe(0);
  });

  it('announces a fresh copy only after the withdrawal of the deleted one has finished', async () => {
    const network = new MemoryRoutingNetwork();
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    // A router whose withdrawal is slow (a DHT's cancelReprovide): the order of calls is what matters.
    const calls: string[] = [];
    const router = new (class extends MemoryContentRouter {
      override async withdraw(d: Digest): Promise<void> {
        calls.push('withdraw');
        await gate;
        await super.withdraw(d);
      }
      override async provide(d: Digest): Promise<void> {
        calls.push('provide');
        await super.provide(d);
      }
    })(SELF, network);
    const blobs = new MemoryBlobStore();
    new Announcer(blobs, router);
    await blobs.put(Readable.from([bytes]), digest);
    await blobs.delete(digest);
    await blobs.put(Readable.from([bytes]), digest);
    await settled();
    expect(calls).toEqual(['provide', 'withdraw']); // the new provide waits
    finish();
    await vi.waitFor(() => expect(calls).toEqual(['provide', 'withdraw', 'provide']));
    expect(network.records.get(digest)?.has(SELF)).toBe(true);
  });
});
