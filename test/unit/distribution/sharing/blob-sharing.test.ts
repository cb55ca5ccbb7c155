// Which held blobs peers may have: the links of public repositories decide, and link changes announce
// or withdraw. Over the in-memory repository stores.
import { describe, expect, it } from 'vitest';
import { BlobSharing } from '../../../../src/distribution/sharing/blob-sharing.js';
import { RepositoryVisibility } from '../../../../src/distribution/sharing/repository-visibility.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
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
  sharing.onChange({ shared: (d: Digest) => events.push(`shared ${d}`), unshared: (d: Digest) => events.push(`unshared ${d}`) });
  return { sharing, pushed: sharing.watch(pushed), cache: sharing.watch(cache), events };
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
    expect(events).toEqual([`shared ${D1}`, `unshared ${D1}`]);
    expect(await sharing.shareable(D1)).toBe(false); // the memo was dropped with the link
  });

  it('keeps a blob offered while another public repository still links it', async () => {
    const { pushed, cache, events } = setup();
    await pushed.linkBlob(repo('team/a'), D1);
    await cache.linkBlob(repo('team/b'), D1);
    await pushed.unlinkBlob(repo('team/a'), D1);
    expect(events).toEqual([`shared ${D1}`, `shared ${D1}`]);
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
