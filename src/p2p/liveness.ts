// When a connection's peer is taken for gone. A host that vanishes (power lost, network cut) closes nothing:
// without a watch its connections stay open here until TCP gives up on a write, many minutes later, and it
// stays among the peers that rollouts and claims choose from. Three cases, by what the connection is doing:
//  - A connection with a stream open is one this node (or the peer) is waiting on: after a few seconds of
//    silence it is sent a yamux ping (a 12-byte frame the peer's muxer answers itself, no stream, no protocol
//    negotiation), and closed when nothing at all is heard by a deadline. Anything heard answers: a peer busy
//    sending data is alive even while its pong waits behind that data. The connection watch drives this.
//  - An idle connection costs this process nothing: no ping, no timer. The kernel's TCP keep-alive watches
//    it (IDLE_KEEPALIVE): a probe once nothing has arrived for a while, then one a second, and after ten
//    unanswered the kernel fails the socket (ETIMEDOUT) and libp2p closes the connection. The peer's kernel
//    answers the probes, so neither process wakes for them, and a peer whose process is starved on a loaded
//    host is not taken for gone. The process used to ping each idle connection every 45 s itself, which
//    woke an idle node once per peer per 45 s: its CPU grew with the cluster (issue 16).
//  - Between the two, once: TCP sends no keep-alive while bytes this node wrote are unacknowledged (it
//    retransmits them instead, for up to tcp_retries2, ~15 min), and a connection's last bytes are often this
//    node's (an answer). So a connection that has just opened, or has just had its last stream close, is
//    pinged once; its pong means the peer has everything this node sent, and from then on the keep-alive
//    covers it. Nothing for a while (idleAnswerMs, as long as the old idle pings were given) and it is closed.
//    An idle cluster opens no streams: no such pings.
// Pure policy, no I/O (connection-watch.ts and the TCP options in libp2p-node.ts apply it).

export interface LivenessTimes {
  /** Silence on a connection with a stream open before it is probed. */
  busyQuietMs: number;
  /** Silence after the probe of a connection that has turned idle before it is taken for gone. */
  idleAnswerMs: number;
  /**
   * Silence after a probe before the connection is taken for gone. Not less: on a 2-core box running 32 nodes
   * a peer's event loop was seen seconds late, and closing a live connection fails every transfer on it and
   * leaves the peer out of rankings for minutes.
   */
  busyAnswerMs: number;
}

/**
 * Busy: 4 s → ping; 12 s more → gone (≤ 19 s with a 1 s sweep). With 20 s and 8 s, the 32-host bench (2 cores,
 * every uplink full) closed 17 live connections: a pong queued behind a saturated, policed uplink or a starved
 * event loop took that long. Turned idle: 40 s for the answer (an idle peer that misses it only loses its
 * connection).
 */
export const DEFAULT_LIVENESS: LivenessTimes = { busyQuietMs: 4_000, busyAnswerMs: 12_000, idleAnswerMs: 40_000 };

/**
 * The kernel's keep-alive on every libp2p TCP socket. `idleMs` (TCP_KEEPIDLE) is set through Node's socket
 * options; the probe interval and count are the ones libuv sets with it (TCP_KEEPINTVL 1 s, TCP_KEEPCNT 10 on
 * Linux, Node 20 and 24 alike: seen with strace), which Node does not let a program change. A probe is one
 * segment each way between kernels, sent only after `idleMs` without a segment from the peer.
 */
export const IDLE_KEEPALIVE = { idleMs: 30_000, intervalMs: 1_000, probes: 10 } as const;

/** What this node knows of one connection's peer. */
export interface LinkState {
  /** When a byte from the peer was last seen (or the connection opened). */
  heardAt: number;
  /** When the probe still unanswered was sent; undefined when none is out. */
  probedAt?: number;
  /** It opened, or a stream opened on it, since it was last judged: once idle, it is to be probed once. */
  used?: boolean;
}

export type Verdict = 'fine' | 'probe' | 'gone';

/**
 * What to do with a connection now. `busy`: it has a stream open. A busy connection is probed after
 * busyQuietMs of silence, an idle one once when it has just turned idle (`used`), never otherwise. A probe
 * out is judged by the busy deadline while a stream is open (a pull now waits on that peer), else the idle one.
 */
export function verdict(link: LinkState, busy: boolean, now: number, t: LivenessTimes = DEFAULT_LIVENESS): Verdict {
  if (link.probedAt !== undefined) return now - link.probedAt >= (busy ? t.busyAnswerMs : t.idleAnswerMs) ? 'gone' : 'fine';
  if (busy) return now - link.heardAt >= t.busyQuietMs ? 'probe' : 'fine';
  return link.used === true ? 'probe' : 'fine';
}

/** When an idle connection is next due for a verdict other than 'fine': now if just turned idle, its probe's deadline, or never. */
export function idleDueAt(link: LinkState, now: number, t: LivenessTimes = DEFAULT_LIVENESS): number {
  if (link.probedAt !== undefined) return link.probedAt + t.idleAnswerMs;
  return link.used === true ? now : Infinity;
}

/**
 * The longest a vanished peer's connection stays open after its last byte. Busy: the silence and the answer's
 * wait, plus up to a sweep each for noticing that byte, sending the probe and judging it. Idle: the later of the
 * kernel's keep-alive (its idle time and unanswered probes, from the last byte) and the probe of a connection
 * that has just turned idle (a sweep to send it, the answer's wait, a sweep to judge it).
 */
export function detectionBoundMs(busy: boolean, sweepMs: number, t: LivenessTimes = DEFAULT_LIVENESS): number {
  if (!busy) return Math.max(IDLE_KEEPALIVE.idleMs + IDLE_KEEPALIVE.probes * IDLE_KEEPALIVE.intervalMs, t.idleAnswerMs + 2 * sweepMs);
  return t.busyQuietMs + t.busyAnswerMs + 3 * sweepMs;
}
