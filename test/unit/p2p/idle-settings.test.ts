// What keeps an idle node light (issue 16) is set on libp2p's parts, some through options and one by
// reaching into kad-dht: this checks each took, so a library upgrade that renames a field fails here
// instead of silently bringing back the old timers.
import '../../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSEST_PEER_TAGS_MS, createP2PNode, DHT_MAINTENANCE_MS, slowDhtMaintenance, type LayerdLibp2p } from '../../../src/p2p/index.js';

describe("an idle node's libp2p settings", () => {
  let node: LayerdLibp2p;
  beforeAll(async () => {
    node = await createP2PNode({ start: false, privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap: [], providerTtlMs: 3_600_000 });
  });
  afterAll(async () => node.stop());

  it('walks the DHT for itself and refreshes its table every DHT_MAINTENANCE_MS, and tags close peers every CLOSEST_PEER_TAGS_MS', () => {
    type Timers = { routingTableRefresh: { refreshInterval: number }; querySelf: { interval: number }; routingTable: { closestPeerTagger: { refreshInterval: number } } };
    const dht = node.services.dht as unknown as Timers;
    expect(dht.routingTableRefresh.refreshInterval).toBe(DHT_MAINTENANCE_MS);
    expect(dht.querySelf.interval).toBe(DHT_MAINTENANCE_MS);
    expect(dht.routingTable.closestPeerTagger.refreshInterval).toBe(CLOSEST_PEER_TAGS_MS);
  });

  it('runs no connection monitor (it pinged every connection every 10 s)', () => {
    // The components object throws MissingServiceError for a part that was never configured.
    const components = (node as unknown as { components: Record<string, unknown> }).components;
    expect(() => components.connectionMonitor).toThrow(/connectionMonitor not set/);
  });

  it('says when kad-dht no longer has the field it sets', () => {
    expect(slowDhtMaintenance({ routingTableRefresh: { refreshInterval: 5 } }, 1, 1)).toBe(false);
    expect(slowDhtMaintenance({ routingTableRefresh: { refreshInterval: 5 }, routingTable: { closestPeerTagger: { refreshInterval: 5 } } }, 1, 1)).toBe(true);
  });
});
