// Digests name content: `algorithm:hex`. A Digest value has been parsed and validated once, at the edge,
// so code further in never re-checks a string.
import { createHash, type Hash } from 'node:crypto';
import { OciError } from './errors.js';

export const ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type Algorithm = keyof typeof ALGORITHMS;

declare const digestBrand: unique symbol;
export type Digest = string & { readonly [digestBrand]: true };

// The spec's grammar: algorithm-component ([+._-] algorithm-component)* ":" encoded
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isAlgorithm(value: string): value is Algorithm {
  return Object.hasOwn(ALGORITHMS, value);
}

/** Parses a digest string or throws DIGEST_INVALID saying what is wrong with it. */
export function parseDigest(value: string): Digest {
  if (typeof value !== 'string' || value.length > 256 || !DIGEST_GRAMMAR.test(value)) {
    throw new OciError('DIGEST_INVALID', `invalid digest: ${JSON.stringify(String(value).slice(0, 80))}`);
  }
  const [algorithm, hex] = value.split(':') as [string, string];
  if (!isAlgorithm(algorithm)) {
    throw new OciError('DIGEST_INVALID', `unsupported digest algorithm: ${algorithm} (supported: sha256, sha512)`);
  }
  if (hex.length !== ALGORITHMS[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest: expected ${ALGORITHMS[algorithm]} lowercase hex characters`);
  }
  return value as Digest;
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function algorithmOf(digest: Digest): Algorithm {
  return digest.slice(0, digest.indexOf(':')) as Algorithm;
}

export function hexOf(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function makeDigest(algorithm: Algorithm, hex: string): Digest {
  return parseDigest(`${algorithm}:${hex}`);
}

export function newHash(algorithm: Algorithm): Hash {
  return createHash(algorithm);
}

export function digestFromHash(algorithm: Algorithm, hash: Hash): Digest {
  return `${algorithm}:${hash.digest('hex')}` as Digest;
}

/** The digest of bytes already in memory (manifests: small by definition). */
export function digestOf(bytes: Uint8Array, algorithm: Algorithm = 'sha256'): Digest {
  return digestFromHash(algorithm, newHash(algorithm).update(bytes));
}
