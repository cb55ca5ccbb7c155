// One question, one answer, over a libp2p stream: a JSON line each way. The shape of layerd's small
// control protocols (claims, rollouts); bulk bytes have their own protocol (blob-protocol.ts). Both sides
// take a parser for what the peer sends, so no field of it is used before its shape is checked: a
// question or answer that fails the check resets the stream (or, where the protocol says so, is refused
// with an answer), it never reaches the code that would use it.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { FrameError, parseJsonLine, readLine, writeLine } from './json-lines.js';

/** Room for lists of peer ids or multiaddrs, and a progress record. */
const MAX_MESSAGE = 16 * 1024;

export interface RpcTarget {
  id: string;
  /** Where to dial when not connected yet; the peer store is asked when empty. */
  addrs?: string[];
}

/** Checks a peer's message (a JSON value) and returns it typed; throws FrameError naming what is wrong. */
export type PeerMessageParser<T> = (message: unknown) => T;

/**
 * Asks `target` one question; rejects on a dial failure, a timeout, or an answer `parse` refuses (a
 * FrameError that names the protocol, the peer and what is wrong; the stream is reset).
 */
export async function ask<T>(libp2p: Libp2p, target: RpcTarget, protocol: string, question: object, timeoutMs: number, parse: PeerMessageParser<T>): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  const addrs = (target.addrs ?? []).map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${target.id}`));
  const stream = await libp2p.dialProtocol(addrs.length > 0 ? addrs : peerIdFromString(target.id), protocol, { signal });
  const abort = () => stream.abort(new Error(`${protocol}: no answer within ${timeoutMs} ms`));
  signal.addEventListener('abort', abort, { once: true });
  try {
    writeLine(stream, question);
    await stream.close();
    const { line } = await readLine(stream[Symbol.asyncIterator](), MAX_MESSAGE);
    try {
      return parse(parseJsonLine(line));
    } catch (err) {
      const bad = new FrameError(`${protocol}: bad answer from ${target.id}: ${(err as Error).message}`);
      stream.abort(bad);
      throw bad;
    }
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

export interface AnswerLimits {
  /** How long one exchange may take, the peer's question and its reading of the answer included. */
  timeoutMs?: number;
  /**
   * How long the question itself may take to arrive (default 10 s, at most timeoutMs). An asker writes it as
   * the stream opens; a long timeoutMs (claims wait 30 s on a slow coordinator) must not let a silent stream
   * hold a slot that long.
   */
  questionTimeoutMs?: number;
  /** Streams one connection may have open on the protocol; libp2p refuses more. */
  maxInboundStreams?: number;
  /**
   * The answer to a question `parse` refused, for a protocol that tells the asker why (rollouts answer
   * {ok:false}); absent, the stream is reset.
   */
  refuse?: (err: Error) => object;
  /** Told of every exchange that failed (a question refused or malformed, a timeout), with the peer. */
  onFailure?: (err: Error, from: PeerId) => void;
}

/**
 * Answers each question, once `parse` has checked it, with `respond`'s result. A question that `parse`
 * refuses never reaches `respond`: it is answered `limits.refuse`, or the stream is reset. A line that is
 * not JSON, a question `respond` fails on, and one not done within the timeout (a stall) reset it.
 */
export async function answer<Q>(
  libp2p: Libp2p,
  protocol: string,
  parse: PeerMessageParser<Q>,
  respond: (question: Q, from: PeerId) => Promise<object>,
  limits: AnswerLimits = {},
): Promise<void> {
  const timeoutMs = limits.timeoutMs ?? 5_000;
  const questionMs = Math.min(limits.questionTimeoutMs ?? 10_000, timeoutMs);
  await libp2p.handle(
    protocol,
    async (stream: Stream, connection: Connection) => {
      stream.maxReadBufferLength = 4 * MAX_MESSAGE;
      const timeout = setTimeout(() => stream.abort(new Error('request timeout')), timeoutMs);
      const silent = setTimeout(() => stream.abort(new Error('no question in time')), questionMs);
      try {
        const { line } = await readLine(stream[Symbol.asyncIterator](), MAX_MESSAGE);
        clearTimeout(silent);
        const value = parseJsonLine(line); // not even JSON: no protocol answers that, the stream is reset
        let question: Q;
        try {
          question = parse(value);
        } catch (err) {
          if (!limits.refuse) throw err;
          limits.onFailure?.(err as Error, connection.remotePeer);
          writeLine(stream, limits.refuse(err as Error));
          await stream.close();
          return;
        }
        writeLine(stream, await respond(question, connection.remotePeer));
        await stream.close();
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        limits.onFailure?.(error, connection.remotePeer);
        stream.abort(error);
      } finally {
        clearTimeout(timeout);
        clearTimeout(silent);
      }
    },
    { maxInboundStreams: limits.maxInboundStreams ?? 256, runOnLimitedConnection: false },
  );
}

/**
 * Connected peers that speak `protocol` (identify tells which). With `unidentified`, also the connected peers
 * identify has not told about yet (no protocols known): a connection opened a moment ago is most likely a
 * layerd peer, and nodes that have identified it count it already.
 */
export async function peersSpeaking(libp2p: Libp2p, protocol: string, { unidentified = false } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (const peer of libp2p.getPeers()) {
    let protocols: string[] = [];
    try {
      protocols = (await libp2p.peerStore.get(peer)).protocols;
    } catch {
      // not in the peer store yet: nothing known of it
    }
    if (protocols.includes(protocol) || (unidentified && protocols.length === 0)) ids.push(peer.toString());
  }
  return ids;
}
