// What a rollout is and how it looks: the spec every node gets, each node's progress, and the origin's
// view of them all (what GET /api/rollouts/ID answers).
import type { Source } from '../answers.js';

export interface RolloutSpec {
  id: string;
  /** For people: registry/repository[:tag][@digest]. */
  image: string;
  /** What nodes fetch, parsed once at the origin (a registry name without a dot, like `seed`, would not
   * survive a round trip through the string form). */
  registry: string;
  repository: string;
  /** A tag, or a digest (pinned when the user gave one). */
  reference: string;
  /** os/arch[/variant] of an index to take; every platform when absent. */
  platform?: string;
  origin: string;
  originAddrs: string[];
  createdAt: number;
  /** Peers the origin was connected to when it started: they are expected to report. */
  expected: string[];
  /**
   * The nodes' order for every blob of the rollout, the origin first: each follows the one before it
   * (see p2p/fetch-claims.ts), so every chain runs through the nodes the same way. Absent in rollouts
   * from older nodes: their blobs are chained by claims.
   */
  order?: string[];
  /**
   * Set when the rollout has enough nodes: its blobs go down stripe trees (stripe-trees.ts) over the order
   * after the origin, each node taking stripe s from its parent in tree s (a root, from the origin), which
   * every node works out from the order alone. Absent: the line of `order`.
   */
  stripes?: StripeShape;
}

/** k stripes of a blob: the chunks of `chunkBytes` dealt to them in turn. */
export interface StripeShape {
  k: number;
  chunkBytes: number;
}

/** What a node of a striped rollout reports of its stripes. */
export interface StripeProgress {
  /** Bytes of each stripe this node took by stripes, over the image. */
  have: number[];
  /** Parents that failed or stalled a chunk of a stripe: the origin demotes each once. */
  suspects: Array<{ stripe: number; parent: string }>;
}

/** The origin's word to a node: take stripe `stripe` of the rollout's blobs from `parent` from now on. */
export interface Repoint {
  rollout: string;
  stripe: number;
  parent: string;
}

export type NodeState = 'running' | 'done' | 'failed';

export interface NodeProgress {
  rollout: string;
  node: string;
  state: NodeState;
  blobsTotal: number;
  blobsDone: number;
  bytesTotal: number;
  bytesDone: number;
  bySource: Record<Source, number>;
  startedAt: number;
  finishedAt?: number;
  error?: string;
  /** In a striped rollout. */
  stripes?: StripeProgress;
}

export interface NodeView extends Partial<NodeProgress> {
  node: string;
  /** As the origin sees it: a node silent for deadAfterMs while not finished is dead. */
  status: NodeState | 'dead' | 'waiting';
  lastReportAt?: number;
}

export interface RolloutView {
  id: string;
  image: string;
  platform?: string;
  origin: string;
  createdAt: number;
  /** The nodes' order every blob's chain runs in (see RolloutSpec.order). */
  order?: string[];
  state: 'running' | 'done' | 'failed';
  nodes: NodeView[];
  summary: {
    nodes: number;
    done: number;
    failed: number;
    dead: number;
    /** Bytes of the image one node fetches (manifests, configs, layers). */
    imageBytes: number;
    /** Bytes all nodes took from the seed, as they count it. */
    seedBytes: number;
    seedRatio: number;
    /** From the request to the last node done, when every node is finished. */
    makespanMs?: number;
  };
}

/** The origin's view of a rollout from what its nodes reported. */
export function viewOf(spec: RolloutSpec, nodes: NodeView[]): RolloutView {
  const count = (s: NodeView['status']) => nodes.filter((n) => n.status === s).length;
  const finished = nodes.every((n) => n.status === 'done' || n.status === 'failed' || n.status === 'dead');
  const imageBytes = Math.max(0, ...nodes.map((n) => n.bytesTotal ?? 0));
  const seedBytes = nodes.reduce((sum, n) => sum + (n.bySource?.upstream ?? 0), 0);
  const ends = nodes.filter((n) => n.finishedAt !== undefined).map((n) => n.finishedAt!);
  return {
    id: spec.id,
    image: spec.image,
    ...(spec.platform ? { platform: spec.platform } : {}),
    origin: spec.origin,
    createdAt: spec.createdAt,
    ...(spec.order ? { order: spec.order } : {}),
    state: !finished ? 'running' : count('done') === nodes.length ? 'done' : 'failed',
    // Code-unit order, not localeCompare: that is ICU's collator, ~3 MiB of every node's memory once called.
    nodes: nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
    summary: {
      nodes: nodes.length,
      done: count('done'),
      failed: count('failed'),
      dead: count('dead'),
      imageBytes,
      seedBytes,
      seedRatio: imageBytes > 0 ? seedBytes / imageBytes : 0,
      ...(finished && ends.length > 0 ? { makespanMs: Math.max(...ends) - spec.createdAt } : {}),
    },
  };
}
