// Integration: a layerd cluster on one machine, each host in its own network namespace on a bridge, every link
// capped by tbf (scripts/cluster/netns-cluster-lib.mjs, what benchmarks and cluster tests build on). Needs root
// and iproute2, as CI has; without them the first test fails with the reason (it never skips: a cluster test
// that silently does not run proves nothing).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { namespacesOf, startCluster, type Cluster } from '../../scripts/cluster/netns-cluster-lib.mjs';
import { blobGets } from '../helpers/access-log.js';
import { waitForExit } from '../helpers/netns.js';
import { removeDir, tempDir, until } from '../helpers/processes.js';

const execFileP = promisify(execFile);
const RATE_BITS = 50e6;
const REPO = 'test/netns';

let work: string;
let cluster: Cluster | undefined;
let startError: unknown;

const started = (): Cluster => {
  if (!cluster) throw new Error(`the cluster did not start (see the first test): ${String(startError)}`);
  return cluster;
};

/** When a test fails, the end of every server's log says why. */
function showLogsOnFailure(): void {
  onTestFailed(() => {
    for (const h of cluster ? [cluster.seed, ...cluster.nodes] : []) {
      const lines = h.output().trimEnd().split('\n');
      console.error(`--- ${h.name} (${h.ns}): last ${Math.min(30, lines.length)} of ${lines.length} lines ---\n${lines.slice(-30).join('\n')}`);
    }
  });
}

/** `rate 50Mbit` as tc prints it → bits per second. */
function tbfRate(qdiscs: string): number | undefined {
  const m = /^qdisc tbf \S+ root .*\brate (\d+(?:\.\d+)?)([KMG]?)bit\b/m.exec(qdiscs);
  return m ? Number(m[1]) * { '': 1, K: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'K' | 'M' | 'G'] : undefined;
}

beforeAll(async () => {
  work = await tempDir('layerd-netns-cluster-');
});

afterAll(async () => {
  await cluster?.stop();
  if (work) await removeDir(work);
});

describe('a cluster on one machine: seed + 3 nodes, each in its own network namespace, links capped at 50mbit', () => {
  it('starts, and every node answers from another namespace and is connected to a peer', { timeout: 120_000 }, async () => {
    try {
      cluster = await startCluster({ nodes: 3, rate: '50mbit', prefix: 'lctest', timeoutMs: 90_000 });
    } catch (err) {
      startError = err;
      throw err;
    }
    showLogsOnFailure();
    console.log(`cluster ${cluster.id} up in ${cluster.setupMs} ms (namespaces, veths and tbf: ${cluster.networkMs} ms)`);
    expect(cluster.nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n3']);
    expect(new Set([cluster.seed, ...cluster.nodes].map((h) => h.addr)).size).toBe(4);

    for (const node of cluster.nodes) {
      // Asked from the seed's namespace: the answer crossed the bridge, not a namespace's own loopback.
      const status = await until(
        `${node.name} connected to a peer`,
        async () => {
          const res = await cluster!.http(cluster!.seed.ns, `${node.url}/api/status`);
          const body = res.status === 200 ? (JSON.parse(res.body!) as { peerId: string; connectedPeers: number }) : undefined;
          return body && body.connectedPeers >= 1 ? body : undefined;
        },
        30_000,
      );
      expect(status.peerId).toBe(node.peerId);
    }
  });

  it('shapes each host link both ways with tbf at the requested rate', async () => {
    const c = started();
    for (const h of [c.seed, ...c.nodes]) {
      const { stdout: own } = await execFileP('tc', ['-n', h.ns, 'qdisc', 'show', 'dev', 'eth0']);
      expect(tbfRate(own), `${h.ns} eth0:\n${own}`).toBe(RATE_BITS);
      const { stdout: hub } = await execFileP('tc', ['-n', c.hub.ns, 'qdisc', 'show', 'dev', h.hubVeth]);
      expect(tbfRate(hub), `${c.hub.ns} ${h.hubVeth}:\n${hub}`).toBe(RATE_BITS);
    }
    // The cluster's subnet lives in its namespaces only.
    const { stdout: rootAddrs } = await execFileP('ip', ['-4', '-o', 'addr', 'show']);
    for (const h of [c.seed, ...c.nodes]) expect(rootAddrs).not.toContain(` ${h.addr}/`);
  });

  it('a blob pushed to the seed and pulled through node 1 arrives bit-identical; the seed sent it once', { timeout: 60_000 }, async () => {
    const c = started();
    showLogsOnFailure();
    const blob = randomBytes(3 * 1024 * 1024);
    const hex = createHash('sha256').update(blob).digest('hex');
    const digest = `sha256:${hex}`;
    const blobFile = join(work, 'blob');
    await writeFile(blobFile, blob);

    // Pushed inside the seed's namespace to its own address: that traffic stays on its loopback, off eth0.
    const post = await c.seed.http(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect(post.status, post.body).toBe(202);
    const put = new URL(String(post.headers.location), c.seed.url);
    put.searchParams.set('digest', digest);
    const pushed = await c.http(c.seed.ns, put.href, { method: 'PUT', bodyFile: blobFile, headers: { 'content-type': 'application/octet-stream' } });
    expect(pushed.status, pushed.body).toBe(201);

    const sentBefore = await c.bytesSent('seed');
    const outFile = join(work, 'pulled');
    const [n1] = c.nodes;
    const pulled = await n1!.http(`/v2/${REPO}/blobs/${digest}`, { outFile, timeoutMs: 45_000 });
    expect(pulled.status).toBe(200);
    expect(pulled.headers['x-layerd-source']).toBe('upstream');
    expect(pulled.size).toBe(blob.length);
    expect(pulled.sha256).toBe(hex);
    expect((await readFile(outFile)).equals(blob)).toBe(true);

    // distribution logs a request when it has answered it: wait for the line, then count.
    const gets = await until('the blob GET in the seed access log', () => {
      const found = blobGets(c.seed.output()).filter((g) => g.digest === digest);
      return found.length > 0 ? found : undefined;
    });
    expect(gets.map((g) => `${g.status} ${g.userAgent}`)).toEqual([expect.stringMatching(/^200 layerd\//)]);
    const sent = (await c.bytesSent('seed')) - sentBefore;
    expect(sent, `the seed's eth0 sent ${sent} bytes for a ${blob.length}-byte blob`).toBeGreaterThanOrEqual(blob.length);
    expect(await c.bytesReceived('n1')).toBeGreaterThanOrEqual(blob.length);
  });

  it('stop() leaves no namespace of the run, no process it started, no run dir', { timeout: 60_000 }, async () => {
    const c = started();
    const pids = [c.seed.pid, ...c.nodes.map((n) => n.pid), ...c.pids()];
    expect(await namespacesOf(c.id)).toHaveLength(5);
    await c.stop();
    console.log(`cluster ${c.id} torn down in ${c.teardownMs} ms`);
    expect(await namespacesOf(c.id)).toEqual([]);
    expect(await waitForExit(pids, 0)).toEqual([]);
    expect(existsSync(c.runDir)).toBe(false);
  });
});
