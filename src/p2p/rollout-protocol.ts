// Carries rollouts between nodes over /layerd/rollout/1.0.0: an offer (a rollout to run and pass on),
// a report (a node's progress, to the rollout's origin), a repoint (the origin of a striped rollout to
// one of its nodes: take a stripe from another parent) or a question for the peers a node is connected to
// (how an origin finds the cluster: cluster-gather.ts), each one JSON question with an {ok} answer. What
// the messages mean is distribution's business: it gives this module the checks for a spec and a report, which run here, at the edge, before a handler sees either; a message that fails
// them is answered {ok:false} with the reason. Messages are handed on with the sending peer's id (which
// libp2p authenticated).
import type { IdentifyResult, Libp2p } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { FrameError } from './json-lines.js';
import { answer, ask, peersSpeaking, type AnswerLimits } from './json-rpc.js';
import { gatherCluster, type GatherOptions, type NamedPeer } from './cluster-gather.js';
import { multiaddrsField, objectField, peerIdField } from './peer-fields.js';

export const ROLLOUT_PROTOCOL = '/layerd/rollout/1.0.0';
const ASK_TIMEOUT_MS = 5_000;

export type RolloutMessage = { type: 'offer'; spec: unknown } | { type: 'report'; progress: unknown } | { type: 'repoint'; repoint: unknown } | { type: 'peers' };

/**
 * Peers one answer to 'peers' names at most, addresses each, and the answer's size: it is one line, read up
 * to 16 KiB (json-rpc.ts). A node connected to more names a random part; the others name the rest.
 */
const MAX_NAMED = 100;
const MAX_NAMED_ADDRS = 2;
const MAX_PEERS_ANSWER_BYTES = 14 * 1024;

/** The first of `named` whose answer fits in `maxBytes` (each entry's JSON and a comma, plus the envelope). */
export function fitPeersAnswer(named: readonly NamedPeer[], maxBytes: number = MAX_PEERS_ANSWER_BYTES): NamedPeer[] {
  let bytes = JSON.stringify({ ok: true, peers: [] }).length;
  const fitted: NamedPeer[] = [];
  for (const p of named.slice(0, MAX_NAMED)) {
    bytes += Buffer.byteLength(JSON.stringify(p)) + 1;
    if (bytes > maxBytes) break;
    fitted.push(p);
  }
  return fitted;
}

/** The envelope of a rollout message; what is inside is checked by the handlers' checks (RolloutHandlers). */
export function parseRolloutMessage(question: unknown): RolloutMessage {
  const q = objectField(question); // its bare message is the answer peers know ({ok:false,error})
  if (q.type === 'offer') return { type: 'offer', spec: q.spec };
  if (q.type === 'report') return { type: 'report', progress: q.progress };
  if (q.type === 'repoint') return { type: 'repoint', repoint: q.repoint };
  if (q.type === 'peers') return { type: 'peers' };
  throw new FrameError('unknown message type');
}

/** How much of a peer's reason for refusing is kept (it ends up in logs and errors). */
const MAX_REASON = 500;

/** A peer's answer to an offer or a report: {"ok":true}, or {"ok":false,"error"?} when it refused. */
export function parseRolloutAnswer(reply: unknown): { ok: true } | { ok: false; error: string } {
  const doc = objectField(reply, 'rollout answer');
  if (doc.ok === true) return { ok: true };
  if (doc.ok !== false) throw new FrameError('rollout answer: want "ok" true or false');
  return { ok: false, error: (typeof doc.error === 'string' ? doc.error : String(doc.error)).slice(0, MAX_REASON) };
}

/**
 * A peer's answer to 'peers': the layerd peers it is connected to. {ok:false} (a node of a version that does
 * not know the question) names none.
 */
export function parsePeersAnswer(reply: unknown): NamedPeer[] {
  const doc = objectField(reply, 'peers answer');
  if (doc.ok === false) return [];
  if (doc.ok !== true || !Array.isArray(doc.peers) || doc.peers.length > MAX_NAMED) throw new FrameError(`peers answer: want "ok" and a list of at most ${MAX_NAMED} peers`);
  return doc.peers.map((p) => {
    const entry = objectField(p, 'peers answer entry');
    return { id: peerIdField(entry.id, 'peers answer id'), addrs: multiaddrsField(entry.addrs ?? [], 'peers answer addrs', MAX_NAMED_ADDRS) };
  });
}

/**
 * What a node does with rollout messages. The checks run first and throw when a spec or report is
 * malformed (the sender is told why); a handler sees only what passed them.
 */
export interface RolloutHandlers<S, P, R = unknown> {
  checkOffer(spec: unknown): S;
  /** `from`: the peer that sent the report (a node reports only for itself). */
  checkReport(progress: unknown, from: string): P;
  /** Throws when the offer is refused. */
  offer(spec: S, from: string): void;
  report(progress: P, from: string): void;
  /** Absent: repoints are refused (a node that runs no striped rollouts). */
  checkRepoint?(repoint: unknown): R;
  /** Throws when the repoint is refused (not from the rollout's origin). */
  repoint?(repoint: R, from: string): void;
}

