import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, OciError } from '../../../src/oci/errors.js';
import { toOciError } from '../../../src/http/errors.js';

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
});
