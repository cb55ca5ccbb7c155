// The peer fetcher over an in-memory network: ranges spread over providers and assembled in order,
// failures moved, laggards hedged, lookups cached; and the scores that rank providers.
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PeerFetcher, type PeerFetcherOptions } from '../../../../src/distribution/peers/peer-fetcher.js';
import { PeerScores } from '../../../../src/distribution/peers/peer-scores.js';
import { SharedDownload, type DownloadSource } from '../../../../src/distribution/download/shared-download.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import { PeerFetchError } from '../../../../src/p2p/blob-protocol.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { FakePeerNetwork, blobOf, readAll, within, type Behaviour, type FakeRequest } from '../../../helpers/fake-peers.js';

const RANGE = 64 * 1024;
/** Generous: a guard against hangs. Healthy runs finish in a few milliseconds. */
const GUARD_MS = 1_500;

let net: FakePeerNetwork;
afterEach(() => net?.close());

/** Hedging is off unless a test turns it on: on a busy machine an in-memory range can take 50 ms. */
function fetcherOf(opts: PeerFetcherOptions = {}, scores = new PeerScores()) {
  return { scores, fetcher: new PeerFetcher(net, scores, { rangeBytes: RANGE, hedgeAfterMs: 60_000, ...opts }) };
}

/** Index of the range a request asked for. */
const rangeOf = (r: FakeRequest) => Math.floor((r.range?.start ?? 0) / RANGE);

/** The seed, counting how often it is opened. */
function seedOf(content: Buffer) {
  const seed = {
    opens: 0,
    source: {
      name: 'upstream',
      open: async () => {
        seed.opens++;
        return { size: content.length, stream: Readable.from([content]) };
      },
    } satisfies DownloadSource,
  };
  return seed;
}

/** Downloads through the peers (then the seed, if given) into a fresh store, as the mirror does. */
async function download(fetcher: PeerFetcher, digest: Digest, ...rest: DownloadSource[]) {
  const store = new MemoryBlobStore();
  const dl = new SharedDownload(store, digest, [fetcher.source(digest), ...rest]);
  // Peers' bytes stream through: a follower of bytes that then do not verify is cut, and retries (as a
  // client does) once the download has started over from the next source.
  const bytes = await within(readAll(dl.follow()), GUARD_MS, 'download').catch(() => within(readAll(dl.follow()), GUARD_MS, 'download retry'));
  await dl.done;
  return { bytes, dl, store };
}

/** A network of healthy peers a, b, c (in that order) all holding `content`. */
async function threePeers(content: Buffer) {
  net = new FakePeerNetwork();
  for (const id of ['a', 'b', 'c']) await net.addPeer(id, [content]);
}

