// A Range answer from a seed download in progress may not complete before the blob verifies (issue 13,
// item 10). A real docker-registry seed behind a fault proxy that flips a byte and trickles the body: a
// ranged client that arrives mid-download must have its connection cut, as a whole-blob client does,
// never get a complete 206; its retry must not get bad bytes either; once the seed is sound it gets the
// right ones.
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, startDistribution } from '../helpers/processes.js';
import { randomBlob, RegistryClient } from '../helpers/registry-client.js';

let seed: Awaited<ReturnType<typeof startDistribution>>;
let proxy: FaultProxy;
const nodes = new NodeSet('layerd-range-verify-');
let node: TestNode;

beforeAll(async () => {
  seed = await startDistribution();
  // 128 KiB/s: a 512 KiB blob takes about 4 s to land, time enough for a second client to arrive.
  proxy = await startFaultProxy(seed.url, { slowBytesPerSecond: 128 * 1024 });
  node = await nodes.start('mirror', { mirror: { registry: 'seed.test', url: proxy.url }, args: ['--upstream-retries', '0'] });
}, 60_000);

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  await proxy?.close();
  await seed?.stop();
  if (seed) await removeDir(seed.rootDir);
});

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A GET whose outcome says whether the body completed; `onData` sees the bytes received so far. */
function get(url: string, headers: Record<string, string> = {}, onData?: (n: number) => void): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        onData?.(n);
      });
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error(`cut off after ${n} bytes (status ${res.statusCode})`));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`client timeout: GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** What a client made of an answer: cut off, an error status, or a complete body (and whether its bytes are right). */
async function outcome(p: Promise<Got>, right: Buffer): Promise<string> {
  return p.then(
    (r) => `completed: ${r.status}${r.status < 300 ? `, ${r.body.equals(right) ? 'right' : 'wrong'} bytes` : ''}`,
    (e: Error) => `failed: ${e.message}`,
  );
}

describe('a Range request on a seed download whose bytes turn out wrong', () => {
  it('is cut off like a whole-blob answer, never completed with unverified bytes; its retry gets no bad bytes', { timeout: 120_000 }, async () => {
    const data = randomBlob(512 * 1024);
    const digest = await new RegistryClient(seed.url).pushBlob('range/img', data);
    const url = `${node.url}/v2/range/img/blobs/${digest}`;
    const first23 = data.subarray(0, 23);
    await proxy.setMode('corrupt-slow');

    // A whole-blob client starts the download; once bytes reach it, the download is under way.
    let running!: () => void;
    const underWay = new Promise<void>((r) => (running = r));
    const whole = outcome(get(url, {}, () => running()), data);
    await underWay;
    const ranged = await outcome(get(url, { range: 'bytes=0-22' }), first23);
    expect(ranged, 'the ranged client that joined the bad download').toMatch(/^failed: |^completed: [45]\d\d$/);
    expect(await whole, 'the whole-blob client').toMatch(/^failed: |^completed: [45]\d\d$/);

    // The retry starts a new download from the (still corrupting) seed: no bad bytes complete either.
    const retry = await outcome(get(url, { range: 'bytes=0-22' }), first23);
    expect(retry, 'a ranged retry while the seed still sends wrong bytes').toMatch(/^failed: |^completed: [45]\d\d$/);
    expect(proxy.count('blob-get', digest), 'each attempt went to the seed').toBeGreaterThanOrEqual(2);

    await proxy.setMode('pass');
    const good = await get(url, { range: 'bytes=0-22' });
    expect(good.status).toBe(206);
    expect(good.body.equals(first23)).toBe(true);
    expect(good.headers['content-range']).toBe(`bytes 0-22/${data.length}`);
    // And the blob was kept whole and right.
    const after = await get(url);
    expect(after.status).toBe(200);
    expect(`sha256:${createHash('sha256').update(after.body).digest('hex')}`).toBe(digest);
  });
});
