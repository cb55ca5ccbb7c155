// The coordinator's claim policy (first asker fetches, later askers follow it, a failed holder is
// replaced) and the choice of coordinator, which every node must make alike from the same peers.
import { describe, expect, it } from 'vitest';
import { ClaimTable, coordinatorOf, RolloutOrders } from '../../../src/p2p/fetch-claims.js';
import { digestOf, type Digest } from '../../../src/oci/digest.js';

const digest = (n: number): Digest => digestOf(Buffer.from(`blob ${n}`));

describe('ClaimTable', () => {
  it('makes the first asker the fetcher and chains the others: each follows the one before it', () => {
    const t = new ClaimTable();
    expect(t.claim(digest(1), 'a')).toBe('a');
    expect(t.claim(digest(1), 'b')).toBe('a');
    expect(t.claim(digest(1), 'c')).toBe('b');
    expect(t.claim(digest(1), 'd')).toBe('c');
    // asking again keeps one's place
    expect(t.claim(digest(1), 'a')).toBe('a');
    expect(t.claim(digest(1), 'c')).toBe('b');
    // another digest has a chain of its own
    expect(t.claim(digest(2), 'c')).toBe('c');
    expect(t.claim(digest(2), 'a')).toBe('c');
  });

  it('drops a node reported failed: the one after it follows the one before, and never one after itself', () => {
    const t = new ClaimTable();
    for (const id of ['a', 'b', 'c', 'd']) t.claim(digest(1), id);
    expect(t.claim(digest(1), 'c', ['b'])).toBe('a');
    expect(t.claim(digest(1), 'd')).toBe('c');
    expect(t.claim(digest(1), 'e')).toBe('d');
    // the head failed: the next in line fetches from the seed itself
    expect(t.claim(digest(1), 'c', ['a'])).toBe('c');
    expect(t.claim(digest(1), 'd')).toBe('c');
    // an unknown failed id changes nothing
    expect(t.claim(digest(1), 'e', ['x'])).toBe('d');
  });

  it('ends a chain when its head releases it (it holds the whole blob), and only then', () => {
    const t = new ClaimTable();
    for (const id of ['a', 'b', 'c']) t.claim(digest(1), id);
    t.release(digest(1), 'b'); // not the head: nothing changes
    expect(t.claim(digest(1), 'd')).toBe('c');
    t.release(digest(1), 'a');
    expect(t.size).toBe(0);
    expect(t.claim(digest(1), 'e')).toBe('e');
    t.release(digest(2), 'a'); // no chain: nothing to do
    expect(t.size).toBe(1);
  });

  it('lets a chain lapse claimTtlMs after its last question: the next asker fetches', () => {
    let now = 1_000;
    const t = new ClaimTable({ claimTtlMs: 500, now: () => now });
    t.claim(digest(1), 'a');
    now += 499;
    expect(t.claim(digest(1), 'b')).toBe('a');
    now += 499; // the chain was asked 499 ms ago: still alive
    expect(t.claim(digest(1), 'c')).toBe('b');
    now += 500;
    expect(t.claim(digest(1), 'd')).toBe('d');
    expect(t.claim(digest(1), 'e')).toBe('d');
  });

  it('keeps at most maxClaims chains, dropping lapsed ones first and then the least recently asked', () => {
    let now = 0;
    const t = new ClaimTable({ claimTtlMs: 100, maxClaims: 3, now: () => now });
    t.claim(digest(1), 'a');
    now = 50;
    t.claim(digest(2), 'a');
    t.claim(digest(3), 'a');
    now = 120; // digest 1 has lapsed
    t.claim(digest(4), 'b');
    expect(t.size).toBe(3);
    expect(t.claim(digest(2), 'c')).toBe('a');
    // full of live chains: the least recently asked (digest 3, then 4) goes
    t.claim(digest(5), 'b');
    expect(t.size).toBe(3);
    expect(t.claim(digest(2), 'd')).toBe('c');
    expect(t.claim(digest(3), 'c')).toBe('c');
  });
});

