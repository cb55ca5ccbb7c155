// Blob upload sessions against a real `layerd serve`, per the OCI Distribution Spec v1.1 "Push"
// section: single POST, POST then PUT, chunked PATCH with Content-Range, upload status, cancel,
// and every way an upload can be refused.
import { beforeAll, describe, expect, it } from 'vitest';
import { useRegistryTarget } from '../helpers/nodes.js';
import {
  digestOf,
  expectError,
  randomBlob,
  type PushedImage,
  type Res,
  withQuery,
} from '../helpers/registry-client.js';

const { client: c, url: targetUrl } = useRegistryTarget();

const octet = { 'content-type': 'application/octet-stream' };

/** Opens an upload session for a chunked push (Content-Length: 0) and returns its Location. */
async function startUpload(repo: string): Promise<string> {
  const res = await c.req('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
  expect(res.status).toBe(202);
  const location = res.header('location');
  expect(location).toBeTruthy();
  return location!;
}

function patch(location: string, chunk: Buffer, start: number): Promise<Res> {
  return c.req('PATCH', location, {
    headers: { ...octet, 'content-range': `${start}-${start + chunk.length - 1}` },
    body: chunk,
  });
}

/** The path of a (possibly absolute) Location header. */
function pathOfLocation(location: string): string {
  return new URL(location, targetUrl()).pathname;
}

describe('monolithic uploads', () => {
  it('a single POST ?digest= with the body answers 201 with Location and Docker-Content-Digest', async () => {
    const data = randomBlob(2048);
    const digest = digestOf(data);
    const res = await c.req('POST', `/v2/up/mono/blobs/uploads/?digest=${digest}`, { headers: octet, body: data });
    expect(res.status).toBe(201);
    expect(pathOfLocation(res.header('location')!)).toBe(`/v2/up/mono/blobs/${digest}`);
    expect(res.header('docker-content-digest')).toBe(digest);
    const get = await c.req('GET', `/v2/up/mono/blobs/${digest}`);
    expect(get.body.equals(data)).toBe(true);
  });

  it('POST then PUT ?digest= with the body answers 202 then 201 with Location and Docker-Content-Digest', async () => {
    const data = randomBlob(4000);
    const digest = digestOf(data);
    const post = await c.req('POST', '/v2/up/postput/blobs/uploads/');
    expect(post.status).toBe(202);
    expect(post.header('location')).toBeTruthy();
    const put = await c.req('PUT', withQuery(post.header('location')!, `digest=${digest}`), { headers: octet, body: data });
    expect(put.status).toBe(201);
    expect(pathOfLocation(put.header('location')!)).toBe(`/v2/up/postput/blobs/${digest}`);
    expect(put.header('docker-content-digest')).toBe(digest);
    expect((await c.req('GET', `/v2/up/postput/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('a single POST with a sha512 digest stores the blob under that digest', async () => {
    const data = randomBlob(1000);
    const digest = digestOf(data, 'sha512');
    const res = await c.req('POST', `/v2/up/mono512/blobs/uploads/?digest=${digest}`, { headers: octet, body: data });
    expect(res.status).toBe(201);
    expect(res.header('docker-content-digest')).toBe(digest);
    expect((await c.req('GET', `/v2/up/mono512/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('a single POST whose body does not match ?digest= answers 400 DIGEST_INVALID and stores nothing', async () => {
    const data = randomBlob(100);
    const claimed = digestOf('something else');
    const res = await c.req('POST', `/v2/up/bad/blobs/uploads/?digest=${claimed}`, { headers: octet, body: data });
    expectError(res, 400, 'DIGEST_INVALID');
    expect((await c.req('HEAD', `/v2/up/bad/blobs/${claimed}`)).status).toBe(404);
    expect((await c.req('HEAD', `/v2/up/bad/blobs/${digestOf(data)}`)).status).toBe(404);
  });

  it('PUT whose body does not match ?digest= answers 400 DIGEST_INVALID and stores nothing', async () => {
    const location = await startUpload('up/bad');
    const claimed = digestOf('not these bytes');
    const res = await c.req('PUT', withQuery(location, `digest=${claimed}`), { headers: octet, body: randomBlob(64) });
    expectError(res, 400, 'DIGEST_INVALID');
    expect((await c.req('HEAD', `/v2/up/bad/blobs/${claimed}`)).status).toBe(404);
  });

  it('PUT without a digest parameter answers 400 DIGEST_INVALID', async () => {
    const location = await startUpload('up/bad');
    const res = await c.req('PUT', location, { headers: octet, body: randomBlob(64) });
    expectError(res, 400, 'DIGEST_INVALID');
  });

  it.each([
    ['no algorithm', 'abcdef'],
    ['empty hex', 'sha256:'],
    ['a truncated sha256 hex', 'sha256:abc123'],
    ['non-hex characters', `sha256:${'g'.repeat(64)}`],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`],
    ['a sha256 hex one character too long', `sha256:${'a'.repeat(65)}`],
    ['a sha512 hex of sha256 length', `sha512:${'a'.repeat(64)}`],
    ['an empty algorithm', `:${'a'.repeat(64)}`],
  ])('PUT ?digest= with an invalid digest (%s) answers 400 DIGEST_INVALID', async (_, bad) => {
    const location = await startUpload('up/baddigest');
    const res = await c.req('PUT', withQuery(location, `digest=${encodeURIComponent(bad)}`), { headers: octet, body: randomBlob(16) });
    expectError(res, 400, 'DIGEST_INVALID');
  });

  it('a single POST with an invalid ?digest= answers 400 DIGEST_INVALID', async () => {
    const res = await c.req('POST', '/v2/up/baddigest/blobs/uploads/?digest=sha256:nothex', { headers: octet, body: randomBlob(16) });
    expectError(res, 400, 'DIGEST_INVALID');
  });

  it('a digest with a well-formed but unsupported algorithm answers 400 DIGEST_INVALID naming the algorithm', async () => {
    // md5 is syntactically a digest (algorithm ":" hex) but not one the registry can verify.
    const data = randomBlob(16);
    const location = await startUpload('up/baddigest');
    const res = await c.req('PUT', withQuery(location, `digest=md5:${'0'.repeat(32)}`), { headers: octet, body: data });
    expectError(res, 400, 'DIGEST_INVALID');
    expect(res.body.toString()).toContain('unsupported digest algorithm: md5');
  });
});

describe('chunked uploads', () => {
  it('POST + PATCH chunks + PUT: 202 with Location, Range 0-N and Docker-Upload-UUID per chunk, then 201', async () => {
    const data = randomBlob(30_000);
    const digest = digestOf(data);
    const chunks = [data.subarray(0, 10_000), data.subarray(10_000, 25_000), data.subarray(25_000)];
    let location = await startUpload('up/chunked');
    let offset = 0;
    for (const chunk of chunks) {
      const res = await patch(location, chunk, offset);
      offset += chunk.length;
      expect(res.status).toBe(202);
      expect(res.header('range')).toBe(`0-${offset - 1}`);
      expect(res.header('docker-upload-uuid')).toMatch(/\S/);
      // The session id is part of the Location (spec: "MUST contain a UUID").
      expect(res.header('location')).toContain(res.header('docker-upload-uuid'));
      location = res.header('location')!;
    }
    const put = await c.req('PUT', withQuery(location, `digest=${digest}`));
    expect(put.status).toBe(201);
    expect(pathOfLocation(put.header('location')!)).toBe(`/v2/up/chunked/blobs/${digest}`);
    expect(put.header('docker-content-digest')).toBe(digest);
    const get = await c.req('GET', `/v2/up/chunked/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.body.equals(data)).toBe(true);
  });

  it('the final chunk may come in the closing PUT, with its Content-Range', async () => {
    const data = randomBlob(5000);
    const digest = digestOf(data);
    const location = await startUpload('up/chunked');
    const first = await patch(location, data.subarray(0, 3000), 0);
    expect(first.status).toBe(202);
    const put = await c.req('PUT', withQuery(first.header('location')!, `digest=${digest}`), {
      headers: { ...octet, 'content-range': '3000-4999' },
      body: data.subarray(3000),
    });
    expect(put.status).toBe(201);
    expect((await c.req('GET', `/v2/up/chunked/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('a PATCH without Content-Range appends the body (streamed upload)', async () => {
    const data = randomBlob(6000);
    const digest = digestOf(data);
    const location = await startUpload('up/stream');
    const res = await c.req('PATCH', location, { headers: octet, body: data });
    expect(res.status).toBe(202);
    expect(res.header('range')).toBe('0-5999');
    const put = await c.req('PUT', withQuery(res.header('location')!, `digest=${digest}`));
    expect(put.status).toBe(201);
    expect((await c.req('GET', `/v2/up/stream/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('a chunked sha512 upload completes under its sha512 digest', async () => {
    const data = randomBlob(9000);
    const digest = digestOf(data, 'sha512');
    let location = await startUpload('up/chunked512');
    const a = await patch(location, data.subarray(0, 4500), 0);
    expect(a.status).toBe(202);
    const b = await patch(a.header('location')!, data.subarray(4500), 4500);
    expect(b.status).toBe(202);
    location = b.header('location')!;
    const put = await c.req('PUT', withQuery(location, `digest=${digest}`));
    expect(put.status).toBe(201);
    expect(put.header('docker-content-digest')).toBe(digest);
    expect((await c.req('GET', `/v2/up/chunked512/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('GET on an upload answers 204 with Location and Range 0-<last byte>', async () => {
    const location = await startUpload('up/status');
    const res = await patch(location, randomBlob(1234), 0);
    expect(res.status).toBe(202);
    const status = await c.req('GET', res.header('location')!);
    expect(status.status).toBe(204);
    expect(status.header('range')).toBe('0-1233');
    expect(status.header('location')).toBeTruthy();
    expect(status.body.length).toBe(0);
  });

  it('a chunk that starts past the current offset answers 416, and the upload stays usable', async () => {
    const data = randomBlob(2000);
    const location = await startUpload('up/order');
    const first = await patch(location, data.subarray(0, 1000), 0);
    expect(first.status).toBe(202);
    const skip = await patch(first.header('location')!, data.subarray(1500), 1500);
    expectError(skip, 416, 'RANGE_INVALID');
    // The status tells the client where to resume; resuming there works.
    const status = await c.req('GET', first.header('location')!);
    expect(status.status).toBe(204);
    expect(status.header('range')).toBe('0-999');
    const second = await patch(status.header('location')!, data.subarray(1000), 1000);
    expect(second.status).toBe(202);
    const put = await c.req('PUT', withQuery(second.header('location')!, `digest=${digestOf(data)}`));
    expect(put.status).toBe(201);
    expect((await c.req('GET', `/v2/up/order/blobs/${digestOf(data)}`)).body.equals(data)).toBe(true);
  });

  it('a first chunk that does not start at 0 answers 416', async () => {
    const location = await startUpload('up/order');
    expectError(await patch(location, randomBlob(100), 100), 416, 'RANGE_INVALID');
  });

  it('re-sending an already accepted chunk answers 416', async () => {
    const chunk = randomBlob(500);
    const location = await startUpload('up/order');
    expect((await patch(location, chunk, 0)).status).toBe(202);
    // The conformance suite retries on the Location of the POST, which is what a naive client would do.
    expectError(await patch(location, chunk, 0), 416, 'RANGE_INVALID');
  });

  it.each([
    ['a bytes= prefix', 'bytes=0-9'],
    ['a non-numeric range', 'abc'],
    ['an end before the start', '9-0'],
    ['a missing end', '0-'],
  ])('a PATCH with a malformed Content-Range (%s) is refused with RANGE_INVALID and changes nothing', async (_, range) => {
    const location = await startUpload('up/badrange');
    const res = await c.req('PATCH', location, { headers: { ...octet, 'content-range': range }, body: randomBlob(10) });
    expectError(res, [400, 416], 'RANGE_INVALID');
    // Nothing was appended: a proper first chunk from offset 0 is still what the session expects.
    const retry = await patch(location, randomBlob(10), 0);
    expect(retry.status).toBe(202);
    expect(retry.header('range')).toBe('0-9');
  });

  it('a Content-Range whose length differs from the body is refused and changes nothing', async () => {
    const location = await startUpload('up/badrange');
    const first = await patch(location, randomBlob(100), 0);
    expect(first.status).toBe(202);
    const res = await c.req('PATCH', first.header('location')!, {
      headers: { ...octet, 'content-range': '100-199' },
      body: randomBlob(50),
    });
    expect([400, 416]).toContain(res.status);
    expectError(res, res.status, ['RANGE_INVALID', 'SIZE_INVALID', 'BLOB_UPLOAD_INVALID']);
    const status = await c.req('GET', first.header('location')!);
    expect(status.header('range')).toBe('0-99');
  });

  it('a closing PUT whose final chunk does not start at the current offset answers 416', async () => {
    const data = randomBlob(200);
    const location = await startUpload('up/badput');
    const first = await patch(location, data.subarray(0, 100), 0);
    const put = await c.req('PUT', withQuery(first.header('location')!, `digest=${digestOf(data)}`), {
      headers: { ...octet, 'content-range': '150-249' },
      body: data.subarray(100),
    });
    expectError(put, 416, 'RANGE_INVALID');
    expect((await c.req('HEAD', `/v2/up/badput/blobs/${digestOf(data)}`)).status).toBe(404);
  });

  it('two concurrent uploads of the same blob both complete, and the blob reads back intact', async () => {
    const data = randomBlob(200_000);
    const digest = digestOf(data);
    const push = async () => {
      const location = await startUpload('up/concurrent');
      const a = await patch(location, data.subarray(0, 100_000), 0);
      const b = await patch(a.header('location')!, data.subarray(100_000), 100_000);
      return c.req('PUT', withQuery(b.header('location')!, `digest=${digest}`));
    };
    const results = await Promise.all([push(), push()]);
    expect(results.map((r) => r.status)).toEqual([201, 201]);
    expect(digestOf((await c.req('GET', `/v2/up/concurrent/blobs/${digest}`)).body)).toBe(digest);
  });

  it('a closing PUT whose digest does not match the chunks answers 400 DIGEST_INVALID', async () => {
    const location = await startUpload('up/badput');
    const res = await patch(location, randomBlob(300), 0);
    const put = await c.req('PUT', withQuery(res.header('location')!, `digest=${digestOf('other')}`));
    expectError(put, 400, 'DIGEST_INVALID');
  });
});

describe('upload session lifecycle', () => {
  it('DELETE on an upload answers 204, after which the upload is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const location = await startUpload('up/cancel');
    const res = await patch(location, randomBlob(100), 0);
    expect(res.status).toBe(202);
    const del = await c.req('DELETE', res.header('location')!);
    expect(del.status).toBe(204);
    expectError(await c.req('GET', res.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await patch(res.header('location')!, randomBlob(10), 100), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await c.req('DELETE', res.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('a completed upload is gone: GET/PATCH/PUT on its Location answer 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const data = randomBlob(64);
    const location = await startUpload('up/done');
    const put = await c.req('PUT', withQuery(location, `digest=${digestOf(data)}`), { headers: octet, body: data });
    expect(put.status).toBe(201);
    expectError(await c.req('GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await patch(location, randomBlob(10), 64), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await c.req('PUT', withQuery(location, `digest=${digestOf(data)}`), { headers: octet, body: data }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  describe('an unknown upload id answers 404 BLOB_UPLOAD_UNKNOWN', () => {
    const unknown = '/v2/up/unknown/blobs/uploads/4a1b3c5e-0000-4000-8000-000000000000';
    it.each(['GET', 'PATCH', 'PUT', 'DELETE'])('%s', async (method) => {
      const path = method === 'PUT' ? `${unknown}?digest=${digestOf('x')}` : unknown;
      const res = await c.req(method, path, method === 'PATCH' || method === 'PUT' ? { headers: octet, body: 'x' } : {});
      expectError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
    });
  });

  it('an upload opened in repo A cannot be used through repo B', async () => {
    const location = await startUpload('up/owner');
    const id = pathOfLocation(location).split('/').pop()!;
    const data = randomBlob(10);
    expectError(await c.req('GET', `/v2/up/intruder/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    const put = await c.req('PUT', `/v2/up/intruder/blobs/uploads/${id}?digest=${digestOf(data)}`, { headers: octet, body: data });
    expectError(put, 404, 'BLOB_UPLOAD_UNKNOWN');
    expect((await c.req('HEAD', `/v2/up/intruder/blobs/${digestOf(data)}`)).status).toBe(404);
    // The owner's session is untouched.
    expect((await c.req('GET', location)).status).toBe(204);
  });

  describe('upload ids that try to escape the session directory are refused and harm nothing', () => {
    const repo = 'up/victim';
    let img: PushedImage;
    beforeAll(async () => {
      img = await c.pushImage(repo, 'v1');
    });

    it.each([
      ['a dot-dot id', '..'],
      ['an encoded dot-dot id', '%2e%2e'],
      ['encoded dot-dot segments', '..%2F..%2F..%2Fetc%2Fpasswd'],
      ['a single dot', '.'],
      ['an id with a NUL byte', 'abc%00def'],
    ])('%s: GET/PATCH/PUT/DELETE answer 4xx, and the repository is intact', async (_, id) => {
      const path = `/v2/${repo}/blobs/uploads/${id}`;
      for (const [method, opts] of [
        ['GET', {}],
        ['PATCH', { headers: octet, body: 'x' }],
        ['PUT', { headers: octet, body: 'x' }],
        ['DELETE', {}],
      ] as const) {
        const res = await c.req(method, method === 'PUT' ? `${path}?digest=${digestOf('x')}` : path, opts);
        expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${method} ${path}`).toBeLessThan(500);
      }
      const m = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: img.mediaType } });
      expect(m.body.equals(img.manifest)).toBe(true);
      expect((await c.req('HEAD', `/v2/${repo}/blobs/${digestOf(img.layers[0]!)}`)).status).toBe(200);
    });
  });
});
