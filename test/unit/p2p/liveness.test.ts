// When a silent connection is pinged and when it is taken for gone (p2p/liveness.ts).
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIVENESS, detectionBoundMs, IDLE_KEEPALIVE, verdict, type LivenessTimes } from '../../../src/p2p/index.js';

const t: LivenessTimes = { busyQuietMs: 4, busyAnswerMs: 8, idleAnswerMs: 20 };

describe('liveness verdicts', () => {
  it('leaves a connection heard from lately alone', () => {
    expect(verdict({ heardAt: 100 }, true, 103, t)).toBe('fine');
  });

  it('pings a connection with a stream open once it has been silent for busyQuietMs', () => {
    expect(verdict({ heardAt: 100 }, true, 104, t)).toBe('probe');
  });

  it('pings an idle connection once when it has just opened or turned idle, never otherwise (the kernel keep-alive watches it)', () => {
    expect(verdict({ heardAt: 100, used: true }, false, 100, t)).toBe('probe');
    expect(verdict({ heardAt: 100 }, false, 104, t)).toBe('fine');
    expect(verdict({ heardAt: 100, used: false }, false, 100 + 86_400_000, t)).toBe('fine');
  });

  it('waits for the answer to a probe, then takes the peer for gone: by the busy deadline while a stream is open, else the idle one', () => {
    expect(verdict({ heardAt: 100, probedAt: 104 }, true, 111, t)).toBe('fine');
    expect(verdict({ heardAt: 100, probedAt: 104 }, true, 112, t)).toBe('gone');
    expect(verdict({ heardAt: 100, probedAt: 104 }, false, 112, t)).toBe('fine');
    expect(verdict({ heardAt: 100, probedAt: 104 }, false, 124, t)).toBe('gone');
    // A probe out is not sent again when the connection turns idle.
    expect(verdict({ heardAt: 100, probedAt: 104, used: true }, false, 105, t)).toBe('fine');
  });

  it('bounds detection: busy by silence + answer + three sweeps (under 20 s), idle by the kernel keep-alive or the one probe (42 s)', () => {
    expect(detectionBoundMs(true, 1, t)).toBe(15);
    expect(detectionBoundMs(true, 1_000)).toBeLessThanOrEqual(20_000);
    expect(detectionBoundMs(false, 1_000, t)).toBe(IDLE_KEEPALIVE.idleMs + IDLE_KEEPALIVE.probes * IDLE_KEEPALIVE.intervalMs);
    expect(detectionBoundMs(false, 1_000)).toBe(DEFAULT_LIVENESS.idleAnswerMs + 2_000);
    expect(detectionBoundMs(false, 1_000)).toBeLessThanOrEqual(45_000);
  });
});
