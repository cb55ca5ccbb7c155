// The hand-written kad wire encoding: it must read back as it was written, and say the same thing to
// kad-dht: its field numbers are checked against the dht.proto kad-dht ships, and its bytes against
// kad-dht's own generated decoder (read from kad-dht's dist, which its package exports do not expose).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { digestToCid } from '../../../src/p2p/cid.js';
import {
  KAD_FIELDS,
  KadMessageType,
  KadWireError,
  addProviderMessage,
  decodeKadMessage,
  encodeKadMessage,
  frameKadMessage,
  readKadFrame,
  type KadMessage,
} from '../../../src/p2p/kad-message.js';

const kadDhtRoot = fileURLToPath(new URL('../../../node_modules/@libp2p/kad-dht/', import.meta.url));

interface KadDhtCodec {
  Message: { decode(buf: Uint8Array): { type: string; key?: Uint8Array; providers: Array<{ id: Uint8Array; multiaddrs: Uint8Array[] }>; closer: unknown[] }; encode(m: object): Uint8Array };
}

async function kadDhtCodec(): Promise<KadDhtCodec> {
  return (await import(pathToFileURL(join(kadDhtRoot, 'dist/src/message/dht.js')).href)) as KadDhtCodec;
}

/** `name = number;` of each field, per message of the .proto. */
function protoFields(text: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const m of text.matchAll(/message\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields: Record<string, number> = {};
    for (const f of m[2]!.matchAll(/^\s*(?:optional\s+|repeated\s+)?\w+\s+(\w+)\s*=\s*(\d+)\s*;/gm)) fields[f[1]!] = Number(f[2]);
    out[m[1]!] = fields;
  }
  return out;
}

async function sample(): Promise<{ key: Uint8Array; self: { id: Uint8Array; multiaddrs: Uint8Array[] } }> {
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
  const key = digestToCid(digestOf(Buffer.from('a layer'))).multihash.bytes;
  const multiaddrs = ['/ip4/127.0.0.1/tcp/4001', '/ip4/10.0.0.7/tcp/4001'].map((a) => multiaddr(a).bytes);
  return { key, self: { id: peer.toMultihash().bytes, multiaddrs } };
}

describe('kad wire messages', () => {
  it('uses the field numbers of the dht.proto kad-dht ships', () => {
    const proto = protoFields(readFileSync(join(kadDhtRoot, 'src/message/dht.proto'), 'utf8'));
    expect(proto.Message).toMatchObject(KAD_FIELDS.message);
    expect(proto.PeerInfo).toMatchObject(KAD_FIELDS.peerInfo);
    expect(readFileSync(join(kadDhtRoot, 'src/message/dht.proto'), 'utf8')).toMatch(/ADD_PROVIDER\s*=\s*2\s*;/);
    expect(KadMessageType.ADD_PROVIDER).toBe(2);
  });

  it('reads back what it writes, framed or not', async () => {
    const { key, self } = await sample();
    const m = addProviderMessage(key, self);
    expect(decodeKadMessage(encodeKadMessage(m))).toEqual(m);
    const full: KadMessage = { type: 4, key, record: Uint8Array.of(1, 2, 3), closer: [self, { ...self, connection: 1 }], providers: [self], clusterLevel: 300 };
    expect(decodeKadMessage(encodeKadMessage(full))).toEqual(full);
    const frame = frameKadMessage(m);
    const tail = Uint8Array.of(9, 9);
    const both = new Uint8Array([...frame, ...tail]);
    expect(readKadFrame(both)).toEqual({ message: m, rest: tail });
    // A frame cut anywhere is "not yet", never a wrong message.
    for (let cut = 0; cut < frame.length; cut++) expect(readKadFrame(frame.subarray(0, cut))).toBeUndefined();
  });

  it('is read by kad-dht as the ADD_PROVIDER it means', async () => {
    const { Message } = await kadDhtCodec();
    const { key, self } = await sample();
    const theirs = Message.decode(encodeKadMessage(addProviderMessage(key, self)));
    expect(theirs.type).toBe('ADD_PROVIDER');
    expect(Buffer.from(theirs.key!).equals(Buffer.from(key))).toBe(true);
    expect(theirs.providers).toHaveLength(1);
    expect(Buffer.from(theirs.providers[0]!.id).equals(Buffer.from(self.id))).toBe(true);
    expect(theirs.providers[0]!.multiaddrs.map((a) => multiaddr(a).toString())).toEqual(['/ip4/127.0.0.1/tcp/4001', '/ip4/10.0.0.7/tcp/4001']);
    expect(theirs.closer).toEqual([]);
  });

  it('reads kad-dht-encoded messages, skipping fields it does not know', async () => {
    const { Message } = await kadDhtCodec();
    const { key, self } = await sample();
    const bytes = Message.encode({ type: 'GET_PROVIDERS', key, closer: [{ ...self, connection: 'CONNECTED' }], providers: [self], clusterLevel: 5 });
    const ours = decodeKadMessage(bytes);
    expect(ours).toEqual({ type: KadMessageType.GET_PROVIDERS, key, closer: [{ ...self, connection: 1 }], providers: [self], clusterLevel: 5 });
    // An unknown field of each wire type (fixed64 #20, fixed32 #21, varint #22, bytes #23) is skipped.
    const extra = Uint8Array.of(0xa1, 0x01, ...new Array(8).fill(7), 0xad, 0x01, 1, 2, 3, 4, 0xb0, 0x01, 0x96, 0x01, 0xba, 0x01, 2, 0xff, 0xff);
    expect(decodeKadMessage(new Uint8Array([...bytes, ...extra]))).toEqual(ours);
  });

  it('refuses malformed and oversized input', () => {
    expect(() => decodeKadMessage(Uint8Array.of(0x12, 0x05, 1, 2))).toThrow(KadWireError); // key of 5 bytes, 2 given
    expect(() => decodeKadMessage(Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toThrow(KadWireError);
    expect(() => decodeKadMessage(Uint8Array.of(0x0b))).toThrow(KadWireError); // wire type 3 (groups)
    expect(() => decodeKadMessage(Uint8Array.of(0x00, 0x00))).toThrow(KadWireError); // field 0
    expect(() => readKadFrame(Uint8Array.of(0x80, 0x80, 0x80, 0x01), 1024)).toThrow(KadWireError); // 2 MiB announced
  });
});
