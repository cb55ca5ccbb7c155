// Carries rollouts between nodes over /layerd/rollout/1.0.0: an offer (a rollout to run and pass on)
// or a report (a node's progress, to the rollout's origin), each one JSON question with an {ok}
// answer. What the messages mean is distribution's business: this module only moves them, and hands
// them on with the sending peer's id (which libp2p authenticated).
import type { Libp2p } from '@libp2p/interface';
import { FrameError } from './json-lines.js';
import { answer, ask, peersSpeaking, type AnswerLimits } from './json-rpc.js';

export const ROLLOUT_PROTOCOL = '/layerd/rollout/1.0.0';
const ASK_TIMEOUT_MS = 5_000;

export type RolloutMessage = { type: 'offer'; spec: unknown } | { type: 'report'; progress: unknown };

/** The envelope of a rollout message; what is inside is checked by whoever handles it. */
export function parseRolloutMessage(question: unknown): RolloutMessage {
  if (typeof question !== 'object' || question === null || Array.isArray(question)) throw new FrameError('want a JSON object');
  const q = question as { type?: unknown; spec?: unknown; progress?: unknown };
  if (q.type === 'offer') return { type: 'offer', spec: q.spec };
  if (q.type === 'report') return { type: 'report', progress: q.progress };
  throw new FrameError('unknown message type');
}

export interface RolloutHandlers {
  /** Throws when the offer is refused. */
  offer(spec: unknown, from: string): void;
  report(progress: unknown, from: string): void;
}

export class RolloutTransport {
  constructor(
    private readonly libp2p: Libp2p,
    private readonly limits: AnswerLimits = {},
  ) {}

  async start(handlers: RolloutHandlers): Promise<void> {
    await answer(this.libp2p, ROLLOUT_PROTOCOL, async (question, from) => {
      try {
        const m = parseRolloutMessage(question);
        if (m.type === 'offer') handlers.offer(m.spec, from.toString());
        else handlers.report(m.progress, from.toString());
        return { ok: true };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    }, this.limits);
  }

  /** Calls `joined` for every peer that turns out (by identify) to speak the rollout protocol. */
  onPeer(joined: (peer: string) => void): void {
    this.libp2p.addEventListener('peer:identify', (evt) => {
      if (evt.detail.protocols.includes(ROLLOUT_PROTOCOL)) joined(evt.detail.peerId.toString());
    });
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

  private async send(target: { id: string; addrs?: string[] }, message: object): Promise<void> {
    const reply = await ask<{ ok?: unknown; error?: unknown }>(this.libp2p, target, ROLLOUT_PROTOCOL, message, ASK_TIMEOUT_MS);
    if (reply.ok !== true) throw new Error(`peer refused: ${String(reply.error)}`);
  }
}
