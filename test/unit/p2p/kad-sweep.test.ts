// The daemon's sweep executor against a stand-in libp2p: what a walk returns and reports, which peers a
// key's ADD_PROVIDER goes to, and that a peer which failed is skipped for a while (the next closest
// taking its place) instead of costing every key a timeout.
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Libp2p, PeerId } from '@libp2p/interface';
import type { KadDHT } from '@libp2p/kad-dht';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { KadSweepExecutor } from '../../../src/p2p/kad-sweep.js';
import { blobKadKey, closestTo, kadKeyOf, walkCovers, type KadKey } from '../../../src/p2p/keyspace.js';

async function peerIds(n: number): Promise<PeerId[]> {
  return Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))));
}

async function fixture(replication: number) {
  const [self, ...others] = await peerIds(9);
  const dialed: string[] = [];
  const sizes: number[] = [];
  let now = 0;
  const libp2p = {
    peerId: self!,
    getMultiaddrs: () => [],
    services: {
      dht: {
        async *getClosestPeers() {
          for (const p of others) yield { name: 'SEND_QUERY', to: p };
          for (const p of others) yield { name: 'FINAL_PEER', peer: { id: p, multiaddrs: [] } };
        },
      },
    },
    // Every peer refuses: each ADD_PROVIDER fails at its dial.
    dialProtocol: async (target: PeerId) => {
      dialed.push(target.toString());
      throw new Error('refused');
    },
  } as unknown as Libp2p<{ dht: KadDHT }>;
  const exec = new KadSweepExecutor(libp2p, {
    protocol: '/test/kad/1.0.0',
    replication,
    k: 20,
    regionBits: () => 0,
    onNetworkSize: (n) => sizes.push(n),
    downMs: 60_000,
    now: () => now,
  });
  const byDistance = (digest: string) =>
    closestTo(
      blobKadKey(digest as never),
      others.map((id) => ({ id: id.toString(), key: kadKeyOf(id.toMultihash().bytes) })),
      others.length,
    ).map((p) => p.id);
  return { exec, others, dialed, sizes, byDistance, advance: (ms: number) => void (now += ms) };
}

describe('KadSweepExecutor', () => {
  it("returns the walk's peers and its requests, and reports the network's size between batches", async () => {
    const { exec, others, sizes } = await fixture(3);
    const digest = digestOf(Buffer.from('walked'));
    const walked = await exec.walk(0, digest);
    expect(walked.requests).toBe(others.length);
    expect(walked.peers.sort()).toEqual(others.map((p) => p.toString()).sort());
    expect(sizes).toEqual([]); // not while the sweep records the walk
    await exec.announce([digest], walked.peers);
    expect(sizes).toEqual([others.length + 1]); // fewer than k met: that is everyone, and this node
  });

  it("sends each key to its closest peers, skips a peer that failed until it is due again, and fails a key nobody took", async () => {
    const { exec, dialed, byDistance, advance } = await fixture(3);
    const digest = digestOf(Buffer.from('announced'));
    const { peers } = await exec.walk(0, digest);
    const order = byDistance(digest);

    const first = await exec.announce([digest], peers);
    expect(first).toEqual({ failed: [digest], requests: 3, prepaid: 0 });
    expect(dialed.sort()).toEqual(order.slice(0, 3).sort());

    dialed.length = 0;
    await exec.announce([digest], peers);
    expect(dialed.sort()).toEqual(order.slice(3, 6).sort()); // the three that failed are skipped

    dialed.length = 0;
    advance(60_000);
    await exec.announce([digest], peers);
    expect(dialed.sort()).toEqual(order.slice(0, 3).sort()); // and asked again once their time is up
    expect(exec.counts).toMatchObject({ sent: 0, failed: 9, walks: 1 });
  });

  it('walks again for a key its region walk does not surely cover, and sends to its true closest peers', async () => {
    const network = (await peerIds(60)).map((id) => ({ id, key: kadKeyOf(id.toMultihash().bytes) }));
    const [self, ...others] = network;
    const walks: string[] = [];
    const dialed: string[] = [];
    const libp2p = {
      peerId: self!.id,
      getMultiaddrs: () => [],
      services: {
        dht: {
          // A converged walk: the k closest of the whole network to the key kad-dht hashes.
          async *getClosestPeers(keyBytes: Uint8Array) {
            const target = kadKeyOf(keyBytes);
            walks.push(Buffer.from(target).toString('hex'));
            for (const p of closestTo(target, others, 20)) yield { name: 'FINAL_PEER', peer: { id: p.id, multiaddrs: [] } };
          },
        },
      },
      dialProtocol: async (target: PeerId) => {
        dialed.push(target.toString());
        throw new Error('refused');
      },
    } as unknown as Libp2p<{ dht: KadDHT }>;
    const exec = new KadSweepExecutor(libp2p, { protocol: '/test/kad/1.0.0', replication: 5, k: 20, regionBits: () => 0, onNetworkSize: () => undefined });
    // Two keys far apart in the keyspace (first bits differ): the walk toward one cannot cover the other.
    const digests = Array.from({ length: 64 }, (_, i) => digestOf(Buffer.from(`far ${i}`)));
    const a = digests[0]!;
    const b = digests.find((d) => (blobKadKey(d)[0]! ^ blobKadKey(a)[0]!) & 0x80)!;
    const { peers } = await exec.walk(0, a);
    await exec.announce([a], peers);
    expect(walks).toHaveLength(1); // a is covered by its own walk
    dialed.length = 0;
    await exec.announce([b], peers);
    expect(walks).toHaveLength(2);
    expect(walks[1]).toBe(Buffer.from(blobKadKey(b)).toString('hex'));
    const truth = closestTo(blobKadKey(b), others, 5).map((p) => p.id.toString());
    expect(dialed.sort()).toEqual(truth.sort());
  });
});

describe('walkCovers', () => {
  it('says a walk covers a key only when the n closest it found are the true n closest', () => {
    const peers = Array.from({ length: 400 }, (_, i) => kadKeyOf(Buffer.from(`cover peer ${i}`)));
    const nearest = (target: KadKey, list: KadKey[], n: number) => closestTo(target, list.map((key) => ({ key })), n).map((p) => p.key);
    let covered = 0;
    for (let w = 0; w < 20; w++) {
      const target = kadKeyOf(Buffer.from(`walk ${w}`));
      const found = nearest(target, peers, 20);
      for (let i = 0; i < 40; i++) {
        // Keys near the target (sharing its first byte or more) and anywhere.
        const key = kadKeyOf(Buffer.from(`key ${w} ${i}`));
        if (i % 2 === 0) key.set(target.subarray(0, 1 + (i % 3)));
        if (!walkCovers(target, found, false, key, 5)) continue;
        covered++;
        expect(nearest(key, found, 5)).toEqual(nearest(key, peers, 5));
      }
    }
    expect(covered).toBeGreaterThan(20); // not vacuous: keys close to the walk are covered
    expect(walkCovers(peers[0]!, peers.slice(0, 3), true, peers[1]!, 5)).toBe(true); // met every peer there is
  });
});
