// Blob resolution as the mirror runs it, over in-memory peers and the seed's in-memory twin: the local store first,
// then peers, then the seed; bytes from peers reach no client before they verify, and peers whose
// bytes did not verify are banned while the seed serves the blob.
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Source } from '../../../../src/distribution/answers.js';
import { Mirror, type MirrorOptions } from '../../../../src/distribution/pull/mirror.js';
import { PeerFetcher } from '../../../../src/distribution/peers/peer-fetcher.js';
import { PeerScores } from '../../../../src/distribution/peers/peer-scores.js';
import { SharedDownload, type DownloadSource } from '../../../../src/distribution/download/shared-download.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import { OciError } from '../../../../src/oci/errors.js';
import type { RepositoryName } from '../../../../src/oci/reference.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';
import { MemorySeedRegistry } from '../../../../src/seed/memory-seed-registry.js';
import type { ServableBlob } from '../../../../src/p2p/blob-protocol.js';
import { FakePeerNetwork, blobOf, readAll, within } from '../../../helpers/fake-peers.js';

/** A relay's answer that must be the download itself (not 'pending'). */
function servable(blob: ServableBlob | 'pending' | undefined): ServableBlob | undefined {
  if (blob === 'pending') throw new Error('relay answered pending');
  return blob;
}

const RANGE = 64 * 1024;
const GUARD_MS = 1_500;
const SEED = 'seed.test:5000';
const REPO = 'team/app' as RepositoryName;
const quiet = { info() {}, warn() {}, debug() {} } as unknown as MirrorOptions['log'];

let net: FakePeerNetwork;
afterEach(() => net?.close());

/**
 * The seed registry, holding `blobs` in the repository asked for. Like some registries it ignores an
 * offset: asked to go on from one, it sends the whole blob.
 */
function fakeSeed(...blobs: Buffer[]): MemorySeedRegistry {
  const seed = new MemorySeedRegistry(SEED, { ignoresRange: true });
  for (const b of blobs) seed.putBlob(REPO, b);
  return seed;
}

/** How many times the seed was asked for a blob's bytes. */
const blobGets = (seed: MemorySeedRegistry) => seed.calls.filter((c) => c.startsWith('openBlob ')).length;

/** A mirror whose peers are `net`, with the seed (if any) holding `seedBlobs`. */
function mirrorOf(opts: { seed?: MemorySeedRegistry; heldForPeers?: MirrorOptions['heldForPeers'] } = {}) {
  const blobs = new MemoryBlobStore();
  const scores = new PeerScores();
  const fetcher = new PeerFetcher(net, scores, { rangeBytes: RANGE, hedgeAfterMs: 60_000 });
  const fetched: Array<{ digest: Digest; size: number; source: Source }> = [];
  const cache = new MemoryRepositoryStore();
  const mirror = new Mirror({
    blobs,
    seeds: new Map(opts.seed ? [[SEED, opts.seed]] : []),
    cacheFor: async () => cache,
    tagTtlMs: 60_000,
    serveStale: true,
    log: quiet,
    peers: fetcher,
    onBlobFetched: (digest, size, source) => fetched.push({ digest, size, source }),
    heldForPeers: opts.heldForPeers,
  });
  /** What a client's GET gets: where the blob came from, and its bytes. */
  const get = async (digest: Digest) => {
    const answer = await within(mirror.blob(SEED, REPO, digest, false), GUARD_MS, 'blob answer');
    const bytes = await within(readAll(await answer.open()), GUARD_MS, 'blob body');
    return { source: answer.source, size: answer.size, bytes };
  };
  /**
   * A client that retries once when its body is cut (peers' bytes stream through, so a client answered
   * from bytes that then do not verify is cut): what the GET that completed got, and how many were cut.
   */
  const getRetrying = async (digest: Digest) => {
    try {
      return { ...(await get(digest)), cut: 0 };
    } catch (err) {
      expect((err as Error).name).toBe('DigestMismatchError');
      return { ...(await get(digest)), cut: 1 };
    }
  };
  return { mirror, blobs, cache, scores, fetcher, fetched, get, getRetrying };
}