describe('PeerFetcher: ranges', () => {
  it('fetches a blob of several ranges from several providers at once and assembles it in order', async () => {
    const content = blobOf(8 * RANGE + 1000);
    await threePeers(content);
    const { fetcher } = fetcherOf();
    const digest = digestOf(content);
    const { bytes, dl, store } = await download(fetcher, digest);

    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(await store.stat(digest)).toEqual({ digest, size: content.length });
    expect(net.served().size).toBeGreaterThan(1);
    expect(net.maxPending).toBeGreaterThan(1);
    // Every range asked for once, none bigger than rangeBytes, the last one cut at the blob's end.
    const ranges = net.requests.map((r) => r.range!);
    expect(ranges.map((r) => r.start).sort((x, y) => x - y)).toEqual([...Array(9).keys()].map((i) => i * RANGE));
    for (const r of ranges) expect(r.end - r.start + 1).toBeLessThanOrEqual(RANGE);
    expect(Math.max(...ranges.map((r) => r.end))).toBe(content.length - 1);
  });

  it('takes a blob no bigger than one range whole from the best provider', async () => {
    const content = blobOf(1000);
    await threePeers(content);
    const { fetcher } = fetcherOf();
    const { bytes, dl } = await download(fetcher, digestOf(content));
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(net.requests.map((r) => [r.peer, r.range])).toEqual([['a', { start: 0, end: RANGE - 1 }]]);
  });

  it('keeps bytes in order when later ranges arrive first, and runs at most `parallel` ranges ahead', async () => {
    const content = blobOf(12 * RANGE);
    await threePeers(content);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Range 1 lags (wherever it is asked for); no hedge, so it is the range that holds the assembly up.
    const lagging = (req: FakeRequest): Behaviour => (rangeOf(req) === 1 ? { kind: 'slow', release: gate } : { kind: 'healthy' });
    for (const id of ['a', 'b', 'c']) net.setBehaviour(id, lagging);
    const parallel = 3;
    const { fetcher } = fetcherOf({ parallel, hedgeAfterMs: 60_000 });
    const digest = digestOf(content);
    const store = new MemoryBlobStore();
    const dl = new SharedDownload(store, digest, [fetcher.source(digest)]);
    const follower = readAll(dl.follow());

    // While range 1 is held, the ranges after it up to 1 + parallel are fetched, and no further.
    const sentRanges = () => new Set(net.requests.filter((r) => r.outcome === 'sent').map(rangeOf));
    await expect.poll(() => [2, 3, 4].every((i) => sentRanges().has(i))).toBe(true);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(Math.max(...net.requests.map(rangeOf))).toBe(1 + parallel);
    expect(sentRanges().has(1)).toBe(false);

    release();
    const bytes = await within(follower, GUARD_MS, 'download');
    expect(bytes.equals(content)).toBe(true);
    await dl.done;
  });

  it.each(['failing', 'truncated'] as const)('moves the ranges of a %s provider to the others, and ranks it last', async (kind) => {
    const content = blobOf(8 * RANGE);
    await threePeers(content);
    net.setBehaviour('b', kind);
    const { fetcher, scores } = fetcherOf();
    const digest = digestOf(content);
    const { bytes, dl } = await download(fetcher, digest);

    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(net.requestsTo('b').length).toBeGreaterThan(0);
    expect(net.served()).toEqual(new Set(['a', 'c']));
    // Every range b was asked for came from someone else.
    const sentRanges = new Set(net.requests.filter((r) => r.outcome === 'sent').map(rangeOf));
    for (const r of net.requestsTo('b')) expect(sentRanges.has(rangeOf(r))).toBe(true);
    expect(scores.recentFailures('b')).toBeGreaterThan(0);
    expect(scores.rank(await fetcher.providers(digest)).map((p) => p.id).at(-1)).toBe('b');
  });

  // The first range is fetched before the others start; a provider that breaks off in its body should
  // be treated like one that breaks off in any other range: the range moves, the peers still serve.
  it.each([
    ['a blob of several ranges', 4 * RANGE + 5],
    ['a blob of one range', 1000],
  ])('moves the first range of %s when its provider breaks off mid-body', async (_what, size) => {
    const content = blobOf(size);
    await threePeers(content);
    net.setBehaviour('a', 'truncated');
    const seed = seedOf(content);
    const { fetcher, scores } = fetcherOf();
    const digest = digestOf(content);
    const { bytes, dl } = await download(fetcher, digest, seed.source);

    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(seed.opens).toBe(0);
    expect(scores.recentFailures('a')).toBeGreaterThan(0);
  });
});

describe('PeerFetcher: one provider, one stream (issue 14)', () => {
  it('takes a blob of many ranges from a sole provider in one request for the whole blob, and scores it once', async () => {
    const content = blobOf(8 * RANGE + 1000);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    const { fetcher, scores } = fetcherOf();
    const { bytes, dl } = await download(fetcher, digestOf(content));
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(net.requests.map((r) => [r.peer, r.range, r.outcome])).toEqual([['a', undefined, 'sent']]);
    expect(scores.recentFailures('a')).toBe(0);
  });

  it('download() from a start offset asks a sole provider for the rest only, and several for ranges from there', async () => {
    const content = blobOf(5 * RANGE);
    const digest = digestOf(content);
    const start = 2 * RANGE + 123;
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    const { fetcher } = fetcherOf();
    const one = await fetcher.download(digest, await fetcher.providers(digest), new Set(), content.length, start);
    expect(one.size).toBe(content.length);
    expect((await within(readAll(one.stream), GUARD_MS, 'rest')).equals(content.subarray(start))).toBe(true);
    expect(net.requests.map((r) => r.range)).toEqual([{ start, end: Number.MAX_SAFE_INTEGER }]);

    await net.addPeer('b', [content]);
    fetcher.forget(digest);
    net.requests.length = 0;
    const several = await fetcher.download(digest, await fetcher.providers(digest), new Set(), content.length, start);
    expect((await within(readAll(several.stream), GUARD_MS, 'rest')).equals(content.subarray(start))).toBe(true);
    expect(net.requests.map((r) => r.range!.start).sort((x, y) => x - y)).toEqual([start, start + RANGE, start + 2 * RANGE]);
  });

  it('a sole provider that stops mid-blob fails the download and is scored a failure; the seed completes it', async () => {
    const content = blobOf(6 * RANGE);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content], { kind: 'truncated', keep: 2 * RANGE });
    const seed = seedOf(content);
    const { fetcher, scores } = fetcherOf();
    const { bytes, dl } = await download(fetcher, digestOf(content), seed.source);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('upstream');
    expect(scores.recentFailures('a')).toBeGreaterThan(0);
  });
});

