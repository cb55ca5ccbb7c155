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

/** The store's filesystem has no room for the bytes. Its code matches the errno, so one check covers both. */
export class InsufficientStorageError extends Error {
  readonly code = 'ENOSPC';
  constructor(
    readonly needed: number,
    readonly free: number,
  ) {
    super(`no space left for ${needed} bytes (${free} bytes free)`);
    this.name = 'InsufficientStorageError';
  }
}

/** Whether a failure is the disk being full (the errno from a write, or a space check). */
export function isNoSpace(err: unknown): boolean {
  return typeof err === 'object' && err !== null && ['ENOSPC', 'EDQUOT'].includes((err as NodeJS.ErrnoException).code ?? '');
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