describe('blob resolution: local store, then peers, then the seed', () => {
  it('serves a blob it holds for the repository from the local store, asking no peer and no seed', async () => {
    const content = blobOf(5000);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    await m.blobs.put(Readable.from([content]), digestOf(content));
    await m.cache.linkBlob(REPO, digestOf(content));

    const got = await m.get(digestOf(content));
    expect(got.source).toBe('local');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.lookups).toBe(0);
    expect(net.requests).toEqual([]);
    expect(seed.calls).toEqual([]);
  });

  it('serves bytes held for another repository only once the seed says this one has them (a HEAD), then links them', async () => {
    const content = blobOf(5000);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    const m = mirrorOf({ seed: fakeSeed(content) });
    await m.blobs.put(Readable.from([content]), digest);
    const got = await m.get(digest);
    expect(got.source).toBe('local');
    expect(got.bytes.equals(content)).toBe(true);
    expect(await m.cache.hasBlob(REPO, digest)).toBe(true);

    // A seed that does not have it for this repository: not found, whatever the store holds.
    const other = mirrorOf({ seed: fakeSeed() });
    await other.blobs.put(Readable.from([content]), digest);
    await expect(other.mirror.blob(SEED, REPO, digest, true)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    await expect(other.mirror.blob(SEED, REPO, digest, false)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect(await other.cache.hasBlob(REPO, digest)).toBe(false);
  });

  it('with no seed, serves held bytes by digest only where peers would be offered them, else asks the peers', async () => {
    const content = blobOf(5000);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    const shared = mirrorOf({ heldForPeers: async () => true });
    await shared.blobs.put(Readable.from([content]), digest);
    expect((await shared.get(digest)).source).toBe('local');
    expect(net.lookups).toBe(0);

    const kept = mirrorOf({ heldForPeers: async () => false });
    await kept.blobs.put(Readable.from([content]), digest);
    await expect(kept.mirror.blob(SEED, REPO, digest, false)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect(net.lookups).toBe(1);
    await net.addPeer('a', [content]);
    const got = await kept.get(digest);
    expect(got.source).toBe('peer');
    expect(got.bytes.equals(content)).toBe(true);
  });

  it('goes to the seed when no peer has the blob, then keeps it', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    await net.addPeer('a', [blobOf(100, 7)]);
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.get(digest);
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.lookups).toBe(1);
    expect(net.requests).toEqual([]);
    expect(blobGets(seed)).toBe(1);
    await expect.poll(() => m.fetched).toEqual([{ digest, size: content.length, source: 'upstream' }]);

    const again = await m.get(digest);
    expect(again.source).toBe('local');
    expect(blobGets(seed)).toBe(1);
    expect(net.lookups).toBe(1);
  });

  it.each([
    ['one range', 5000],
    ['several ranges', 5 * RANGE + 17],
  ])('takes a blob of %s from peers when they have it, without asking the seed', async (_what, size) => {
    const content = blobOf(size);
    net = new FakePeerNetwork();
    for (const id of ['a', 'b', 'c']) await net.addPeer(id, [content]);
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.get(digest);
    expect(got.source).toBe('peer');
    expect(got.size).toBe(content.length);
    expect(got.bytes.equals(content)).toBe(true);
    expect(seed.calls).toEqual([]);
    expect(net.served().size).toBe(size > RANGE ? 3 : 1);
    expect(await m.blobs.stat(digest)).toEqual({ digest, size: content.length });
    await expect.poll(() => m.fetched).toEqual([{ digest, size: content.length, source: 'peer' }]);
  });

  it('falls back to the seed when every provider fails, after trying each of them', async () => {
    const content = blobOf(2 * RANGE);
    net = new FakePeerNetwork();
    for (const id of ['a', 'b']) await net.addPeer(id, [content], 'failing');
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });

    const got = await m.get(digestOf(content));
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(blobGets(seed)).toBe(1);
    for (const id of ['a', 'b']) {
      expect(net.requestsTo(id).length).toBeGreaterThan(0);
      expect(m.scores.recentFailures(id)).toBeGreaterThan(0);
      // Failing is not lying: a peer that could not answer is not banned.
      expect(m.scores.isBanned(id)).toBe(false);
    }
  });

  it('skips a dead provider record (the peer answers not-found) for the next provider', async () => {
    const content = blobOf(5000);
    net = new FakePeerNetwork();
    await net.addPeer('ghost');
    await net.announceOnly('ghost', digestOf(content)); // announced first, so asked first
    await net.addPeer('a', [content]);
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });

    const got = await m.get(digestOf(content));
    expect(got.source).toBe('peer');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.requests.map((r) => [r.peer, r.outcome])).toEqual([
      ['ghost', 'failed'],
      ['a', 'sent'],
    ]);
    expect(seed.calls).toEqual([]);
    expect(m.scores.rank([{ id: 'ghost' }, { id: 'a' }]).map((p) => p.id)).toEqual(['a', 'ghost']);
  });

  it('goes to the seed when the only provider records are dead', async () => {
    const content = blobOf(5000);
    net = new FakePeerNetwork();
    await net.addPeer('ghost', [], 'not-found');
    await net.announceOnly('ghost', digestOf(content));
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const got = await m.get(digestOf(content));
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.requestsTo('ghost')).toHaveLength(1);
  });

  it('joins concurrent clients onto one download', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await net.addPeer('a', [content], { kind: 'slow', release: gate });
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });

    const clients = [m.get(digestOf(content)), m.get(digestOf(content))];
    await expect.poll(() => net.requests.length).toBeGreaterThan(0);
    release();
    for (const got of await Promise.all(clients)) {
      expect(got.source).toBe('peer');
      expect(got.bytes.equals(content)).toBe(true);
    }
    expect(net.lookups).toBe(1);
    // One provider: one request for the whole blob (issue 14: one stream per provider), made once for both clients.
    expect(net.requests.map((r) => r.range)).toEqual([undefined]);
    expect(seed.calls).toEqual([]);
  });

  it('answers a HEAD for a blob it does not hold from the seed, without fetching', async () => {
    const content = blobOf(5000);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const answer = await m.mirror.blob(SEED, REPO, digestOf(content), true);
    expect(answer.size).toBe(content.length);
    expect(seed.calls).toEqual([`statBlob ${REPO} ${digestOf(content)}`]);
    expect(net.lookups).toBe(0);
    expect(await m.blobs.stat(digestOf(content))).toBeUndefined();
  });

  describe('for a registry with no seed configured', () => {
    it('takes the blob from peers', async () => {
      const content = blobOf(5000);
      net = new FakePeerNetwork();
      await net.addPeer('a', [content]);
      const m = mirrorOf();
      const got = await m.get(digestOf(content));
      expect(got.source).toBe('peer');
      expect(got.bytes.equals(content)).toBe(true);
    });

    it('answers BLOB_UNKNOWN when no peer has it', async () => {
      net = new FakePeerNetwork();
      await net.addPeer('a', [blobOf(10)]);
      const m = mirrorOf();
      const err = await m.get(digestOf(blobOf(5000))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciError);
      expect((err as OciError).code).toBe('BLOB_UNKNOWN');
      expect((err as OciError).status).toBe(404);
    });
  });
});

