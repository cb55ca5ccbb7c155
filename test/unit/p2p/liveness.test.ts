// When a silent connection is pinged and when it is taken for gone (p2p/liveness.ts).
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIVENESS, detectionBoundMs, verdict, type LivenessTimes } from '../../../src/p2p/index.js';

const t: LivenessTimes = { idleQuietMs: 45, idleAnswerMs: 20, busyQuietMs: 4, busyAnswerMs: 8 };

describe('liveness verdicts', () => {
  it('leaves a connection heard from lately alone, idle or busy', () => {
    expect(verdict({ heardAt: 100 }, false, 144, t)).toBe('fine');
    expect(verdict({ heardAt: 100 }, true, 103, t)).toBe('fine');
  });

  it('pings an idle connection once it has been silent for idleQuietMs, a busy one after busyQuietMs', () => {
    expect(verdict({ heardAt: 100 }, false, 145, t)).toBe('probe');
    expect(verdict({ heardAt: 100 }, true, 104, t)).toBe('probe');
    expect(verdict({ heardAt: 100 }, false, 104, t)).toBe('fine');
  });

  it('waits for the answer to a probe, then takes the peer for gone', () => {
    expect(verdict({ heardAt: 100, probedAt: 145 }, false, 164, t)).toBe('fine');
    expect(verdict({ heardAt: 100, probedAt: 145 }, false, 165, t)).toBe('gone');
    expect(verdict({ heardAt: 100, probedAt: 104 }, true, 111, t)).toBe('fine');
    expect(verdict({ heardAt: 100, probedAt: 104 }, true, 112, t)).toBe('gone');
  });

  it('judges an idle probe by the busy deadline once a stream opens (a pull now waits on that peer)', () => {
    expect(verdict({ heardAt: 100, probedAt: 145 }, true, 153, t)).toBe('gone');
    expect(verdict({ heardAt: 100, probedAt: 145 }, false, 153, t)).toBe('fine');
  });

  it('bounds detection by silence + answer + three sweeps: at most 90 s idle, under 20 s busy, with the defaults', () => {
    expect(detectionBoundMs(false, 1, t)).toBe(68);
    expect(detectionBoundMs(true, 1, t)).toBe(15);
    expect(detectionBoundMs(false, 1_000)).toBeLessThanOrEqual(90_000);
    expect(detectionBoundMs(true, 1_000)).toBeLessThanOrEqual(20_000);
    // Idle connections are pinged at most once per idleQuietMs: no return of a ping every 10 s.
    expect(DEFAULT_LIVENESS.idleQuietMs).toBeGreaterThanOrEqual(30_000);
  });
});
