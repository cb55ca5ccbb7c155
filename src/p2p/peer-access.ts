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

export class PeerAccess {
  private refusals = 0;
  private readonly logged = new Set<string>();

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

  /** What the node's log says at start about its network. */
  summary(): { privateNetwork: boolean; allowList: number } {
    return { privateNetwork: this.opts.keyFile !== undefined, allowList: this.opts.allowPeers.length };
  }

  status(): PeerAccessStatus {
    return { ...this.summary(), refusedPeers: this.refusals };
  }
}