describe('blob resolution: a corrupt peer', () => {
  it.each([
    ['one range', 5000],
    ['several ranges', 6 * RANGE + 3],
  ])('bans every contributor of a blob of %s that did not verify, and serves the seed\'s bytes', async (_what, size) => {
    const content = blobOf(size);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content], 'corrupt'); // first in line, so it surely contributes
    for (const id of ['b', 'c']) await net.addPeer(id, [content]);
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.getRetrying(digest);
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(blobGets(seed)).toBe(1);
    expect((await readAll((await m.blobs.open(digest)).stream)).equals(content)).toBe(true);

    const contributors = net.served();
    expect(contributors.has('a')).toBe(true);
    // Without per-range hashes the culprit cannot be told apart: everyone who sent bytes is banned.
    for (const id of contributors) expect(m.scores.isBanned(id)).toBe(true);
    const banned = ['a', 'b', 'c'].filter((id) => m.scores.isBanned(id));
    expect((await m.fetcher.providers(digest)).map((p) => p.id)).toEqual(['a', 'b', 'c'].filter((id) => !banned.includes(id)));
  });

  it.each([
    ['one range', 5000],
    ['several ranges', 6 * RANGE + 3],
  ])('never completes a follower of a blob of %s that started before verification with corrupt bytes: it is cut, and its retry gets the seed\'s', async (_what, size) => {
    const content = blobOf(size);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content], 'corrupt');
    await net.addPeer('b', [content]);
    const fetcher = new PeerFetcher(net, new PeerScores(), { rangeBytes: RANGE, hedgeAfterMs: 60_000 });
    const upstream: DownloadSource = {
      name: 'upstream',
      open: async () => ({ size: content.length, stream: Readable.from([content.subarray(0, 1000), content.subarray(1000)]) }),
    };
    const dl = new SharedDownload(new MemoryBlobStore(), digest, [fetcher.source(digest), upstream]);

    // Followers attach before any source has opened; each notes where the bytes were coming from.
    const follow = (range?: { start: number; end: number }) => {
      const sources = new Set<string | undefined>();
      const read = async () => {
        const chunks: Buffer[] = [];
        for await (const c of dl.follow(range)) {
          sources.add(dl.source);
          chunks.push(Buffer.from(c as Uint8Array));
        }
        return Buffer.concat(chunks);
      };
      return { sources, bytes: within(read(), GUARD_MS, 'follower') };
    };
    // Issue 14: peers' bytes stream through, so these followers get bytes of the corrupt copy (this test
    // asserted before that they got none) and are cut when it does not verify: never a complete body.
    const whole = follow();
    const part = follow({ start: 100, end: size - 2 });
    await expect(whole.bytes).rejects.toThrow(/does not match digest/);
    await expect(part.bytes).rejects.toThrow(/does not match digest/);
    expect(whole.sources).toEqual(new Set(['peer']));

    // Their retries join the download, started over from the seed.
    const retryWhole = follow();
    const retryPart = follow({ start: 100, end: size - 2 });
    expect((await retryWhole.bytes).equals(content)).toBe(true);
    expect((await retryPart.bytes).equals(content.subarray(100, size - 1))).toBe(true);
    await dl.done;
    expect(dl.source).toBe('upstream');
  });
});

