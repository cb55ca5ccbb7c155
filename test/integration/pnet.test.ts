// The private peer network (issue 8) with real processes on loopback: one docker-registry seed, and
// `layerd serve` nodes that share a swarm key made by `layerd keygen` (K1, K2), one without a key (NOKEY),
// one with another key (WRONGKEY), and one with the right key that K1's allow-list does not name
// (UNLISTED). All of them bootstrap to K1.
//
// K1's allow-list names K2, NOKEY and WRONGKEY (and the in-test client's identity): so when NOKEY and
// WRONGKEY are kept out, the swarm key kept them out, not the list; UNLISTED, which has the key, is kept
// out by the list alone. Identities are written into the data dirs before start, so the allow-list can
// name peers that do not run yet.
//
// "Never connects" is shown by watching both sides over a window that must include bootstrap redials:
// the outsiders log each failed redial ("bootstrap dial failed"), and the window ends only once their
// failures span two redial rounds; every status read in the window must show them alone.
// libp2p 3 needs Promise.withResolvers, which Node 20 lacks: the in-test clients need layerd's polyfill.
import '../../src/polyfill.js';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blobGets, logSettled } from '../helpers/access-log.js';
import { NodeSet, type NodeStatus, type TestNode } from '../helpers/nodes.js';
import { layerdBin, removeDir, stablePort, startDistribution, tempDir, until, logLines as logOf } from '../helpers/processes.js';
import { digestOf, randomBlob, RegistryClient } from '../helpers/registry-client.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;
type Status = NodeStatus;

/** A node and the peer id written into its data dir before it started. */
type Node = TestNode & { id: string };

const BLOB_PROTOCOL = '/layerd/blob/1.0.0';
const REPO = 'test/pnet';
const BLOB_SIZE = 3_000_000;

let seed: Seed;
let registry: string;
let keyFile: string;
let keyText: string;
let wrongKeyFile: string;
/** K1's /p2p/ address, the one every node bootstraps to. */
let k1Addr: string;
let k1: Node;
let k2: Node;
let noKey: Node;
let wrongKey: Node;
let unlisted: Node;
/** The in-test libp2p client's identity: on K1's allow-list. */
let clientKey: PrivateKey;
/** A blob at the seed, pulled through K1 then fetched by K2 from K1. */
let blob: { data: Buffer; digest: string };
const nodes = new NodeSet('layerd-pnet-');
const clients: Libp2p[] = [];
const dirs: string[] = [];

/** Runs the layerd command to its end: its exit code and what it printed. */
async function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, [layerdBin, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolveRun({ status: err ? ((err as { code?: unknown }).code as number | null) : 0, stdout, stderr });
    });
  });
}

/** A data dir holding a fresh libp2p identity, and that identity's peer id. */
async function dataDirWithIdentity(name: string): Promise<{ dataDir: string; id: string }> {
  const dataDir = await tempDir(`layerd-pnet-${name}-`);
  dirs.push(dataDir);
  const key = await generateKeyPair('Ed25519');
  await mkdir(join(dataDir, 'p2p'), { recursive: true });
  await writeFile(join(dataDir, 'p2p', 'identity.key'), privateKeyToProtobuf(key), { mode: 0o600 });
  return { dataDir, id: peerIdFromPrivateKey(key).toString() };
}

async function startNode(name: string, home: { dataDir: string; id: string }, extra: string[], bootstrap?: string): Promise<Node> {
  // Four nodes start at once on a shared 2-core host: give each longer than the usual 20 s.
  const spec = { dataDir: home.dataDir, mirror: { registry, url: seed.url }, p2p: true, bootstrap, logLevel: 'debug' as const, args: extra, readyTimeoutMs: 90_000 };
  return Object.assign(await nodes.start(name, spec), { id: home.id });
}

function p2pLog(node: Node): string {
  return logOf(node)
    .filter((l) => l.component === 'p2p' || (l.level as number) >= 40)
    .slice(-30)
    .map((l) => JSON.stringify(l).slice(0, 400))
    .join('\n');
}

function peerIds(s: Status): string[] {
  return s.peers.map((p) => p.id).sort();
}

function seedGetsOf(digest: string): number {
  return blobGets(seed.output()).filter((g) => g.digest === digest).length;
}

/** An in-process libp2p node with layerd's transport stack, with or without a swarm key: an outsider's own client. */
async function rawClient(privateKey: PrivateKey, swarmKey?: Uint8Array): Promise<Libp2p> {
  const node = await createLibp2p({
    privateKey,
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(swarmKey ? { connectionProtector: preSharedKey({ psk: swarmKey }) } : {}),
  });
  clients.push(node);
  return node;
}

