// A blob taken as stripes over an in-memory network: chunk i from the parent of stripe i mod k, each
// landing at its offset as it comes; what happens when a stripe's parent is slow (the other stripes go on,
// and what landed is served), sends wrong bytes (the whole blob fails), fails or stalls (the fallback sends
// the chunk, the route is told; with none left, the download goes on from the bytes in order by the usual
// path).
import { afterEach, describe, expect, it } from 'vitest';
import { PeerFetcher } from '../../../../src/distribution/peers/peer-fetcher.js';
import { PeerScores } from '../../../../src/distribution/peers/peer-scores.js';
import type { StripeRoute } from '../../../../src/distribution/peers/peer-network.js';
import { StripeLayout } from '../../../../src/distribution/peers/stripe-download.js';
import { SharedDownload, type DownloadSource } from '../../../../src/distribution/download/shared-download.js';
import { digestOf } from '../../../../src/oci/digest.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import type { BlobWriter } from '../../../../src/store/blob-store.js';
import { Readable } from 'node:stream';
import { FakePeerNetwork, blobOf, readAll, within } from '../../../helpers/fake-peers.js';

const CHUNK = 64 * 1024;
const GUARD_MS = 3_000;

let net: FakePeerNetwork;
afterEach(() => net?.close());

/** A route over `parents` (stripe s from parents[s]) that records what it is told. */
function routeOf(parents: string[], fallback?: string) {
  const got = parents.map(() => 0);
  const suspects: Array<[number, string]> = [];
  const route: StripeRoute = {
    k: parents.length,
    chunkBytes: CHUNK,
    parent: (s) => parents[s]!,
    ...(fallback ? { fallback } : {}),
    got: (s, n) => (got[s] = got[s]! + n),
    failed: (s, p) => suspects.push([s, p]),
  };
  return { route, got, suspects };
}

async function striped(content: Buffer, route: StripeRoute, opts: { stripeStallMs?: number } = {}, ...rest: DownloadSource[]) {
  Object.assign(net, { stripeRoute: () => route });
  const fetcher = new PeerFetcher(net, new PeerScores(), { rangeBytes: CHUNK, hedgeAfterMs: 60_000, ...opts });
  const digest = digestOf(content);
  const store = new MemoryBlobStore();
  const dl = new SharedDownload(store, digest, [fetcher.source(digest, { size: content.length }), ...rest]);
  const bytes = await within(readAll(dl.follow()), GUARD_MS, 'download');
  await dl.done;
  return { bytes, dl, store };
}

const chunkOf = (start: number | undefined) => Math.floor((start ?? 0) / CHUNK);

describe('StripeLayout', () => {
  const l = new StripeLayout(4, 100);
  it('cuts a blob into chunks dealt to stripes in turn', () => {
    expect([l.chunkOf(0), l.chunkOf(99), l.chunkOf(100), l.chunkOf(450)]).toEqual([0, 0, 1, 4]);
    expect([0, 1, 4, 7].map((i) => l.stripeOf(i))).toEqual([0, 1, 0, 3]);
    expect(l.count(401)).toBe(5);
    expect(l.range(2, 0)).toEqual({ start: 200, end: 299 });
    expect(l.range(2, 250)).toEqual({ start: 250, end: 299 });
  });
  it('asks the stripe\'s parent, then the fallback (never another stripe\'s parent, which may wait on this node)', () => {
    expect(l.candidates('b', 'o')).toEqual(['b', 'o']);
    expect(l.candidates('o', 'o')).toEqual(['o']);
    expect(l.candidates('b', undefined)).toEqual(['b']);
  });
  it('refuses a layout of no stripes', () => {
    expect(() => new StripeLayout(0, 100)).toThrow();
  });
});

