// Sends one ADD_PROVIDER to one peer of our choosing over the DHT's own protocol, through libp2p's public
// stream API: the provide sweep picks the peers (the closest ones its region walk found) instead of
// kad-dht's provide walking again for every key. kad-dht's handler stores the record only for the peer
// that sent it, so the message names this node (its id and addresses) as the provider.
// ADD_PROVIDER has no answer, and kad-dht resets the stream whether its handler failed or it just read
// past our last message, so a PING follows on the same stream: kad-dht handles a stream's messages in
// turn and resets it at the first that fails, so the PING's answer means the record was taken.
// Bounded: one deadline covers the dial, the send and the answer; the answer may be a few bytes only;
// the stream is always reset at the end (we have nothing more to say, nor to hear).
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { KadMessageType, KadWireError, addProviderMessage, frameKadMessage, readKadFrame } from './kad-message.js';

export interface AddProviderTarget {
  id: PeerId;
  /** Where to dial when not connected; the peer store is asked when empty. */
  addrs?: Multiaddr[];
}

export interface AddProviderOptions {
  /** The kad protocol id (DHT_PROTOCOL for layerd's DHT). */
  protocol: string;
  /** Everything, from the dial to the PING's answer, within this (default 5 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The most a PING's answer may take: kad-dht echoes our few bytes. */
const MAX_ANSWER_BYTES = 256;

/**
 * Tells `to` that this node provides `key` (a multihash's bytes, as kad-dht keys provider records).
 * Resolves once the peer answered the PING sent after it, i.e. once its handler took the record.
 */
export async function sendAddProvider(libp2p: Libp2p, to: AddProviderTarget, key: Uint8Array, o: AddProviderOptions): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 5_000;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`ADD_PROVIDER to ${to.id.toString()}: not done within ${timeoutMs} ms`)), timeoutMs);
  const onAbort = () => deadline.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  let stream: Stream | undefined;
  try {
    const self = { id: libp2p.peerId.toMultihash().bytes, multiaddrs: libp2p.getMultiaddrs().map((a) => a.bytes) };
    const add = frameKadMessage(addProviderMessage(key, self));
    const ping = frameKadMessage({ type: KadMessageType.PING, closer: [], providers: [] });
    stream = await libp2p.dialProtocol(dialTarget(to), o.protocol, { signal: deadline.signal });
    stream.maxReadBufferLength = MAX_ANSWER_BYTES;
    const answered = pingAnswer(stream, deadline.signal);
    stream.send(new Uint8Array([...add, ...ping]));
    await answered;
  } finally {
    stream?.abort(new Error('ADD_PROVIDER done'));
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** The peer's addresses, each naming the peer (so libp2p checks whom it reached), or its id alone. */
function dialTarget(to: AddProviderTarget): PeerId | Multiaddr[] {
  if (!to.addrs || to.addrs.length === 0) return to.id;
  const id = to.id.toString();
  return to.addrs.map((a) => (a.toString().includes('/p2p/') ? a : multiaddr(`${a.toString()}/p2p/${id}`)));
}

/** Resolves at the PING's answer; rejects on anything else, a reset or close first, or when `signal` aborts. */
function pingAnswer(stream: Stream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = new Uint8Array(0);
    const done = (err?: Error) => {
      stream.removeEventListener('close', onClose);
      stream.removeEventListener('message', onMessage);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onClose = (evt: Event) => done((evt as Event & { error?: Error }).error ?? new Error('ADD_PROVIDER: stream closed before the answer'));
    const onMessage = (evt: Event) => {
      const data = (evt as Event & { data: Uint8Array | { subarray(): Uint8Array } }).data;
      buf = new Uint8Array([...buf, ...(data instanceof Uint8Array ? data : data.subarray())]);
      try {
        const frame = readKadFrame(buf, MAX_ANSWER_BYTES);
        if (frame) done(frame.message.type === KadMessageType.PING ? undefined : new KadWireError(`answered type ${frame.message.type}, not PING`));
        else if (buf.length > MAX_ANSWER_BYTES) done(new KadWireError(`answer over ${MAX_ANSWER_BYTES} bytes`));
      } catch (err) {
        done(err as Error);
      }
    };
    const onAbort = () => done(signal.reason as Error);
    stream.addEventListener('close', onClose);
    stream.addEventListener('message', onMessage);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
