// Which held blobs peers may have: the links of public repositories decide, and link changes announce
// or withdraw. Over the in-memory repository stores.
import { describe, expect, it, vi } from 'vitest';
import { BlobSharing } from '../../../../src/distribution/sharing/blob-sharing.js';
import { RepositoryVisibility } from '../../../../src/distribution/sharing/repository-visibility.js';
import { digestOf } from '../../../../src/oci/digest.js';
import type { RepositoryName } from '../../../../src/oci/reference.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';

const repo = (n: string) => n as RepositoryName;
const D1 = digestOf(Buffer.from('one'));
const D2 = digestOf(Buffer.from('two'));

function setup(opts: { prefixes?: string[]; sharePrivate?: boolean } = {}) {
  const pushed = new MemoryRepositoryStore();
  const cache = new MemoryRepositoryStore();
  const sharing = new BlobSharing({
    visibility: new RepositoryVisibility(opts.prefixes ?? ['secret']),
    sharePrivate: opts.sharePrivate ?? false,
    stores: async () => [pushed, cache],
  });
  const events: string[] = [];
  sharing.subscribe((change) => events.push(`${change.kind} ${change.digest}`));
  sharing.follow(pushed);
  sharing.follow(cache);
  return { sharing, pushed, cache, events };
}

describe('blob sharing', () => {
  it('offers a blob linked by a public repository, not one linked only by private ones or by none', async () => {
    const { sharing, pushed } = setup();
    expect(sharing.active).toBe(true);
    expect(await sharing.shareable(D1)).toBe(false); // linked by nobody yet (a push commits before it links)
    await pushed.linkBlob(repo('secret/app'), D1);
    expect(await sharing.shareable(D1)).toBe(false);
    await pushed.linkBlob(repo('team/app'), D2);
    expect(await sharing.shareable(D2)).toBe(true);
  });

  it('counts a public link in any store, and a manifest as a link', async () => {
    const { sharing, pushed, cache } = setup();
    await pushed.linkBlob(repo('secret/app'), D1);
    expect(await sharing.shareable(D1)).toBe(false);
    await cache.linkBlob(repo('library/alpine'), D1); // the same layer, fetched for a public image
    expect(await sharing.shareable(D1)).toBe(true);
    await pushed.putManifest(repo('team/app'), { digest: D2, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 3 });
    expect(await sharing.shareable(D2)).toBe(true);
  });

  it('announces on a public link only, and withdraws when the last public link goes', async () => {
    const { sharing, pushed, events } = setup();
    await pushed.linkBlob(repo('secret/app'), D1);
    expect(events).toEqual([]);
    await pushed.linkBlob(repo('team/app'), D1);
    expect(events).toEqual([`shared ${D1}`]);
    expect(await sharing.shareable(D1)).toBe(true); // memoised now
    await pushed.unlinkBlob(repo('team/app'), D1);
    expect(await sharing.shareable(D1)).toBe(false); // the memo was dropped with the link
    // The re-check after a removed link runs after the store's change (a walk of the repositories).
    await vi.waitFor(() => expect(events).toEqual([`shared ${D1}`, `unshared ${D1}`]));
  });

  it('keeps a blob offered while another public repository still links it', async () => {
    const { sharing, pushed, cache, events } = setup();
    await pushed.linkBlob(repo('team/a'), D1);
    await cache.linkBlob(repo('team/b'), D1);
    await pushed.unlinkBlob(repo('team/a'), D1);
    // The re-check started by the unlink memoised this same answer, and decided before this await returns.
    expect(await sharing.shareable(D1)).toBe(true);
    expect(events).toEqual([`shared ${D1}`, `shared ${D1}`]);
  });

  it('stops telling of a store it no longer follows, and of nothing once unsubscribed', async () => {
    const pushed = new MemoryRepositoryStore();
    const sharing = new BlobSharing({ visibility: new RepositoryVisibility(['secret']), sharePrivate: false, stores: async () => [pushed] });
    const first: string[] = [];
    const second: string[] = [];
    const unsubscribe = sharing.subscribe((change) => first.push(`${change.kind} ${change.digest}`));
    sharing.subscribe((change) => second.push(`${change.kind} ${change.digest}`));
    const unfollow = sharing.follow(pushed);
    await pushed.linkBlob(repo('team/a'), D1);
    unsubscribe();
    await pushed.linkBlob(repo('team/b'), D1);
    unfollow();
    await pushed.linkBlob(repo('team/c'), D2);
    expect(first).toEqual([`shared ${D1}`]);
    expect(second).toEqual([`shared ${D1}`, `shared ${D1}`]);
  });

  it('lists what public repositories link, for announcing a whole store at once', async () => {
    const { sharing, pushed, cache } = setup();
    await pushed.linkBlob(repo('secret/app'), D1);
    await cache.linkBlob(repo('team/app'), D2);
    expect([...(await sharing.publicDigests())]).toEqual([D2]);
  });

  it('offers everything with --share-private-blobs or with no private repositories', async () => {
    for (const opts of [{ sharePrivate: true }, { prefixes: [] }]) {
      const { sharing, pushed, events } = setup(opts);
      expect(sharing.active).toBe(false);
      await pushed.linkBlob(repo('secret/app'), D1);
      expect(await sharing.shareable(D1)).toBe(true);
      expect(events).toEqual([]); // the store announces every commit itself then
    }
  });
});
