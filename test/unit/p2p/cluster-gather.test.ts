// How a rollout's origin finds the cluster through its peers (p2p/cluster-gather.ts): over a made-up graph of
// who is connected to whom, with nodes that cannot be reached and peers that name made-up ones.
import { describe, expect, it, vi } from 'vitest';
import { gatherCluster, type NamedPeer } from '../../../src/p2p/cluster-gather.js';
import { MEET_AFTER_MS, meetingDelay, scheduleMeeting } from '../../../src/p2p/cluster-meeting.js';

/** `ask` over an adjacency list; ids in `down` reject, and every question is counted. */
function graph(edges: Record<string, string[]>, down: string[] = []) {
  const asked: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const ask = async (p: NamedPeer): Promise<NamedPeer[]> => {
    asked.push(p.id);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    if (down.includes(p.id)) throw new Error('unreachable');
    return (edges[p.id] ?? []).map((id) => ({ id, addrs: [`/ip4/10.0.0.1/tcp/1/p2p/${id}`] }));
  };
  return { ask, asked, maxInFlight: () => maxInFlight };
}
const named = (...ids: string[]) => ids.map((id) => ({ id, addrs: [] }));

describe('gathering the cluster through the peers', () => {
  it('finds every node reachable through connections, though the origin is connected to one', async () => {
    // A star on a bootstrap (b) plus a chain: the origin o knows only b.
    const g = graph({ b: ['o', 'n1', 'n2', 'n3'], n1: ['b'], n2: ['b', 'n4'], n3: ['b'], n4: ['n2', 'n5'], n5: ['n4'] });
    const got = await gatherCluster('o', named('b'), g.ask);
    expect(got.map((p) => p.id).sort()).toEqual(['b', 'n1', 'n2', 'n3', 'n4', 'n5']);
    expect(g.asked.filter((id) => id === 'o')).toEqual([]); // never asks itself
    expect(new Set(g.asked).size).toBe(g.asked.length); // each node asked once
  });

  it('leaves out a node that cannot be reached, but not the ones others name past it', async () => {
    const g = graph({ b: ['n1', 'dead'], dead: ['hidden'], n1: ['b', 'n2'], n2: ['n1', 'hidden'], hidden: ['n2'] }, ['dead']);
    const got = await gatherCluster('o', named('b'), g.ask);
    expect(got.map((p) => p.id).sort()).toEqual(['b', 'hidden', 'n1', 'n2']);
  });

  it('counts a node that answers naming no one (an older version), and passes on the addresses it was named with', async () => {
    const g = graph({ b: ['old'] });
    const got = await gatherCluster('o', named('b'), g.ask);
    expect(got).toEqual([{ id: 'b', addrs: [] }, { id: 'old', addrs: ['/ip4/10.0.0.1/tcp/1/p2p/old'] }]);
  });

  it('asks a few at once, and stops at maxNodes however many made-up ids the peers name', async () => {
    const liar = Array.from({ length: 5_000 }, (_, i) => `fake${i}`);
    const g = graph({ b: ['liar'], liar });
    const got = await gatherCluster('o', named('b'), g.ask, { concurrency: 3, maxNodes: 50 });
    expect(got.length).toBeLessThanOrEqual(50);
    expect(g.asked.length).toBeLessThanOrEqual(50);
    expect(g.maxInFlight()).toBeLessThanOrEqual(3);
    expect(g.maxInFlight()).toBeGreaterThan(1);
  });

  it('with no peers, gathers no one', async () => {
    expect(await gatherCluster('o', [], graph({}).ask)).toEqual([]);
  });
});

describe('meeting the cluster once after start', () => {
  it('runs the meeting once at a moment of MEET_AFTER_MS, never if stopped before', async () => {
    expect(meetingDelay(() => 0)).toBe(MEET_AFTER_MS.min);
    expect(meetingDelay(() => 0.999999)).toBeLessThan(MEET_AFTER_MS.max);
    vi.useFakeTimers();
    try {
      let met = 0;
      scheduleMeeting(async () => void met++, 1_000);
      const cancel = scheduleMeeting(async () => void met++, 1_000);
      cancel();
      scheduleMeeting(() => Promise.reject(new Error('no peers answered')), 1_000); // a failed meeting is not an unhandled rejection
      await vi.advanceTimersByTimeAsync(999);
      expect(met).toBe(0);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(met).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
