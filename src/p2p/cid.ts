// DHT keys for blobs: a CIDv1 with the raw codec and the blob's own digest as its multihash, so the key
// names exactly the bytes and any node can derive it from the digest alone.
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { algorithmOf, hexOf, type Digest as BlobDigest } from '../oci/index.js';

const RAW_CODEC = 0x55;
const MULTIHASH = { sha256: 0x12, sha512: 0x13 } as const;

export function digestToCid(digest: BlobDigest): CID {
  const bytes = Buffer.from(hexOf(digest), 'hex');
  return CID.createV1(RAW_CODEC, Digest.create(MULTIHASH[algorithmOf(digest)], bytes));
}
