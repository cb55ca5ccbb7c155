// Closes the connections of peers that vanished (see liveness.ts for when). One timer for the whole node
// (a sweep a second, a few microseconds over a few dozen connections), one flag written per message a
// connection reads, and a yamux ping only for a connection that has been silent: an idle cluster sends a
// ping per connection per 45 s at most (each side hears the other's, so one side of a pair pings), instead
// of the connection monitor's stream per connection every 10 s or yamux's own keep-alive on both sides.
// A connection closed here fails every stream on it at once: claim questions go to the next coordinator,
// chain followers to the node before, ranges to other holders; the caller (node/p2p.ts) leaves the peer out
// of rankings too.
import type { Connection } from '@libp2p/interface';
import { DEFAULT_LIVENESS, verdict, type LinkState, type LivenessTimes } from './liveness.js';

/** The two parts of a yamux muxer the watch uses: the connection it reads from, and its ping. */
interface PingingMuxer {
  maConn: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>;
  ping(): Promise<number>;
}

/**
 * A connection's muxer, if it is one the watch can use. libp2p keeps it in a field its types do not name:
 * a unit test checks a real connection has it, so an upgrade that moves it fails there.
 */
export function muxerOf(conn: Connection): PingingMuxer | undefined {
  const muxer = (conn as unknown as { muxer?: Partial<PingingMuxer> }).muxer;
  if (typeof muxer?.ping !== 'function' || typeof muxer.maConn?.addEventListener !== 'function') return undefined;
  return muxer as PingingMuxer;
}

interface Watched extends LinkState {
  readonly conn: Connection;
  readonly muxer: PingingMuxer;
  /** A message arrived since the last sweep. */
  heard: boolean;
  readonly onMessage: () => void;
}

export interface SilentPeer {
  peer: string;
  addr: string;
  /** It had a stream open (this node or the peer was waiting on it). */
  busy: boolean;
  /** How long nothing had been heard from it. */
  silentMs: number;
}

export interface ConnectionWatchOptions {
  times?: LivenessTimes;
  /** How often connections are judged. */
  sweepMs?: number;
  /** false: no timer, the caller calls sweep() (tests with a clock of their own). */
  timer?: boolean;
  now?: () => number;
  /** A connection was closed because its peer fell silent. */
  onSilent?: (silent: SilentPeer) => void;
}

export const SWEEP_MS = 1_000;

type ConnectionListener = (evt: CustomEvent<Connection>) => void;

/** Where the connections come from: a libp2p node, or its components (the watch runs as a libp2p service). */
export interface ConnectionSource {
  getConnections(): Connection[];
  addEventListener(type: 'connection:open' | 'connection:close', fn: ConnectionListener): void;
  removeEventListener(type: 'connection:open' | 'connection:close', fn: ConnectionListener): void;
}

/** The watch as a libp2p service (started and stopped with the node). */
export function connectionWatch(opts: ConnectionWatchOptions = {}): (components: { events: Omit<ConnectionSource, 'getConnections'>; connectionManager: Pick<ConnectionSource, 'getConnections'> }) => ConnectionWatch {
  return ({ events, connectionManager }) =>
    new ConnectionWatch(
      {
        getConnections: () => connectionManager.getConnections(),
        addEventListener: (type, fn) => events.addEventListener(type, fn),
        removeEventListener: (type, fn) => events.removeEventListener(type, fn),
      },
      opts,
    );
}

export class ConnectionWatch {
  private readonly links = new Map<Connection, Watched>();
  private readonly times: LivenessTimes;
  private readonly sweepMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private lastSweep = 0;
  /** Pings sent, and connections closed for silence, since start. */
  readonly counts = { probes: 0, closed: 0 };

  constructor(
    private readonly libp2p: ConnectionSource,
    private readonly opts: ConnectionWatchOptions = {},
  ) {
    this.times = opts.times ?? DEFAULT_LIVENESS;
    this.sweepMs = opts.sweepMs ?? SWEEP_MS;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.libp2p.addEventListener('connection:open', this.onOpen);
    this.libp2p.addEventListener('connection:close', this.onClose);
    for (const conn of this.libp2p.getConnections()) this.watch(conn);
    this.lastSweep = this.now();
    // The judging waits for setImmediate: a message that reached the socket while this process was busy is
    // read (poll phase) before the sweep looks at the flags (check phase), so this node's own stall never
    // counts as a peer's silence.
    if (this.opts.timer === false) return;
    this.timer = setInterval(() => setImmediate(() => this.sweep()), this.sweepMs);
    this.timer.unref();
  }

  stop(): void {
    this.started = false;
    clearInterval(this.timer);
    this.timer = undefined;
    this.libp2p.removeEventListener('connection:open', this.onOpen);
    this.libp2p.removeEventListener('connection:close', this.onClose);
    for (const conn of [...this.links.keys()]) this.unwatch(conn);
  }

  /** Connections watched now (for tests and status). */
  get size(): number {
    return this.links.size;
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => this.watch(evt.detail);
  private readonly onClose = (evt: CustomEvent<Connection>): void => this.unwatch(evt.detail);

  private watch(conn: Connection): void {
    if (this.links.has(conn) || conn.status !== 'open') return;
    const muxer = muxerOf(conn);
    if (!muxer) return;
    const link: Watched = { conn, muxer, heardAt: this.now(), heard: false, onMessage: () => (link.heard = true) };
    muxer.maConn.addEventListener('message', link.onMessage);
    this.links.set(conn, link);
  }

  private unwatch(conn: Connection): void {
    const link = this.links.get(conn);
    if (!link) return;
    link.muxer.maConn.removeEventListener('message', link.onMessage);
    this.links.delete(conn);
  }

  /** Judges every connection once (the timer's job; public so a test can drive it). */
  sweep(): void {
    const now = this.now();
    // A sweep far later than due: this process itself was stalled; judging now would blame its peers.
    const late = now - this.lastSweep > 3 * this.sweepMs;
    this.lastSweep = now;
    for (const link of this.links.values()) {
      // A closing connection is still judged: a graceful close waits on a peer that may never answer.
      if (link.conn.status === 'closed') {
        this.unwatch(link.conn);
        continue;
      }
      if (link.heard) {
        link.heard = false;
        link.heardAt = now;
        link.probedAt = undefined; // anything heard answers the probe
      }
      if (late) continue;
      this.judge(link, now);
    }
  }

  private judge(link: Watched, now: number): void {
    const busy = link.conn.streams.length > 0;
    switch (verdict(link, busy, now, this.times)) {
      case 'probe':
        link.probedAt = now;
        this.counts.probes++;
        // Only what is heard counts, not the ping's own answer: its promise is left to settle (or not).
        link.muxer.ping().catch(() => undefined);
        return;
      case 'gone': {
        this.counts.closed++;
        const silentMs = now - link.heardAt;
        this.unwatch(link.conn);
        link.conn.abort(new Error(`peer silent for ${silentMs} ms, a ping unanswered`));
        this.opts.onSilent?.({ peer: link.conn.remotePeer.toString(), addr: link.conn.remoteAddr.toString(), busy, silentMs });
        return;
      }
    }
  }
}