/** One blob protocol request on a stream the client opened: the header line and the bytes after it. */
async function requestBlob(client: Libp2p, digest: string): Promise<{ header: { status: string; length?: number }; body: Buffer }> {
  const stream = await client.dialProtocol(multiaddr(k1Addr), BLOB_PROTOCOL, { signal: AbortSignal.timeout(20_000) });
  stream.send(Buffer.from(`${JSON.stringify({ digest })}\n`));
  await stream.close();
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk instanceof Uint8Array ? chunk : chunk.subarray()));
  const all = Buffer.concat(chunks);
  const nl = all.indexOf(0x0a);
  return { header: JSON.parse(all.subarray(0, nl).toString('utf8')) as { status: string; length?: number }, body: all.subarray(nl + 1) };
}

beforeAll(async () => {
  const seedPort = await stablePort();
  registry = `127.0.0.1:${seedPort}`;
  const keys = await tempDir('layerd-pnet-keys-');
  dirs.push(keys);
  keyFile = join(keys, 'swarm.key');
  wrongKeyFile = join(keys, 'other.key');
  const names = ['k1', 'k2', 'nokey', 'wrongkey', 'unlisted'];
  // The seed, the keys and the identities at once. The keys come from the real `layerd keygen`, as an
  // operator would make them.
  const [seedProc, keygens, homeList] = await Promise.all([
    startDistribution({ port: seedPort }),
    Promise.all([keyFile, wrongKeyFile].map((f) => run(['keygen', '--out', f]))),
    Promise.all(names.map((n) => dataDirWithIdentity(n))),
  ]);
  seed = seedProc;
  for (const res of keygens) expect(res.status, res.stderr).toBe(0);
  keyText = await readFile(keyFile, 'utf8');
  const homes = Object.fromEntries(names.map((n, i) => [n, homeList[i]!]));
  clientKey = await generateKeyPair('Ed25519');
  const allow = [homes.k2!.id, homes.nokey!.id, homes.wrongkey!.id, peerIdFromPrivateKey(clientKey).toString()].flatMap((id) => ['--allow-peer', id]);
  k1 = await startNode('K1', homes.k1!, ['--psk-file', keyFile, ...allow]);
  k1Addr = (await k1.status<Status>()).multiaddrs[0]!;
  [k2, noKey, wrongKey, unlisted] = await Promise.all([
    startNode('K2', homes.k2!, ['--psk-file', keyFile], k1Addr),
    startNode('NOKEY', homes.nokey!, [], k1Addr),
    startNode('WRONGKEY', homes.wrongkey!, ['--psk-file', wrongKeyFile], k1Addr),
    startNode('UNLISTED', homes.unlisted!, ['--psk-file', keyFile], k1Addr),
  ]);
  const data = randomBlob(BLOB_SIZE);
  blob = { data, digest: await new RegistryClient(seed.url).putBlob(REPO, data) };
  expect(blob.digest).toBe(digestOf(data));
});

// A node that exits without a test stopping it has crashed.
afterEach(() => {
  const crashed = nodes.crashed();
  expect(crashed.map((n) => `${n.name}:\n${n.output().slice(-3000)}`)).toEqual([]);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => Promise.resolve(c.stop()).catch(() => undefined)));
  await nodes.stopAll('SIGKILL');
  if (seed) await seed.stop().catch(() => undefined);
  for (const d of [...dirs, ...(seed ? [seed.rootDir] : [])]) await removeDir(d);
});

