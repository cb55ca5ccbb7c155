// Many clients at once on one node in front of a real seed (CNCF distribution): a smaller version of
// scripts/bench/load.mjs that asserts its promises and measures nothing. 200 clients on one cold 16 MiB blob
// cause one seed GET and every client gets every byte right; the node stays up and answers; 32 distinct
// cold blobs at once cost one seed GET each. Bodies are hashed as they stream in, never kept.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets, logSettled } from '../helpers/access-log.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, startDistribution, until } from '../helpers/processes.js';
import { RegistryClient, randomBlob } from '../helpers/registry-client.js';

const MiB = 1024 * 1024;
const REPO = 'load/test';

let seed: Awaited<ReturnType<typeof startDistribution>>;
const nodes = new NodeSet('layerd-load-');
let node: TestNode;
// Every client its own socket, all open at once: the agent must not queue them.
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

beforeAll(async () => {
  seed = await startDistribution();
  const host = `127.0.0.1:${seed.port}`;
  node = await nodes.start('mirror', { mirror: { registry: host, url: seed.url } });
});

afterAll(async () => {
  agent.destroy();
  await nodes.stopAll('SIGTERM');
  await seed?.stop();
  if (seed) await removeDir(seed.rootDir);
});

interface Got {
  status: number;
  digest: string;
  length: number;
}

/** A GET whose body is hashed as it streams in; a connection that fails or ends short rejects. */
function streamGet(url: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error(`response cut off after ${length} bytes`));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `sha256:${hash.digest('hex')}`, length }));
    });
    // An idle limit (no byte for this long), not a deadline on the whole body.
    req.setTimeout(60_000, () => req.destroy(new Error(`no byte for 60 s from ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Every client's outcome that is not the whole blob with the right digest, as readable lines. */
async function failures(urls: string[], want: Array<{ digest: string; size: number }>): Promise<string[]> {
  const results = await Promise.allSettled(urls.map(streamGet));
  return results.flatMap((r, i) => {
    if (r.status === 'rejected') return [`#${i}: ${String(r.reason)}`];
    const { status, digest, length } = r.value;
    return status === 200 && digest === want[i]!.digest && length === want[i]!.size ? [] : [`#${i}: ${status}, ${length} bytes, ${digest}`];
  });
}

function seedGetsOf(digest: string): number {
  return blobGets(seed.output()).filter((g) => g.digest === digest).length;
}

async function vmHwmMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

async function expectAlive(): Promise<void> {
  expect(node.child.exitCode, node.output().slice(-2000)).toBeNull();
  const res = await fetch(`${node.url}/v2/`);
  expect(res.status).toBe(200);
}

describe('load on one node', () => {
  it('200 clients at once on one cold 16 MiB blob: one seed GET, every client gets every byte right', async () => {
    const data = randomBlob(16 * MiB);
    const digest = await new RegistryClient(seed.url).pushBlob(REPO, data);
    const blob = { digest, size: data.length };
    const url = `${node.url}/v2/${REPO}/blobs/${digest}`;

    expect(await failures(Array(200).fill(url), Array(200).fill(blob))).toEqual([]);
    await expectAlive();
    await until('the seed to log the blob GET', () => (seedGetsOf(digest) > 0 ? true : undefined), 30_000);
    await logSettled(seed);
    expect(seedGetsOf(digest)).toBe(1);

    // A crowd again, now from the node's store (every client through the shared buffer budget).
    expect(await failures(Array(100).fill(url), Array(100).fill(blob))).toEqual([]);
    await logSettled(seed);
    expect(seedGetsOf(digest)).toBe(1);
    await expectAlive();
    // Far below any per-client copy of the blob (200 x 16 MiB = 3200 MiB): bytes go disk to socket.
    expect(await vmHwmMiB(node.pid)).toBeLessThan(512);
  }, 180_000);

  it('32 distinct cold blobs at once: one seed GET each, all correct', async () => {
    const client = new RegistryClient(seed.url);
    const blobs: Array<{ digest: string; size: number }> = [];
    for (let i = 0; i < 32; i++) {
      const data = randomBlob(2 * MiB);
      blobs.push({ digest: await client.pushBlob(REPO, data), size: data.length });
    }
    const urls = blobs.map((b) => `${node.url}/v2/${REPO}/blobs/${b.digest}`);

    expect(await failures(urls, blobs)).toEqual([]);
    await expectAlive();
    await until('the seed to log every blob GET', () => (blobs.every((b) => seedGetsOf(b.digest) > 0) ? true : undefined), 30_000);
    await logSettled(seed);
    expect(blobs.map((b) => seedGetsOf(b.digest))).toEqual(blobs.map(() => 1));
  }, 120_000);
});