describe('PeerFetcher: giving up', () => {
  // When a range has no provider left the peer download is abandoned for the seed; the ranges already
  // in flight are of no use any more and must not keep streams (and upload slots) busy at the peers.
  it('aborts the ranges still in flight when the assembly is abandoned', async () => {
    const content = blobOf(8 * RANGE);
    await threePeers(content);
    const held = new Promise<void>(() => undefined);
    const rule = (req: FakeRequest): Behaviour =>
      rangeOf(req) === 2 ? { kind: 'failing' } : rangeOf(req) >= 3 ? { kind: 'slow', release: held } : { kind: 'healthy' };
    for (const id of ['a', 'b', 'c']) net.setBehaviour(id, rule);
    const seed = seedOf(content);
    const { fetcher } = fetcherOf();
    const { bytes, dl } = await download(fetcher, digestOf(content), seed.source);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('upstream');

    const inFlight = net.requests.filter((r) => rangeOf(r) >= 3);
    expect(inFlight.length).toBeGreaterThan(0);
    await expect.poll(() => inFlight.filter((r) => !r.signal?.aborted).map((r) => `${r.peer}:${rangeOf(r)}`), { timeout: 500 }).toEqual([]);
  });
});

describe('PeerFetcher: hedging', () => {
  it('hedges a stalled range on another provider after hedgeAfterMs and aborts the stalled request', async () => {
    const content = blobOf(8 * RANGE);
    await threePeers(content);
    net.setBehaviour('c', 'stalled');
    const { fetcher } = fetcherOf({ hedgeAfterMs: 50 });
    const digest = digestOf(content);
    const { bytes, dl } = await download(fetcher, digest);

    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    const stalled = net.requestsTo('c');
    expect(stalled.length).toBeGreaterThan(0);
    for (const r of stalled) {
      expect(r.signal?.aborted).toBe(true);
      expect(r.outcome).toBe('aborted');
      // ...and its range came from someone else.
      expect(net.requests.some((o) => o.peer !== 'c' && o.outcome === 'sent' && rangeOf(o) === rangeOf(r))).toBe(true);
    }
  });

  it('hedges a slow provider; its bytes arriving later change nothing', async () => {
    const content = blobOf(8 * RANGE);
    await threePeers(content);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    net.setBehaviour('b', { kind: 'slow', release: gate });
    const { fetcher, scores } = fetcherOf({ hedgeAfterMs: 50 });
    const digest = digestOf(content);
    const { bytes, store } = await download(fetcher, digest);
    expect(bytes.equals(content)).toBe(true);

    release();
    await new Promise((r) => setImmediate(r));
    expect(net.requestsTo('b').length).toBeGreaterThan(0);
    for (const r of net.requestsTo('b')) expect(r.outcome).toBe('aborted');
    // Aborted by the hedge, not failed: being slow once is no failure.
    expect(scores.recentFailures('b')).toBe(0);
    expect((await readAll((await store.open(digest)).stream)).equals(content)).toBe(true);
  });

  // The first range (or a small blob's only range) is fetched before the ranged machinery starts, so it
  // must be hedged too: otherwise one stalled provider ranked first stalls the whole download.
  it.each([
    ['a blob of several ranges', 4 * RANGE + 5],
    ['a blob of one range', 1000],
  ])('hedges the first range of %s when the first provider stalls', async (_what, size) => {
    const content = blobOf(size);
    await threePeers(content);
    net.setBehaviour('a', 'stalled');
    const { fetcher } = fetcherOf({ hedgeAfterMs: 50 });
    const digest = digestOf(content);
    const { bytes, dl } = await download(fetcher, digest);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    for (const r of net.requestsTo('a')) expect(r.signal?.aborted).toBe(true);
  });
});

