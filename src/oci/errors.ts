// The OCI distribution spec's error codes and the HTTP status each one travels with. Every failure
// that reaches a client is an OciError, rendered once (http/errors.ts) as {"errors":[{code,message,detail}]}.
import { ClassifiedError, failureOfStatus, type FailureKind } from './failure.js';

export const ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class OciError extends ClassifiedError {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Seconds a client should wait before trying again (sent as Retry-After), for TOOMANYREQUESTS. */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, opts: { status?: number; detail?: unknown; retryAfter?: number } = {}) {
    super(message);
    this.name = 'OciError';
    this.code = code;
    this.status = opts.status ?? ERROR_STATUS[code];
    this.detail = opts.detail;
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
  }

  /** An answer's kind is its status's: 404 not-found, 429 busy, 507 no-space, other 4xx refused. */
  get failure(): FailureKind {
    return failureOfStatus(this.status);
  }

  /** The spec's JSON error body. */
  toBody(): { errors: Array<{ code: ErrorCode; message: string; detail?: unknown }> } {
    const entry: { code: ErrorCode; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

/**
 * The node's disk is full. 507 (RFC 4918 §11.5), not 503: the node is up and serves what it holds, but
 * cannot store this until space is freed; a client's retry loop will not fix it, the message says what will.
 */
export function insufficientStorage(reason: string): OciError {
  return new OciError('UNAVAILABLE', `insufficient storage: the node's disk is full (${reason})`, { status: 507, detail: { reason: 'ENOSPC' } });
}

export function isOciError(err: unknown): err is OciError {
  return err instanceof OciError;
}
