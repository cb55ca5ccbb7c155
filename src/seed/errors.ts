// What can go wrong talking to a seed registry, other than its not having what was asked (that is an
// answer: see seed-registry.ts). distribution/ decides what each means to a client.

export type SeedFailure = 'unreachable' | 'timeout' | 'status' | 'protocol';

/**
 * Not a ClassifiedError on purpose: a seed's failure gets its kind when the mirror translates it for the
 * client (toClientError), so a seed's 403 is not taken for this node's refusal on the way.
 */
export class SeedError extends Error {
  constructor(
    readonly registry: string,
    readonly kind: SeedFailure,
    message: string,
    readonly status?: number,
  ) {
    super(`seed registry ${registry}: ${message}`);
    this.name = 'SeedError';
  }

  /** The seed could not give any answer (down, timed out, or failing with 5xx after retries). */
  get unavailable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || (this.kind === 'status' && (this.status ?? 0) >= 500);
  }

  /** The seed (or its token realm) refused this node's credentials, or their absence. */
  get denied(): boolean {
    return this.kind === 'status' && (this.status === 401 || this.status === 403);
  }

  /** The seed asked this node to slow down. */
  get throttled(): boolean {
    return this.kind === 'status' && this.status === 429;
  }

  /** A 404 where the seed's answer should have been something else (its token realm's, say). */
  get missing(): boolean {
    return this.kind === 'status' && this.status === 404;
  }
}
