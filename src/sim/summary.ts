// What a simulated rollout came to, in the numbers the targets use.
import { BOX_COSTS } from './cpu-cost.js';
import type { RunContext } from './run-context.js';
import type { RolloutScenario } from './rollout-sim.js';

export interface RolloutResult {
  scenario: RolloutScenario;
  boundMs: number;
  /** The last node's finish (of those that did not crash). */
  makespanMs: number;
  makespanOverBound: number;
  /** The same over the nodes on normal links only (the slow ones left out). */
  fastMakespanMs: number;
  fastOverBound: number;
  firstMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Payload the seed sent over the image; `seedWireOverImage` counts headers as tbf does. */
  seedOverImage: number;
  seedWireOverImage: number;
  maxUploadOverImage: number;
  /** Nodes that did not crash yet never finished. */
  unfinished: number;
  crashed: number;
  slow: number;
  hostsCpuSeconds: number;
  demotions: number;
  events: number;
  steps: number;
  wallMs: number;
}

export function summarize(
  s: RolloutScenario,
  ctx: RunContext,
  run: { bound: number; slow: Set<number>; crashing: Set<number>; wallMs: number; events: number; steps: number },
): RolloutResult {
  const survivors = ctx.ids.map((_, h) => h).filter((h) => h > 0 && ctx.cluster.alive[h]);
  const times = survivors.map((h) => ctx.doneAt[h]).filter((t): t is number => t !== undefined).sort((a, b) => a - b);
  const fast = survivors.filter((h) => !run.slow.has(h)).map((h) => ctx.doneAt[h] ?? Infinity);
  const img = ctx.image.bytes;
  const up = ctx.cluster.uploaded;
  let maxUp = 0;
  let cpu = 0;
  for (let h = 1; h < ctx.ids.length; h++) {
    maxUp = Math.max(maxUp, up[h]!);
    cpu += ctx.cluster.cpuUsed[h]!;
  }
  const makespan = times.length === survivors.length ? (times.at(-1) ?? 0) : Infinity;
  const fastMakespan = Math.max(...fast);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    scenario: s,
    boundMs: r2(run.bound),
    makespanMs: r2(makespan),
    makespanOverBound: r2(makespan / run.bound),
    fastMakespanMs: r2(fastMakespan),
    fastOverBound: r2(fastMakespan / run.bound),
    firstMs: r2(times[0] ?? Infinity),
    p50Ms: r2(pct(times, 50)),
    p99Ms: r2(pct(times, 99)),
    seedOverImage: r2(up[0]! / img),
    seedWireOverImage: r2((up[0]! * (1 + s.overhead)) / img),
    maxUploadOverImage: r2(maxUp / img),
    unfinished: survivors.length - times.length,
    crashed: run.crashing.size,
    slow: run.slow.size,
    hostsCpuSeconds: r2(cpu + idleCpu(s, ctx, makespan)),
    demotions: ctx.demotions,
    events: run.events,
    steps: run.steps,
    wallMs: Math.round(run.wallMs),
  };
}

/** The hosts' idle share of a core while the rollout runs (their messages are charged as they run). */
function idleCpu(s: RolloutScenario, ctx: RunContext, makespanMs: number): number {
  const idle = s.costs?.idleCores ?? BOX_COSTS.idleCores;
  return Number.isFinite(makespanMs) ? ((ctx.ids.length - 1) * idle * makespanMs) / 1000 : 0;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Infinity;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
