// A 2 GiB blob pushes and pulls through a real node without the node ever holding it in memory: the
// node's peak RSS stays far below the blob's size. (A bound on memory that a buffering bug would break
// by gigabytes; speeds are measured in scripts/bench, not asserted here.)
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSet, type TestNode } from '../helpers/nodes.js';

const SIZE = 2 * 1024 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** Peak RSS allowed to the node; buffering the blob would need more than 2048 MiB. */
const RSS_BOUND_MIB = 400;

const nodes = new NodeSet('layerd-large-blob-');
let node: TestNode;
beforeAll(async () => {
  node = await nodes.start('node');
});
afterAll(() => nodes.stopAll('SIGTERM'));

/** Deterministic, incompressible-enough bytes generated on the fly, hashed as they go. */
function generated(size: number, hash: ReturnType<typeof createHash>): Readable {
  const base = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i += 4) base.writeUInt32LE(((Math.imul(i, 2654435761) ^ 0x9e3779b9) >>> 0), i);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = Buffer.from(base);
      chunk.writeUInt32LE(sent / CHUNK, 0); // every chunk differs
      const n = Math.min(CHUNK, size - sent);
      const out = n === CHUNK ? chunk : chunk.subarray(0, n);
      hash.update(out);
      sent += n;
      this.push(out);
    },
  });
}

function send(method: string, url: string, body?: Readable, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; hash?: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, hash: `sha256:${hash.digest('hex')}`, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

describe('a 2 GiB blob', () => {
  it('pushes (POST + streamed PATCH + PUT) and pulls back identical with bounded memory', async () => {
    const hash = createHash('sha256');
    const start = await send('POST', `${node.url}/v2/big/blob/blobs/uploads/`);
    expect(start.status).toBe(202);
    const location = new URL(String(start.headers.location), node.url).toString();
    const patch = await send('PATCH', location, generated(SIZE, hash), { 'content-type': 'application/octet-stream' });
    expect(patch.status).toBe(202);
    expect(patch.headers.range).toBe(`0-${SIZE - 1}`);
    const digest = `sha256:${hash.digest('hex')}`;
    const put = await send('PUT', `${location}?digest=${digest}`);
    expect(put.status).toBe(201);

    const pulled = await send('GET', `${node.url}/v2/big/blob/blobs/${digest}`);
    expect(pulled.status).toBe(200);
    expect(pulled.bytes).toBe(SIZE);
    expect(pulled.hash).toBe(digest);
    expect(await peakRssMiB(node.pid)).toBeLessThan(RSS_BOUND_MIB);
  }, 300_000);
});
