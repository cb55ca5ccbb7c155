// A full disk, with real processes: a layerd node whose data dir is a small tmpfs (mounted by the test;
// we are root), filled by a filler file until a blob no longer fits. Pushes and pull-throughs past the
// space get a clear answer (507 Insufficient Storage with an OCI error body, before any byte of a
// pull is sent), nothing partial or corrupt is left, the node stays up (and /healthz says why once the
// store takes no writes at all), and once the filler is deleted the same push and pull succeed.
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSet, type TestNode as Proc } from '../helpers/nodes.js';
import { removeDir, startDistribution, tempDir } from '../helpers/processes.js';
import { digestOf, expectError, randomBlob, RegistryClient, withQuery, type Res } from '../helpers/registry-client.js';
import { diskBlobs, storeProblems } from '../helpers/store-check.js';

const run = promisify(execFile);
type Seed = Awaited<ReturnType<typeof startDistribution>>;

const MB = 1024 * 1024;
let mnt: string | undefined;
let seed: Seed;
const nodes = new NodeSet('layerd-disk-');
let node: Proc;
let c: RegistryClient;
const BIG = randomBlob(3 * MB);
const SMALL = randomBlob(64 * 1024);
let pulled: Buffer;
let session: string;

async function freeBytes(): Promise<number> {
  const fs = await statfs(mnt!);
  return fs.bavail * fs.bsize;
}

/** Fills the tmpfs until `leave` bytes are free (0: until a write fails). */
async function fill(name: string, leave: number): Promise<void> {
  const size = Math.max(0, (await freeBytes()) - leave);
  await writeFile(join(mnt!, name), Buffer.alloc(size));
  if (leave === 0) {
    // Whatever a page-sized write still finds: take it too, a byte at a time at the end.
    for (let i = 0; ; i++) {
      try {
        await writeFile(join(mnt!, `${name}-${i}`), Buffer.alloc(4096));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  }
}

async function health(): Promise<{ status: number; body: { status: string; checks: Record<string, { ok: boolean; detail?: string }> } }> {
  const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as never };
}

/** Upload areas other than the client's session: what a failed write would have left behind. */
async function strayUploads(): Promise<string[]> {
  return (await readdir(join(node.dataDir, 'uploads'))).filter((id) => id !== session);
}

function expectNoSpace(res: Res, what: string): void {
  expectError(res, 507, 'UNAVAILABLE');
  expect(res.json<{ errors: Array<{ message: string }> }>().errors[0]!.message, what).toMatch(/insufficient storage|disk is full/);
}

beforeAll(async () => {
  mnt = await tempDir('layerd-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
  seed = await startDistribution();
  const registry = `127.0.0.1:${seed.port}`;
  pulled = randomBlob(3 * MB);
  await new RegistryClient(seed.url).putBlob('disk/pull', pulled);
  const dataDir = join(mnt, 'data');
  await mkdir(dataDir);
  node = await nodes.start('node', { dataDir, mirror: { registry, url: seed.url }, readyTimeoutMs: 60_000 });
  c = node.c;
  // Held before the disk fills: it must stay readable throughout.
  await c.pushBlob('disk/small', SMALL);
}, 120_000);

afterAll(async () => {
  await nodes.stopAll('SIGKILL');
  await seed?.stop();
  if (seed) await removeDir(seed.rootDir);
  if (mnt) {
    await run('umount', [mnt]).catch(() => undefined);
    await rm(mnt, { recursive: true, force: true });
  }
});

describe('a full disk (a 16 MiB tmpfs as the data dir)', () => {
  it('a push that does not fit: 507 with an OCI error body, nothing kept, the session still usable', async () => {
    await fill('filler', 1 * MB);
    expectNoSpace(await c.req('POST', `/v2/disk/push/blobs/uploads/?digest=${digestOf(BIG)}`, { headers: { 'content-type': 'application/octet-stream' }, body: BIG }), 'monolithic push');

    const post = await c.req('POST', '/v2/disk/push/blobs/uploads/');
    expect(post.status).toBe(202);
    session = post.header('location')!.split('/').pop()!.split('?')[0]!;
    expectNoSpace(await c.req('PATCH', post.header('location')!, { headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${BIG.length - 1}` }, body: BIG }), 'chunk');
    // The chunk was rolled back: the session holds what it held before it, nothing.
    const status = await c.req('GET', `/v2/disk/push/blobs/uploads/${session}`);
    expect(status.status).toBe(204);
    expect(status.header('range')).toBe('0-0');

    expect((await c.req('HEAD', `/v2/disk/push/blobs/${digestOf(BIG)}`)).status).toBe(404);
    expect(await strayUploads(), 'temp files of the failed writes').toEqual([]);
    expect(await storeProblems(node.url, node.dataDir)).toEqual([]);
  });

  it('a pull-through that does not fit: 507 before any byte is sent, nothing kept', async () => {
    const res = await c.req('GET', `/v2/disk/pull/blobs/${digestOf(pulled)}`);
    expectNoSpace(res, 'pull-through');
    expect((await diskBlobs(node.dataDir)).digests).not.toContain(digestOf(pulled));
    expect(await strayUploads(), 'temp files of the failed download').toEqual([]);
    expect(await storeProblems(node.url, node.dataDir)).toEqual([]);
  });

  it('a disk with no room at all: /healthz fails and says why, reads still work, writes get 507', async () => {
    await fill('filler-rest', 0);
    const h = await health();
    expect(h.status).toBe(503);
    expect(h.body.checks.store!.ok).toBe(false);
    expect(h.body.checks.store!.detail).toMatch(/ENOSPC/);
    const small = await c.req('GET', `/v2/disk/small/blobs/${digestOf(SMALL)}`);
    expect(small.status).toBe(200);
    expect(digestOf(small.body)).toBe(digestOf(SMALL));
    expectNoSpace(await c.req('POST', `/v2/disk/push/blobs/uploads/?digest=${digestOf(SMALL.subarray(1))}`, { headers: { 'content-type': 'application/octet-stream' }, body: SMALL.subarray(1) }), 'a small push');
    expect(await strayUploads()).toEqual([]);
    expect(await storeProblems(node.url, node.dataDir)).toEqual([]);
    expect(node.child.exitCode, 'the node is still running').toBeNull();
  });

  it('once space returns: /healthz is ok, and the same push, the interrupted session and the pull all succeed', async () => {
    for (const f of await readdir(mnt!)) if (f.startsWith('filler')) await rm(join(mnt!, f));
    expect((await health()).status).toBe(200);
    expect(await c.pushBlob('disk/push', BIG)).toBe(digestOf(BIG));
    const patch = await c.req('PATCH', `/v2/disk/push/blobs/uploads/${session}`, { headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${BIG.length - 1}` }, body: BIG });
    expect(patch.status).toBe(202);
    expect((await c.req('PUT', withQuery(patch.header('location')!, `digest=${digestOf(BIG)}`))).status).toBe(201);
    const res = await c.req('GET', `/v2/disk/pull/blobs/${digestOf(pulled)}`);
    expect(res.status).toBe(200);
    expect(digestOf(res.body)).toBe(digestOf(pulled));
    const blobs = (await diskBlobs(node.dataDir)).digests;
    expect(blobs).toEqual(expect.arrayContaining([digestOf(BIG), digestOf(pulled), digestOf(SMALL)]));
    expect(await storeProblems(node.url, node.dataDir)).toEqual([]);
  });
});
