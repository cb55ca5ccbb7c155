// What the simulated nodes of one rollout share: the cluster, the image, who is who, and when each
// node finished. Node i (1..N) is cluster host i; host 0 is the seed. Node 1 is the rollout's origin.
import type { Cluster } from './cluster.js';
import type { SimBlob, SimImage } from './image.js';

export class RunContext {
  /** Virtual ms each node finished the image at (undefined: not yet, or never). */
  readonly doneAt: Array<number | undefined>;
  readonly ids: string[];
  /** Parents demoted (stripe trees): how often a node was judged too slow to relay. */
  demotions = 0;
  private readonly byId = new Map<string, number>();
  private left: number;

  constructor(
    readonly cluster: Cluster,
    readonly image: SimImage,
    nodes: number,
  ) {
    this.ids = ['seed', ...Array.from({ length: nodes }, (_, i) => `node-${String(i + 1).padStart(5, '0')}`)];
    this.ids.forEach((id, h) => this.byId.set(id, h));
    this.doneAt = this.ids.map(() => undefined);
    this.left = nodes;
  }

  hostOf(id: string): number {
    const h = this.byId.get(id);
    if (h === undefined) throw new Error(`no node ${id}`);
    return h;
  }

  get now(): number {
    return this.cluster.clock.now();
  }

  /** Whether `host` holds every stream of `blob`. */
  holds(host: number, blob: SimBlob): boolean {
    return blob.streams.every((s) => this.cluster.complete(host, s));
  }

  /** Called when a node holds the whole image (once). */
  finished(host: number): void {
    if (this.doneAt[host] !== undefined) return;
    this.doneAt[host] = this.now;
    this.left--;
  }

  /** A node that crashed will not finish: it is not waited for. */
  gaveUp(host: number): void {
    if (this.doneAt[host] === undefined) this.left--;
  }

  get allDone(): boolean {
    return this.left <= 0;
  }
}

/** A simulated layerd node: started when the rollout reaches it. */
export interface SimNode {
  start(): void;
}
