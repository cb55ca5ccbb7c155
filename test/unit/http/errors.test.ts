import Fastify, { errorCodes } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, OciError } from '../../../src/oci/errors.js';
import { toOciError } from '../../../src/http/errors.js';
import { InsufficientStorageError } from '../../../src/store/errors.js';

describe('OCI errors', () => {
  it('carry the status the spec gives their code', () => {
    expect(new OciError('BLOB_UNKNOWN', 'x').status).toBe(404);
    expect(new OciError('DIGEST_INVALID', 'x').status).toBe(400);
    expect(new OciError('RANGE_INVALID', 'x').status).toBe(416);
    expect(new OciError('UNSUPPORTED', 'x').status).toBe(405);
    expect(new OciError('SIZE_INVALID', 'x', { status: 413 }).status).toBe(413);
    for (const status of Object.values(ERROR_STATUS)) expect(status).toBeGreaterThanOrEqual(400);
  });

  it('render the spec JSON body, with detail only when there is one', () => {
    expect(new OciError('NAME_INVALID', 'bad name').toBody()).toEqual({ errors: [{ code: 'NAME_INVALID', message: 'bad name' }] });
    expect(new OciError('BLOB_UNKNOWN', 'gone', { detail: { digest: 'd' } }).toBody()).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: 'gone', detail: { digest: 'd' } }],
    });
  });

  it('map foreign errors: client stream failures are 4xx, the rest UNKNOWN 500 without internals', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(toOciError(reset).code).toBe('BLOB_UPLOAD_INVALID');
    expect(toOciError(reset).status).toBe(400);
    const fastify404 = Object.assign(new Error('Not Found'), { statusCode: 404 });
    expect(toOciError(fastify404).status).toBe(404);
    const internal = toOciError(new Error('EIO: /secret/path'));
    expect(internal.status).toBe(500);
    expect(internal.code).toBe('UNKNOWN');
    expect(internal.message).not.toContain('/secret/path');
    const oci = new OciError('DENIED', 'no');
    expect(toOciError(oci)).toBe(oci);
  });

  it('map a full disk (ENOSPC, EDQUOT, the store\'s own error) to 507 with the reason, a too-large body to 413', () => {
    for (const err of [
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
      Object.assign(new Error('EDQUOT: disk quota exceeded, write'), { code: 'EDQUOT' }),
      new InsufficientStorageError(10, 2),
    ]) {
      const oci = toOciError(err);
      expect(oci.status).toBe(507);
      expect(oci.toBody()).toEqual({ errors: [{ code: 'UNAVAILABLE', message: `insufficient storage: the node's disk is full (${err.message})`, detail: { reason: 'ENOSPC' } }] });
    }
    const tooLarge = toOciError(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    expect([tooLarge.code, tooLarge.status, tooLarge.message]).toEqual(['SIZE_INVALID', 413, 'request body too large']);
    for (const code of ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED', 'EPIPE']) {
      expect(toOciError(Object.assign(new Error('cut'), { code })).code, code).toBe('BLOB_UPLOAD_INVALID');
    }
    // A code that is not a string is no code; a 5xx statusCode is no client error.
    expect(toOciError({ code: 42, statusCode: 503, message: 'x' }).status).toBe(500);
    expect(toOciError('a string').status).toBe(500);
  });

  it('a body over the limit, sent to a real server, is the 413 above', async () => {
    const app = Fastify({ bodyLimit: 10 });
    app.setErrorHandler((err, _req, reply) => {
      const oci = toOciError(err);
      void reply.code(oci.status).send(oci.toBody());
    });
    app.post('/x', async () => 'ok');
    const res = await app.inject({ method: 'POST', url: '/x', payload: { much: 'more than ten bytes' } });
    await app.close();
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ errors: [{ code: 'SIZE_INVALID', message: 'request body too large' }] });
  });
});
