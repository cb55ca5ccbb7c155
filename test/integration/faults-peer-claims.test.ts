// A peer that claims a size the blob cannot have (issue 13, item 5): 2^50 bytes, a size larger than the
// layer's descriptor in the manifest the client just pulled, or more than this node's disk can hold. Real
// processes: a layerd node (the victim) with a docker-registry seed, an honest second node, and a
// bad-peer process (test/helpers/bad-peer.mjs) whose fresh libp2p identity is the only provider of the
// blob. Each pull must complete from the seed with the right bytes (never a 507), the liar must be asked
// and penalized (a warning in the victim's log names it), and the victim must not read more of the
// liar's bytes than the size it trusts.
import { statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiarRig, type BadPeers, type LiarRig } from '../helpers/bad-peers.js';
import { logLines, nodeApi, until } from '../helpers/processes.js';
import { digestOf, RegistryClient } from '../helpers/registry-client.js';
import { storeProblems } from '../helpers/store-check.js';


const LAYER = 64 * 1024;
/** The peer fetcher's range size: the most a peer's claim that nothing but the disk can refuse may cost. */
const RANGE = 8 * 1024 * 1024;

let rig: LiarRig;
let seed: LiarRig['seed'];
let victim: LiarRig['victim'];
let bad: BadPeers;
let dir: string;
let bootstrap: string;

interface Status {
  multiaddrs: string[];
  connectedPeers: number;
  peers: Array<{ id: string; downloaded: number }>;
}

beforeAll(async () => {
  rig = await startLiarRig({ prefix: 'layerd-claims-', peerIdleTimeout: '2s' });
  ({ seed, victim, bad, dir, bootstrap } = rig);
}, 120_000);

afterAll(() => rig?.stop());

/** The victim's warning that penalizes this peer (its message), if it logged one. */
function penalty(peerId: string): string | undefined {
  const line = logLines(victim).find((l) => {
    const peers = [l.peer, ...(Array.isArray(l.peers) ? l.peers : [])];
    return (l.level as number) >= 40 && /penalized/.test(String(l.msg)) && peers.includes(peerId);
  });
  return line && String(line.msg);
}

/**
 * One run: an image on the seed, a liar announcing its layer with `claim(layerSize)` as the size, and a
 * client pulling the layer through the victim (after the manifest when `manifestFirst`). Returns what
 * the victim read from the liar.
 */
async function run(name: string, claim: (size: number) => number, manifestFirst: boolean): Promise<{ downloaded: number; layer: Buffer; why: string }> {
  const repo = `claims/${name}`;
  const image = await new RegistryClient(seed.url).pushImage(repo, 'v1', { layerSize: LAYER });
  const layer = image.layers[0]!;
  const digest = digestOf(layer);
  const file = join(dir, name);
  await writeFile(file, layer);
  const peerId = await bad.serve(name, bootstrap, digest, file, 'claim', { claimSize: claim(layer.length) });
  const c = new RegistryClient(victim.url);
  if (manifestFirst) expect((await c.req('GET', `/v2/${repo}/manifests/v1`)).status, 'the manifest').toBe(200);
  const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`);
  expect(res.status, `the pull (${res.body.toString().slice(0, 300)})`).toBe(200);
  expect(digestOf(res.body), 'the bytes the client got').toBe(digest);
  expect(res.header('x-layerd-source')).toBe('upstream');
  expect(bad.asked.get(name) ?? [], 'the liar was asked (it was the only provider)').toContain(digest);
  const why = await until(`a warning that penalizes the liar ${peerId}`, () => penalty(peerId), 10_000);
  // What the victim read from the liar, while the liar is still connected (it stays until stopped).
  const entry = await until('the liar among the victim\'s peers', async () => (await nodeApi<Status>(victim, '/api/status')).body.peers.find((p) => p.id === peerId), 10_000);
  await bad.stop(name);
  return { downloaded: entry.downloaded, layer, why };
}

describe('a peer claiming a size the blob cannot have', () => {
  it('2^50 bytes for a layer whose manifest the client pulled: penalized, nothing of it read, the pull served by the seed', { timeout: 120_000 }, async () => {
    const { downloaded, why } = await run('huge-known', () => 2 ** 50, true);
    expect(why).toMatch(/claimed a size the blob cannot have/);
    expect(downloaded, 'bytes the victim read from the liar').toBe(0);
  });

  it('1000 bytes more than the manifest\'s descriptor says: penalized before its bytes are read', { timeout: 120_000 }, async () => {
    const { downloaded, layer, why } = await run('larger-than-descriptor', (size) => size + 1000, true);
    // Judged on its claim (not on bytes that failed to verify), so none of them were read.
    expect(why).toMatch(/claimed a size the blob cannot have/);
    expect(downloaded, 'bytes the victim read from the liar').toBeLessThanOrEqual(layer.length);
    expect(downloaded).toBe(0);
  });

  it('2^50 bytes for a blob asked for by digest alone (no manifest seen): beyond any limit, penalized, served by the seed', { timeout: 120_000 }, async () => {
    const { downloaded, why } = await run('huge-unknown', () => 2 ** 50, false);
    expect(why).toMatch(/claimed a size the blob cannot have/);
    expect(downloaded, 'bytes the victim read from the liar').toBe(0);
  });

  it('more than the disk holds, with no manifest seen: the next source (the seed) is asked instead of a 507, and the liar penalized once the true size is known', { timeout: 120_000 }, async () => {
    const fs = await statfs(victim.dataDir);
    const free = fs.bavail * fs.bsize;
    const { downloaded, why } = await run('beyond-disk', () => free + 2 ** 30, false);
    // A claim this large that no manifest confirmed is held against the seed's HEAD once its first range
    // is in (before the disk's room is even asked): the true size is known from the seed at once.
    expect(why).toMatch(/claimed a size the seed does not give the blob/);
    // Nothing could refuse this claim before its first range arrived; no more is read.
    expect(downloaded, 'bytes the victim read from the liar').toBeLessThanOrEqual(RANGE);
  });

  it('leaves a sound store and a running node', async () => {
    expect(await storeProblems(victim.url, victim.dataDir)).toEqual([]);
    expect(victim.child.exitCode).toBeNull();
  });
});
