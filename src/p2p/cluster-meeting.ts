// A node meets the cluster once, a while after it starts (issue 16). kad-dht connects a node only to the peers
// its queries reach, so a cluster started together is not a full mesh, and that is what lets 32 nodes start on
// 2 cores in time: kad-dht's own way (dialling every peer any answer names, to ping it) meshed the cluster in its
// first seconds, ~1 CPU s a node competing with the nodes still starting. A rollout does not need the mesh (its
// origin finds the cluster when it creates one), but fetch claims pick a blob's coordinator from the peers a
// node is connected to, and nodes agree on it only when they see the same peers. So each node, once started and
// settled, finds the cluster through its peers (cluster-gather.ts), which connects it to every node, up to
// MEET_MAX_NODES: past that a mesh costs more than it gives, and claims rely on the peers a node has met.

/** When a node meets the cluster: at a random moment of this window after it starts (after a 32-node start here). */
export const MEET_AFTER_MS = { min: 20_000, max: 50_000 };

/** Nodes a meeting connects to at most. */
export const MEET_MAX_NODES = 64;

export function meetingDelay(random: () => number = Math.random): number {
  return MEET_AFTER_MS.min + Math.floor(random() * (MEET_AFTER_MS.max - MEET_AFTER_MS.min));
}

/** Schedules `meet` once, `delayMs` from now; the returned stop cancels it if it has not run. */
export function scheduleMeeting(meet: () => Promise<unknown>, delayMs: number = meetingDelay()): () => void {
  const timer = setTimeout(() => void meet().catch(() => undefined), delayMs);
  timer.unref();
  return () => clearTimeout(timer);
}
