// The provide sweep's own ADD_PROVIDER path over real libp2p nodes on loopback, in this process: node A
// announces a blob to the peers it picks (the `replication` closest to the blob's key), never through
// kad-dht's provide. Asked directly, the picked peers hold A's record and the others do not; then A
// stops, and another node's ordinary kad-dht lookup still finds A: the answer can only come from the
// records kad-dht's handler on the picked peers stored from our messages.
import '../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/oci/digest.js';
import { digestToCid } from '../../src/p2p/cid.js';
import { DhtContentRouter, ownProviderRecords } from '../../src/p2p/dht-router.js';
import { KadMessageType, frameKadMessage, readKadFrame, type KadMessage } from '../../src/p2p/kad-message.js';
import { sendAddProvider } from '../../src/p2p/kad-provide.js';
import { blobKadKey, closestTo, kadKeyOf } from '../../src/p2p/keyspace.js';
import { DHT_PROTOCOL, createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';

const NODES = 5;
const REPLICATION = 2;

async function node(bootstrap: string[]): Promise<LayerdLibp2p> {
  return createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap, providerTtlMs: 3_600_000 });
}

async function until(what: string, done: () => boolean | Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One kad request and its answer, read with our own decoder (a test's window into a peer's record store). */
async function askKad(from: LayerdLibp2p, to: LayerdLibp2p, message: KadMessage): Promise<KadMessage> {
  const stream: Stream = await from.dialProtocol(to.peerId, DHT_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
  try {
    stream.send(frameKadMessage(message));
    await stream.close();
    let buf = new Uint8Array(0);
    const end = Date.now() + 5_000;
    for await (const chunk of stream) {
      buf = new Uint8Array([...buf, ...chunk.subarray()]);
      const frame = readKadFrame(buf);
      if (frame) return frame.message;
      if (Date.now() > end) break;
    }
    throw new Error('no answer');
  } finally {
    stream.abort(new Error('done'));
  }
}

describe('provide sweep over real kad-dht nodes', () => {
  let nodes: LayerdLibp2p[] = [];

  beforeAll(async () => {
    const first = await node([]);
    const rest = await Promise.all(Array.from({ length: NODES - 1 }, () => node([first.getMultiaddrs()[0]!.toString()])));
    nodes = [first, ...rest];
    // Every routing table holds every other node: the walk of a 5-node network then meets them all. A table
    // takes in connected peers only (routing-table-contacts.ts), and the self-queries that would connect them
    // come at random moments of FIRST_SELF_QUERY_MS and need not reach every pair: the test connects them.
    await Promise.all(nodes.flatMap((n, i) => nodes.slice(i + 1).map((m) => n.dial(m.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) }))));
    const tableSize = (n: LayerdLibp2p) => (n.services.dht as unknown as { routingTable: { size: number } }).routingTable.size;
    await until('routing tables filled', () => nodes.every((n) => tableSize(n) === NODES - 1), 30_000);
  });
  afterAll(async () => void (await Promise.all(nodes.map((n) => n.stop()))));

  it("stores A's record on the peers A picked, where another node's lookup finds it with A gone", async () => {
    const [a, ...others] = nodes as [LayerdLibp2p, ...LayerdLibp2p[]];
    const router = new DhtContentRouter(a, { replication: REPLICATION });
    const digest = digestOf(Buffer.from(`sweep blob ${Math.random()}`));
    const peerKey = (n: LayerdLibp2p) => kadKeyOf(n.peerId.toMultihash().bytes);
    const picked = closestTo(
      blobKadKey(digest),
      others.map((n) => ({ n, key: peerKey(n) })),
      REPLICATION,
    ).map((p) => p.n);
    const notPicked = others.filter((n) => !picked.includes(n));
    const [finder, bystander] = notPicked as [LayerdLibp2p, LayerdLibp2p];

    expect(ownProviderRecords(a.services.dht, a.peerId)).toBeDefined(); // kad-dht's store is where we reach it
    await router.provide(digest);
    expect(router.counts).toEqual({ provides: 1, failures: 0 });

    // Asked directly (GET_PROVIDERS, our decoder reading kad-dht's answer): exactly the picked peers hold
    // it, and A itself (its own record, as kad-dht's provide keeps one).
    const key = digestToCid(digest).multihash.bytes;
    const holds = async (n: LayerdLibp2p) => {
      const answer = await askKad(bystander === n ? finder : bystander, n, { type: KadMessageType.GET_PROVIDERS, key, closer: [], providers: [] });
      return answer.providers.some((p) => Buffer.from(p.id).equals(Buffer.from(a.peerId.toMultihash().bytes)));
    };
    for (const n of picked) expect(await holds(n)).toBe(true);
    for (const n of notPicked) expect(await holds(n)).toBe(false);
    expect(await holds(a)).toBe(true);

    // A gone, the finder's ordinary lookup (kad-dht's findProviders, through the router) still names A.
    await a.stop();
    const finderRouter = new DhtContentRouter(finder);
    let found: string[] = [];
    await until('lookup finds A', async () => {
      found = [];
      for await (const p of finderRouter.findProviders(digest, { signal: AbortSignal.timeout(3_000) })) found.push(p.id);
      return found.length > 0;
    });
    expect(found).toEqual([a.peerId.toString()]);
  });

  it('gives up on a peer that holds the stream without answering, or answers junk, and resets the stream', async () => {
    const [, a, b] = nodes as [LayerdLibp2p, LayerdLibp2p, LayerdLibp2p]; // node 0 was stopped above
    const held: Stream[] = [];
    await b.handle('/layerd-test/silent/1.0.0', (stream: Stream) => void held.push(stream));
    await b.handle('/layerd-test/junk/1.0.0', (stream: Stream) => void stream.send(new Uint8Array(4096).fill(0xff)));
    const key = digestToCid(digestOf(Buffer.from('hostile'))).multihash.bytes;
    const to = { id: b.peerId };
    await expect(sendAddProvider(a, to, key, { protocol: '/layerd-test/silent/1.0.0', timeoutMs: 500 })).rejects.toThrow(/not done within 500 ms/);
    // Our side reset the stream: the silent peer's end is closed too, nothing stays open.
    await until('the silent peer sees its stream reset', () => held.length === 1 && held[0]!.status !== 'open');
    await expect(sendAddProvider(a, to, key, { protocol: '/layerd-test/junk/1.0.0', timeoutMs: 5_000 })).rejects.toThrow();
    // A node that does not speak the protocol at all is a failed dial, not a hang.
    await expect(sendAddProvider(a, to, key, { protocol: '/layerd-test/absent/1.0.0', timeoutMs: 5_000 })).rejects.toThrow();
    // And a record sent the ordinary way afterwards still goes through on the same connection.
    await sendAddProvider(a, to, key, { protocol: DHT_PROTOCOL });
  });
});