describe('PeerFetcher: lookups', () => {
  async function oneBlob() {
    const content = blobOf(1000);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    await net.addPeer('b', [content]);
    return { content, digest: digestOf(content) };
  }

  it('answers a second lookup within lookupCacheMs without asking the router', async () => {
    const { digest } = await oneBlob();
    const { fetcher } = fetcherOf({ lookupCacheMs: 60_000 });
    const first = await fetcher.providers(digest);
    const second = await fetcher.providers(digest);
    expect(first.map((p) => p.id)).toEqual(['a', 'b']);
    expect(second).toEqual(first);
    expect(net.lookups).toBe(1);
  });

  it('asks the router again once the cached answer is older than lookupCacheMs', async () => {
    const { digest } = await oneBlob();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { fetcher } = fetcherOf({ lookupCacheMs: 10_000 });
      await fetcher.providers(digest);
      vi.advanceTimersByTime(9_000);
      await fetcher.providers(digest);
      expect(net.lookups).toBe(1);
      vi.advanceTimersByTime(2_000);
      await fetcher.providers(digest);
      expect(net.lookups).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('forget() drops the cached lookup', async () => {
    const { digest } = await oneBlob();
    const { fetcher } = fetcherOf({ lookupCacheMs: 60_000 });
    await fetcher.providers(digest);
    await fetcher.providers(digest);
    expect(net.lookups).toBe(1);
    fetcher.forget(digest);
    await fetcher.providers(digest);
    expect(net.lookups).toBe(2);
  });

  // The providers that just failed should not be served from the cache to the next attempt: a retry
  // must look again (new providers may have appeared; the failed ones may have withdrawn).
  it('forgets the lookup when every provider failed', async () => {
    const { content, digest } = await oneBlob();
    net.setBehaviour('a', 'failing');
    net.setBehaviour('b', 'failing');
    const seed = seedOf(content);
    const { fetcher } = fetcherOf({ lookupCacheMs: 60_000 });
    const { dl } = await download(fetcher, digest, seed.source);
    expect(dl.source).toBe('upstream');
    expect(net.lookups).toBe(1);
    await fetcher.providers(digest);
    expect(net.lookups).toBe(2);
  });

  it('forgets the lookup when the peers\' bytes did not verify', async () => {
    const { content, digest } = await oneBlob();
    net.setBehaviour('a', 'corrupt');
    net.setBehaviour('b', 'corrupt');
    const seed = seedOf(content);
    const { fetcher } = fetcherOf({ lookupCacheMs: 60_000 });
    const { dl } = await download(fetcher, digest, seed.source);
    expect(dl.source).toBe('upstream');
    await fetcher.providers(digest);
    expect(net.lookups).toBe(2);
  });

  it('does not cache an empty answer: a provider that appears later is found', async () => {
    net = new FakePeerNetwork();
    await net.addPeer('a');
    const content = blobOf(500);
    const { fetcher } = fetcherOf({ lookupCacheMs: 60_000 });
    const digest = digestOf(content);
    expect(await fetcher.providers(digest)).toEqual([]);
    await net.give('a', content);
    expect((await fetcher.providers(digest)).map((p) => p.id)).toEqual(['a']);
  });

  it('returns what a lookup found when it outlives lookupTimeoutMs', async () => {
    const { digest } = await oneBlob();
    net.routerHangs = true;
    const onLookup = vi.fn();
    const { fetcher } = fetcherOf({ lookupTimeoutMs: 50, onLookup });
    const found = await within(fetcher.providers(digest), GUARD_MS, 'lookup');
    expect(found.map((p) => p.id)).toEqual(['a', 'b']);
    expect(onLookup).toHaveBeenCalledWith(expect.any(Number), 2);
  });

  it('stops a lookup at maxProviders', async () => {
    const content = blobOf(100);
    net = new FakePeerNetwork();
    for (const id of ['a', 'b', 'c', 'd']) await net.addPeer(id, [content]);
    const { fetcher } = fetcherOf({ maxProviders: 2 });
    expect(await fetcher.providers(digestOf(content))).toHaveLength(2);
  });

  it('re-ranks a cached answer: a provider banned since the lookup is left out', async () => {
    const { digest } = await oneBlob();
    const { fetcher, scores } = fetcherOf({ lookupCacheMs: 60_000 });
    await fetcher.providers(digest);
    scores.corrupt('a');
    expect((await fetcher.providers(digest)).map((p) => p.id)).toEqual(['b']);
    expect(net.lookups).toBe(1);
  });
});

describe('PeerScores', () => {
  const peers = (...ids: string[]) => ids.map((id) => ({ id }));
  const ids = (ps: { id: string }[]) => ps.map((p) => p.id);

  it('ranks by fewest recent failures, then by speed', () => {
    const scores = new PeerScores();
    scores.success('fast', 10_000, 1);
    scores.success('slow', 1_000, 1);
    scores.success('flaky', 100_000, 1);
    scores.failure('flaky');
    expect(ids(scores.rank(peers('flaky', 'slow', 'fast')))).toEqual(['fast', 'slow', 'flaky']);
  });

  // rank()'s documented contract: "unknown peers rank as average" (so a new peer gets tried).
  it('ranks an unknown peer as average: after a fast known peer, before a slow one', () => {
    const scores = new PeerScores();
    scores.success('fast', 10_000, 1);
    scores.success('slow', 100, 1);
    expect(ids(scores.rank(peers('slow', 'new', 'fast')))).toEqual(['fast', 'new', 'slow']);
  });

  it('forgets failures after failureMemoryMs', () => {
    let now = 1_000_000;
    const scores = new PeerScores({ failureMemoryMs: 60_000, now: () => now });
    scores.success('x', 100, 1);
    scores.success('y', 10, 1);
    scores.failure('x');
    scores.failure('x');
    expect(scores.recentFailures('x')).toBe(2);
    expect(ids(scores.rank(peers('x', 'y')))).toEqual(['y', 'x']);
    now += 60_001;
    expect(scores.recentFailures('x')).toBe(0);
    expect(ids(scores.rank(peers('x', 'y')))).toEqual(['x', 'y']);
  });

  it('bans a peer that sent bad bytes until corruptPenaltyMs has passed', () => {
    let now = 5_000;
    const scores = new PeerScores({ corruptPenaltyMs: 600_000, now: () => now });
    scores.corrupt('bad');
    expect(scores.isBanned('bad')).toBe(true);
    expect(scores.isBanned('good')).toBe(false);
    expect(ids(scores.rank(peers('bad', 'good')))).toEqual(['good']);
    now += 599_999;
    expect(scores.isBanned('bad')).toBe(true);
    now += 2;
    expect(scores.isBanned('bad')).toBe(false);
    expect(ids(scores.rank(peers('bad', 'good')))).toEqual(['bad', 'good']);
  });

  it('smooths speed, so one slow transfer does not sink a fast peer', () => {
    const scores = new PeerScores();
    scores.success('steady', 5_000, 1);
    scores.success('usually-fast', 10_000, 1);
    scores.success('usually-fast', 1_000, 1); // 0.7 × 10000 + 0.3 × 1000 = 7300 B/ms
    expect(ids(scores.rank(peers('steady', 'usually-fast')))).toEqual(['usually-fast', 'steady']);
  });
});

describe('PeerFetcher: a chain predecessor that never answers', () => {
  // Found while fuzzing (issue 8): a peer can make itself a chain's head by asking the coordinator first;
  // the node then followed it with no deadline, so a peer that accepts the stream and never answers held
  // the client's request forever. Now it gives up after followAnswerMs and goes on to the seed.
  it('stops following it after followAnswerMs and fetches from the seed', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    net.coordinator = (_d, failed) => (failed.includes('mute') ? undefined : 'mute');
    const fetch = net.fetch.bind(net);
    net.fetch = (provider, d, range, signal) =>
      provider.id === 'mute' ? new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('no answer')), { once: true })) : fetch(provider, d, range, signal);
    const { fetcher } = fetcherOf({ followAnswerMs: 100 });
    const seed = seedOf(content);
    const { bytes } = await download(fetcher, digestOf(content), seed.source);
    expect(bytes.equals(content)).toBe(true);
    expect(seed.opens).toBe(1);
  });

  it('avoids it afterwards: the next blob reports it failed to the coordinator at once, with no wait', async () => {
    net = new FakePeerNetwork();
    const reported: string[][] = [];
    net.coordinator = (_d, failed) => {
      reported.push([...failed]);
      return failed.includes('mute') ? undefined : 'mute';
    };
    let muteAsked = 0;
    const fetch = net.fetch.bind(net);
    net.fetch = (provider, d, range, signal) => {
      if (provider.id !== 'mute') return fetch(provider, d, range, signal);
      muteAsked++;
      return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('no answer')), { once: true }));
    };
    const { fetcher } = fetcherOf({ followAnswerMs: 100 });
    const first = blobOf(RANGE, 1);
    const second = blobOf(RANGE, 2);
    expect((await download(fetcher, digestOf(first), seedOf(first).source)).bytes.equals(first)).toBe(true);
    expect(muteAsked).toBe(1);
    reported.length = 0;
    expect((await download(fetcher, digestOf(second), seedOf(second).source)).bytes.equals(second)).toBe(true);
    expect(muteAsked).toBe(1);
    expect(reported[0]).toContain('mute');
  });
});

