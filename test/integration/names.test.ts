// Repository names against a real `layerd serve`. The spec fixes the grammar
//   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
// and names are also file-system paths in the store, so traversal tricks must never reach it:
// every bad name is refused with 400 NAME_INVALID, or 404 where a router cannot even match it,
// and never 2xx or 5xx.
import { describe, expect, it } from 'vitest';
import { useRegistryTarget } from '../helpers/nodes.js';
import { digestOf, errorCodes, expectError, MT, randomBlob, type Res } from '../helpers/registry-client.js';

const { client: c } = useRegistryTarget();

const VALID = ['a', 'a0/b1/c2/d3', 'a.b', 'a_b', 'a__b', 'a-b', 'a---b', '0/9', 'library/ubuntu', 'x.y-z_w/v__u'];

// Raw path segments, sent exactly as written (no client-side normalisation).
const INVALID: Array<[string, string]> = [
  ['upper case', 'Library/ubuntu'],
  ['a leading dash', '-lead'],
  ['a leading underscore', '_lead'],
  ['a component with a leading underscore', 'a/_b'],
  ['a trailing separator', 'a-'],
  ['two dots in a row', 'a..b'],
  ['three underscores', 'a___b'],
  ['a dot then a dash', 'a.-b'],
  ['an empty component (a//b)', 'a//b'],
  ['a dot-dot component', 'a/../b'],
  ['a leading dot-dot', '../a'],
  ['an encoded dot-dot', '%2e%2e/a'],
  ['an encoded dot-dot in the middle', 'a/%2e%2e/%2e%2e/b'],
  ['an encoded slash', 'a%2fb'],
  ['an encoded upper-case dot-dot and slash', 'a%2F%2E%2E%2Fb'],
  ['a space', 'a%20b'],
  ['non-ASCII', 'caf%C3%A9'],
  ['a NUL byte', 'a%00b'],
  ['a backslash', 'a%5c..%5cb'],
];

function expectNameRefused(res: Res): void {
  expect([400, 404], `status for a bad name: ${res.body.toString().slice(0, 200)}`).toContain(res.status);
  if (res.status === 400) {
    expectError(res, 400, 'NAME_INVALID');
  } else if ((res.header('content-type') ?? '').startsWith('application/json')) {
    expect(['NAME_INVALID', 'NAME_UNKNOWN']).toContain(errorCodes(res)[0]);
  }
}

describe('valid names', () => {
  it.each(VALID)('%s can be pushed to, listed and pulled from', async (name) => {
    const img = await c.pushImage(name, 'v1');
    const tags = await c.req('GET', `/v2/${name}/tags/list`);
    expect(tags.status).toBe(200);
    expect(tags.json()).toEqual({ name, tags: ['v1'] });
    const res = await c.req('GET', `/v2/${name}/manifests/v1`, { headers: { accept: img.mediaType } });
    expect(res.body.equals(img.manifest)).toBe(true);
  });
});

describe('invalid names are refused on every endpoint', () => {
  const data = randomBlob(32);
  const digest = digestOf(data);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociEmpty, digest: digestOf('{}'), size: 2 }, layers: [] }));

  it.each(INVALID)('%s (%s)', async (_, name) => {
    const octet = { 'content-type': 'application/octet-stream' };
    expectNameRefused(await c.req('POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { headers: octet, body: data }));
    expectNameRefused(await c.req('POST', `/v2/${name}/blobs/uploads/`));
    expectNameRefused(await c.req('PUT', `/v2/${name}/manifests/latest`, { headers: { 'content-type': MT.ociManifest }, body: manifest }));
    expectNameRefused(await c.req('GET', `/v2/${name}/manifests/latest`));
    expectNameRefused(await c.req('GET', `/v2/${name}/blobs/${digest}`));
    expectNameRefused(await c.req('DELETE', `/v2/${name}/blobs/${digest}`));
    expectNameRefused(await c.req('GET', `/v2/${name}/tags/list`));
    expectNameRefused(await c.req('GET', `/v2/${name}/referrers/${digest}`));
    expectNameRefused(await c.req('POST', `/v2/${name}/blobs/uploads/?mount=${digest}&from=a`));
  });

  it.each([
    ['a name', '/v2/a%ffb/tags/list'],
    ['a tag', '/v2/names/ok/manifests/v%ff'],
    ['a digest', '/v2/names/ok/blobs/sha256:%ff'],
    ['an upload id', '/v2/names/ok/blobs/uploads/%ff'],
  ])('a malformed percent-encoding in %s answers 400/404 with an OCI error body', async (_, path) => {
    await c.pushImage('names/ok', 'v1');
    const res = await c.req('GET', path);
    expect([400, 404]).toContain(res.status);
    errorCodes(res);
  });

  it('a mount from an invalid source name never mounts', async () => {
    const blob = randomBlob(20);
    const d = await c.pushBlob('names/src', blob);
    for (const from of ['names/../names/src', 'names/%2e%2e/names/src', 'NAMES/SRC']) {
      const res = await c.req('POST', `/v2/names/dst/blobs/uploads/?mount=${d}&from=${from}`);
      expect(res.status, `mount from ${from}`).not.toBe(201);
      expect([202, 400]).toContain(res.status);
      if (res.status === 400) expectError(res, 400, 'NAME_INVALID');
    }
    expect((await c.req('HEAD', `/v2/names/dst/blobs/${d}`)).status).toBe(404);
  });

  it('none of the refused names shows up in the catalog', async () => {
    const res = await c.req('GET', '/v2/_catalog');
    expect(res.status).toBe(200);
    const repos = res.json<{ repositories: string[] }>().repositories;
    const grammar = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
    for (const r of repos) expect(r).toMatch(grammar);
    expect(repos).toEqual(expect.arrayContaining(VALID));
  });
});
