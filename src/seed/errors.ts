// What can go wrong talking to a seed registry. distribution/ decides what each means to a client.

export type UpstreamFailure = 'unreachable' | 'timeout' | 'status' | 'protocol';

export class UpstreamError extends Error {
  constructor(
    readonly registry: string,
    readonly kind: UpstreamFailure,
    message: string,
    readonly status?: number,
  ) {
    super(`seed registry ${registry}: ${message}`);
    this.name = 'UpstreamError';
  }

  /** The seed could not give any answer (down, timed out, or failing with 5xx after retries). */
  get unavailable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || (this.kind === 'status' && (this.status ?? 0) >= 500);
  }
}
