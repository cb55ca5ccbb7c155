// Failures the stores report; distribution/ turns them into the client-facing OCI errors.
import type { Digest } from '../oci/digest.js';

export class BlobNotFoundError extends Error {
  constructor(readonly digest: Digest) {
    super(`blob ${digest} not found`);
    this.name = 'BlobNotFoundError';
  }
}

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super(`content does not match digest: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

export class WriterNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`no blob writer ${id}`);
    this.name = 'WriterNotFoundError';
  }
}

export class OffsetMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`chunk starts at byte ${expected}, but the upload holds ${actual} bytes`);
    this.name = 'OffsetMismatchError';
  }
}
