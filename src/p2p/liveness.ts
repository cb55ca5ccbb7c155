// When a connection's peer is to be asked whether it is still there, and when it is taken for gone. A host
// that vanishes (power lost, network cut) closes nothing: its connections stay open here until TCP gives up
// on a write, many minutes later. So a connection that has heard nothing from its peer for a while is sent
// a yamux ping (a 12-byte frame the peer's muxer answers itself, no stream, no protocol negotiation), and
// one that then hears nothing at all, not the pong nor any other byte, by a deadline is closed. Anything
// heard answers: a peer busy sending data is alive even while its pong waits behind that data.
// Two pairs of times: a connection with a stream open is one this node (or the peer) is waiting on, so
// silence there is probed within seconds; an idle one only within a minute (one ping a minute at most).
// Pure policy, no I/O (connection-watch.ts drives it).

export interface LivenessTimes {
  /** Silence on a connection with no stream open before it is probed. */
  idleQuietMs: number;
  /** Silence after that probe before an idle connection is taken for gone. */
  idleAnswerMs: number;
  /** Silence on a connection with a stream open before it is probed. */
  busyQuietMs: number;
  /**
   * Silence after a probe, on a connection with a stream open, before it is taken for gone. Not less: on a
   * 2-core box running 32 nodes a peer's event loop was seen seconds late, and closing a live connection
   * fails every transfer on it and leaves the peer out of rankings for minutes.
   */
  busyAnswerMs: number;
}

/**
 * Idle: nothing heard for 45 s → ping; nothing for 40 s more → gone (≤ 88 s with a 1 s sweep). A probe every
 * 45 s also keeps @libp2p/tcp's 2-minute inactivity timeout from closing idle connections, as yamux's own
 * keep-alive did. Busy: 4 s → ping; 12 s more → gone (≤ 19 s). With 20 s and 8 s, the 32-host bench (2 cores,
 * every uplink full) closed 17 live connections: a pong queued behind a saturated, policed uplink or a starved
 * event loop took that long.
 */
export const DEFAULT_LIVENESS: LivenessTimes = { idleQuietMs: 45_000, idleAnswerMs: 40_000, busyQuietMs: 4_000, busyAnswerMs: 12_000 };

/** What this node knows of one connection's peer. */
export interface LinkState {
  /** When a byte from the peer was last seen (or the connection opened). */
  heardAt: number;
  /** When the probe still unanswered was sent; undefined when none is out. */
  probedAt?: number;
}

export type Verdict = 'fine' | 'probe' | 'gone';

/** What to do with a connection now. `busy`: it has a stream open. */
export function verdict(link: LinkState, busy: boolean, now: number, t: LivenessTimes = DEFAULT_LIVENESS): Verdict {
  if (link.probedAt !== undefined) return now - link.probedAt >= (busy ? t.busyAnswerMs : t.idleAnswerMs) ? 'gone' : 'fine';
  return now - link.heardAt >= (busy ? t.busyQuietMs : t.idleQuietMs) ? 'probe' : 'fine';
}

/** When an idle connection is next due for a verdict other than 'fine' (its probe, or its close). */
export function idleDueAt(link: LinkState, t: LivenessTimes = DEFAULT_LIVENESS): number {
  return link.probedAt !== undefined ? link.probedAt + t.idleAnswerMs : link.heardAt + t.idleQuietMs;
}

/**
 * The longest a vanished peer's connection stays open after its last byte: the silence and the answer's wait,
 * plus up to a sweep each for noticing that byte, sending the probe and judging it.
 */
export function detectionBoundMs(busy: boolean, sweepMs: number, t: LivenessTimes = DEFAULT_LIVENESS): number {
  return (busy ? t.busyQuietMs + t.busyAnswerMs : t.idleQuietMs + t.idleAnswerMs) + 3 * sweepMs;
}
