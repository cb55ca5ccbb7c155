// What keeps an idle node light (issue 16) is set on libp2p's parts, some through options and one by
// reaching into kad-dht: this checks each took, so a library upgrade that renames a field fails here
// instead of silently bringing back the old timers.
import '../../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP2PNode, DHT_MAINTENANCE_MS, slowTableRefresh, type LayerdLibp2p } from '../../../src/p2p/index.js';

describe("an idle node's libp2p settings", () => {
  let node: LayerdLibp2p;
  beforeAll(async () => {
    node = await createP2PNode({ start: false, privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap: [], providerTtlMs: 3_600_000 });
  });
  afterAll(async () => node.stop());

  it('refreshes the DHT routing table every DHT_MAINTENANCE_MS, not every 5 minutes', () => {
    const dht = node.services.dht as unknown as { routingTableRefresh: { refreshInterval: number }; querySelf: { interval: number } };
    expect(dht.routingTableRefresh.refreshInterval).toBe(DHT_MAINTENANCE_MS);
    expect(dht.querySelf.interval).toBe(DHT_MAINTENANCE_MS);
  });

  it('runs no connection monitor (it pinged every connection every 10 s)', () => {
    // The components object throws MissingServiceError for a part that was never configured.
    const components = (node as unknown as { components: Record<string, unknown> }).components;
    expect(() => components.connectionMonitor).toThrow(/connectionMonitor not set/);
  });

  it('says when kad-dht no longer has the field it sets', () => {
    expect(slowTableRefresh({}, 1)).toBe(false);
    expect(slowTableRefresh({ routingTableRefresh: { refreshInterval: 5 } }, 1)).toBe(true);
  });
});
