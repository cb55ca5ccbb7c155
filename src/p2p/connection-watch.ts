// Closes the connections of peers that vanished (see liveness.ts for when; a connection idle since its
// last probe is the kernel keep-alive's). One timer for the whole node, armed only while a connection has
// a stream open (a sweep a second), has just opened or turned idle (a sweep within a second, which pings it
// once) or has a probe out (its deadline): an idle node runs none. A stream opening (either way) brings the
// next sweep within a second. Each message a connection reads writes its time; anything heard answers a
// ping. An idle node used to ping each idle connection every 45 s: on a loaded 2-core box each wake-up of an
// idle process cost 0.3-0.7 ms of CPU (scripts/bench/idle.mjs), so an idle node's CPU grew with its peers.
// A connection closed here fails every stream on it at once: claim questions go to the next coordinator,
// chain followers to the node before, ranges to other holders; the caller (node/p2p.ts) leaves the peer out
// of rankings too. A connection the kernel fails for its unanswered keep-alive is reported the same way.
import type { Connection } from '@libp2p/interface';
import { DEFAULT_LIVENESS, idleDueAt, verdict, type LinkState, type LivenessTimes } from './liveness.js';

/**
 * The parts of a yamux muxer the watch uses: the connection it reads from, its ping, its inbound streams
 * (the 'stream' event) and the call that opens outbound ones (wrapped: libp2p dispatches no event for those).
 */
interface PingingMuxer extends Pick<EventTarget, 'addEventListener' | 'removeEventListener'> {
  maConn: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>;
  ping(): Promise<number>;
  createStream(...args: unknown[]): Promise<unknown>;
}

/**
 * A connection's muxer, if it is one the watch can use. libp2p keeps it in a field its types do not name:
 * a unit test checks a real connection has it, so an upgrade that moves it fails there.
 */
export function muxerOf(conn: Connection): PingingMuxer | undefined {
  const muxer = (conn as unknown as { muxer?: Partial<PingingMuxer> }).muxer;
  if (typeof muxer?.ping !== 'function' || typeof muxer.createStream !== 'function' || typeof muxer.addEventListener !== 'function') return undefined;
  if (typeof muxer.maConn?.addEventListener !== 'function') return undefined;
  return muxer as PingingMuxer;
}

interface Watched extends LinkState {
  readonly conn: Connection;
  readonly muxer: PingingMuxer;
  readonly onMessage: () => void;
  readonly onAbort: (evt: Event) => void;
  /** A stream opened on it, either way. */
  readonly onStream: () => void;
  /** The muxer's own createStream, put back when the connection is no longer watched. */
  readonly createStream: PingingMuxer['createStream'];
}

export interface SilentPeer {
  peer: string;
  addr: string;
  /** It had a stream open (this node or the peer was waiting on it). */
  busy: boolean;
  /** How long nothing had been heard from it. */
  silentMs: number;
  /** Who gave up on it: this node's watch (a ping unanswered), or the kernel (TCP keep-alive or retransmissions unanswered). */
  by: 'ping' | 'kernel';
}

