// What a node observes, as typed events: each source (the mirror, the peer fetcher, the blob server, the
// HTTP endpoint) tells the node's one bus, and whoever counts (NodeStats, the Prometheus metrics)
// subscribes, instead of every source being handed each counter by hand.
import type { Digest } from '../../oci/index.js';
import { ChangeEmitter, type Unsubscribe } from '../../store/index.js';
import type { Source } from '../answers.js';
import type { PullEvent } from './stats.js';

export interface Observed {
  /** A DHT provider lookup ended: its time and how many providers it found. */
  lookup: { ms: number; found: number };
  /** Bytes fetched from a peer (one range). */
  'peer-download': { peer: string; bytes: number };
  /** Bytes sent to a peer over the blob protocol (one answer). */
  'peer-upload': { peer: string; bytes: number; digest: Digest };
  /** A client joined a download already running for the same blob. */
  'single-flight-join': Record<string, never>;
  /** A blob fetched into the store, from a peer or the seed. */
  fetched: { digest: Digest; size: number; source: Source };
  /** A blob answer to a client; `bytes` is what its body carries (0 for a HEAD). */
  'blob-served': { source: Source; bytes: number };
  /** A client's GET of a manifest or blob. */
  pulled: Omit<PullEvent, 'at'>;
  /** An HTTP request answered. */
  request: { method: string; url: string; status: number };
}

/**
 * A typed bus, one change emitter per kind: listeners run synchronously in the order they subscribed,
 * and one that throws is a bug reported as an uncaught error, never a failure of what was observed
 * (the store's change stream follows the same rule).
 */
export class Observations {
  private readonly emitters: { [K in keyof Observed]?: ChangeEmitter<Observed[K]> } = {};

  on<K extends keyof Observed>(kind: K, listener: (event: Observed[K]) => void): Unsubscribe {
    return this.emitterOf(kind).subscribe(listener);
  }

  emit<K extends keyof Observed>(kind: K, event: Observed[K]): void {
    this.emitters[kind]?.emit(event);
  }

  private emitterOf<K extends keyof Observed>(kind: K): ChangeEmitter<Observed[K]> {
    const emitters = this.emitters as { [P in K]?: ChangeEmitter<Observed[P]> };
    return (emitters[kind] ??= new ChangeEmitter<Observed[K]>());
  }
}
