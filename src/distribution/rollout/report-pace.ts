// How often a rollout's nodes report to its origin, and when the origin calls a silent node dead.
// Every report is a libp2p stream the origin answers: about 43 ms of CPU each on this box (fitted from
// the 32-host runs, see sim/messages.ts). With a fixed 1 s the origin's inbox grew with the cluster, and
// at 32 hosts the reports took most of the box's two cores. So the interval grows with the rollout, to
// keep the origin's inbox near ORIGIN_REPORTS_PER_S, and a node is dead after DEAD_AFTER_REPORTS missed
// reports, never sooner than the configured floors. (Past a few hundred nodes reports to one origin
// stop scaling at all; they would have to be merged on the way, up the rollout's trees.)

/** Reports per second the origin of a large rollout should get from all its nodes together. */
export const ORIGIN_REPORTS_PER_S = 8;
/** Reports a running node may miss before the origin calls it dead. */
export const DEAD_AFTER_REPORTS = 3;

export interface ReportPace {
  /** How often each node reports. */
  everyMs: number;
  /** A running node silent this long is dead. */
  deadAfterMs: number;
}

/** The pace for a rollout of `nodes` nodes, given the configured floors. */
export function reportPace(nodes: number, floors: ReportPace): ReportPace {
  const spread = Math.ceil((Math.max(1, nodes) / ORIGIN_REPORTS_PER_S) * 1000);
  const everyMs = Math.max(floors.everyMs, spread);
  return { everyMs, deadAfterMs: Math.max(floors.deadAfterMs, DEAD_AFTER_REPORTS * everyMs) };
}
