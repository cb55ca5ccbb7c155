// What kind of failure an error is: the one question every layer asks before it retries, moves to the
// next source, gives up, or answers a client. It is decided here, once, from typed error classes: each
// class that a decision depends on extends ClassifiedError and states its kind, instead of callers
// peeking at fields (`status === 'busy'`, `code === 'ENOSPC'`) of errors they do not own.
//
// It lives in oci/ because that is the one layer every other imports (http → distribution → {store, p2p,
// seed} → oci): the store's, peers' and distribution's error classes can all extend it, and all their
// users can ask it, without anything importing upward. It is pure (no I/O), as oci/ must be.
//
// Not every error has a kind worth a class: a seed's raw answer (SeedError) becomes one when the mirror
// translates it into an OciError for the client; anything unclassified (a broken connection, a bug) is
// 'transient', which is how every caller treated an unknown error before this module.

/**
 * - not-found: the one asked does not have it (the store, a peer, the seed, this node's answer). Another
 *   source may.
 * - busy: the one asked is up but at its limit (a peer's upload slots, a 429). Ask again later, or elsewhere.
 * - no-space: this node's disk is full. No other source fixes that; the client is told why (507).
 * - corrupt: bytes (or a size) that cannot be the content's. They are dropped, and whoever sent them blamed.
 * - refused: the request itself is wrong or not allowed (a 4xx answer, a peer's "bad-request"). Asking the
 *   same way again cannot help.
 * - transient: anything else (unreachable, timed out, cut short, a 5xx, a broken protocol, a bug). Another
 *   try or another source may succeed.
 */
export type FailureKind = 'not-found' | 'busy' | 'no-space' | 'corrupt' | 'refused' | 'transient';

/** An error that says what kind of failure it is. */
export abstract class ClassifiedError extends Error {
  abstract readonly failure: FailureKind;
}

/** Errnos of a full disk: out of blocks, or out of the user's quota. */
const NO_SPACE_ERRNOS: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** The kind of any thrown value. */
export function failureOf(err: unknown): FailureKind {
  if (err instanceof ClassifiedError) return err.failure;
  const errno = errnoOf(err);
  if (errno !== undefined && NO_SPACE_ERRNOS.has(errno)) return 'no-space';
  return 'transient';
}

/**
 * The errno code of a Node system error (`ENOSPC`, `ETIMEDOUT`, ...), undefined for anything else. Node's
 * system errors have no classes of their own: their code is the only thing to go by, read through this.
 */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The kind of an HTTP status, as an answer from this node or a registry. */
export function failureOfStatus(status: number): FailureKind {
  if (status === 404) return 'not-found';
  if (status === 429) return 'busy';
  if (status === 507) return 'no-space';
  if (status >= 400 && status < 500) return 'refused';
  return 'transient';
}