describe('PeerFetcher: a chain predecessor alive but slow (issue 16: claims that hold on a starved box)', () => {
  it('keeps following one that answers "pending" until its download begins: no second copy from the seed', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    await net.addPeer('slow', [content]);
    net.coordinator = (_d, failed) => (failed.includes('slow') ? undefined : 'slow');
    let asked = 0;
    const fetch = net.fetch.bind(net);
    net.fetch = (provider, d, range, signal) => {
      if (provider.id === 'slow' && ++asked <= 3) return Promise.reject(new PeerFetchError('slow', 'pending', 'answered pending'));
      return fetch(provider, d, range, signal);
    };
    const { fetcher, scores } = fetcherOf();
    const seed = seedOf(content);
    // Not download(): its guard is shorter than the pauses between questions (up to a second each).
    const dl = new SharedDownload(new MemoryBlobStore(), digestOf(content), [fetcher.source(digestOf(content)), seed.source]);
    const bytes = await within(readAll(dl.follow()), 10_000, 'download');
    await dl.done;
    expect(bytes.equals(content)).toBe(true);
    expect(asked).toBe(4);
    expect(seed.opens).toBe(0);
    expect(scores.banned()).toEqual([]);
  });

  it('passes over one that still answers "pending" after followPendingMs (the seed then serves)', async () => {
    const content = blobOf(RANGE);
    net = new FakePeerNetwork();
    net.coordinator = (_d, failed) => (failed.includes('stuck') ? undefined : 'stuck');
    net.fetch = () => Promise.reject(new PeerFetchError('stuck', 'pending', 'answered pending'));
    const { fetcher } = fetcherOf({ followPendingMs: 0 });
    const seed = seedOf(content);
    const { bytes } = await download(fetcher, digestOf(content), seed.source);
    expect(bytes.equals(content)).toBe(true);
    expect(seed.opens).toBe(1);
  });
});

