// Peer bytes stream through to HTTP clients as they land (issue 14), with real processes.
//
// Part 1 uses the lying-peer rig (test/helpers/bad-peers.ts): a victim node with a docker-registry seed,
// and bad-peer nodes that hold the last KiB of a blob back until the test releases it ('held' honest
// bytes, 'corrupt-held' with a byte flipped), so a download is provably still running while the test
// looks at what the client has: no timing decides anything.
// Part 2 uses real layerd providers: one throttled (--max-upload-rate), so its transfer is still running
// when the client has bytes; one killed part way, so the fetching node must go on from another source;
// and a bad-peer node that stalls for good before the blob's end (the victim's idle limit ends it).
//
// What is asserted: a client gets bytes before the download is committed; no client completes a body
// that did not verify (it is cut: fewer bytes than announced and a connection error); nothing of a bad
// download is kept; a client's retry is served correctly from another source; a source dying part way
// costs the client nothing (one GET, right bytes).
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets } from '../helpers/access-log.js';
import { startLiarRig, type LiarRig } from '../helpers/bad-peers.js';
import { NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { logLines, until } from '../helpers/processes.js';
import { digestOf, randomBlob, RegistryClient } from '../helpers/registry-client.js';
import { diskBlobs } from '../helpers/store-check.js';

const MiB = 1024 * 1024;
/** More than one 8 MiB peer range: the first range lands (and streams) while the last one is held. */
const BLOB = 12 * MiB + 12345;

/** A GET whose progress the test can watch while it runs. */
interface Watched {
  status: number;
  headers: IncomingHttpHeaders;
  received: number;
  /** The body ended as announced (Content-Length); false when the connection was cut. */
  complete: boolean;
  finished: boolean;
  error?: Error;
  body(): Buffer;
  done: Promise<void>;
}

function watchedGet(base: string, path: string, headers: Record<string, string> = {}): Watched {
  const chunks: Buffer[] = [];
  const w: Watched = { status: 0, headers: {}, received: 0, complete: false, finished: false, body: () => Buffer.concat(chunks), done: Promise.resolve() };
  w.done = new Promise<void>((resolve) => {
    const finish = (err?: Error) => {
      if (w.finished) return;
      w.finished = true;
      w.error ??= err;
      resolve();
    };
    const req = httpRequest(`${base}${path}`, { headers, agent: false }, (res) => {
      w.status = res.statusCode ?? 0;
      w.headers = res.headers;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        w.received += c.length;
      });
      res.on('error', (err) => (w.error ??= err));
      res.on('end', () => {
        w.complete = res.complete;
        finish();
      });
      res.on('close', () => {
        w.complete = res.complete;
        finish();
      });
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', (err) => finish(err));
    req.end();
  });
  return w;
}

async function heldDigests(node: { url: string }): Promise<string[]> {
  const res = await fetch(`${node.url}/api/blobs`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { blobs: Array<{ digest: string }> }).blobs.map((b) => b.digest);
}

async function uploadsLeft(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'uploads')).catch(() => []);
}

function logged(node: { output(): string }, msg: string, digest: string): Array<Record<string, unknown>> {
  return logLines(node).filter((l) => l.msg === msg && l.digest === digest);
}

