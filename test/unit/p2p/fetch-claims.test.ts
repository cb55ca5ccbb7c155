// The coordinator's claim policy (first asker fetches, later askers follow it, a failed holder is
// replaced) and the choice of coordinator, which every node must make alike from the same peers.
import { describe, expect, it } from 'vitest';
import { ClaimTable, coordinatorOf } from '../../../src/p2p/fetch-claims.js';
import { digestOf, type Digest } from '../../../src/oci/digest.js';

const digest = (n: number): Digest => digestOf(Buffer.from(`blob ${n}`));

describe('ClaimTable', () => {
  it('makes the first asker the fetcher and names it to everyone who asks after', () => {
    const t = new ClaimTable();
    expect(t.claim(digest(1), 'a')).toBe('a');
    expect(t.claim(digest(1), 'b')).toBe('a');
    expect(t.claim(digest(1), 'c')).toBe('a');
    expect(t.claim(digest(1), 'a')).toBe('a');
    // another digest is claimed on its own
    expect(t.claim(digest(2), 'b')).toBe('b');
  });

  it('hands the claim to the asker who reports the holder failed; later askers follow the new holder', () => {
    const t = new ClaimTable();
    t.claim(digest(1), 'a');
    expect(t.claim(digest(1), 'b', ['x'])).toBe('a');
    expect(t.claim(digest(1), 'b', ['a'])).toBe('b');
    expect(t.claim(digest(1), 'c', ['a'])).toBe('b');
    expect(t.claim(digest(1), 'd')).toBe('b');
  });

  it('lets a claim lapse after claimTtlMs: the next asker fetches', () => {
    let now = 1_000;
    const t = new ClaimTable({ claimTtlMs: 500, now: () => now });
    t.claim(digest(1), 'a');
    now += 499;
    expect(t.claim(digest(1), 'b')).toBe('a');
    now += 1;
    expect(t.claim(digest(1), 'b')).toBe('b');
    expect(t.claim(digest(1), 'c')).toBe('b');
  });

  it('keeps at most maxClaims, dropping lapsed claims first and then the oldest', () => {
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
    // full of live claims: the oldest (digest 2, then 3) goes
    t.claim(digest(5), 'b');
    expect(t.size).toBe(3);
    expect(t.claim(digest(3), 'c')).toBe('a');
    expect(t.claim(digest(2), 'c')).toBe('c');
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