describe('PeerFetcher: a size no blob of that digest can have (issue 13, item 5)', () => {
  /** A download through the peers then the seed, with the size the manifest gave (if any). */
  async function fetchWith(fetcher: PeerFetcher, content: Buffer, size: number | undefined) {
    const digest = digestOf(content);
    const seed = seedOf(content);
    const store = new MemoryBlobStore();
    const dl = new SharedDownload(store, digest, [fetcher.source(digest, { size }), seed.source]);
    const bytes = await within(readAll(dl.follow()), GUARD_MS, 'download');
    await dl.done;
    return { bytes, dl, seed };
  }

  it('penalizes a provider whose size differs from the descriptor\'s, reads none of its body, and takes the blob from another', async () => {
    const content = blobOf(3 * RANGE);
    net = new FakePeerNetwork();
    await net.addPeer('liar', [content]);
    await net.addPeer('honest', [content]);
    // The liar's header claims 1000 bytes more than the blob has.
    const fetch = net.fetch.bind(net);
    net.fetch = async (provider, d, range, signal) => {
      const blob = await fetch(provider, d, range, signal);
      return provider.id === 'liar' ? { ...blob, size: blob.size + 1000 } : blob;
    };
    const { scores, fetcher } = fetcherOf();
    const { bytes, dl, seed } = await fetchWith(fetcher, content, content.length);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('peer');
    expect(seed.opens).toBe(0);
    expect(net.requestsTo('liar').length).toBeGreaterThan(0);
    expect(net.requestsTo('liar').every((r) => r.outcome !== 'sent')).toBe(true);
    expect(scores.isBanned('liar')).toBe(true);
    expect(scores.isBanned('honest')).toBe(false);
  });

  it('penalizes every provider when the descriptor\'s size is not the blob\'s, and goes to the seed', async () => {
    const content = blobOf(2 * RANGE);
    await threePeers(content);
    const { scores, fetcher } = fetcherOf();
    const { bytes, dl, seed } = await fetchWith(fetcher, content, content.length + 1);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('upstream');
    expect(seed.opens).toBe(1);
    for (const id of ['a', 'b', 'c']) expect(scores.isBanned(id)).toBe(true);
    // Judged on the header: no body was taken in full.
    expect(net.requests.every((r) => r.outcome !== 'sent')).toBe(true);
  });

  it('with no descriptor, holds a claim against maxBlobBytes', async () => {
    const content = blobOf(2 * RANGE);
    await threePeers(content);
    const { scores, fetcher } = fetcherOf({ maxBlobBytes: RANGE });
    const { bytes, dl } = await fetchWith(fetcher, content, undefined);
    expect(bytes.equals(content)).toBe(true);
    expect(dl.source).toBe('upstream');
    for (const id of ['a', 'b', 'c']) expect(scores.isBanned(id)).toBe(true);
  });

  it('with no descriptor, holds a large claim against the seed\'s size once the first range is in', async () => {
    const content = blobOf(3 * RANGE);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    await net.addPeer('liar', [content]);
    const fetch = net.fetch.bind(net);
    net.fetch = async (provider, d, range, signal) => {
      const blob = await fetch(provider, d, range, signal);
      return provider.id === 'liar' ? { ...blob, size: blob.size + 1000 } : blob;
    };
    const { scores, fetcher } = fetcherOf({ confirmClaimsAbove: RANGE });
    let asked = 0;
    const seed = seedOf(content);
    const dl = new SharedDownload(new MemoryBlobStore(), digest, [fetcher.source(digest, { confirmSize: async () => (asked++, content.length) }), seed.source]);
    expect((await within(readAll(dl.follow()), GUARD_MS, 'download')).equals(content)).toBe(true);
    await dl.done;
    expect(asked).toBe(1);
    expect(dl.source).toBe('upstream');
    expect(scores.isBanned('liar')).toBe(true);
    // At most the first range was read from the liar before its claim was refused.
    expect(net.requestsTo('liar').filter((r) => r.outcome === 'sent').length).toBeLessThanOrEqual(1);
  });

  it('with no descriptor, a large claim the seed confirms goes on from the peers, and a small blob never asks the seed', async () => {
    const big = blobOf(3 * RANGE);
    await threePeers(big);
    const { scores, fetcher } = fetcherOf({ confirmClaimsAbove: RANGE });
    let asked = 0;
    const confirmSize = async () => (asked++, big.length);
    const seed = seedOf(big);
    const dl = new SharedDownload(new MemoryBlobStore(), digestOf(big), [fetcher.source(digestOf(big), { confirmSize }), seed.source]);
    expect((await within(readAll(dl.follow()), GUARD_MS, 'download')).equals(big)).toBe(true);
    await dl.done;
    expect(dl.source).toBe('peer');
    expect(asked).toBe(1);
    expect(seed.opens).toBe(0);
    for (const id of ['a', 'b', 'c']) expect(scores.isBanned(id)).toBe(false);

    const small = blobOf(RANGE, 7);
    await net.addPeer('d', [small]);
    asked = 0;
    const one = new SharedDownload(new MemoryBlobStore(), digestOf(small), [fetcher.source(digestOf(small), { confirmSize }), seedOf(small).source]);
    expect((await within(readAll(one.follow()), GUARD_MS, 'download')).equals(small)).toBe(true);
    await one.done;
    expect(one.source).toBe('peer');
    expect(asked).toBe(0);
  });

  it('with no descriptor and no room for the claim, tries the seed instead of failing for want of disk, and penalizes the claim once the true size is known', async () => {
    const content = blobOf(2 * RANGE);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    const { scores, fetcher } = fetcherOf();
    const store = new MemoryBlobStore();
    // A store with room only for what the seed's size turns out to be: the peer's claim (made bigger here) does not fit.
    const createWriter = store.createWriter.bind(store);
    store.createWriter = async (opts: { expectedSize?: number } = {}) => {
      if ((opts.expectedSize ?? 0) > content.length) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      return createWriter();
    };
    const source = fetcher.source(digest);
    const lying: DownloadSource = { ...source, open: async () => {
      const body = await source.open(0);
      return body && { ...body, size: content.length + 1 };
    } };
    const seed = seedOf(content);
    const dl = new SharedDownload(store, digest, [lying, seed.source]);
    expect((await within(readAll(dl.follow()), GUARD_MS, 'download')).equals(content)).toBe(true);
    await dl.done;
    expect(dl.source).toBe('upstream');
    expect(seed.opens).toBe(1);
    expect(scores.isBanned('a')).toBe(true);
  });
});

