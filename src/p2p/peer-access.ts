// Who may join this node's peer network, as the operator sees it: whether it is private (a swarm key),
// how many peers the allow-list names, how many connections it refused, and warnings about settings
// that would quietly keep the node alone. The key itself is never shown, counted or logged.
import { canonicalPeerId, type RefusedPeer } from './allow-list.js';

export interface PeerAccessOptions {
  /** The swarm key file, when the network is private (its path and permission bits, not its key). */
  keyFile?: { path: string; mode: number };
  allowPeers: string[];
  bootstrap: string[];
}

export interface PeerAccessStatus {
  privateNetwork: boolean;
  /** Peer ids on the allow-list; 0 when there is none (any peer may connect). */
  allowList: number;
  /** Connections the allow-list refused since start. */
  refusedPeers: number;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Refused peers logged at info once each; a peer that keeps redialing is not worth a line a try. */
const LOGGED_PEERS_MAX = 1000;

/**
 * Failed redials of one bootstrap peer before a warning (redials come every few seconds): peers that
 * start together fail a few times as a matter of course, but a node still alone after this many most
 * likely has another swarm key than its peers, or is not on their allow-list, and says nothing else.
 */
const BOOTSTRAP_FAILURES_BEFORE_WARNING = 5;

export class PeerAccess {
  private refusals = 0;
  private readonly logged = new Set<string>();
  private readonly dialFailures = new Map<string, number>();

  constructor(
    private readonly opts: PeerAccessOptions,
    private readonly log: Log,
  ) {
    const { keyFile, allowPeers, bootstrap } = opts;
    if (keyFile && (keyFile.mode & 0o077) !== 0) {
      log.warn({ pskFile: keyFile.path, mode: keyFile.mode.toString(8) }, 'the swarm key file can be read by other users: chmod 600 it');
    }
    if (allowPeers.length > 0) {
      for (const addr of bootstrap) {
        const id = addr.slice(addr.lastIndexOf('/p2p/') + 5);
        if (!allowPeers.includes(canonicalPeerId(id) ?? id)) log.warn({ bootstrap: addr }, 'bootstrap peer is not on the allow-list: it will be refused');
      }
    }
  }

  refused(r: RefusedPeer): void {
    this.refusals++;
    if (this.logged.has(r.peer)) {
      this.log.debug({ ...r }, 'peer refused: not on the allow-list');
      return;
    }
    if (this.logged.size >= LOGGED_PEERS_MAX) this.logged.clear();
    this.logged.add(r.peer);
    this.log.info({ ...r }, 'peer refused: not on the allow-list');
  }

  bootstrapDialFailed(addr: string, reason: string): void {
    const n = (this.dialFailures.get(addr) ?? 0) + 1;
    this.dialFailures.set(addr, n);
    this.log.debug({ addr, reason }, 'bootstrap dial failed');
    if (n === BOOTSTRAP_FAILURES_BEFORE_WARNING) {
      this.log.warn({ addr, reason, failures: n }, 'still cannot join through this bootstrap peer: is it up, with the same --psk-file, and does its --allow-peer list name this node?');
    }
  }

  /** What the node's log says at start about its network. */
  summary(): { privateNetwork: boolean; allowList: number } {
    return { privateNetwork: this.opts.keyFile !== undefined, allowList: this.opts.allowPeers.length };
  }

  status(): PeerAccessStatus {
    return { ...this.summary(), refusedPeers: this.refusals };
  }
}
