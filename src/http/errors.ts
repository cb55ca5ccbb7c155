// One place where failures become HTTP responses: every error leaves as the OCI spec's JSON body.
// What kind of failure an error is comes from the one classification (oci/failure.ts); this file only
// says how each kind, and the few errors of HTTP itself, are answered.
import { errorCodes, type FastifyReply, type FastifyRequest } from 'fastify';
import { OciError, errnoOf, failureOf, insufficientStorage, isOciError } from '../oci/index.js';

/** Errors from a client that went away or sent a broken body: the client's fault, not ours. */
const CLIENT_STREAM_ERRORS: ReadonlySet<string> = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED', 'EPIPE']);

/** The 4xx status a framework error (Fastify's, a route's 404) carries, if it carries one. */
function clientStatusOf(err: unknown): number | undefined {
  const status = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

export function toOciError(err: unknown): OciError {
  if (isOciError(err)) return err;
  const errno = errnoOf(err);
  if (errno !== undefined && CLIENT_STREAM_ERRORS.has(errno)) return new OciError('BLOB_UPLOAD_INVALID', 'request body ended early');
  if (failureOf(err) === 'no-space') return insufficientStorage((err as Error).message);
  if (err instanceof errorCodes.FST_ERR_CTP_BODY_TOO_LARGE) return new OciError('SIZE_INVALID', 'request body too large', { status: 413 });
  const status = clientStatusOf(err);
  if (status !== undefined) return new OciError('UNSUPPORTED', (err as Error).message, { status });
  return new OciError('UNKNOWN', 'internal error');
}

export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const oci = toOciError(err);
  if (oci.status >= 500) request.log.error({ err }, 'request failed');
  if (reply.sent || reply.raw.headersSent) {
    // Headers are gone: all that is left is to cut the connection so the client sees a failure.
    reply.raw.destroy();
    return;
  }
  reply.code(oci.status).header('content-type', 'application/json; charset=utf-8');
  if (oci.retryAfter !== undefined) reply.header('retry-after', String(oci.retryAfter));
  discardUnreadBody(request, reply);
  if (request.method === 'HEAD') {
    reply.send();
    return;
  }
  reply.send(JSON.stringify(oci.toBody()));
}

/** How long the rest of a refused request's body is read and dropped before the connection is cut. */
const LINGER_MS = 5_000;

/**
 * A request refused before its body was read (too large, too many sessions, a bad chunk range): the
 * client may still be sending. Closing at once would make its TCP stack answer our error with a reset
 * and often drop the error unread, so the rest of the body is read into the void for a while (as a web
 * server's lingering close does), and the connection cut only if the client goes on sending after that.
 * Nothing of it is kept. The answer says keep-alive even to a client that asked to close: otherwise
 * Node closes the socket as soon as the answer is written, unread bytes and all, which is that reset.
 */
function discardUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw;
  if (raw.complete || raw.destroyed) return;
  reply.header('connection', 'keep-alive');
  const cut = setTimeout(() => raw.socket?.destroy(), LINGER_MS);
  cut.unref();
  const done = () => clearTimeout(cut);
  raw.once('end', done);
  raw.once('close', done);
  raw.resume();
}
