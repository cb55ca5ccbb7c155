// A mirror download for a private repository stays this node's own: no claim at the blob's coordinator
// (so no peer is told to follow it), no announcement while it runs, no relay of its bytes to peers. A
// public download of the same kind does all three. Over in-memory peers and a seed whose body the test
// holds open, so the download is caught mid-way.
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Mirror, type MirrorOptions } from '../../../src/distribution/mirror.js';
import { PeerFetcher } from '../../../src/distribution/peer-fetcher.js';
import { PeerScores } from '../../../src/distribution/peer-scores.js';
import { RepositoryVisibility } from '../../../src/distribution/repository-visibility.js';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import type { RepositoryName } from '../../../src/oci/reference.js';
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../src/store/memory-repository-store.js';
import type { UpstreamRegistry } from '../../../src/upstream/registry-client.js';
import { FakePeerNetwork, blobOf, readAll } from '../../helpers/fake-peers.js';

const SEED = 'seed.test:5000';
const quiet = { info() {}, warn() {}, debug() {} } as unknown as MirrorOptions['log'];

let net: FakePeerNetwork;
afterEach(() => net?.close());

/** A seed that sends the first half of the blob at once and the rest when `finish()` is called. */
function heldSeed(blob: Buffer) {
  const body = new PassThrough();
  const registry = {
    name: SEED,
    async request(): Promise<IncomingMessage> {
      body.write(blob.subarray(0, blob.length / 2));
      return Object.assign(body, { statusCode: 200, headers: { 'content-length': String(blob.length) } }) as unknown as IncomingMessage;
    },
  };
  return { registry: registry as unknown as UpstreamRegistry, finish: () => body.end(blob.subarray(blob.length / 2)) };
}

async function downloadFor(repo: string) {
  const content = blobOf(256 * 1024);
  const digest = digestOf(content);
  net = new FakePeerNetwork();
  await net.addPeer('a');
  const seed = heldSeed(content);
  const visibility = new RepositoryVisibility(['secret']);
  const mirror = new Mirror({
    blobs: new MemoryBlobStore(),
    upstreams: new Map([[SEED, seed.registry]]),
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
    expect(d.relayed?.size).toBe(256 * 1024);
  });
});