describe('blob resolution: nobody holds it yet, so one node fetches and the rest follow', () => {
  it('asks the seed itself when the coordinator says this node fetches, and announces the blob while it downloads', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    await net.addPeer('a');
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.get(digest);
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.claims).toEqual([{ digest, failed: [] }]);
    expect(blobGets(seed)).toBe(1);
    // announced by the download itself (this mirror's store does not announce commits)
    expect([...(net.routing.records.get(digest) ?? [])]).toEqual(['self']);
    // the head of the chain holds the whole blob: its chain may end
    await expect.poll(() => net.releases).toEqual([digest]);
  });

  it('follows the download of the node the coordinator names: the bytes come from that peer, not the seed', async () => {
    const content = blobOf(4 * RANGE + 9);
    net = new FakePeerNetwork();
    // 'f' is fetching the blob from the seed: it serves it, but no provider record is findable yet
    await net.addHolder('f', content);
    net.coordinator = () => 'f';
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.get(digest);
    expect(got.source).toBe('peer');
    expect(got.bytes.equals(content)).toBe(true);
    expect(seed.calls).toEqual([]);
    expect(net.claims).toEqual([{ digest, failed: [] }]);
    expect(new Set(net.requests.map((r) => r.peer))).toEqual(new Set(['f']));
    // a follower is no chain's head: it releases nothing
    expect(net.releases).toEqual([]);
  });

  it('reports a fetcher that cannot serve, and goes to the seed when the coordinator then names this node', async () => {
    const content = blobOf(2 * RANGE);
    net = new FakePeerNetwork();
    await net.addPeer('f', [], 'failing');
    net.coordinator = (_d, failed) => (failed.includes('f') ? undefined : 'f');
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.get(digest);
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.claims).toEqual([
      { digest, failed: [] },
      { digest, failed: ['f'] },
    ]);
    expect(blobGets(seed)).toBe(1);
  });

  it('follows the node before a predecessor that broke off mid-blob, instead of going to the seed', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    await net.addHolder('f', content, { kind: 'truncated' });
    await net.addHolder('g', content);
    net.coordinator = (_d, failed) => (failed.includes('f') ? 'g' : 'f');
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });
    const digest = digestOf(content);

    const got = await m.get(digest);
    expect(got.source).toBe('peer');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.claims).toEqual([
      { digest, failed: [] },
      { digest, failed: ['f'] },
    ]);
    expect(seed.calls).toEqual([]);
    // The node before goes on from the byte f's stream had reached, not from the first.
    const reached = net.requestsTo('f')[0]!.sent;
    expect(reached).toBeGreaterThan(0);
    expect(net.requestsTo('g').map((r) => r.range?.start)).toEqual([reached]);
  });

  it('goes on from the byte written with the seed when the only provider breaks off part way: the client\'s one answer completes', async () => {
    const content = blobOf(3 * RANGE + 7);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    // The sole provider sends the blob in one stream and breaks off after two ranges' worth; asked again
    // from there, it fails.
    await net.addPeer('a', [content], (req) => ((req.range?.start ?? 0) === 0 ? { kind: 'truncated', keep: 2 * RANGE } : 'failing'));
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });

    const got = await m.get(digest);
    expect(got.source).toBe('peer');
    expect(got.bytes.equals(content)).toBe(true);
    // Asked from the byte the peer's stream reached; this seed answered 200 (whole blob): what the node
    // had was skipped.
    expect(seed.calls).toEqual([`openBlob ${REPO} ${digest} from=${2 * RANGE}`]);
    await expect.poll(() => m.fetched).toEqual([{ digest, size: content.length, source: 'upstream' }]);
    expect(m.scores.isBanned('a')).toBe(false);
  });

  it('goes to the seed rather than ask again when the coordinator keeps naming a fetcher that failed', async () => {
    const content = blobOf(5000);
    net = new FakePeerNetwork();
    await net.addPeer('f', [], 'not-found');
    net.coordinator = () => 'f';
    const seed = fakeSeed(content);
    const m = mirrorOf({ seed });

    const got = await m.get(digestOf(content));
    expect(got.source).toBe('upstream');
    expect(got.bytes.equals(content)).toBe(true);
    expect(net.claims).toHaveLength(2);
    expect(net.requestsTo('f')).toHaveLength(1);
  });

  it('withdraws the announcement of a seed download that did not verify', async () => {
    const content = blobOf(2 * RANGE);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    const corrupt = Buffer.from(content);
    corrupt[100] = corrupt[100]! ^ 0xff;
    const seed = new MemorySeedRegistry(SEED);
    seed.putBlob(REPO, corrupt, digest); // the seed sends other bytes under the digest
    const m = mirrorOf({ seed });

    const answer = await within(m.mirror.blob(SEED, REPO, digest, false), GUARD_MS, 'blob answer');
    await expect(within(readAll(await answer.open()), GUARD_MS, 'blob body')).rejects.toThrow();
    await expect.poll(() => net.routing.records.get(digest)?.size ?? 0).toBe(0);
    expect(await m.blobs.stat(digest)).toBeUndefined();
  });
});

