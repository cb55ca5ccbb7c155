// A mirror download for a private repository stays this node's own: no claim at the blob's coordinator
// (so no peer is told to follow it), no announcement while it runs, no relay of its bytes to peers. A
// public download of the same kind does all three. Over in-memory peers and the seed's in-memory twin,
// whose body the test holds open, so the download is caught mid-way.
import { afterEach, describe, expect, it } from 'vitest';
import { Mirror, type MirrorOptions } from '../../../../src/distribution/pull/mirror.js';
import { PeerFetcher } from '../../../../src/distribution/peers/peer-fetcher.js';
import { PeerScores } from '../../../../src/distribution/peers/peer-scores.js';
import { RepositoryVisibility } from '../../../../src/distribution/sharing/repository-visibility.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import type { RepositoryName } from '../../../../src/oci/reference.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';
import { MemorySeedRegistry } from '../../../../src/seed/memory-seed-registry.js';
import { FakePeerNetwork, blobOf, readAll } from '../../../helpers/fake-peers.js';

const SEED = 'seed.test:5000';
const quiet = { info() {}, warn() {}, debug() {} } as unknown as MirrorOptions['log'];

let net: FakePeerNetwork;
afterEach(() => net?.close());

/** A seed with the blob in `repo` that sends its first half at once and the rest when `finish()` is called. */
function heldSeed(repo: string, blob: Buffer) {
  const registry = new MemorySeedRegistry(SEED);
  const digest = registry.putBlob(repo, blob);
  const body = registry.holdBody(digest);
  body.sendTo(blob.length / 2);
  return { registry, finish: () => body.finish() };
}

async function downloadFor(repo: string) {
  const content = blobOf(256 * 1024);
  const digest = digestOf(content);
  net = new FakePeerNetwork();
  await net.addPeer('a');
  const seed = heldSeed(repo, content);
  const visibility = new RepositoryVisibility(['secret']);
  const mirror = new Mirror({
    blobs: new MemoryBlobStore(),
    seeds: new Map([[SEED, seed.registry]]),
    cacheFor: async () => new MemoryRepositoryStore(),
    tagTtlMs: 60_000,
    serveStale: true,
    log: quiet,
    peers: new PeerFetcher(net, new PeerScores(), { lookupTimeoutMs: 200 }),
    offersToPeers: (name, normalized) => !visibility.isPrivate(name, normalized),
  });
  const answer = await mirror.blob(SEED, repo as RepositoryName, digest, false);
  // Mid-download: what would a peer asking now get?
  const relayed = await mirror.relay(digest, 1_000);
  const announced = [...(net.routing.records.get(digest) ?? [])];
  seed.finish();
  const bytes = await readAll(await answer.open());
  expect(bytes.equals(content)).toBe(true);
  return { digest, relayed, announced, claims: net.claims };
}

describe('mirror downloads and peers', () => {
  it('a private repository: no claim, no announcement, no relay', async () => {
    const d = await downloadFor('secret/app');
    expect(d.claims).toEqual([]);
    expect(d.announced).toEqual([]);
    expect(d.relayed).toBeUndefined();
  });

  it('a public repository: claimed, announced while it runs, relayed', async () => {
    const d = await downloadFor('team/app');
    expect(d.claims).toEqual([{ digest: d.digest as Digest, failed: [] }]);
    expect(d.announced).toEqual(['self']);
    expect(d.relayed === 'pending' ? 'pending' : d.relayed?.size).toBe(256 * 1024);
  });
});

describe('joining a download running for another repository', () => {
  it('follows it only once the seed says this repository has the blob; then both repositories link it', async () => {
    const content = blobOf(256 * 1024);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    // The seed has the blob in secret/app and team/app, not in team/other; the GET's body is held open.
    const seed = new MemorySeedRegistry(SEED);
    for (const repo of ['secret/app', 'team/app']) seed.putBlob(repo, content);
    const body = seed.holdBody(digest);
    body.sendTo(content.length / 2);
    const cache = new MemoryRepositoryStore();
    const mirror = new Mirror({ blobs: new MemoryBlobStore(), seeds: new Map([[SEED, seed]]), cacheFor: async () => cache, tagTtlMs: 60_000, serveStale: true, log: quiet });
    const first = await mirror.blob(SEED, 'secret/app' as RepositoryName, digest, false);
    // Mid-download: a repository the seed does not have it in gets nothing of it.
    await expect(mirror.blob(SEED, 'team/other' as RepositoryName, digest, false)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    const joined = await mirror.blob(SEED, 'team/app' as RepositoryName, digest, false);
    expect(seed.calls).toEqual([`openBlob secret/app ${digest}`, `statBlob team/other ${digest}`, `statBlob team/app ${digest}`]);
    body.finish();
    for (const answer of [first, joined]) expect((await readAll(await answer.open())).equals(content)).toBe(true);
    await first.stored;
    await expect.poll(async () => (await cache.hasBlob('team/app' as RepositoryName, digest)) && (await cache.hasBlob('secret/app' as RepositoryName, digest))).toBe(true);
    expect(await cache.hasBlob('team/other' as RepositoryName, digest)).toBe(false);
  });
});