describe('streaming from peers, against peers that hold the blob\'s end back', () => {
  let rig: LiarRig;

  beforeAll(async () => {
    // A long idle limit: a held peer must not be dropped as stalled while the test looks.
    rig = await startLiarRig({ prefix: 'layerd-stream-', peerIdleTimeout: '60s' });
  }, 120_000);

  afterAll(() => rig?.stop());

  it('a corrupt peer: the client gets bytes, is cut before a complete body, nothing is kept, the peer is penalized, and the retry is served by the seed', { timeout: 180_000 }, async () => {
    const { victim, bad, dir, bootstrap, seed } = rig;
    const data = randomBlob(BLOB);
    const digest = digestOf(data);
    const file = join(dir, 'corrupt');
    await writeFile(file, data);
    // The seed does not have the blob yet: once the liar's copy fails, the download has nowhere else to
    // go, so what it leaves behind can be looked at.
    const key = 'corrupt-held';
    const liar = await bad.serve(key, bootstrap, digest, file, 'corrupt-held');
    const path = `/v2/stream/corrupt/blobs/${digest}`;

    const get = watchedGet(victim.url, path);
    await until('the client to receive bytes from the peer', () => (get.received > 0 || get.finished ? true : undefined), 60_000);
    expect(get.finished, `the GET ended early: ${get.error?.message}`).toBe(false);
    expect(get.status).toBe(200);
    expect(get.headers['content-length']).toBe(String(BLOB));
    expect(get.headers['x-layerd-source']).toBe('peer');
    // Streaming, not store-then-serve: the client has bytes, the node does not hold the blob.
    expect(await heldDigests(victim)).not.toContain(digest);

    await bad.release(key);
    await get.done;
    // Cut: fewer bytes than announced, and the connection ended in an error.
    expect(get.complete).toBe(false);
    expect(get.received).toBeGreaterThan(0);
    expect(get.received).toBeLessThan(BLOB);

    await until('the victim to give the download up', () => (logged(victim, 'blob fetch failed: nothing kept', digest).length > 0 ? true : undefined), 60_000);
    const penalized = logLines(victim).filter((l) => l.msg === 'peers sent bytes that did not verify: penalized' && l.digest === digest);
    expect(penalized.map((l) => l.peers)).toEqual([[liar]]);
    // Nothing kept: not committed, not on disk, no upload area left.
    expect(await heldDigests(victim)).not.toContain(digest);
    expect((await diskBlobs(victim.dataDir)).digests).not.toContain(digest);
    expect(await uploadsLeft(victim.dataDir)).toEqual([]);

    // The retry: the seed has it now; the penalized liar is not asked again.
    await new RegistryClient(seed.url).putBlob('stream/corrupt', data);
    const asked = bad.asked.get(key)?.length ?? 0;
    const retry = watchedGet(victim.url, path);
    await retry.done;
    expect([retry.status, retry.complete, retry.error?.message]).toEqual([200, true, undefined]);
    expect(digestOf(retry.body())).toBe(digest);
    expect(retry.headers['x-layerd-source']).toBe('upstream');
    expect(bad.asked.get(key)?.length ?? 0).toBe(asked);
    await until('the victim to hold the seed\'s copy', async () => ((await heldDigests(victim)).includes(digest) ? true : undefined));
    await bad.stop(key);
  });

  it('streams a whole blob and a Range while the peer holds the end back, completing neither before the blob verified', { timeout: 180_000 }, async () => {
    const { victim, bad, dir, bootstrap } = rig;
    const data = randomBlob(BLOB);
    const digest = digestOf(data);
    const file = join(dir, 'held');
    await writeFile(file, data);
    const key = 'held';
    await bad.serve(key, bootstrap, digest, file, 'held');
    const path = `/v2/stream/held/blobs/${digest}`;
    const [from, to] = [1000, 2999];

    const whole = watchedGet(victim.url, path);
    const part = watchedGet(victim.url, path, { range: `bytes=${from}-${to}` });
    // The range lies in the first 8 MiB, which the peer sent in full: all of it but its last byte arrives.
    await until('the Range client to have all but the range\'s last byte', () => (part.received >= to - from || part.finished ? true : undefined), 60_000);
    await until('the whole-blob client to receive bytes', () => (whole.received > 0 || whole.finished ? true : undefined), 60_000);
    expect(part.finished, `the Range GET ended early: ${part.error?.message}`).toBe(false);
    expect(whole.finished, `the GET ended early: ${whole.error?.message}`).toBe(false);
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes ${from}-${to}/${BLOB}`);
    expect(part.received).toBe(to - from);
    expect(whole.status).toBe(200);
    expect(whole.received).toBeLessThan(BLOB);
    // The download is running (the peer holds the last KiB): nothing is committed yet.
    expect(await heldDigests(victim)).not.toContain(digest);

    await bad.release(key);
    await Promise.all([whole.done, part.done]);
    expect([part.complete, part.error?.message]).toEqual([true, undefined]);
    expect(part.body().equals(data.subarray(from, to + 1))).toBe(true);
    expect([whole.complete, whole.error?.message]).toEqual([true, undefined]);
    expect(digestOf(whole.body())).toBe(digest);
    await until('the victim to hold the blob', async () => ((await heldDigests(victim)).includes(digest) ? true : undefined));
    expect(logged(rig.victim, 'blob fetched', digest).map((l) => l.source)).toEqual(['peer']);
    await bad.stop(key);
  });
});

describe('streaming from real layerd providers', () => {
  let rig: LiarRig;
  const launched = new NodeSet('layerd-stream-node-');

  beforeAll(async () => {
    // The victim gives up on a peer that sends nothing for 3 s (the stalled-peer test below).
    rig = await startLiarRig({ prefix: 'layerd-stream2-', peerIdleTimeout: '3s' });
  }, 120_000);

  afterAll(async () => {
    await launched.stopAll('SIGKILL');
    await rig?.stop();
  });

  /** A node of the seed's cluster (joined through `bootstrap`), with debug logs for the "provided" lines. */
  function node(bootstrap: string | undefined, extra: string[] = []): Promise<Node> {
    const mirror = { registry: `127.0.0.1:${rig.seed.port}`, url: rig.seed.url };
    const args = ['--peer-lookup-timeout', '10s', ...extra];
    return launched.start(`node${launched.nodes.length + 1}`, { mirror, p2p: true, bootstrap, logLevel: 'debug', args, readyTimeoutMs: 60_000 });
  }

  async function multiaddr(n: Node): Promise<string> {
    const status = (await (await fetch(`${n.url}/api/status`)).json()) as { multiaddrs: string[] };
    return status.multiaddrs.find((a) => a.includes('/p2p/'))!;
  }

  /** A provider holding a fresh blob (fetched from the seed through it) and a fetcher that can find it. */
  async function providerAndFetcher(repo: string, providerArgs: string[]) {
    const data = randomBlob(BLOB);
    const digest = await new RegistryClient(rig.seed.url).putBlob(repo, data);
    const a = await node(undefined, providerArgs);
    const b = await node(await multiaddr(a));
    const pulled = await new RegistryClient(a.url).req('GET', `/v2/${repo}/blobs/${digest}`);
    expect([pulled.status, digestOf(pulled.body)]).toEqual([200, digest]);
    await until(`the provider to announce ${digest}`, () => (logged(a, 'provided', digest).length > 0 ? true : undefined), 60_000);
    return { a, b, data, digest, path: `/v2/${repo}/blobs/${digest}` };
  }

  /** A GET of `path` from b that has bytes while b's peer download still runs (not held, from a peer). */
  async function getWhileStreaming(b: Awaited<ReturnType<typeof node>>, path: string, digest: string) {
    const get = watchedGet(b.url, path);
    await until('the client to receive bytes', () => (get.received > 0 || get.finished ? true : undefined), 60_000);
    expect(get.finished, `the GET ended early: ${get.error?.message}`).toBe(false);
    expect(get.headers['x-layerd-source']).toBe('peer');
    expect(await heldDigests(b)).not.toContain(digest);
    return get;
  }

  it('a throttled provider: the client has bytes while the fetching node\'s download is still running', { timeout: 180_000 }, async () => {
    // 12 MiB at 2 MB/s: the first 8 MiB range streams on to the client while ~2 s of transfer remain.
    const { a, b, digest, path } = await providerAndFetcher('stream/slow', ['--max-upload-rate', '2MB/s']);
    const seedGets = rig.seed.blobGets();
    // Not committed on b, and a's upload is still going on.
    const get = await getWhileStreaming(b, path, digest);
    expect(logged(b, 'blob fetched', digest)).toEqual([]);
    await get.done;
    expect([get.status, get.complete, get.error?.message]).toEqual([200, true, undefined]);
    expect(digestOf(get.body())).toBe(digest);
    await until('b to hold the blob', async () => ((await heldDigests(b)).includes(digest) ? true : undefined));
    expect(logged(b, 'blob fetched', digest).map((l) => l.source)).toEqual(['peer']);
    expect(rig.seed.blobGets(), 'the seed was not asked for the blob again').toBe(seedGets);
    expect(logLines(a).filter((l) => l.msg === 'provided' && l.digest === digest).length).toBeGreaterThan(0);
  });

  it('a provider killed part way: the client\'s one GET completes with the right bytes, the rest coming from the seed with a Range', { timeout: 180_000 }, async () => {
    const { a, b, digest, path } = await providerAndFetcher('stream/killed', ['--max-upload-rate', '2MB/s']);
    const seedGets = rig.seed.blobGets();
    const get = await getWhileStreaming(b, path, digest);
    await a.stop('SIGKILL');

    await get.done;
    expect([get.status, get.complete, get.error?.message]).toEqual([200, true, undefined]);
    expect(get.received).toBe(BLOB);
    expect(digestOf(get.body())).toBe(digest);
    // The rest came from the seed (one more blob GET there, answered 206: a Range from the byte b had),
    // and b kept the verified blob.
    expect(rig.seed.blobGets()).toBe(seedGets + 1);
    expect(blobGets(rig.seed.output()).filter((g) => g.digest === digest).map((g) => g.status)).toEqual([200, 206]);
    await until('b to hold the blob', async () => ((await heldDigests(b)).includes(digest) ? true : undefined));
    expect(logged(b, 'blob fetched', digest).map((l) => l.source)).toEqual(['upstream']);
    expect(await uploadsLeft(b.dataDir)).toEqual([]);
  });

  it('a peer that stalls part way: the client\'s one GET completes, the rest coming from the seed; the peer is not taken for a liar', { timeout: 180_000 }, async () => {
    const { victim, bad, dir, bootstrap, seed } = rig;
    const data = randomBlob(BLOB);
    const digest = await new RegistryClient(seed.url).putBlob('stream/stalled', data);
    const file = join(dir, 'stalled');
    await writeFile(file, data);
    // Honest bytes, but the last KiB never comes (never released): the victim's idle limit ends it.
    await bad.serve('stalled', bootstrap, digest, file, 'held');
    const get = watchedGet(victim.url, `/v2/stream/stalled/blobs/${digest}`);
    await until('the client to receive bytes from the peer', () => (get.received > 0 || get.finished ? true : undefined), 60_000);
    expect(get.finished, `the GET ended early: ${get.error?.message}`).toBe(false);
    expect(get.headers['x-layerd-source']).toBe('peer');

    await get.done;
    expect([get.status, get.complete, get.error?.message]).toEqual([200, true, undefined]);
    expect(digestOf(get.body())).toBe(digest);
    expect(blobGets(seed.output()).filter((g) => g.digest === digest).map((g) => g.status)).toEqual([206]);
    await until('the victim to hold the blob', async () => ((await heldDigests(victim)).includes(digest) ? true : undefined));
    expect(logLines(victim).filter((l) => l.msg === 'peers sent bytes that did not verify: penalized' && l.digest === digest)).toEqual([]);
    await bad.stop('stalled');
  });
});
