// When a connection's peer is taken for gone. A host that vanishes (power lost, network cut) closes nothing:
// without a watch its connections stay open here until TCP gives up on a write, many minutes later, and it
// stays among the peers that rollouts and claims choose from. Two watches, by what the connection is doing:
//  - A connection with a stream open is one this node (or the peer) is waiting on: after a few seconds of
//    silence it is sent a yamux ping (a 12-byte frame the peer's muxer answers itself, no stream, no protocol
//    negotiation), and closed when nothing at all is heard by a deadline. Anything heard answers: a peer busy
//    sending data is alive even while its pong waits behind that data. The connection watch drives this.
//  - An idle connection costs this process nothing: no ping, no timer. The kernel's TCP keep-alive watches
//    it (IDLE_KEEPALIVE): a probe once nothing has arrived for a while, then one a second, and after ten
//    unanswered the kernel fails the socket (ETIMEDOUT) and libp2p closes the connection. The peer's kernel
//    answers the probes, so neither process wakes for them, and a peer whose process is starved on a loaded
//    host is not taken for gone. Pinging idle connections from the process (one ping per connection per
//    45 s, as before) woke an idle node once per peer per 45 s: its CPU grew with the cluster (issue 16).
// One gap, left open on purpose: TCP sends no keep-alive while bytes this node wrote are unacknowledged; it
// retransmits them instead, for up to tcp_retries2 (~15 min). That needs the peer to vanish within a round
// trip of this node's last write on a connection that has since gone idle; a stream opened on it later (a
// pull or a rollout turning to that peer) makes it busy, and it is then probed like any other.
// Pure policy, no I/O (connection-watch.ts and the TCP options in libp2p-node.ts apply it).

export interface LivenessTimes {
  /** Silence on a connection with a stream open before it is probed. */
  busyQuietMs: number;
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
 * event loop took that long.
 */
export const DEFAULT_LIVENESS: LivenessTimes = { busyQuietMs: 4_000, busyAnswerMs: 12_000 };

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
}

export type Verdict = 'fine' | 'probe' | 'gone';

/**
 * What to do with a connection now. `busy`: it has a stream open. Only a busy connection is probed; a probe
 * already out is judged whether or not the stream that brought it is still open (a stream closing, e.g. on a
 * local timeout, says nothing of the peer).
 */
export function verdict(link: LinkState, busy: boolean, now: number, t: LivenessTimes = DEFAULT_LIVENESS): Verdict {
  if (link.probedAt !== undefined) return now - link.probedAt >= t.busyAnswerMs ? 'gone' : 'fine';
  return busy && now - link.heardAt >= t.busyQuietMs ? 'probe' : 'fine';
}

/** When an idle connection is next due for a verdict other than 'fine': its probe's deadline, or never. */
export function idleDueAt(link: LinkState, t: LivenessTimes = DEFAULT_LIVENESS): number {
  return link.probedAt !== undefined ? link.probedAt + t.busyAnswerMs : Infinity;
}

/**
 * The longest a vanished peer's connection stays open after its last byte. Busy: the silence and the answer's
 * wait, plus up to a sweep each for noticing that byte, sending the probe and judging it. Idle: the kernel's
 * keep-alive idle time and its unanswered probes (the gap above aside).
 */
export function detectionBoundMs(busy: boolean, sweepMs: number, t: LivenessTimes = DEFAULT_LIVENESS): number {
  if (!busy) return IDLE_KEEPALIVE.idleMs + IDLE_KEEPALIVE.probes * IDLE_KEEPALIVE.intervalMs;
  return t.busyQuietMs + t.busyAnswerMs + 3 * sweepMs;
}
