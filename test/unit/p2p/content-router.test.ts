import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { MemoryContentRouter, MemoryRoutingNetwork } from '../../../src/p2p/content-router.js';
import { digestToCid } from '../../../src/p2p/cid.js';
import { describeContentRouter } from './content-router.conformance.js';

describeContentRouter('memory', async () => {
  const network = new MemoryRoutingNetwork();
  const routers = ['peer-a', 'peer-b', 'peer-c'].map((id) => ({ id, router: new MemoryContentRouter(id, network) }));
  return { routers, withdrawnWithinMs: 0, close: async () => {} };
});

describe('MemoryContentRouter specifics', () => {
  it('forgets a withdrawn provider at once', async () => {
    const network = new MemoryRoutingNetwork();
    const a = new MemoryContentRouter('a', network);
    const b = new MemoryContentRouter('b', network);
    const digest = digestOf(Buffer.from('x'));
    await a.provide(digest);
    await a.withdraw(digest);
    const found = [];
    for await (const p of b.findProviders(digest)) found.push(p);
    expect(found).toEqual([]);
  });
});

describe('digestToCid', () => {
  it('makes a raw-codec CIDv1 whose multihash is the digest itself', () => {
    const digest = digestOf(Buffer.from('hello world'));
    const cid = digestToCid(digest);
    expect(cid.version).toBe(1);
    expect(cid.code).toBe(0x55);
    expect(cid.multihash.code).toBe(0x12);
    expect(Buffer.from(cid.multihash.digest).toString('hex')).toBe(digest.slice('sha256:'.length));
    const d512 = digestOf(Buffer.from('hello world'), 'sha512');
    expect(digestToCid(d512).multihash.code).toBe(0x13);
    expect(digestToCid(d512).toString()).not.toBe(cid.toString());
  });
});
