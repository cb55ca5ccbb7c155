// The DHT router and the blob protocol over real libp2p nodes on loopback, in this process.
import '../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/oci/digest.js';
import { fetchFromPeer, handleBlobProtocol, storeLookup, PeerFetchError } from '../../src/p2p/blob-protocol.js';
import { DhtContentRouter } from '../../src/p2p/dht-router.js';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { MemoryBlobStore } from '../../src/store/memory-blob-store.js';
import { describeContentRouter, type RouterCluster } from '../unit/p2p/content-router.conformance.js';

async function node(bootstrap: string[], providerTtlMs = 3_600_000): Promise<LayerdLibp2p> {
  return createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap, providerTtlMs });
}

async function untilConnected(nodes: LayerdLibp2p[], deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (nodes.some((n) => n.getConnections().length === 0)) {
    if (Date.now() > end) throw new Error('nodes did not connect');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function cluster(size = 3, providerTtlMs?: number): Promise<{ nodes: LayerdLibp2p[]; close(): Promise<void> }> {
  const first = await node([], providerTtlMs);
  const rest = await Promise.all(Array.from({ length: size - 1 }, () => node([first.getMultiaddrs()[0]!.toString()], providerTtlMs)));
  const nodes = [first, ...rest];
  await untilConnected(nodes);
  return { nodes, close: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

/**
 * Provider records live 6 s here, so a withdraw shows within a test: the others drop a record once it
 * expires, at their next cleanup (every quarter of the lifetime); live providers re-provide at half of it.
 */
const CONFORMANCE_TTL_MS = 6_000;

describeContentRouter('kad-dht on loopback', async (): Promise<RouterCluster> => {
  const c = await cluster(3, CONFORMANCE_TTL_MS);
  return {
    // Re-provided at half the records' life, as the daemon does (node/p2p.ts), so a provider still providing stays found.
    routers: c.nodes.map((n) => ({ id: n.peerId.toString(), router: new DhtContentRouter(n, { reprovideIntervalMs: CONFORMANCE_TTL_MS / 2 }) })),
    withdrawnWithinMs: CONFORMANCE_TTL_MS * 1.25,
    close: c.close,
  };
});

describe('blob protocol', () => {
  let c: { nodes: LayerdLibp2p[]; close(): Promise<void> };
  const store = new MemoryBlobStore();
  // Larger than a yamux window: a transfer the client does not read stays open on the server.
  const data = Buffer.alloc(40 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 0xff;
  const digest = digestOf(data);

  beforeAll(async () => {
    c = await cluster(2);
    await store.put(Readable.from([data]), digest);
    await handleBlobProtocol(c.nodes[0]!, storeLookup(store), { maxUploadsPerPeer: 2 });
  });
  afterAll(async () => c?.close());

  const server = () => ({ id: c.nodes[0]!.peerId.toString(), addrs: c.nodes[0]!.getMultiaddrs().map((a) => a.toString()) });
  const read = async (body: Readable) => {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  };

  it('sends a whole blob and a range of it', async () => {
    const whole = await fetchFromPeer(c.nodes[1]!, server(), digest, undefined);
    expect(whole).toMatchObject({ size: data.length, start: 0, length: data.length });
    expect((await read(whole.body)).equals(data)).toBe(true);
    const part = await fetchFromPeer(c.nodes[1]!, server(), digest, { start: 1_000_000, end: 1_000_099 });
    expect(part).toMatchObject({ size: data.length, start: 1_000_000, length: 100 });
    expect((await read(part.body)).equals(data.subarray(1_000_000, 1_000_100))).toBe(true);
  });

  it('answers not-found for a blob it does not hold and bad-request for a range past the end', async () => {
    await expect(fetchFromPeer(c.nodes[1]!, server(), digestOf(Buffer.from('absent')), undefined)).rejects.toMatchObject({ status: 'not-found' });
    await expect(fetchFromPeer(c.nodes[1]!, server(), digest, { start: data.length + 10, end: data.length + 20 })).rejects.toBeInstanceOf(PeerFetchError);
  });

  it('answers busy past the per-peer upload limit, and serves again once transfers end', async () => {
    const held = await Promise.all([1, 2].map(() => fetchFromPeer(c.nodes[1]!, server(), digest, undefined)));
    await expect(fetchFromPeer(c.nodes[1]!, server(), digest, undefined)).rejects.toMatchObject({ status: 'busy' });
    for (const h of held) expect((await read(h.body)).length).toBe(data.length);
    const again = await fetchFromPeer(c.nodes[1]!, server(), digest, { start: 0, end: 9 });
    expect((await read(again.body)).equals(data.subarray(0, 10))).toBe(true);
  });

  it('reports an unreachable peer', async () => {
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
    await expect(fetchFromPeer(c.nodes[1]!, { id: stranger, addrs: ['/ip4/127.0.0.1/tcp/1'] }, digest, undefined, AbortSignal.timeout(5_000))).rejects.toMatchObject({
      status: 'unreachable',
    });
  });
});
