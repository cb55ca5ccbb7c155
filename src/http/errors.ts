// One place where failures become HTTP responses: every error leaves as the OCI spec's JSON body.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OciError, insufficientStorage, isOciError } from '../oci/errors.js';
import { isNoSpace } from '../store/errors.js';

/** Errors from a client that went away or sent a broken body: the client's fault, not ours. */
const CLIENT_STREAM_ERRORS = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED', 'EPIPE']);

export function toOciError(err: unknown): OciError {
  if (isOciError(err)) return err;
  const e = err as FastifyError & NodeJS.ErrnoException;
  if (e && typeof e === 'object') {
    if (e.code && CLIENT_STREAM_ERRORS.has(e.code)) return new OciError('BLOB_UPLOAD_INVALID', 'request body ended early');
    if (isNoSpace(e)) return insufficientStorage(e.message);
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new OciError('SIZE_INVALID', 'request body too large', { status: 413 });
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      return new OciError('UNSUPPORTED', e.message, { status: e.statusCode });
    }
  }
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
  if (request.method === 'HEAD') {
    reply.send();
    return;
  }
  reply.send(JSON.stringify(oci.toBody()));
}
