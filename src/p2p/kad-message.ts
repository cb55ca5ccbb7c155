// The Kademlia DHT's wire message (libp2p's kad-dht spec, `Message` in kad-dht's dht.proto), encoded by
// hand: layerd sends ADD_PROVIDER to peers it picks itself (the provide sweep), which kad-dht offers no
// call for. Only what that needs is here: encoding a message, and a strict decoder (the tests read our
// bytes back with it; it also bounds what it accepts, so it can face a peer's bytes). Frames are the
// message prefixed with its length as an unsigned varint, as kad-dht reads them.

/** Field numbers of kad-dht's dht.proto (a unit test checks them against the .proto kad-dht ships). */
export const KAD_FIELDS = {
  message: { type: 1, key: 2, record: 3, closer: 8, providers: 9, clusterLevel: 10 },
  peerInfo: { id: 1, multiaddrs: 2, connection: 3 },
} as const;

export const KadMessageType = { PUT_VALUE: 0, GET_VALUE: 1, ADD_PROVIDER: 2, GET_PROVIDERS: 3, FIND_NODE: 4, PING: 5 } as const;

export interface KadPeerInfo {
  /** The peer id's multihash bytes. */
  id: Uint8Array;
  /** Binary multiaddrs. */
  multiaddrs: Uint8Array[];
  connection?: number;
}

export interface KadMessage {
  type: number;
  /** For provider records: the content's multihash bytes (what kad-dht hashes into the keyspace). */
  key?: Uint8Array;
  record?: Uint8Array;
  closer: KadPeerInfo[];
  providers: KadPeerInfo[];
  clusterLevel?: number;
}

/** Largest message the decoder accepts: kad-dht's own limit is larger, but no answer we read comes near. */
export const MAX_KAD_MESSAGE = 64 * 1024;

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

export class KadWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KadWireError';
  }
}

/** The ADD_PROVIDER message that tells a peer `self` provides `key`. */
export function addProviderMessage(key: Uint8Array, self: KadPeerInfo): KadMessage {
  return { type: KadMessageType.ADD_PROVIDER, key, closer: [], providers: [self] };
}

export function encodeKadMessage(m: KadMessage): Uint8Array {
  const f = KAD_FIELDS.message;
  const w = new Writer();
  // proto3 leaves a zero enum out; kad-dht's own encoder does the same.
  if (m.type !== 0) w.tag(f.type, VARINT).varint(m.type);
  if (m.key !== undefined) w.tag(f.key, LEN).bytes(m.key);
  if (m.record !== undefined) w.tag(f.record, LEN).bytes(m.record);
  for (const p of m.closer) w.tag(f.closer, LEN).bytes(encodePeerInfo(p));
  for (const p of m.providers) w.tag(f.providers, LEN).bytes(encodePeerInfo(p));
  if (m.clusterLevel !== undefined) w.tag(f.clusterLevel, VARINT).varint(m.clusterLevel);
  return w.finish();
}

function encodePeerInfo(p: KadPeerInfo): Uint8Array {
  const f = KAD_FIELDS.peerInfo;
  const w = new Writer();
  w.tag(f.id, LEN).bytes(p.id);
  for (const a of p.multiaddrs) w.tag(f.multiaddrs, LEN).bytes(a);
  if (p.connection !== undefined) w.tag(f.connection, VARINT).varint(p.connection);
  return w.finish();
}

/** The frame a kad stream carries: varint length, then the message. */
export function frameKadMessage(m: KadMessage): Uint8Array {
  const body = encodeKadMessage(m);
  const w = new Writer();
  w.bytes(body);
  return w.finish();
}

/** One frame's message and the bytes after it; undefined while the frame is incomplete. */
export function readKadFrame(buf: Uint8Array, max = MAX_KAD_MESSAGE): { message: KadMessage; rest: Uint8Array } | undefined {
  const r = new Reader(buf);
  let length: number;
  try {
    length = r.varint();
  } catch (err) {
    if (err instanceof Truncated) return undefined;
    throw err;
  }
  if (length > max) throw new KadWireError(`message of ${length} bytes, more than ${max}`);
  if (r.left() < length) return undefined;
  const body = r.take(length);
  return { message: decodeKadMessage(body), rest: buf.subarray(r.at) };
}

export function decodeKadMessage(bytes: Uint8Array): KadMessage {
  const f = KAD_FIELDS.message;
  const m: KadMessage = { type: 0, closer: [], providers: [] };
  readFields(bytes, (field, wire, r) => {
    if (field === f.type && wire === VARINT) m.type = r.varint();
    else if (field === f.key && wire === LEN) m.key = r.lenBytes();
    else if (field === f.record && wire === LEN) m.record = r.lenBytes();
    else if (field === f.closer && wire === LEN) m.closer.push(decodePeerInfo(r.lenBytes()));
    else if (field === f.providers && wire === LEN) m.providers.push(decodePeerInfo(r.lenBytes()));
    else if (field === f.clusterLevel && wire === VARINT) m.clusterLevel = r.varint();
    else return false;
    return true;
  });
  return m;
}

function decodePeerInfo(bytes: Uint8Array): KadPeerInfo {
  const f = KAD_FIELDS.peerInfo;
  const p: KadPeerInfo = { id: new Uint8Array(0), multiaddrs: [] };
  readFields(bytes, (field, wire, r) => {
    if (field === f.id && wire === LEN) p.id = r.lenBytes();
    else if (field === f.multiaddrs && wire === LEN) p.multiaddrs.push(r.lenBytes());
    else if (field === f.connection && wire === VARINT) p.connection = r.varint();
    else return false;
    return true;
  });
  return p;
}

/** Calls `known` for each field; a field it does not take is skipped by its wire type (proto3 ignores unknown fields). */
function readFields(bytes: Uint8Array, known: (field: number, wire: number, r: Reader) => boolean): void {
  const r = new Reader(bytes);
  try {
    while (r.left() > 0) {
      const tag = r.varint();
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (field === 0) throw new KadWireError('field number 0');
      if (!known(field, wire, r)) r.skip(wire);
    }
  } catch (err) {
    if (err instanceof Truncated) throw new KadWireError('message ends inside a field');
    throw err;
  }
}

class Truncated extends Error {}

class Reader {
  at = 0;
  constructor(private readonly buf: Uint8Array) {}

  left(): number {
    return this.buf.length - this.at;
  }

  /** An unsigned varint of up to 53 bits (lengths, enums, and int32s kad-dht never sends negative). */
  varint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift > 49) throw new KadWireError('varint too long');
      if (this.at >= this.buf.length) throw new Truncated();
      const b = this.buf[this.at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  }

  take(n: number): Uint8Array {
    if (n > this.left()) throw new Truncated();
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  lenBytes(): Uint8Array {
    return this.take(this.varint());
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === I64) this.take(8);
    else if (wire === LEN) this.lenBytes();
    else if (wire === I32) this.take(4);
    else throw new KadWireError(`unsupported wire type ${wire}`);
  }
}

class Writer {
  private readonly parts: number[] = [];

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  varint(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new KadWireError(`not an unsigned integer: ${n}`);
    while (n >= 0x80) {
      this.parts.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.parts.push(n);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}