export interface ConnectionWatchOptions {
  times?: LivenessTimes;
  /** How often connections are judged while one has a stream open (idle ones: when their deadline comes). */
  sweepMs?: number;
  /** false: no timer, the caller calls sweep() (tests with a clock of their own; nextSweepAt says when). */
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
  /** When the armed timer fires (or, without a timer, when the next sweep is wanted). */
  private dueAt = Infinity;
  private started = false;
  /** Pings sent, connections closed for silence, and connections the kernel timed out, since start. */
  readonly counts = { probes: 0, closed: 0, timedOut: 0 };

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
    this.plan(this.now());
  }

  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = Infinity;
    this.libp2p.removeEventListener('connection:open', this.onOpen);
    this.libp2p.removeEventListener('connection:close', this.onClose);
    for (const conn of [...this.links.keys()]) this.unwatch(conn);
  }

  /** Connections watched now (for tests and status). */
  get size(): number {
    return this.links.size;
  }

  /** When the next sweep is due (Infinity: nothing watched). */
  get nextSweepAt(): number {
    return this.dueAt;
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    this.watch(evt.detail);
    // A sweep soon: a stream opened before the watch saw the connection (identify's, on the same event) made
    // it busy unnoticed; the sweep after plans from what it finds.
    this.arm(this.now() + this.sweepMs);
  };

  private readonly onClose = (evt: CustomEvent<Connection>): void => this.unwatch(evt.detail);

  /** A stream opened on a watched connection: it is busy now, a busy one is judged every sweepMs, and once idle again it is probed once. */
  private busy(link: Watched): void {
    link.used = true;
    this.arm(this.now() + this.sweepMs);
  }

  private watch(conn: Connection): void {
    if (this.links.has(conn) || conn.status !== 'open') return;
    const muxer = muxerOf(conn);
    if (!muxer) return;
    const createStream = muxer.createStream;
    const link: Watched = {
      conn,
      muxer,
      heardAt: this.now(),
      used: true, // probed once it is idle: what this node sent while opening it may still be unacknowledged
      createStream,
      onMessage: () => {
        link.heardAt = this.now();
        if (link.probedAt === undefined) return;
        link.probedAt = undefined; // anything heard answers the probe
        this.sleepIfNothingDue();
      },
      onStream: () => this.busy(link),
      onAbort: (evt) => this.timedOut(link, evt),
    };
    muxer.maConn.addEventListener('message', link.onMessage);
    muxer.maConn.addEventListener('close', link.onAbort);
    muxer.addEventListener('stream', link.onStream);
    muxer.createStream = function watchedCreateStream(this: PingingMuxer, ...args: unknown[]) {
      link.onStream();
      return createStream.apply(this, args);
    };
    this.links.set(conn, link);
  }

  private unwatch(conn: Connection): void {
    const link = this.links.get(conn);
    if (!link) return;
    link.muxer.maConn.removeEventListener('message', link.onMessage);
    link.muxer.maConn.removeEventListener('close', link.onAbort);
    link.muxer.removeEventListener('stream', link.onStream);
    link.muxer.createStream = link.createStream;
    this.links.delete(conn);
  }

  /** Judges every connection once (the timer's job; public so a test can drive it). */
  sweep(): void {
    const now = this.now();
    // A sweep far later than due: this process itself was stalled; judging now would blame its peers.
    const late = now - this.dueAt > 2 * this.sweepMs;
    for (const link of this.links.values()) {
      // A closing connection is still judged: a graceful close waits on a peer that may never answer.
      if (link.conn.status === 'closed') {
        this.unwatch(link.conn);
        continue;
      }
      if (!late) this.judge(link, now);
    }
    this.plan(now);
  }

  /**
   * Arms the timer for the earliest moment a connection can be due: within sweepMs when one is busy, an idle
   * one's probe deadline, or not at all when every connection is idle with no probe out.
   */
  private plan(now: number): void {
    let next = Infinity;
    for (const link of this.links.values()) {
      const busy = link.conn.streams.length > 0;
      if (busy) next = Math.min(next, now + this.sweepMs);
      else next = Math.min(next, idleDueAt(link, now, this.times));
    }
    this.dueAt = Infinity;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Nothing due before the next sweep on the grid is still judged on it (a deadline is met within sweepMs);
    // nothing due at all (Infinity) arms no timer.
    this.arm(Math.max(next, now + this.sweepMs));
  }

  /** Disarms the timer once nothing can be due (a probe answered, the last): an idle node runs no timer. */
  private sleepIfNothingDue(): void {
    if (this.dueAt === Infinity) return;
    for (const link of this.links.values()) if (link.used || link.probedAt !== undefined || link.conn.streams.length > 0) return;
    this.dueAt = Infinity;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Makes the next sweep come by `at` (an earlier one stays). */
  private arm(at: number): void {
    if (!this.started || at >= this.dueAt) return;
    this.dueAt = at;
    if (this.opts.timer === false) return;
    clearTimeout(this.timer);
    // The judging waits for setImmediate: a message that reached the socket while this process was busy is
    // read (poll phase) before the sweep looks at the times (check phase), so this node's own stall never
    // counts as a peer's silence.
    this.timer = setTimeout(() => setImmediate(() => this.started && this.sweep()), Math.max(0, at - this.now()));
    this.timer.unref();
  }

  private judge(link: Watched, now: number): void {
    const busy = link.conn.streams.length > 0;
    const judged = verdict(link, busy, now, this.times);
    link.used = busy; // a busy one is probed once more when it turns idle
    switch (judged) {
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
        this.opts.onSilent?.({ peer: link.conn.remotePeer.toString(), addr: link.conn.remoteAddr.toString(), busy, silentMs, by: 'ping' });
        return;
      }
    }
  }

  /**
   * A watched connection closed with an error: when the kernel timed its socket out (ETIMEDOUT: keep-alive
   * probes or retransmissions unanswered, liveness.ts), its peer is reported as one that fell silent.
   */
  private timedOut(link: Watched, evt: Event): void {
    const code = (evt as Event & { error?: { code?: unknown } }).error?.code;
    if (code !== 'ETIMEDOUT' || !this.links.has(link.conn)) return;
    this.counts.timedOut++;
    const busy = link.conn.streams.length > 0;
    this.unwatch(link.conn);
    this.opts.onSilent?.({ peer: link.conn.remotePeer.toString(), addr: link.conn.remoteAddr.toString(), busy, silentMs: this.now() - link.heardAt, by: 'kernel' });
  }
}
