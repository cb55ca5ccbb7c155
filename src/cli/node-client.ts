// HTTP calls from the CLI to a layerd node, with Node's fetch (undici). Every failure becomes a
// RuntimeError whose one-line message says what went wrong: the node could not be reached, or it
// answered an error (shown as the OCI error's code and message).
import { RuntimeError } from './command.js';

/** JSON API calls are small: a node that has not answered within this is stuck. */
const API_TIMEOUT_MS = 15_000;
/**
 * /v2 transfers can be long, so they get an idle timeout instead: how long the node may stay silent
 * (before its headers, or between two chunks of a body). Generous, because a node verifies a blob
 * fetched from peers before it sends the first byte.
 */
export const TRANSFER_IDLE_MS = 120_000;

export interface OciErrorEntry {
  code: string;
  message: string;
}

export class NodeUnreachableError extends RuntimeError {
  constructor(node: string, reason: string) {
    super(`cannot reach node at ${node}: ${reason}`);
  }
}

/** The node answered, with an error status. */
export class NodeAnswerError extends RuntimeError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly ociMessage: string,
    what: string,
  ) {
    super(`${what}: node answered ${status} ${code}: ${ociMessage}`);
  }
}

/** Why a fetch failed, in a few words: undici hides the socket error in `cause`. */
export function fetchFailureReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string; errors?: Array<{ message?: string }> } };
  // AbortSignal.timeout's own message says nothing more; an idle timeout's says how long it waited.
  if (e?.name === 'TimeoutError') return e.message?.startsWith('no data') ? `timed out: ${e.message}` : 'timed out';
  const cause = e?.cause;
  // Several addresses tried (localhost → ::1 and 127.0.0.1): undici gives an AggregateError.
  const message = cause?.message || cause?.errors?.map((x) => x.message).join('; ') || cause?.code || e?.message || String(err);
  return oneLine(message);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** The first OCI error of a body, or what a non-OCI error body (fastify's own 404) says. */
export function parseErrorBody(statusText: string, body: string): OciErrorEntry {
  try {
    const doc = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }>; error?: unknown; message?: unknown };
    const first = Array.isArray(doc.errors) ? doc.errors[0] : undefined;
    if (first && typeof first.code === 'string') return { code: first.code, message: oneLine(String(first.message ?? '')) };
    if (typeof doc.message === 'string') return { code: typeof doc.error === 'string' ? doc.error : statusText || 'ERROR', message: oneLine(doc.message) };
  } catch {
    // not JSON: fall through to the body's text
  }
  return { code: statusText || 'ERROR', message: oneLine(body) || '(empty body)' };
}

export class NodeClient {
  /** `authorization`: the Authorization header sent with every request (--user), if any. */
  constructor(
    readonly base: string,
    private readonly authorization?: string,
  ) {}

  url(path: string): string {
    return `${this.base}${path}`;
  }

  /**
   * GET or POST a JSON API path; the parsed body of a 2xx answer. A POST always sends a JSON body ({} if
   * none is given): the node takes /api POSTs only as application/json.
   */
  async json<T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const payload = method === 'POST' ? JSON.stringify(body ?? {}) : undefined;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await this.send(path, { method, headers, body: payload, signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new NodeUnreachableError(this.base, `reading ${path}: ${fetchFailureReason(err)}`);
    }
    if (!res.ok) throw this.answerError(res, text, `${method} ${path}`);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new RuntimeError(`${method} ${path}: node answered ${res.status} with a body that is not JSON`);
    }
  }

  /**
   * A request whose body the caller streams. Fails with a RuntimeError if the node cannot be reached or
   * answers an error status; `signal` lets the caller abort (e.g. on an idle timeout).
   */
  async stream(path: string, init: { headers?: Record<string, string>; signal: AbortSignal }, what: string): Promise<Response> {
    const res = await this.send(path, { method: 'GET', ...init });
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw this.answerError(res, text, what);
    }
    return res;
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    const headers = { ...(init.headers as Record<string, string> | undefined), ...(this.authorization ? { authorization: this.authorization } : {}) };
    try {
      return await fetch(this.url(path), { ...init, headers });
    } catch (err) {
      throw new NodeUnreachableError(this.base, fetchFailureReason(err));
    }
  }

  private answerError(res: Response, body: string, what: string): NodeAnswerError {
    const e = parseErrorBody(res.statusText, body);
    return new NodeAnswerError(res.status, e.code, e.message, what);
  }
}

/**
 * An AbortSignal that fires when `touch()` has not been called for `ms`: a timeout on silence, not on
 * the whole transfer, so a large blob arriving steadily is never cut.
 */
export function idleTimeout(ms: number): { signal: AbortSignal; touch(): void; clear(): void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new DOMException(`no data for ${ms / 1000} s`, 'TimeoutError')), ms);
    timer.unref();
  };
  touch();
  return { signal: controller.signal, touch, clear: () => clearTimeout(timer) };
}
