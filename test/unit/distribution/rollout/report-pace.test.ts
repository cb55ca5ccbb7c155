import { describe, expect, it } from 'vitest';
import { ORIGIN_REPORTS_PER_S, reportPace } from '../../../../src/distribution/rollout/index.js';

const floors = { everyMs: 1_000, deadAfterMs: 15_000 };

describe('reportPace', () => {
  it('keeps the configured floors for a small rollout (8 hosts report every second, as before)', () => {
    expect(reportPace(8, floors)).toEqual({ everyMs: 1_000, deadAfterMs: 15_000 });
  });

  it('spreads a large rollout so the origin hears about ORIGIN_REPORTS_PER_S reports a second in all', () => {
    for (const nodes of [32, 100, 1_000]) {
      const pace = reportPace(nodes, floors);
      expect(pace.everyMs).toBeGreaterThan(floors.everyMs);
      expect((nodes * 1000) / pace.everyMs).toBeLessThanOrEqual(ORIGIN_REPORTS_PER_S);
    }
  });

  it('calls a node dead only after it missed several reports, never sooner than the floor', () => {
    expect(reportPace(32, floors).deadAfterMs).toBe(15_000);
    const big = reportPace(100, floors);
    expect(big.deadAfterMs).toBe(3 * big.everyMs);
    expect(reportPace(0, floors)).toEqual(floors);
  });
});
