// Failures the stores report; distribution/ turns them into the client-facing OCI errors.
import { ClassifiedError, type Digest } from '../oci/index.js';

export class BlobNotFoundError extends ClassifiedError {
  readonly failure = 'not-found';
  constructor(readonly digest: Digest) {
    super(`blob ${digest} not found`);
    this.name = 'BlobNotFoundError';
  }
}

export class DigestMismatchError extends ClassifiedError {
  readonly failure = 'corrupt';
  constructor(
    readonly expected: Digest,
    readonly actual: Digest,
  ) {
    super(`content does not match digest: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

/** The store's filesystem has no room for the bytes; its code matches the errno a full disk gives a write. */
export class InsufficientStorageError extends ClassifiedError {
  readonly failure = 'no-space';
  readonly code = 'ENOSPC';
  constructor(
    readonly needed: number,
    readonly free: number,
  ) {
    super(`no space left for ${needed} bytes (${free} bytes free)`);
    this.name = 'InsufficientStorageError';
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

/** Bytes a writer will not land where asked (over bytes it holds, or past the blob's end). */
export class LandingRefusedError extends Error {
  constructor(reason: string) {
    super(`bytes refused: ${reason}`);
    this.name = 'LandingRefusedError';
  }
}
