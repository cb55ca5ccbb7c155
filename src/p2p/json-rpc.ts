// One question, one answer, over a libp2p stream: a JSON line each way. The shape of layerd's small
// control protocols (claims, rollouts); bulk bytes have their own protocol (blob-protocol.ts).
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { parseJsonLine, readLine, writeLine } from './json-lines.js';

/** Room for lists of peer ids or multiaddrs, and a progress record. */
const MAX_MESSAGE = 16 * 1024;

export interface RpcTarget {
  id: string;
  /** Where to dial when not connected yet; the peer store is asked when empty. */
  addrs?: string[];
}

/** Asks `target` one question; rejects on a dial failure, a timeout or an answer that is not JSON. */
export async function ask<T>(libp2p: Libp2p, target: RpcTarget, protocol: string, question: object, timeoutMs: number): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  const addrs = (target.addrs ?? []).map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${target.id}`));
  const stream = await libp2p.dialProtocol(addrs.length > 0 ? addrs : peerIdFromString(target.id), protocol, { signal });
  const abort = () => stream.abort(new Error(`${protocol}: no answer within ${timeoutMs} ms`));
  signal.addEventListener('abort', abort, { once: true });
  try {
    writeLine(stream, question);
    await stream.close();
    const { line } = await readLine(stream[Symbol.asyncIterator](), MAX_MESSAGE);
    return JSON.parse(line) as T;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

export interface AnswerLimits {
  /** How long one exchange may take, the peer's question and its reading of the answer included. */
  timeoutMs?: number;
  /** Streams one connection may have open on the protocol; libp2p refuses more. */
  maxInboundStreams?: number;
}

/**
 * Answers each question with `answer`'s result; a question that fails to parse or answer closes the
 * stream, and one not done within the timeout (a peer that stalls) is reset.
 */
export async function answer(libp2p: Libp2p, protocol: string, respond: (question: unknown, from: PeerId) => Promise<object>, limits: AnswerLimits = {}): Promise<void> {
  const timeoutMs = limits.timeoutMs ?? 5_000;
  await libp2p.handle(
    protocol,
    async (stream: Stream, connection: Connection) => {
      stream.maxReadBufferLength = 4 * MAX_MESSAGE;
      const timeout = setTimeout(() => stream.abort(new Error('request timeout')), timeoutMs);
      try {
        const { line } = await readLine(stream[Symbol.asyncIterator](), MAX_MESSAGE);
        writeLine(stream, await respond(parseJsonLine(line), connection.remotePeer));
        await stream.close();
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)));
      } finally {
        clearTimeout(timeout);
      }
    },
    { maxInboundStreams: limits.maxInboundStreams ?? 256, runOnLimitedConnection: false },
  );
}

/** Connected peers that speak `protocol` (identify tells which). */
export async function peersSpeaking(libp2p: Libp2p, protocol: string): Promise<string[]> {
  const ids: string[] = [];
  for (const peer of libp2p.getPeers()) {
    try {
      if ((await libp2p.peerStore.get(peer)).protocols.includes(protocol)) ids.push(peer.toString());
    } catch {
      // not in the peer store yet: not a candidate
    }
  }
  return ids;
}
