// Checks for the fields of a peer's JSON message, used by each protocol's parser at the edge: what a
// peer sends is believed only once it has the shape, the types and the sizes the protocol allows. Each
// throws a FrameError naming the field, which the protocol turns into a refusal or a reset stream.
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { FrameError } from './json-lines.js';

/** A base58 peer id is 46-53 characters, a CID form somewhat more: anything far longer is not one. */
const MAX_PEER_ID = 128;
const MAX_MULTIADDR = 1024;

/** The JSON object a message must be; `what` names it in the error. */
export function objectField(v: unknown, what?: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FrameError(what ? `${what}: want a JSON object` : 'want a JSON object');
  return v as Record<string, unknown>;
}

/** A peer id, as libp2p parses it (it is dialled or compared with authenticated ids later). */
export function peerIdField(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PEER_ID) throw new FrameError(`${what}: want a peer id`);
  try {
    peerIdFromString(v);
  } catch {
    throw new FrameError(`${what}: not a peer id`);
  }
  return v;
}

/** Up to `max` strings of up to `maxLength` characters each. */
export function stringsField(v: unknown, what: string, max: number, maxLength: number): string[] {
  if (!Array.isArray(v) || v.length > max) throw new FrameError(`${what}: want a list of at most ${max}`);
  for (const s of v) if (typeof s !== 'string' || s.length > maxLength) throw new FrameError(`${what}: want strings of at most ${maxLength} characters`);
  return v as string[];
}

/** Up to `max` multiaddrs, each one libp2p can parse (they are dialled later). */
export function multiaddrsField(v: unknown, what: string, max: number): string[] {
  const addrs = stringsField(v, what, max, MAX_MULTIADDR);
  for (const a of addrs) {
    try {
      if (a.length < 2) throw new Error('empty'); // '' parses as "/", an address of nothing
      multiaddr(a);
    } catch {
      throw new FrameError(`${what}: not a multiaddr: ${JSON.stringify(a.slice(0, 80))}`);
    }
  }
  return addrs;
}
