// Blob reads, deletes and cross-repository mounts against a real `layerd serve`, per the OCI
// Distribution Spec v1.1 ("Pulling blobs", "Checking if content exists", "Deleting Blobs",
// "Mounting a blob from another repository") and RFC 9110 single-range requests.
import { beforeAll, describe, expect, it } from 'vitest';
import { useRegistryTarget } from '../helpers/nodes.js';
import { digestOf, expectError, randomBlob, withQuery } from '../helpers/registry-client.js';

const { client: c, url: targetUrl } = useRegistryTarget();

// A digest that no test ever pushes.
const missing = digestOf('never pushed anywhere');

describe('API version check', () => {
  it('GET /v2/ answers 200 with Docker-Distribution-API-Version: registry/2.0', async () => {
    const res = await c.req('GET', '/v2/');
    expect(res.status).toBe(200);
    expect(res.header('docker-distribution-api-version')).toBe('registry/2.0');
  });
});

describe('methods an endpoint does not support', () => {
  const repo = 'blobs/methods';
  let digest: string;
  beforeAll(async () => {
    digest = (await c.pushImage(repo, 'v1')).digest;
  });

  // [method, endpoint as the spec writes it, concrete path, a method the endpoint does support]
  const cases: Array<[string, string, () => string, string]> = [
    ['PUT', '/v2/<name>/blobs/<digest>', () => `/v2/${repo}/blobs/${digest}`, 'GET'],
    ['POST', '/v2/<name>/manifests/<reference>', () => `/v2/${repo}/manifests/v1`, 'GET'],
    ['DELETE', '/v2/<name>/tags/list', () => `/v2/${repo}/tags/list`, 'GET'],
    ['PUT', '/v2/<name>/referrers/<digest>', () => `/v2/${repo}/referrers/${digest}`, 'GET'],
    ['POST', '/v2/', () => '/v2/', 'GET'],
    ['DELETE', '/v2/_catalog', () => '/v2/_catalog', 'GET'],
  ];

  it.each(cases)('%s %s answers 405 UNSUPPORTED', async (method, _, path) => {
    const res = await c.req(method, path(), { headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expectError(res, 405, 'UNSUPPORTED');
  });

  it('every such 405 names the supported methods in an Allow header (RFC 9110: MUST)', async () => {
    const noAllow: string[] = [];
    for (const [method, endpoint, path, allowed] of cases) {
      const res = await c.req(method, path(), { headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
      expect(res.status).toBe(405);
      if (!(res.header('allow') ?? '').split(/,\s*/).includes(allowed)) noAllow.push(`${method} ${endpoint}: Allow=${res.header('allow')}`);
    }
    expect(noAllow).toEqual([]);
  });
});

describe('blob reads', () => {
  const repo = 'blobs/read';
  const data = randomBlob(4096);
  let digest: string;
  beforeAll(async () => {
    digest = await c.pushBlob(repo, data);
  });

  it('HEAD answers 200 with Content-Length and Docker-Content-Digest and no body', async () => {
    const res = await c.req('HEAD', `/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.header('content-length')).toBe(String(data.length));
    expect(res.header('docker-content-digest')).toBe(digest);
    expect(res.body.length).toBe(0);
  });

  it('GET answers 200 with the exact bytes, Content-Length and Docker-Content-Digest', async () => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.header('content-length')).toBe(String(data.length));
    expect(res.header('docker-content-digest')).toBe(digest);
    expect(res.body.equals(data)).toBe(true);
  });

  it('GET with a single byte range answers 206 with Content-Range and just those bytes', async () => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.header('content-range')).toBe(`bytes 100-199/${data.length}`);
    expect(res.header('content-length')).toBe('100');
    expect(res.body.equals(data.subarray(100, 200))).toBe(true);
  });

  it('GET with an open-ended range answers 206 with the rest of the blob', async () => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=4000-' } });
    expect(res.status).toBe(206);
    expect(res.header('content-range')).toBe(`bytes 4000-4095/${data.length}`);
    expect(res.body.equals(data.subarray(4000))).toBe(true);
  });

  it('GET with a suffix range answers 206 with the last bytes', async () => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=-10' } });
    expect(res.status).toBe(206);
    expect(res.header('content-range')).toBe(`bytes 4086-4095/${data.length}`);
    expect(res.body.equals(data.subarray(4086))).toBe(true);
  });

  it('GET with a range past the end answers 416 with Content-Range bytes */size', async () => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: `bytes=${data.length}-` } });
    expect(res.status).toBe(416);
    expect(res.header('content-range')).toBe(`bytes */${data.length}`);
  });

  it('a range that ends past the end of the blob is served up to the end (RFC 9110: 206)', async () => {
    for (const end of ['999999', '99999999999999999999999']) {
      const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: `bytes=4090-${end}` } });
      expect(res.status, `bytes=4090-${end}`).toBe(206);
      expect(res.header('content-range')).toBe(`bytes 4090-4095/${data.length}`);
      expect(res.body.equals(data.subarray(4090))).toBe(true);
    }
  });

  it('a Range in a unit other than bytes is ignored: 200 with the whole blob (RFC 9110: MUST ignore)', async () => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'items=0-9' } });
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  it.each([
    ['several ranges', 'bytes=0-9,20-29'],
    ['a malformed range', 'bytes=abc'],
    ['an end before the start', 'bytes=20-10'],
  ])('%s: either ignored (200, whole blob) or refused with 416, never 5xx', async (_, range) => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range } });
    expect([200, 416]).toContain(res.status);
    if (res.status === 200) expect(res.body.equals(data)).toBe(true);
  });

  it('HEAD of an unknown blob answers 404', async () => {
    const res = await c.req('HEAD', `/v2/${repo}/blobs/${missing}`);
    expect(res.status).toBe(404);
    expect(res.body.length).toBe(0);
  });

  it('GET of an unknown blob answers 404 BLOB_UNKNOWN', async () => {
    expectError(await c.req('GET', `/v2/${repo}/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
  });

  it('GET of a blob in a repository that does not exist answers 404', async () => {
    const res = await c.req('GET', `/v2/no/such/repo/blobs/${digest}`);
    expectError(res, 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it.each([
    ['not a digest at all', 'notadigest'],
    ['a truncated sha256 hex', 'sha256:abc'],
    ['sha256 hex with non-hex characters', `sha256:${'z'.repeat(64)}`],
    ['upper-case sha256 hex', `sha256:${'A'.repeat(64)}`],
    ['a sha512 hex of sha256 length', `sha512:${'a'.repeat(64)}`],
  ])('GET of a blob by an invalid digest (%s) answers 400 DIGEST_INVALID or 404, never 200/500', async (_, bad) => {
    const res = await c.req('GET', `/v2/${repo}/blobs/${bad}`);
    expect([400, 404]).toContain(res.status);
    expectError(res, res.status, res.status === 400 ? 'DIGEST_INVALID' : ['BLOB_UNKNOWN', 'DIGEST_INVALID']);
  });

});

describe('blob digests and sizes', () => {
  it('a sha512 blob pushes and pulls by its sha512 digest', async () => {
    const data = randomBlob(3000);
    const digest = await c.pushBlob('blobs/sha512', data, 'sha512');
    expect(digest).toMatch(/^sha512:[0-9a-f]{128}$/);
    const head = await c.req('HEAD', `/v2/blobs/sha512/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.header('docker-content-digest')).toBe(digest);
    expect(head.header('content-length')).toBe('3000');
    const res = await c.req('GET', `/v2/blobs/sha512/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  it('a 0-byte blob pushes, answers HEAD with Content-Length 0 and GET with an empty body', async () => {
    const empty = Buffer.alloc(0);
    const digest = await c.pushBlob('blobs/empty', empty);
    expect(digest).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const head = await c.req('HEAD', `/v2/blobs/empty/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.header('content-length')).toBe('0');
    const res = await c.req('GET', `/v2/blobs/empty/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(res.header('docker-content-digest')).toBe(digest);
  });

  it('a 5 MiB blob comes back byte-identical', async () => {
    const data = randomBlob(5 * 1024 * 1024);
    const digest = await c.pushBlob('blobs/big', data);
    const res = await c.req('GET', `/v2/blobs/big/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(digestOf(res.body)).toBe(digest);
  });
});

describe('repository scoping', () => {
  it('a blob pushed to repo A is not readable from repo B', async () => {
    const digest = await c.pushBlob('scope/a', randomBlob(512));
    expect((await c.req('HEAD', `/v2/scope/a/blobs/${digest}`)).status).toBe(200);
    // B exists (it has a blob of its own), so this is a plain "blob unknown in this repository".
    await c.pushBlob('scope/b', randomBlob(16));
    expect((await c.req('HEAD', `/v2/scope/b/blobs/${digest}`)).status).toBe(404);
    expectError(await c.req('GET', `/v2/scope/b/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('pushing the same blob to B as well makes it readable there', async () => {
    const data = randomBlob(256);
    const digest = await c.pushBlob('scope/c', data);
    expect((await c.req('HEAD', `/v2/scope/d/blobs/${digest}`)).status).toBe(404);
    await c.pushBlob('scope/d', data);
    const res = await c.req('GET', `/v2/scope/d/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });
});

describe('cross-repository mount', () => {
  it('mounting a blob that repo A has answers 201 with Location and Docker-Content-Digest, and B can read it', async () => {
    const data = randomBlob(777);
    const digest = await c.pushBlob('mount/src', data);
    const res = await c.req('POST', `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`);
    expect(res.status).toBe(201);
    expect(new URL(res.header('location')!, targetUrl()).pathname).toBe(`/v2/mount/dst/blobs/${digest}`);
    expect(res.header('docker-content-digest')).toBe(digest);
    const get = await c.req('GET', `/v2/mount/dst/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.body.equals(data)).toBe(true);
  });

  it('mounting a blob that exists nowhere answers 202 with a normal upload session that completes', async () => {
    const data = randomBlob(300);
    const digest = digestOf(data);
    const res = await c.req('POST', `/v2/mount/dst2/blobs/uploads/?mount=${digest}&from=mount/src`);
    expect(res.status).toBe(202);
    const location = res.header('location')!;
    expect(location).toBeTruthy();
    const put = await c.req('PUT', withQuery(location, `digest=${digest}`), {
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    expect(put.status).toBe(201);
    expect((await c.req('GET', `/v2/mount/dst2/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('mounting a sha512 blob works like a sha256 one', async () => {
    const data = randomBlob(99);
    const digest = await c.pushBlob('mount/src512', data, 'sha512');
    const res = await c.req('POST', `/v2/mount/dst512/blobs/uploads/?mount=${digest}&from=mount/src512`);
    expect(res.status).toBe(201);
    expect((await c.req('GET', `/v2/mount/dst512/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('mounting with an invalid digest answers 400 DIGEST_INVALID or falls back to a 202 upload session', async () => {
    const res = await c.req('POST', `/v2/mount/dst3/blobs/uploads/?mount=sha256:nothex&from=mount/src`);
    // The spec lets a registry that cannot mount start a normal session instead; it must never claim success.
    expect([400, 202]).toContain(res.status);
    if (res.status === 400) expectError(res, 400, 'DIGEST_INVALID');
  });
});

describe('blob deletion', () => {
  it('DELETE answers 202, after which HEAD and GET answer 404 and a second DELETE 404 BLOB_UNKNOWN', async () => {
    const digest = await c.pushBlob('del/blob', randomBlob(128));
    const del = await c.req('DELETE', `/v2/del/blob/blobs/${digest}`);
    expect(del.status).toBe(202);
    expect((await c.req('HEAD', `/v2/del/blob/blobs/${digest}`)).status).toBe(404);
    expectError(await c.req('GET', `/v2/del/blob/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    expectError(await c.req('DELETE', `/v2/del/blob/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('deleting a blob from repo A leaves it readable in repo B', async () => {
    const data = randomBlob(128);
    const digest = await c.pushBlob('del/a', data);
    await c.pushBlob('del/b', data);
    expect((await c.req('DELETE', `/v2/del/a/blobs/${digest}`)).status).toBe(202);
    const res = await c.req('GET', `/v2/del/b/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  it('DELETE of an unknown blob answers 404 BLOB_UNKNOWN', async () => {
    await c.pushBlob('del/c', randomBlob(8));
    expectError(await c.req('DELETE', `/v2/del/c/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
  });

  it('DELETE with an invalid digest answers 400 DIGEST_INVALID or 404, never 2xx/5xx', async () => {
    const res = await c.req('DELETE', `/v2/del/c/blobs/sha256:xyz`);
    expect([400, 404]).toContain(res.status);
    expectError(res, res.status, res.status === 400 ? 'DIGEST_INVALID' : ['BLOB_UNKNOWN', 'DIGEST_INVALID']);
  });
});
