// A host that vanishes (power lost, network cut) closes none of its connections: its peers hear nothing more
// and, without a watch on them, kept its connections (and it, in their rankings and claim chains) until TCP
// gave up on a write, many minutes later. Here a seed and three layerd nodes run in network namespaces
// (scripts/cluster/netns-cluster-lib.mjs; needs root and iproute2, as CI has, and fails without them); node 3
// holds a blob and coordinates its claims, then its link is taken down from the bridge's side while its process
// runs on, so nothing of it closes. Node 1 then pulls that blob: its claim question goes to node 3 and, once
// the connection watch (p2p/connection-watch.ts) closes that silent connection, the pull ends from the seed
// instead of hanging. Node 2, idle towards node 3, drops it too, when its kernel's TCP keep-alive goes
// unanswered (the idle bound: no ping of node 2's own, no timer; liveness.ts). The waits poll with
// the bounds of p2p/liveness.ts plus room for a loaded box; the times they took are printed, not asserted.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { startCluster, type Cluster, type ClusterHost } from '../../scripts/cluster/netns-cluster-lib.mjs';
import { parseDigest } from '../../src/oci/index.js';
import { coordinatorOf, DEFAULT_LIVENESS, detectionBoundMs, SWEEP_MS } from '../../src/p2p/index.js';
import { blobGets } from '../helpers/access-log.js';
import { removeDir, tempDir, until } from '../helpers/processes.js';

const execFileP = promisify(execFile);
const REPO = 'test/vanish';
/** Room on top of a bound for a box running this test beside others (a status poll alone spawns a process). */
const SLACK_MS = 15_000;
let work: string;
let cluster: Cluster;

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function status(host: ClusterHost): Promise<{ peers: Array<{ id: string }> }> {
  const res = await host.http('/api/status');
  return JSON.parse(res.body!) as { peers: Array<{ id: string }> };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls once a second (each poll spawns a process in the namespace) until `host` has no connection to `peer`. */
async function dropped(host: ClusterHost, peer: string, since: number, timeoutMs: number): Promise<number> {
  const deadline = since + timeoutMs;
  for (;;) {
    if (!(await status(host)).peers.some((p) => p.id === peer)) return Date.now() - since;
    if (Date.now() > deadline) throw new Error(`${host.name} still connected to the vanished peer after ${timeoutMs} ms`);
    await sleep(1_000);
  }
}

/** A blob pushed to the seed whose claims node `coordinator` answers (of the three nodes' ids). */
async function pushBlobCoordinatedBy(coordinator: ClusterHost): Promise<Buffer> {
  const ids = cluster.nodes.map((n) => n.peerId!);
  let blob: Buffer;
  do blob = randomBytes(2 * 1024 * 1024);
  while (coordinatorOf(parseDigest(sha256(blob)), ids) !== coordinator.peerId);
  const post = await cluster.seed.http(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  expect(post.status).toBe(202);
  const put = new URL(String(post.headers.location), cluster.seed.url);
  put.searchParams.set('digest', sha256(blob));
  const file = join(work, 'blob');
  await writeFile(file, blob);
  const res = await cluster.http(cluster.seed.ns, put.href, { method: 'PUT', bodyFile: file, headers: { 'content-type': 'application/octet-stream' } });
  expect(res.status, res.body).toBe(201);
  return blob;
}

beforeAll(async () => {
  work = await tempDir('layerd-vanish-netns-');
  cluster = await startCluster({ nodes: 3, rate: '50mbit', prefix: 'lcvanish', timeoutMs: 120_000 });
  for (const n of cluster.nodes) {
    await until(`${n.name} to see the other two`, async () => ((await status(n)).peers.length >= 2 ? true : undefined), 60_000);
  }
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  if (work) await removeDir(work);
});

describe('a host that vanishes without closing its connections', () => {
  it('is dropped by its peers within the bounds, and a pull that asked it ends from the seed', { timeout: 240_000 }, async () => {
    onTestFailed(() => {
      for (const h of [cluster.seed, ...cluster.nodes]) console.error(`--- ${h.name} ---\n${h.output().trimEnd().split('\n').slice(-25).join('\n')}`);
    });
    const [n1, n2, n3] = cluster.nodes as [ClusterHost, ClusterHost, ClusterHost];
    const blob = await pushBlobCoordinatedBy(n3);
    const digest = sha256(blob);
    const held = await n3.http(`/v2/${REPO}/blobs/${digest}`, { outFile: '/dev/null', timeoutMs: 30_000 });
    expect(held.status).toBe(200);

    // The link goes down at the bridge: node 3's process runs on and closes nothing, its peers hear nothing.
    await execFileP('ip', ['-n', cluster.hub.ns, 'link', 'set', n3.hubVeth, 'down']);
    const vanished = Date.now();

    const pulled = await n1.http(`/v2/${REPO}/blobs/${digest}`, { outFile: '/dev/null', timeoutMs: detectionBoundMs(true, SWEEP_MS) + 30_000 });
    const pullMs = Date.now() - vanished;
    expect(pulled.status).toBe(200);
    expect(`sha256:${pulled.sha256}`).toBe(digest);
    expect(pulled.headers['x-layerd-source']).toBe('upstream');
    const busyMs = await dropped(n1, n3.peerId!, vanished, detectionBoundMs(true, SWEEP_MS) + SLACK_MS);
    const idleMs = await dropped(n2, n3.peerId!, vanished, detectionBoundMs(false, SWEEP_MS) + SLACK_MS);
    console.log(`vanished ${n3.name}: ${n1.name}'s pull done in ${pullMs} ms, ${n1.name} dropped it by ${busyMs} ms, ${n2.name} by ${idleMs} ms (bounds: busy ${detectionBoundMs(true, SWEEP_MS)} ms, idle ${detectionBoundMs(false, SWEEP_MS)} ms; times ${JSON.stringify(DEFAULT_LIVENESS)})`);

    // Closed by the watch (its log line), node 3 left out: the seed sent the blob once to node 3, once to node 1.
    expect(n1.output()).toMatch(/a peer fell silent/);
    // Node 2's closed and reported too (by its kernel when the connection was idle: "TCP timed out").
    expect(n2.output()).toMatch(/a peer fell silent/);
    const gets = await until('the seed to log both GETs', () => {
      const found = blobGets(cluster.seed.output()).filter((g) => g.digest === digest);
      return found.length >= 2 ? found : undefined;
    });
    expect(gets).toHaveLength(2);
    // Nothing of node 3 ended: only its link went.
    expect(() => process.kill(n3.pid, 0)).not.toThrow();
  });
});
