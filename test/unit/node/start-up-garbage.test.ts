// The one full collection after start-up (src/node/start-up-garbage.ts) runs, without --expose-gc on the
// command line and without leaving gc() on the global object.
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { collectStartUpGarbage } from '../../../src/node/start-up-garbage.js';

describe('start-up garbage collection', () => {
  it('runs one full collection once its delay has passed, and exposes no global gc()', async () => {
    let major = 0;
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    });
    observer.observe({ entryTypes: ['gc'] });
    const service = collectStartUpGarbage(1);
    try {
      await service.start!();
      const deadline = Date.now() + 10_000;
      while (major === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(major).toBeGreaterThan(0);
      expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    } finally {
      await service.stop!();
      observer.disconnect();
    }
  });
});