describe('nodes that share a swarm key', () => {
  it('connect, and a blob pulled through K1 is fetched by K2 from K1', async () => {
    await until('K1 and K2 to see each other', async () => {
      const [a, b] = await Promise.all([k1.status<Status>(), k2.status<Status>()]);
      return peerIds(a).includes(k2.id) && peerIds(b).includes(k1.id) ? true : undefined;
    }, 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- K1 ---\n${p2pLog(k1)}\n--- K2 ---\n${p2pLog(k2)}`);
    });
    const s1 = await k1.status<Status>();
    expect(s1).toMatchObject({ privateNetwork: true, allowList: 4 });
    expect((await k2.status<Status>()).privateNetwork).toBe(true);

    const viaK1 = await k1.c.req('GET', `/v2/${REPO}/blobs/${blob.digest}`);
    expect(viaK1.status).toBe(200);
    expect(digestOf(viaK1.body)).toBe(blob.digest);
    expect(viaK1.header('x-layerd-source')).toBe('upstream');
    // K1 answered before its DHT announcement finished: wait for it, not for luck.
    await until('K1 to log "provided"', () => (logOf(k1).some((l) => l.msg === 'provided' && l.digest === blob.digest) ? true : undefined), 20_000);

    const viaK2 = await k2.c.req('GET', `/v2/${REPO}/blobs/${blob.digest}`);
    expect(viaK2.status).toBe(200);
    expect(digestOf(viaK2.body)).toBe(blob.digest);
    expect(viaK2.header('x-layerd-source'), p2pLog(k2)).toBe('peer');
    const [after1, after2] = await Promise.all([k1.status<Status>(), k2.status<Status>()]);
    expect(after1.stats.uploadedToPeers).toBeGreaterThanOrEqual(BLOB_SIZE);
    expect(after2.peers.find((p) => p.id === k1.id)?.downloaded).toBeGreaterThanOrEqual(BLOB_SIZE);
    expect(after2.stats.fetches.upstream.count).toBe(0);
    await logSettled(seed);
    expect(seedGetsOf(blob.digest), 'seed GETs of the blob').toBe(1);
  });
});

describe('a node without the key, and one with another key', () => {
  it('never connect to the keyed nodes, through bootstrap redials, while K1 and K2 stay connected', async () => {
    const outsiders = [noKey, wrongKey];
    const failedDials = (n: Node) => logOf(n).filter((l) => l.msg === 'bootstrap dial failed');
    let reads = 0;
    await until(
      'each outsider to log failed bootstrap dials over two redial rounds (3 s apart)',
      async () => {
        const [s1, s2, ...so] = await Promise.all([k1.status<Status>(), k2.status<Status>(), ...outsiders.map((n) => n.status<Status>())]);
        reads++;
        // Every read in the window: the keyed pair together, the outsiders alone on both sides.
        expect(peerIds(s1), 'K1 peers').toEqual([k2.id]);
        expect(peerIds(s2), 'K2 peers').toEqual([k1.id]);
        for (const [i, s] of so.entries()) expect(s.connectedPeers, `${outsiders[i]!.name} connected peers`).toBe(0);
        const spans = outsiders.map((n) => {
          const times = failedDials(n).map((l) => l.time as number);
          return times.length === 0 ? 0 : Math.max(...times) - Math.min(...times);
        });
        return spans.every((ms) => ms >= 3_000) ? true : undefined;
      },
      45_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- NOKEY ---\n${p2pLog(noKey)}\n--- WRONGKEY ---\n${p2pLog(wrongKey)}`);
    });
    expect(reads).toBeGreaterThan(1);
    // K1 was there to be reached: the dials failed in the handshake, not at a closed port.
    for (const n of outsiders) {
      const reasons = failedDials(n).map((l) => String(l.reason));
      expect(reasons.filter((r) => /ECONNREFUSED|denied|gater/i.test(r)), `${n.name} dial failures`).toEqual([]);
    }
    // Both are on K1's allow-list: nothing refused them but the key.
    const refusedByList = logOf(k1).filter((l) => l.msg === 'peer refused: not on the allow-list' && (l.peer === noKey.id || l.peer === wrongKey.id));
    expect(refusedByList, 'K1 allow-list refusals of NOKEY or WRONGKEY').toEqual([]);
  });

  it('find no provider in the DHT and get the blob from the seed; the keyed nodes upload nothing', async () => {
    const before = await Promise.all([k1.status<Status>(), k2.status<Status>()]);
    await logSettled(seed);
    const seedBefore = seedGetsOf(blob.digest);
    // Both at once: each waits out its peer lookup (--peer-lookup-timeout) before asking the seed.
    await Promise.all(
      [noKey, wrongKey].map(async (n) => {
        const res = await n.c.req('GET', `/v2/${REPO}/blobs/${blob.digest}`);
        expect(res.status, n.name).toBe(200);
        expect(digestOf(res.body), n.name).toBe(blob.digest);
        expect(res.header('x-layerd-source'), `${n.name}\n${p2pLog(n)}`).toBe('upstream');
        const s = await n.status<Status>();
        expect(s.stats.lookups.count, `${n.name} lookups`).toBeGreaterThanOrEqual(1);
        expect(s.stats.lookups.found, `${n.name} lookups that found a provider`).toBe(0);
        expect(s.stats.fetches.peer.count, `${n.name} blobs fetched from peers`).toBe(0);
        expect(s.connectedPeers).toBe(0);
      }),
    );
    const after = await Promise.all([k1.status<Status>(), k2.status<Status>()]);
    for (const i of [0, 1]) expect(after[i]!.stats.uploadedToPeers, `${['K1', 'K2'][i]} uploadedToPeers`).toBe(before[i]!.stats.uploadedToPeers);
    await logSettled(seed);
    expect(seedGetsOf(blob.digest), 'seed GETs of the blob: one per outsider').toBe(seedBefore + 2);
  });

  it('a raw libp2p client without the key can neither dial K1 nor open its blob protocol; with the key it can', async () => {
    // The same identity both times, and it is on K1's allow-list: only the key differs.
    const outsider = await rawClient(clientKey);
    await Promise.all([
      expect(outsider.dial(multiaddr(k1Addr), { signal: AbortSignal.timeout(20_000) })).rejects.toThrow(),
      expect(outsider.dialProtocol(multiaddr(k1Addr), BLOB_PROTOCOL, { signal: AbortSignal.timeout(20_000) })).rejects.toThrow(),
    ]);
    expect(outsider.getConnections()).toEqual([]);
    await outsider.stop();

    const member = await rawClient(clientKey, new TextEncoder().encode(keyText));
    const { header, body } = await requestBlob(member, blob.digest);
    expect(header).toMatchObject({ status: 'ok', length: BLOB_SIZE });
    expect(digestOf(body)).toBe(blob.digest);
    await member.stop();
  });
});