describe('PeerFetcher: a download that goes on from an offset', () => {
  it('asks the providers only for the bytes from the offset on, and keeps the earlier contributors', async () => {
    const content = blobOf(3 * RANGE + 5);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    await net.addPeer('a', [content]);
    const { fetcher } = fetcherOf();
    const source = fetcher.source(digest);
    const body = (await source.open(RANGE + 100))!;
    expect([body.size, body.start]).toEqual([content.length, RANGE + 100]);
    expect((await within(readAll(body.stream), GUARD_MS, 'rest')).equals(content.subarray(RANGE + 100))).toBe(true);
    // A sole provider: one request, for everything from the offset on.
    expect(net.requests.map((r) => r.range?.start)).toEqual([RANGE + 100]);
  });

  it('penalizes the peers whose size the seed, going on from their bytes, contradicts; the download starts over', async () => {
    const content = blobOf(3 * RANGE + 5);
    const digest = digestOf(content);
    net = new FakePeerNetwork();
    // Breaks off after two ranges' worth were written (and fails if asked again from there).
    await net.addPeer('a', [content], (req) => ((req.range?.start ?? 0) === 0 ? { kind: 'truncated', keep: 2 * RANGE } : 'failing'));
    const { scores, fetcher } = fetcherOf();
    const source = fetcher.source(digest);
    // The peer's answer claims one byte more than the blob has (nothing confirmed it).
    const lying: DownloadSource = { ...source, open: async (from) => {
      const body = await source.open(from);
      return body && { ...body, size: content.length + 1 };
    } };
    let seedFrom: number[] = [];
    const seed: DownloadSource = {
      name: 'upstream',
      open: async (from) => {
        seedFrom = [...seedFrom, from];
        return { size: content.length, stream: Readable.from([content]) };
      },
    };
    const dl = new SharedDownload(new MemoryBlobStore(), digest, [lying, seed]);
    await within(dl.done, GUARD_MS, 'download');
    expect(seedFrom).toEqual([2 * RANGE, 0]);
    expect(scores.isBanned('a')).toBe(true);
  });
});

