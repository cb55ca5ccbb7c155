// An allow-list of peer ids as a libp2p connection gater: with one, this node connects only to the
// peers it names, both ways. Each peer is checked as early as libp2p can know who it is:
//  - outbound: before dialing (the peer id asked for, or the /p2p/ id in the address), then again
//    after the encrypted handshake, as an address without /p2p/ may turn out to be anyone;
//  - inbound: an arriving connection is anonymous until its handshake proves the remote peer id, so
//    it is checked right after the handshake, before a muxer or any protocol stream exists.
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { base58btc } from 'multiformats/bases/base58';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';

const IDENTITY = 0x00;
const SHA256 = 0x12;
const LIBP2P_KEY = 0x72;

/**
 * A peer id as libp2p prints it (base58btc), from any form libp2p prints or parses: a base58btc
 * multihash (12D3KooW... for Ed25519 keys, Qm... for RSA) or a CIDv1 of the libp2p-key codec;
 * undefined when text is neither. A syntax check, not @libp2p/peer-id's peerIdFromString, so that
 * loading the configuration does not pull in libp2p's crypto (every CLI command loads it); a string
 * that passes here and still is no key's id simply never matches a peer.
 */
export function canonicalPeerId(text: string): string | undefined {
  try {
    const hash = /^[1Q]/.test(text) ? Digest.decode(base58btc.baseDecode(text)) : libp2pKeyCid(text);
    return hash && isPeerIdHash(hash) ? base58btc.baseEncode(hash.bytes) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A peer id's multihash: a public key small enough to inline (identity hash of its protobuf: Ed25519
 * is 08 01 12 20 + 32 bytes, secp256k1 08 02 12 21 + 33), or the sha256 of a larger one (RSA, ECDSA).
 */
function isPeerIdHash(hash: Digest.Digest<number, number>): boolean {
  if (hash.code === SHA256) return hash.size === 32;
  if (hash.code !== IDENTITY) return false;
  const d = hash.digest;
  return (d.length === 36 && d[0] === 0x08 && d[1] === 0x01 && d[2] === 0x12 && d[3] === 0x20) || (d.length === 37 && d[0] === 0x08 && d[1] === 0x02 && d[2] === 0x12 && d[3] === 0x21);
}

function libp2pKeyCid(text: string): Digest.Digest<number, number> | undefined {
  const cid = CID.parse(text);
  return cid.code === LIBP2P_KEY ? cid.multihash : undefined;
}

export type RefusalStage = 'dial' | 'handshake';

export interface RefusedPeer {
  peer: string;
  direction: 'inbound' | 'outbound';
  stage: RefusalStage;
}

/** The /p2p/ peer id an address ends with, if any. */
function peerIdOf(addr: Multiaddr): string | undefined {
  return addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
}

export function allowListGater(allowed: Iterable<string>, onRefused: (refused: RefusedPeer) => void = () => undefined): ConnectionGater {
  const ids = new Set(allowed);
  const deny = (peer: string, direction: RefusedPeer['direction'], stage: RefusalStage): boolean => {
    if (ids.has(peer)) return false;
    onRefused({ peer, direction, stage });
    return true;
  };
  return {
    denyDialPeer: (peerId: PeerId) => deny(peerId.toString(), 'outbound', 'dial'),
    denyDialMultiaddr: (addr: Multiaddr) => {
      const id = peerIdOf(addr);
      return id !== undefined && deny(id, 'outbound', 'dial');
    },
    denyOutboundConnection: (peerId: PeerId) => deny(peerId.toString(), 'outbound', 'dial'),
    denyInboundEncryptedConnection: (peerId: PeerId) => deny(peerId.toString(), 'inbound', 'handshake'),
    denyOutboundEncryptedConnection: (peerId: PeerId) => deny(peerId.toString(), 'outbound', 'handshake'),
    // Redundant after the handshake check, kept so a future change of libp2p's order cannot open a gap.
    denyInboundUpgradedConnection: (peerId: PeerId) => deny(peerId.toString(), 'inbound', 'handshake'),
    denyOutboundUpgradedConnection: (peerId: PeerId) => deny(peerId.toString(), 'outbound', 'handshake'),
  };
}