describe('coordinatorOf', () => {
  const peers = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD', '12D3KooWE'];

  it('picks the same coordinator whatever order the candidates come in', () => {
    for (let n = 0; n < 50; n++) {
      const chosen = coordinatorOf(digest(n), peers);
      expect(peers).toContain(chosen);
      expect(coordinatorOf(digest(n), [...peers].reverse())).toBe(chosen);
      expect(coordinatorOf(digest(n), [peers[2]!, peers[0]!, peers[4]!, peers[1]!, peers[3]!])).toBe(chosen);
    }
  });

  it('spreads digests over the candidates rather than loading one node with every claim', () => {
    const counts = new Map<string, number>();
    for (let n = 0; n < 500; n++) {
      const c = coordinatorOf(digest(n), peers)!;
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(counts.size).toBe(peers.length);
    for (const [, count] of counts) expect(count).toBeGreaterThan(40);
  });

  it('answers undefined with no candidates, and the only candidate when there is one', () => {
    expect(coordinatorOf(digest(1), [])).toBeUndefined();
    expect(coordinatorOf(digest(1), ['only'])).toBe('only');
  });
});

describe('RolloutOrders', () => {
  it('has every blob of a rollout follow the same order: each node the one before it, the first fetching itself', () => {
    const o = new RolloutOrders();
    o.place([digest(1), digest(2), digest(3)], ['a', 'b', 'c', 'd']);
    for (const d of [digest(1), digest(2), digest(3)]) {
      expect(['a', 'b', 'c', 'd'].map((self) => o.predecessor(d, self))).toEqual(['a', 'a', 'b', 'c']);
    }
    // a blob outside the rollout: claims decide
    expect(o.predecessor(digest(4), 'b')).toBeUndefined();
  });

  it('has a node outside the order (joined late) follow one node of it, the same for every blob, and leaves it to claims with none left', () => {
    const o = new RolloutOrders();
    const order = ['a', 'b', 'c', 'd'];
    o.place([digest(1), digest(2)], order);
    const followed = o.predecessor(digest(1), 'late');
    expect(order).toContain(followed);
    expect(o.predecessor(digest(2), 'late')).toBe(followed);
    // late joiners spread over the line rather than all following one node
    const picks = new Set(Array.from({ length: 40 }, (_, i) => o.predecessor(digest(1), `late${i}`)));
    expect(picks.size).toBeGreaterThan(1);
    // the one it follows failed: the one before it, never one after it, never itself
    const at = order.indexOf(followed!);
    expect(o.predecessor(digest(1), 'late', [followed!])).toBe(at > 0 ? order[at - 1] : undefined);
    expect(o.predecessor(digest(1), 'late', order)).toBeUndefined();
  });

  it('passes over predecessors that failed, up the order; with none left the node heads the chain', () => {
    const o = new RolloutOrders();
    o.place([digest(1)], ['a', 'b', 'c', 'd']);
    expect(o.predecessor(digest(1), 'd', ['c'])).toBe('b');
    expect(o.predecessor(digest(1), 'd', ['c', 'b'])).toBe('a');
    expect(o.predecessor(digest(1), 'd', ['c', 'b', 'a'])).toBe('d');
    expect(o.predecessor(digest(1), 'b', ['a'])).toBe('b');
    // a failed node after this one changes nothing: a node never follows one behind it
    expect(o.predecessor(digest(1), 'b', ['c', 'd'])).toBe('a');
  });

  it('forgets a rollout\'s blobs when its undo runs, but not a later rollout\'s order for a shared blob', () => {
    const o = new RolloutOrders();
    const undoFirst = o.place([digest(1), digest(2)], ['a', 'b']);
    const undoSecond = o.place([digest(2)], ['b', 'a']);
    undoFirst();
    expect(o.predecessor(digest(1), 'b')).toBeUndefined();
    expect(o.predecessor(digest(2), 'a')).toBe('b');
    undoSecond();
    expect(o.predecessor(digest(2), 'a')).toBeUndefined();
  });
});
