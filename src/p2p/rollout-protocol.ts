// Carries rollouts between nodes over /layerd/rollout/1.0.0: an offer (a rollout to run and pass on),
// a report (a node's progress, to the rollout's origin) or a repoint (the origin of a striped rollout to
// one of its nodes: take a stripe from another parent), each one JSON question with an {ok}
// answer. What the messages mean is distribution's business: it gives this module the checks for a
// spec and a report, which run here, at the edge, before a handler sees either; a message that fails
// them is answered {ok:false} with the reason. Messages are handed on with the sending peer's id (which
// libp2p authenticated).
import type { IdentifyResult, Libp2p } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { FrameError } from './json-lines.js';
import { answer, ask, peersSpeaking, type AnswerLimits } from './json-rpc.js';
import { objectField } from './peer-fields.js';

export const ROLLOUT_PROTOCOL = '/layerd/rollout/1.0.0';
const ASK_TIMEOUT_MS = 5_000;

export type RolloutMessage = { type: 'offer'; spec: unknown } | { type: 'report'; progress: unknown } | { type: 'repoint'; repoint: unknown };

/** The envelope of a rollout message; what is inside is checked by the handlers' checks (RolloutHandlers). */
export function parseRolloutMessage(question: unknown): RolloutMessage {
  const q = objectField(question); // its bare message is the answer peers know ({ok:false,error})
  if (q.type === 'offer') return { type: 'offer', spec: q.spec };
  if (q.type === 'report') return { type: 'report', progress: q.progress };
  if (q.type === 'repoint') return { type: 'repoint', repoint: q.repoint };
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