describe('relaying a download in progress to peers', () => {
  it('hands peers every byte the seed has sent, the last one too, before the blob is verified', async () => {
    const content = blobOf(3 * RANGE + 5);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    const seed = fakeSeed(content);
    const body = seed.holdBody(digest); // the test lets its bytes through
    const m = mirrorOf({ seed });
    expect(await m.mirror.relay(digest, 10)).toBeUndefined(); // no download yet

    const client = m.mirror.blob(SEED, REPO, digest, false);
    await expect.poll(() => seed.calls).toEqual([`openBlob ${REPO} ${digest}`]);
    body.sendTo(RANGE);
    const relayed = servable(await within(m.mirror.relay(digest, GUARD_MS), GUARD_MS, 'relay'));
    expect(relayed?.size).toBe(content.length);
    const head = await within(readAll(await relayed!.open({ start: 0, end: RANGE - 1 })), GUARD_MS, 'relayed head');
    expect(head.equals(content.subarray(0, RANGE))).toBe(true);

    // The rest, but for the seed's last byte's verification: a peer gets the whole blob, a client does not yet.
    body.sendTo(content.length);
    const tail = await within(readAll(await relayed!.open({ start: RANGE, end: content.length - 1 })), GUARD_MS, 'relayed tail');
    expect(Buffer.concat([head, tail]).equals(content)).toBe(true);
    body.finish();
    const answer = await client;
    expect((await readAll(await answer.open())).equals(content)).toBe(true);
  });

  it('answers pending while its download has not begun (it waits on the node before it): the asker keeps its place', async () => {
    const content = blobOf(RANGE);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    net.coordinator = () => 'a';
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    const fetch = net.fetch.bind(net);
    net.fetch = async (provider, d, range, signal) => {
      await gate; // the node before this one has not answered yet
      return fetch(provider, d, range, signal);
    };
    const m = mirrorOf({ seed: fakeSeed(content) });
    const client = m.get(digest);
    await expect.poll(() => net.claims.length).toBeGreaterThan(0);
    expect(await m.mirror.relay(digest, 10)).toBe('pending');
    go();
    const relayed = servable(await within(m.mirror.relay(digest, GUARD_MS), GUARD_MS, 'relay'));
    expect(relayed?.size).toBe(content.length);
    expect((await within(client, GUARD_MS, 'client')).bytes.equals(content)).toBe(true);
  });

  it('relays a download whose bytes come from peers too (the next node of a claim chain follows it)', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    let release!: () => void;
    await net.addPeer('a', [content], { kind: 'slow', release: new Promise<void>((r) => (release = r)) });
    const m = mirrorOf({ seed: fakeSeed(content) });
    const client = m.get(digestOf(content));
    // The peer's answer says the size before any byte of the body has come: the download can be relayed
    // at once (one stream for the whole blob, issue 14), and its bytes flow once the peer sends them.
    await expect.poll(() => net.requests.length).toBeGreaterThan(0);
    const relayed = servable(await within(m.mirror.relay(digestOf(content), GUARD_MS), GUARD_MS, 'relay'));
    expect(relayed?.size).toBe(content.length);
    expect(net.requests[0]!.sent).toBe(0);
    release();
    const bytes = await within(readAll(await relayed!.open({ start: 0, end: content.length - 1 })), GUARD_MS, 'relayed bytes');
    expect(bytes.equals(content)).toBe(true);
    expect((await client).source).toBe('peer');
  });
});