describe('striped download', () => {
  it('takes each chunk from its stripe\'s parent and hands the blob on in order, verified', async () => {
    const content = blobOf(9 * CHUNK + 500);
    net = new FakePeerNetwork();
    for (const id of ['a', 'b', 'c']) await net.addPeer(id, [content]);
    const { route, got, suspects } = routeOf(['a', 'b', 'c']);
    const { bytes, dl, store } = await striped(content, route);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(await store.stat(digestOf(content))).toEqual({ digest: digestOf(content), size: content.length });
    for (const r of net.requests) expect(['a', 'b', 'c'][chunkOf(r.range?.start) % 3]).toBe(r.peer);
    expect(net.requests.map((r) => chunkOf(r.range?.start)).sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(got.reduce((a, b) => a + b)).toBe(content.length);
    expect(got[0]).toBe(3 * CHUNK + 500); // chunks 0, 3, 6 and the last, 9
    expect(suspects).toEqual([]);
  });

  it('takes a failing parent\'s chunks from the fallback, and tells the keeper', async () => {
    const content = blobOf(6 * CHUNK);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    await net.addPeer('b', [content], 'failing');
    await net.addPeer('o', [content]);
    const { route, suspects } = routeOf(['a', 'b'], 'o');
    const { bytes, dl } = await striped(content, route);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    const sent = net.requests.filter((r) => r.outcome === 'sent');
    expect(sent.filter((r) => r.peer === 'a').map((r) => chunkOf(r.range?.start) % 2)).toEqual([0, 0, 0]);
    expect(sent.filter((r) => r.peer === 'o').map((r) => chunkOf(r.range?.start) % 2)).toEqual([1, 1, 1]);
    expect(suspects.length).toBeGreaterThan(0);
    expect(suspects.every(([s, p]) => s === 1 && p === 'b')).toBe(true);
  });

  it('passes over a parent that stalls on the chunk handed on', async () => {
    const content = blobOf(4 * CHUNK);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    await net.addPeer('b', [content], 'stalled');
    await net.addPeer('o', [content]);
    const { route, suspects } = routeOf(['a', 'b'], 'o');
    const { bytes } = await striped(content, route, { stripeStallMs: 100 });
    expect(bytes.equals(content)).toBe(true);
    expect(suspects.some(([s, p]) => s === 1 && p === 'b')).toBe(true);
  });

  it('a slow parent holds back only its own stripe: the others land, and what landed is served at once', async () => {
    const content = blobOf(10 * CHUNK);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await net.addPeer('a', [content]);
    await net.addPeer('b', [content], { kind: 'slow', release: held });
    const { route, got, suspects } = routeOf(['a', 'b']);
    Object.assign(net, { stripeRoute: () => route });
    const fetcher = new PeerFetcher(net, new PeerScores(), { rangeBytes: CHUNK, hedgeAfterMs: 60_000 });
    const dl = new SharedDownload(new MemoryBlobStore(), digest, [fetcher.source(digest, { size: content.length })]);
    // Stripe 0 (chunks 0, 2, 4, 6, 8) lands whole while stripe 1 has nothing.
    await within(
      (async () => {
        while (got[0] !== 5 * CHUNK) await new Promise((r) => setTimeout(r, 5));
      })(),
      GUARD_MS,
      'stripe 0',
    );
    expect(got[1]).toBe(0);
    // A peer asking for chunk 8 is served now; one asking for chunk 9 is told to wait.
    expect(await dl.landedAt(8 * CHUNK, 0)).toBe(true);
    expect(await dl.landedAt(9 * CHUNK, 20)).toBe(false);
    const chunk8 = await within(readAll(dl.follow({ start: 8 * CHUNK, end: 9 * CHUNK - 1 }, { unverified: true })), GUARD_MS, 'chunk 8');
    expect(chunk8.equals(content.subarray(8 * CHUNK, 9 * CHUNK))).toBe(true);
    release();
    const bytes = await within(readAll(dl.follow()), GUARD_MS, 'download');
    await dl.done;
    expect(bytes.equals(content)).toBe(true);
    expect(suspects).toEqual([]); // slow is no failure
  });

  it('a chunk with wrong bytes fails the whole blob: it is dropped and comes again from the next source', async () => {
    const content = blobOf(6 * CHUNK);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    await net.addPeer('b', [content], (req) => (chunkOf(req.range?.start) === 3 ? 'corrupt' : 'healthy'));
    const { from, seed } = seedOf(content);
    const { route } = routeOf(['a', 'b']);
    Object.assign(net, { stripeRoute: () => route });
    const fetcher = new PeerFetcher(net, new PeerScores(), { rangeBytes: CHUNK, hedgeAfterMs: 60_000 });
    const digest = digestOf(content);
    const store = new MemoryBlobStore();
    const dl = new SharedDownload(store, digest, [fetcher.source(digest, { size: content.length }), seed]);
    // A client answered from the dropped bytes is cut; the blob kept is the seed's.
    await expect(readAll(dl.follow())).rejects.toThrow(/digest/);
    await within(dl.done, GUARD_MS, 'download');
    expect((await readAll((await store.open(digest)).stream)).equals(content)).toBe(true);
    expect(net.requests.some((r) => r.behaviour === 'corrupt' && r.outcome === 'sent')).toBe(true);
    expect(dl.source).toBe('upstream');
    expect(from).toEqual([0]); // nothing of the striped attempt was kept
  });

  it('a parent reset while its bytes are still being written: the fallback goes on from the byte after them', async () => {
    const content = blobOf(6 * CHUNK);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    // b sends 20 KiB of its first chunk (chunk 1), then its connection resets; the disk is slower than the reset.
    await net.addPeer('b', [content], (req) => (chunkOf(req.range?.start) === 1 ? { kind: 'broken', keep: 20 * 1024 } : 'healthy'));
    await net.addPeer('o', [content]);
    const { route, suspects } = routeOf(['a', 'b'], 'o');
    Object.assign(net, { stripeRoute: () => route });
    const fetcher = new PeerFetcher(net, new PeerScores(), { rangeBytes: CHUNK, hedgeAfterMs: 60_000 });
    const digest = digestOf(content);
    const dl = new SharedDownload(new SlowWriteStore(), digest, [fetcher.source(digest, { size: content.length })]);
    const bytes = await within(readAll(dl.follow()), GUARD_MS, 'download');
    await dl.done;
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(suspects).toEqual([[1, 'b']]);
    // The fallback was asked once, for the rest of chunk 1 from the byte after what of b's 20 KiB had landed
    // (bytes that came during the write are dropped with the failure, not written).
    const asked = net.requests.filter((r) => r.peer === 'o').map((r) => r.range?.start ?? 0);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toBeGreaterThan(CHUNK);
    expect(asked[0]).toBeLessThanOrEqual(CHUNK + 20 * 1024);
  });

  it('with no parent left, goes on from the byte written by the usual path (here the seed)', async () => {
    const content = blobOf(6 * CHUNK);
    net = new FakePeerNetwork();
    // a sends its first chunk, then is gone.
    await net.addPeer('a', [content], (req) => (chunkOf(req.range?.start) === 0 ? 'healthy' : 'failing'));
    await net.addPeer('b', [content], 'failing');
    await net.addPeer('o', [content], 'failing');
    const { from, seed } = seedOf(content);
    const { route } = routeOf(['a', 'b'], 'o');
    const { bytes, dl } = await striped(content, route, {}, seed);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('upstream');
    expect(from).toHaveLength(1);
    expect(from[0]).toBeGreaterThanOrEqual(CHUNK);
  });
});

/** A store whose positional writes take a while to land (a slow disk), so a parent's reset can come mid-write. */
class SlowWriteStore extends MemoryBlobStore {
  override async createWriter(): Promise<BlobWriter> {
    const writer = await super.createWriter();
    const writeAt = writer.writeAt!.bind(writer);
    writer.writeAt = async (position, data, limit) => {
      await new Promise((r) => setTimeout(r, 20));
      return writeAt(position, data, limit);
    };
    return writer;
  }
}

/** A seed serving `content` from any byte, and the bytes it was asked to start at. */
function seedOf(content: Buffer): { from: number[]; seed: DownloadSource } {
  const from: number[] = [];
  const seed: DownloadSource = {
    name: 'upstream',
    open: async (at) => {
      from.push(at);
      return { size: content.length, start: at, stream: Readable.from([content.subarray(at)]) };
    },
  };
  return { from, seed };
}
