// What keeps an idle node light and a cluster's start-up short (issue 16) is set on libp2p's parts, some
// through options and some by reaching into kad-dht: this checks each took, so a library upgrade that renames a field fails here
// instead of silently bringing back the old timers.
import '../../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { admitConnectedContactsOnly, CLOSEST_PEER_TAGS_MS, createP2PNode, deferFirstTableRefresh, DHT_MAINTENANCE_MS, FIRST_SELF_QUERY_MS, firstSelfQueryDelay, firstTableRefreshDelay, queriesSkipFirstSelfQuery, slowDhtMaintenance, type LayerdLibp2p } from '../../../src/p2p/index.js';

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

  it("does not walk its table's buckets as it starts: the first refresh comes in the second half of the first interval", async () => {
    type Refresh = { routingTableRefresh: { afterStart(): Promise<void>; refreshTimeoutId?: NodeJS.Timeout; refreshTable(force?: boolean): void } };
    const refresh = (node.services.dht as unknown as Refresh).routingTableRefresh;
    let walked = 0;
    refresh.refreshTable = () => void walked++;
    await refresh.afterStart();
    expect(walked).toBe(0);
    expect(refresh.refreshTimeoutId).toBeDefined(); // where kad-dht's stop() clears it
    expect(firstTableRefreshDelay(() => 0)).toBe(DHT_MAINTENANCE_MS / 2);
    expect(firstTableRefreshDelay(() => 0.999_999)).toBeLessThanOrEqual(DHT_MAINTENANCE_MS);
  });

  it('runs the deferred first refresh, forced, once its delay is over', async () => {
    let forced: boolean | undefined;
    const refresh = { afterStart: async () => undefined, refreshTable: (force: boolean) => void (forced = force), refreshTimeoutId: undefined as unknown };
    expect(deferFirstTableRefresh({ routingTableRefresh: refresh }, () => 1)).toBe(true);
    await refresh.afterStart();
    const deadline = Date.now() + 5_000;
    while (forced === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(forced).toBe(true);
  });

  it('runs its first self-query at a random moment of FIRST_SELF_QUERY_MS, and lets queries go without waiting for it', () => {
    type Dht = { querySelf: { initialInterval: number }; queryManager: { initialQuerySelfHasRun?: { promise: Promise<void> } } };
    const dht = node.services.dht as unknown as Dht;
    expect(dht.querySelf.initialInterval).toBeGreaterThanOrEqual(FIRST_SELF_QUERY_MS.min);
    expect(dht.querySelf.initialInterval).toBeLessThanOrEqual(FIRST_SELF_QUERY_MS.max);
    expect(firstSelfQueryDelay(() => 0)).toBe(FIRST_SELF_QUERY_MS.min);
    expect(firstSelfQueryDelay(() => 1)).toBe(FIRST_SELF_QUERY_MS.max);
    // Resolved already: a query awaiting it goes on in the same turn of the microtask queue.
    let settled = false;
    void dht.queryManager.initialQuerySelfHasRun?.promise.then(() => (settled = true));
    return Promise.resolve().then(() => expect(settled || dht.queryManager.initialQuerySelfHasRun === undefined).toBe(true));
  });

  it('admits to its routing table only peers connected to it, never dialling one to ping it', async () => {
    type Table = { routingTable: { kb: { verify(contact: { peerId: unknown }): Promise<boolean> }; verifyNewContact: unknown; addEventListener(type: string, fn: () => void): void } };
    const table = (node.services.dht as unknown as Table).routingTable;
    expect(table.kb.verify).not.toBe(table.verifyNewContact); // kad-dht's own: a ping, dialling the peer
    let pinged = 0;
    table.addEventListener('peer:ping', () => void pinged++);
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    await expect(table.kb.verify({ peerId: stranger })).resolves.toBe(false);
    expect(pinged).toBe(0);
    expect(node.getDialQueue()).toEqual([]);
  });

  it('admits a connected contact as a ping that answered would have, for the closest-peer tagger', async () => {
    const events: Array<{ type: string; detail: unknown }> = [];
    const kb = { verify: async () => false as boolean };
    const dht = { routingTable: { kb, safeDispatchEvent: (type: string, init: { detail: unknown }) => void events.push({ type, detail: init.detail }) } };
    const connected = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    expect(admitConnectedContactsOnly(dht, (peer) => peer.equals(connected))).toBe(true);
    const verify = kb.verify as unknown as (contact: { peerId: unknown }) => Promise<boolean>;
    await expect(verify({ peerId: connected })).resolves.toBe(true);
    await expect(verify({ peerId: stranger })).resolves.toBe(false);
    expect(events).toEqual([{ type: 'peer:ping', detail: connected }]);
  });

  it('says when kad-dht no longer has the fields it sets', () => {
    expect(admitConnectedContactsOnly({ routingTable: { kb: {} } }, () => true)).toBe(false);
    expect(queriesSkipFirstSelfQuery({ queryManager: {} })).toBe(false);
    expect(queriesSkipFirstSelfQuery({ queryManager: { initialQuerySelfHasRun: { resolve: () => undefined } } })).toBe(true);
    expect(deferFirstTableRefresh({ routingTableRefresh: { afterStart: async () => undefined } }, () => 1)).toBe(false);

    expect(slowDhtMaintenance({ routingTableRefresh: { refreshInterval: 5 } }, 1, 1)).toBe(false);
    expect(slowDhtMaintenance({ routingTableRefresh: { refreshInterval: 5 }, routingTable: { closestPeerTagger: { refreshInterval: 5 } } }, 1, 1)).toBe(true);
  });
});
