// A rollout's origin finds the cluster through its peers (p2p/cluster-gather.ts), over real libp2p nodes on
// loopback in this process: five nodes connected as a line (A-B-C-D-E), so A is connected to B alone and has
// never heard of C, D or E. Asking B, then the nodes B names, and so on, A must find all four, by the
// addresses each answer gives, and end connected to each.
import '../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { RolloutTransport } from '../../src/p2p/rollout-protocol.js';

const refuse = () => {
  throw new Error('not in this test');
};

async function until(what: string, done: () => boolean | Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('finding the cluster through the peers, over real libp2p nodes', () => {
  let nodes: LayerdLibp2p[] = [];
  let transports: RolloutTransport[] = [];

  beforeAll(async () => {
    nodes = await Promise.all(
      Array.from({ length: 5 }, async () => createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap: [], providerTtlMs: 3_600_000 })),
    );
    transports = nodes.map((n) => new RolloutTransport(n));
    // The protocol is handled before any dial, so identify tells each neighbour this node speaks it.
    await Promise.all(transports.map((t) => t.start({ checkOffer: refuse, checkReport: refuse, offer: refuse, report: refuse })));
    for (let i = 0; i + 1 < nodes.length; i++) await nodes[i]!.dial(nodes[i + 1]!.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) });
    await until('each neighbour known to speak the rollout protocol', async () => (await Promise.all(transports.map((t) => t.peers()))).every((p, i) => p.length === (i === 0 || i === nodes.length - 1 ? 1 : 2)));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(transports.map((t) => t.stop().catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('the first of a line of five finds the other four, and is connected to each after', async () => {
    const [a, ...rest] = nodes as [LayerdLibp2p, ...LayerdLibp2p[]];
    const others = rest.map((n) => n.peerId.toString()).sort();
    expect(await transports[0]!.peers()).toEqual([rest[0]!.peerId.toString()]); // A knows B alone
    const found = await transports[0]!.cluster();
    expect([...found].sort()).toEqual(others);
    const connected = new Set(a.getConnections().map((c) => c.remotePeer.toString()));
    for (const id of others) expect(connected.has(id), `A connected to ${id}`).toBe(true);
  });

  it('from the middle of the line too, and a node that stops is left out', async () => {
    await transports[4]!.stop(); // E no longer answers the question: it is not found
    const found = await transports[2]!.cluster();
    expect([...found].sort()).toEqual([nodes[0]!, nodes[1]!, nodes[3]!].map((n) => n.peerId.toString()).sort());
  });
});