export class RolloutTransport {
  private readonly listeners: Array<(evt: CustomEvent<IdentifyResult>) => void> = [];

  constructor(
    private readonly libp2p: Libp2p,
    private readonly limits: AnswerLimits = {},
  ) {}

  async start<S, P, R>(handlers: RolloutHandlers<S, P, R>): Promise<void> {
    const refuse = (err: Error) => ({ ok: false, error: err.message });
    await answer(
      this.libp2p,
      ROLLOUT_PROTOCOL,
      parseRolloutMessage,
      async (m, from) => {
        const peer = from.toString();
        try {
          if (m.type === 'offer') handlers.offer(handlers.checkOffer(m.spec), peer);
          else if (m.type === 'report') handlers.report(handlers.checkReport(m.progress, peer), peer);
          else if (m.type === 'peers') return { ok: true, peers: await this.named(peer) };
          else if (handlers.checkRepoint && handlers.repoint) handlers.repoint(handlers.checkRepoint(m.repoint), peer);
          else throw new Error('repoints are not taken here');
          return { ok: true };
        } catch (err) {
          return refuse(err as Error);
        }
      },
      { ...this.limits, refuse },
    );
  }

  /** Calls `joined` for every peer that turns out (by identify) to speak the rollout protocol, until stop(). */
  onPeer(joined: (peer: string) => void): void {
    const listener = (evt: CustomEvent<IdentifyResult>) => {
      if (evt.detail.protocols.includes(ROLLOUT_PROTOCOL)) joined(evt.detail.peerId.toString());
    };
    this.libp2p.addEventListener('peer:identify', listener);
    this.listeners.push(listener);
  }

  /** Unhandles the protocol and forgets onPeer's listeners: nothing of this transport is left on libp2p. */
  async stop(): Promise<void> {
    for (const listener of this.listeners.splice(0)) this.libp2p.removeEventListener('peer:identify', listener);
    await this.libp2p.unhandle(ROLLOUT_PROTOCOL);
  }

  get self(): string {
    return this.libp2p.peerId.toString();
  }

  selfAddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((a) => a.toString());
  }

  peers(): Promise<string[]> {
    return peersSpeaking(this.libp2p, ROLLOUT_PROTOCOL);
  }

  /**
   * Every layerd node reachable through the peers: this node's, theirs, and so on (cluster-gather.ts). Each
   * is asked, so each is dialled: the caller is about to hand every one of them a rollout.
   */
  async cluster(opts?: GatherOptions): Promise<string[]> {
    const start = (await this.peers()).map((id) => ({ id, addrs: [] }));
    const gathered = await gatherCluster(this.self, start, async (peer) => {
      // Into the peer store, not the dial: libp2p then tries every address it knows (a named one may be
      // the peer's loopback, which from here is this node), and asks the DHT when it knows none.
      if (peer.addrs.length > 0) await this.libp2p.peerStore.merge(peerIdFromString(peer.id), { multiaddrs: peer.addrs.map((a) => multiaddr(a)) }).catch(() => undefined);
      return ask(this.libp2p, { id: peer.id }, ROLLOUT_PROTOCOL, { type: 'peers' }, ASK_TIMEOUT_MS, parsePeersAnswer);
    }, opts);
    return gathered.map((p) => p.id);
  }

  /** The layerd peers this node is connected to, with the addresses they listen on, for a peer that asked. */
  private async named(asker: string): Promise<NamedPeer[]> {
    const named: NamedPeer[] = [];
    const peers = (await this.peers()).filter((id) => id !== asker);
    // More than one answer holds: a random part, so the askers of a large cluster hear of different ones.
    if (peers.length > MAX_NAMED) shuffle(peers);
    for (const id of peers.slice(0, MAX_NAMED)) {
      let addrs: string[] = [];
      try {
        addrs = (await this.libp2p.peerStore.get(peerIdFromString(id))).addresses.slice(0, MAX_NAMED_ADDRS).map((a) => a.multiaddr.toString());
      } catch {
        // gone from the peer store since: named without addresses (the DHT finds it)
      }
      named.push({ id, addrs });
    }
    return fitPeersAnswer(named);
  }

  async offer(peer: string, spec: object): Promise<void> {
    await this.send({ id: peer }, { type: 'offer', spec });
  }

  async report(origin: { id: string; addrs: string[] }, progress: object): Promise<void> {
    await this.send(origin, { type: 'report', progress });
  }

  /** Opens a connection to the peer ahead of need (a stripe parent: its first chunk then waits on no dial). */
  async connect(peer: string): Promise<void> {
    await this.libp2p.dial(peerIdFromString(peer), { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
  }

  async repoint(peer: string, repoint: object): Promise<void> {
    await this.send({ id: peer }, { type: 'repoint', repoint });
  }

  private async send(target: { id: string; addrs?: string[] }, message: object): Promise<void> {
    const reply = await ask(this.libp2p, target, ROLLOUT_PROTOCOL, message, ASK_TIMEOUT_MS, parseRolloutAnswer);
    if (!reply.ok) throw new Error(`peer refused: ${reply.error}`);
  }
}

function shuffle<T>(list: T[]): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
}
