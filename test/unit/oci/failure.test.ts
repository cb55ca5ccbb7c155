// The one classification of failures (src/oci/failure.ts): each kind from the classes that state it, the
// errnos of a full disk, and the cases the callers used to decide by peeking at fields.
import { describe, expect, it } from 'vitest';
import { makeDigest } from '../../../src/oci/digest.js';
import { insufficientStorage, OciError } from '../../../src/oci/errors.js';
import { errnoOf, failureOf, failureOfStatus } from '../../../src/oci/failure.js';
import { PeerFetchError } from '../../../src/p2p/blob-protocol.js';
import { FrameError } from '../../../src/p2p/json-lines.js';
import { BlobNotFoundError, DigestMismatchError, InsufficientStorageError, OffsetMismatchError } from '../../../src/store/errors.js';
import { NoSourceError, OverrunError, SizeConflictError, UnconfirmedClaimError } from '../../../src/distribution/download/shared-download.js';
import { SeedError } from '../../../src/seed/errors.js';
import { TimeoutError } from '../../../src/seed/http.js';

const d1 = makeDigest('sha256', 'a'.repeat(64));
const d2 = makeDigest('sha256', 'b'.repeat(64));
const errno = (code: string) => Object.assign(new Error(code), { code });

describe('failureOf', () => {
  it('not-found: the store, a peer, no source at all, and a 404 answer', () => {
    expect(failureOf(new BlobNotFoundError(d1))).toBe('not-found');
    expect(failureOf(new PeerFetchError('p', 'not-found', 'answered not-found'))).toBe('not-found');
    expect(failureOf(new NoSourceError(d1))).toBe('not-found');
    for (const code of ['BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN'] as const) expect(failureOf(new OciError(code, 'x'))).toBe('not-found');
  });

  it("busy: a peer's busy answer and a 429", () => {
    expect(failureOf(new PeerFetchError('p', 'busy', 'answered busy'))).toBe('busy');
    expect(failureOf(new OciError('TOOMANYREQUESTS', 'slow down', { retryAfter: 5 }))).toBe('busy');
  });

  it('no-space: the errnos of a full disk, the space check, and the 507 answer', () => {
    expect(failureOf(errno('ENOSPC'))).toBe('no-space');
    expect(failureOf(errno('EDQUOT'))).toBe('no-space');
    expect(failureOf(new InsufficientStorageError(10, 1))).toBe('no-space');
    expect(failureOf(insufficientStorage('ENOSPC'))).toBe('no-space');
  });

  it('corrupt: bytes that did not verify, more than announced, or sizes that disagree', () => {
    expect(failureOf(new DigestMismatchError(d1, d2))).toBe('corrupt');
    expect(failureOf(new OverrunError(10))).toBe('corrupt');
    expect(failureOf(new SizeConflictError(10, 11, 'upstream'))).toBe('corrupt');
  });

  it("refused: a 4xx answer other than 404 and 429, and a peer's bad-request", () => {
    for (const code of ['DENIED', 'UNAUTHORIZED', 'DIGEST_INVALID', 'RANGE_INVALID', 'UNSUPPORTED'] as const) expect(failureOf(new OciError(code, 'x'))).toBe('refused');
    expect(failureOf(new OciError('SIZE_INVALID', 'too large', { status: 413 }))).toBe('refused');
    expect(failureOf(new PeerFetchError('p', 'bad-request', 'answered bad-request'))).toBe('refused');
  });

  it('transient: 5xx answers, failing to reach or hear a peer, and anything unclassified', () => {
    expect(failureOf(new OciError('UNAVAILABLE', 'seed down', { status: 502 }))).toBe('transient');
    expect(failureOf(new OciError('UNKNOWN', 'internal error'))).toBe('transient');
    for (const status of ['unreachable', 'truncated', 'stalled', 'protocol', 'error'] as const) expect(failureOf(new PeerFetchError('p', status, status))).toBe('transient');
    expect(failureOf(new FrameError('line too long'))).toBe('transient');
    expect(failureOf(new TimeoutError(100))).toBe('transient');
    expect(failureOf(errno('ECONNRESET'))).toBe('transient');
    // A claim only the disk could refuse is the claimant's failure, not a full disk: the next source is tried.
    expect(failureOf(new UnconfirmedClaimError(10, errno('ENOSPC')))).toBe('transient');
    // A seed's raw answer gets its kind when the mirror translates it for the client (toClientError).
    expect(failureOf(new SeedError('seed', 'status', 'answered 403', 403))).toBe('transient');
    expect(failureOf(new OffsetMismatchError(1, 2))).toBe('transient');
    for (const v of [new Error('x'), new TypeError('x'), 'a string', undefined, null, 42, {}]) expect(failureOf(v)).toBe('transient');
  });

  it('believes only the classes: a look-alike of a busy answer is not busy (the old duck typing)', () => {
    expect(failureOf({ status: 'busy' })).toBe('transient');
    expect(failureOf(Object.assign(new Error('x'), { status: 'busy' }))).toBe('transient');
    expect(failureOf({ failure: 'busy' })).toBe('transient');
  });
});

describe('failureOfStatus', () => {
  it('maps HTTP statuses as the callers did', () => {
    expect([404, 429, 507, 400, 401, 403, 413, 416, 500, 502, 503, 504].map(failureOfStatus)).toEqual([
      'not-found', 'busy', 'no-space', 'refused', 'refused', 'refused', 'refused', 'refused', 'transient', 'transient', 'transient', 'transient',
    ]);
  });
});

describe('errnoOf', () => {
  it("reads a system error's code, and nothing from what has none", () => {
    expect(errnoOf(errno('ETIMEDOUT'))).toBe('ETIMEDOUT');
    expect(errnoOf(new TimeoutError(5))).toBe('ETIMEDOUT');
    expect(errnoOf(new Error('x'))).toBeUndefined();
    expect(errnoOf({ code: 5 })).toBeUndefined();
    expect(errnoOf(undefined)).toBeUndefined();
    expect(errnoOf('ENOSPC')).toBeUndefined();
  });
});