describe('PeerFetcher: providers gone in a scale-down, their records left behind', () => {
  /** `live` and the gone peers all held both blobs; the gone ones left, their provider records stayed. */
  async function scaledDown(gone: string[], live: string[]) {
    const x = blobOf(4 * RANGE + 10);
    const y = blobOf(4 * RANGE + 20);
    net = new FakePeerNetwork();
    for (const id of [...gone, ...live]) await net.addPeer(id, [x, y]);
    for (const id of gone) net.removePeer(id);
    return { x, y };
  }
  const dialsTo = (ids: string[], digest: Digest) => net.requests.filter((r) => ids.includes(r.peer) && r.digest === digest).length;

  it('takes the blob from the live holders, dialling each gone one at most once, and not at all for the next blob', async () => {
    const gone = ['gone1', 'gone2', 'gone3'];
    const { x, y } = await scaledDown(gone, ['live']);
    const { fetcher, scores } = fetcherOf();
    const seed = seedOf(x);
    const first = await download(fetcher, digestOf(x), seed.source);
    expect(first.bytes.equals(x)).toBe(true);
    expect(first.dl.source).toBe('peer');
    expect(dialsTo(gone, digestOf(x))).toBeLessThanOrEqual(gone.length);
    for (const id of gone) expect(scores.isUnreachable(id)).toBe(net.requestsTo(id).length > 0);

    // The lookup for the next blob names them again (their records live on); they are not asked.
    const second = await download(fetcher, digestOf(y), seedOf(y).source);
    expect(second.bytes.equals(y)).toBe(true);
    expect(second.dl.source).toBe('peer');
    expect(dialsTo(gone.filter((id) => scores.isUnreachable(id)), digestOf(y))).toBe(0);
    expect(seed.opens).toBe(0);
  });

  it('goes to the seed when every provider is gone, and for the next blob without dialling them again', async () => {
    const gone = ['gone1', 'gone2'];
    const { x, y } = await scaledDown(gone, []);
    const { fetcher } = fetcherOf();
    const seedX = seedOf(x);
    expect((await download(fetcher, digestOf(x), seedX.source)).dl.source).toBe('upstream');
    expect(dialsTo(gone, digestOf(x))).toBeLessThanOrEqual(gone.length);
    const seedY = seedOf(y);
    expect((await download(fetcher, digestOf(y), seedY.source)).dl.source).toBe('upstream');
    expect(dialsTo(gone, digestOf(y))).toBe(0);
    expect(seedX.opens + seedY.opens).toBe(2);
  });
});

describe('PeerScores: unreachable peers', () => {
  it('leaves a peer that could not be dialled out of rankings for unreachableMs, and at once after it served', () => {
    let now = 0;
    const scores = new PeerScores({ unreachableMs: 120_000, now: () => now });
    scores.unreachable('gone');
    expect(scores.rank([{ id: 'gone' }, { id: 'live' }]).map((p) => p.id)).toEqual(['live']);
    now += 120_001;
    expect(scores.rank([{ id: 'gone' }, { id: 'live' }]).map((p) => p.id)).toContain('gone');
    scores.unreachable('back');
    scores.success('back', 1000, 1);
    expect(scores.isUnreachable('back')).toBe(false);
  });
});
