// How many push sessions may be open at once. An open session holds a writer and disk space; a client
// that opens sessions and walks away must not lock everyone else out for good, so a session idle for
// longer than the upload TTL (when its bytes become collectable) stops counting. Pure policy, no I/O.
import { OciError } from '../../oci/index.js';

export interface UploadSessionsOptions {
  /** Sessions open at once; 0 or undefined means no limit. */
  max?: number;
  /** After this long without use a session no longer counts. */
  idleMs: number;
  /** Seconds a refused client is told to wait (Retry-After). */
  retryAfterSeconds?: number;
  now?: () => number;
}

export class UploadSessions {
  /** Session id → last use; a Map keeps the order of last use, oldest first. */
  private readonly open = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: UploadSessionsOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Throws TOOMANYREQUESTS (429 with Retry-After) when no session may open now; else takes `id`'s place. */
  admit(id: string): void {
    this.expire();
    const max = this.opts.max ?? 0;
    if (max > 0 && this.open.size >= max && !this.open.has(id)) {
      throw new OciError('TOOMANYREQUESTS', `too many upload sessions open (limit ${max}); finish or cancel one, or retry later`, {
        retryAfter: this.opts.retryAfterSeconds ?? 5,
        detail: { limit: max },
      });
    }
    this.touch(id);
  }

  /** Marks a session used (one opened before a restart joins the count here). */
  touch(id: string): void {
    this.open.delete(id);
    this.open.set(id, this.now());
  }

  close(id: string): void {
    this.open.delete(id);
  }

  get size(): number {
    this.expire();
    return this.open.size;
  }

  private expire(): void {
    const oldest = this.now() - this.opts.idleMs;
    for (const [id, at] of this.open) {
      if (at > oldest) break;
      this.open.delete(id);
    }
  }
}