describe('the allow-list', () => {
  it('refuses a node that has the key but is not on it; a node on it (K2) connects', async () => {
    const refusals = () => logOf(k1).filter((l) => l.msg === 'peer refused: not on the allow-list' && l.peer === unlisted.id);
    await until('K1 to log that it refused UNLISTED', () => (refusals().length > 0 ? true : undefined), 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- K1 ---\n${p2pLog(k1)}\n--- UNLISTED ---\n${p2pLog(unlisted)}`);
    });
    expect(refusals()[0]).toMatchObject({ direction: 'inbound', stage: 'handshake' });
    const [s1, su] = await Promise.all([k1.status<Status>(), unlisted.status<Status>()]);
    expect(s1.refusedPeers).toBeGreaterThan(0);
    expect(peerIds(s1)).toContain(k2.id);
    expect(peerIds(s1)).not.toContain(unlisted.id);
    expect(su.connectedPeers).toBe(0);
    expect(su.privateNetwork).toBe(true);
  });

  it('refuses a raw client with the key whose id is not on it, at the handshake', async () => {
    const stranger = await rawClient(await generateKeyPair('Ed25519'), new TextEncoder().encode(keyText));
    await expect(stranger.dialProtocol(multiaddr(k1Addr), BLOB_PROTOCOL, { signal: AbortSignal.timeout(20_000) })).rejects.toThrow();
    const id = stranger.peerId.toString();
    await until('K1 to log that it refused the stranger', () => (logOf(k1).some((l) => l.msg === 'peer refused: not on the allow-list' && l.peer === id) ? true : undefined), 10_000);
    expect(peerIds(await k1.status<Status>())).not.toContain(id);
    expect(stranger.getConnections()).toEqual([]);
    await stranger.stop();
  });
});

describe('keygen and bad key files', () => {
  it('keygen wrote a 0600 key file; a second keygen onto it refuses and leaves it alone', async () => {
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const again = await run(['keygen', '--out', keyFile]);
    expect(again.status).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/^layerd: keygen: .*already exists/);
    expect(await readFile(keyFile, 'utf8')).toBe(keyText);
    const printed = await run(['keygen']);
    expect(printed.status).toBe(0);
    expect(printed.stdout).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
    expect(printed.stdout).not.toBe(keyText);
  });

  it.each([
    ['a missing key file', (d: string) => ['--psk-file', join(d, 'missing.key')], /^layerd: psk-file: cannot read .*: ENOENT$/],
    ['a malformed key file', (d: string) => ['--psk-file', join(d, 'bad.key')], /^layerd: psk-file: .*bad\.key: the key line must be 64 hex digits, not 10$/],
    ['a key file that is a directory', (d: string) => ['--psk-file', d], /^layerd: psk-file: .* is not a regular file$/],
    ['a bad peer id', () => ['--allow-peer', '12D3KooWnotapeer'], /^layerd: allow-peer: invalid peer id "12D3KooWnotapeer"/],
  ])('serve with %s exits 2 with one line', async (_what, args, message) => {
    const d = await tempDir('layerd-pnet-bad-');
    dirs.push(d);
    await writeFile(join(d, 'bad.key'), '/key/swarm/psk/1.0.0/\n/base16/\n0123456789\n');
    const res = await run(['serve', '--listen', '127.0.0.1:0', '--data-dir', join(d, 'data'), '--p2p-listen', '/ip4/127.0.0.1/tcp/0', ...args(d)]);
    expect(res.status, res.stderr).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe('the key itself', () => {
  it('no node shows or logs the key, in its status or anywhere in its output', async () => {
    const hex = keyText.trim().split('\n')[2]!;
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    for (const n of nodes.nodes) {
      expect(JSON.stringify(await n.status<Status>()), `${n.name} status`).not.toContain(hex);
      expect(n.output(), `${n.name} output`).not.toContain(hex);
    }
  });
});
