// The test proxies themselves, checked against a real docker-registry with plain HTTP clients, so that a
// mirror test failing through them points at the mirror and not at the proxy: the token proxy's bearer
// dance, scopes, credentials and server-side expiry; the fault proxy's modes and request counting; and
// that both forward headers (Accept, Range, Docker-Content-Digest, Location) and stream bodies.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { removeDir, startDistribution, until } from '../helpers/processes.js';
import { digestOf, expectError, MT, randomBlob, RegistryClient, type PushedImage, type Res } from '../helpers/registry-client.js';
import { startTokenAuthProxy, type TokenAuthProxy } from '../helpers/token-auth-proxy.js';

let seed: Awaited<ReturnType<typeof startDistribution>>;
let image: PushedImage;
const repo = 'proxies/img';
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

beforeAll(async () => {
  seed = await startDistribution();
  image = await new RegistryClient(seed.url).pushImage(repo, 'v1', { layers: 2, layerSize: 256 * 1024 });
});
afterAll(async () => {
  await seed?.stop();
  if (seed) await removeDir(seed.rootDir);
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The parameters of a `Bearer k="v",...` challenge. */
function parseChallenge(header: string | undefined): Record<string, string> {
  expect(header ?? '').toMatch(/^Bearer /);
  const params: Record<string, string> = {};
  for (const m of (header ?? '').slice('Bearer '.length).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return params;
}

/** Asks the realm of a challenge for a token, the way a registry client does. */
async function fetchToken(challenge: Record<string, string>, basic?: string): Promise<Response> {
  const url = new URL(challenge.realm!);
  url.searchParams.set('service', challenge.service!);
  if (challenge.scope) url.searchParams.set('scope', challenge.scope);
  return fetch(url, { headers: basic ? { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } : {} });
}

async function tokenFor(c: RegistryClient, path: string, basic?: string): Promise<string> {
  const res = await c.req('GET', path, { headers: { accept: ACCEPT } });
  expect(res.status).toBe(401);
  const tokenRes = await fetchToken(parseChallenge(res.header('www-authenticate')), basic);
  expect(tokenRes.status).toBe(200);
  return ((await tokenRes.json()) as { token: string }).token;
}

describe('token-auth proxy', () => {
  let proxy: TokenAuthProxy;
  let c: RegistryClient;
  beforeAll(async () => {
    proxy = await startTokenAuthProxy({ backend: seed.url });
    c = new RegistryClient(proxy.url);
  });
  afterAll(async () => proxy?.close());

  it('answers a request without a token 401 with a Docker Hub style Bearer challenge and an OCI error body', async () => {
    const before = proxy.challenges();
    const res = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } });
    expectError(res, 401, 'UNAUTHORIZED');
    expect(res.header('www-authenticate')).toBe(`Bearer realm="${proxy.url}/token",service="test-registry",scope="repository:${repo}:pull"`);
    expect(proxy.challenges()).toBe(before + 1);
    expect(proxy.proxied()).toHaveLength(0);
  });

  it('/v2/ is challenged without a scope', async () => {
    const res = await c.req('GET', '/v2/');
    expect(res.status).toBe(401);
    expect(res.header('www-authenticate')).toBe(`Bearer realm="${proxy.url}/token",service="test-registry"`);
  });

  it('an anonymous token request gets token, access_token, expires_in and issued_at; the token opens the manifest', async () => {
    const res = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } });
    const tokenRes = await fetchToken(parseChallenge(res.header('www-authenticate')));
    expect(tokenRes.status).toBe(200);
    const body = (await tokenRes.json()) as Record<string, unknown>;
    expect(typeof body.token).toBe('string');
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Number.isNaN(Date.parse(String(body.issued_at)))).toBe(false);
    const last = proxy.tokenRequests().at(-1)!;
    expect(last).toEqual({ method: 'GET', service: 'test-registry', scopes: [`repository:${repo}:pull`], user: null, granted: true });

    const authed = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT, authorization: `Bearer ${body.token}` } });
    expect(authed.status).toBe(200);
    expect(authed.body.equals(image.manifest)).toBe(true);
    // Accept reached the registry (it answers 404 for an OCI manifest otherwise), and its headers came back.
    expect(authed.header('content-type')).toBe(MT.ociManifest);
    expect(authed.header('docker-content-digest')).toBe(image.digest);
    expect(proxy.proxied().at(-1)).toMatchObject({ method: 'GET', kind: 'manifest-get' });
  });

  it('forwards Range and streams blob bytes', async () => {
    const layer = image.layers[1]!;
    const digest = digestOf(layer);
    const token = await tokenFor(c, `/v2/${repo}/blobs/${digest}`);
    const auth = { authorization: `Bearer ${token}` };
    const full = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: auth });
    expect(full.status).toBe(200);
    expect(full.body.equals(layer)).toBe(true);
    expect(full.header('docker-content-digest')).toBe(digest);
    const part = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { headers: { ...auth, range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.body.equals(layer.subarray(1000, 2000))).toBe(true);
    expect(part.header('content-range')).toBe(`bytes 1000-1999/${layer.length}`);
  });

  it('a token is scoped: it does not open another repository (insufficient_scope)', async () => {
    await new RegistryClient(seed.url).pushImage('proxies/other', 'v1');
    const token = await tokenFor(c, `/v2/${repo}/manifests/v1`);
    const res = await c.req('GET', '/v2/proxies/other/manifests/v1', { headers: { accept: ACCEPT, authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(parseChallenge(res.header('www-authenticate'))).toMatchObject({ scope: 'repository:proxies/other:pull', error: 'insufficient_scope' });
  });

  it('an unknown token is refused with error="invalid_token"', async () => {
    const res = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT, authorization: 'Bearer not-a-token' } });
    expect(res.status).toBe(401);
    expect(parseChallenge(res.header('www-authenticate')).error).toBe('invalid_token');
  });
});

describe('token-auth proxy: server-side expiry', () => {
  let proxy: TokenAuthProxy;
  afterAll(async () => proxy?.close());

  it('a token stops working after its lifetime (401 and a new challenge); a fresh one works again', async () => {
    proxy = await startTokenAuthProxy({ backend: seed.url, tokenLifetimeSeconds: 1 });
    const c = new RegistryClient(proxy.url);
    const path = `/v2/${repo}/manifests/${image.digest}`;
    const token = await tokenFor(c, path);
    const get = (t: string) => c.req('GET', path, { headers: { accept: ACCEPT, authorization: `Bearer ${t}` } });
    expect((await get(token)).status).toBe(200);
    // Poll rather than sleep: the token is refused at some point after a second.
    const refused = await until('the token to expire', async () => {
      const res = await get(token);
      return res.status === 401 ? res : undefined;
    }, 15_000);
    expect(parseChallenge(refused.header('www-authenticate'))).toMatchObject({ realm: `${proxy.url}/token`, error: 'invalid_token' });
    expect(proxy.liveTokens()).toBe(0);
    expect((await get(await tokenFor(c, path))).status).toBe(200);
  });
});

describe('token-auth proxy: credentials', () => {
  let proxy: TokenAuthProxy;
  let c: RegistryClient;
  beforeAll(async () => {
    proxy = await startTokenAuthProxy({ backend: seed.url, username: 'puller', password: 's3cret-pw', allowAnonymous: false });
    c = new RegistryClient(proxy.url);
  });
  afterAll(async () => proxy?.close());

  it('refuses anonymous and wrong-password token requests, and grants the right credentials', async () => {
    const res = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } });
    const challenge = parseChallenge(res.header('www-authenticate'));
    expect((await fetchToken(challenge)).status).toBe(401);
    expect((await fetchToken(challenge, 'puller:wrong')).status).toBe(401);
    const ok = await fetchToken(challenge, 'puller:s3cret-pw');
    expect(ok.status).toBe(200);
    const { token } = (await ok.json()) as { token: string };
    const authed = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT, authorization: `Bearer ${token}` } });
    expect(authed.body.equals(image.manifest)).toBe(true);
    expect(proxy.tokenRequests().map((t) => [t.user, t.granted])).toEqual([
      [null, false],
      ['puller', false],
      ['puller', true],
    ]);
  });

  it('grants the OAuth2 password form (POST /token) too', async () => {
    const res = await fetch(`${proxy.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'puller', password: 's3cret-pw', service: 'test-registry', scope: `repository:${repo}:pull`, client_id: 't' }),
    });
    expect(res.status).toBe(200);
    const { access_token: token } = (await res.json()) as { access_token: string };
    const authed = await c.req('HEAD', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT, authorization: `Bearer ${token}` } });
    expect(authed.status).toBe(200);
  });

  it('an upload through the proxy gets a Location that names the proxy, not the registry', async () => {
    // An upload needs push access: the POST is challenged for `pull,push`, which these credentials get.
    const post = await c.req('POST', '/v2/proxies/pushed/blobs/uploads/');
    expect(post.status).toBe(401);
    const challenge = parseChallenge(post.header('www-authenticate'));
    expect(challenge.scope).toBe('repository:proxies/pushed:pull,push');
    const pushToken = await fetchToken(challenge, 'puller:s3cret-pw');
    const pushAuth = { authorization: `Bearer ${((await pushToken.json()) as { token: string }).token}` };
    const started = await c.req('POST', '/v2/proxies/pushed/blobs/uploads/', { headers: pushAuth });
    expect(started.status).toBe(202);
    const location = started.header('location')!;
    expect(location.startsWith(`${proxy.url}/v2/proxies/pushed/blobs/uploads/`)).toBe(true);
    const data = randomBlob(1000);
    const put = await c.req('PUT', `${location}&digest=${digestOf(data)}`, { headers: { ...pushAuth, 'content-type': 'application/octet-stream' }, body: data });
    expect(put.status).toBe(201);
    const back = await new RegistryClient(seed.url).req('GET', `/v2/proxies/pushed/blobs/${digestOf(data)}`);
    expect(back.body.equals(data)).toBe(true);
  });
});

describe('fault proxy', () => {
  let proxy: FaultProxy;
  let c: RegistryClient;
  const layer = () => image.layers[0]!;
  const blobPath = () => `/v2/${repo}/blobs/${digestOf(layer())}`;
  beforeAll(async () => {
    proxy = await startFaultProxy(seed.url);
    c = new RegistryClient(proxy.url);
  });
  afterAll(async () => proxy?.close());

  it('pass: forwards manifests and blobs unchanged and counts requests by kind', async () => {
    await proxy.setMode('pass');
    const m = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } });
    expect(m.body.equals(image.manifest)).toBe(true);
    expect(m.header('docker-content-digest')).toBe(image.digest);
    expect((await c.req('HEAD', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } })).status).toBe(200);
    const b = await c.req('GET', blobPath());
    expect(b.body.equals(layer())).toBe(true);
    expect((await c.req('HEAD', blobPath())).header('content-length')).toBe(String(layer().length));
    expect(proxy.count('manifest-get', `/v2/${repo}/`)).toBe(1);
    expect(proxy.count('manifest-head', `/v2/${repo}/`)).toBe(1);
    expect(proxy.count('blob-get', digestOf(layer()))).toBe(1);
    expect(proxy.count('blob-head', digestOf(layer()))).toBe(1);
  });

  it('pass: an upload Location names the proxy, and a push through it works', async () => {
    const started = await c.req('POST', '/v2/proxies/via-fault/blobs/uploads/', { headers: { 'content-length': '0' } });
    expect(started.status).toBe(202);
    expect(started.header('location')!.startsWith(`${proxy.url}/v2/proxies/via-fault/blobs/uploads/`)).toBe(true);
    const pushed = await c.pushImage('proxies/via-fault', 'v1');
    const back = await new RegistryClient(seed.url).req('GET', `/v2/proxies/via-fault/manifests/v1`, { headers: { accept: ACCEPT } });
    expect(back.body.equals(pushed.manifest)).toBe(true);
    expect(proxy.count('upload')).toBeGreaterThan(0);
  });

  it('down: connections are refused (idle keep-alive ones cut too); back to pass on the same port', async () => {
    // fetch keeps its connection alive: the second request would reuse it if 'down' did not cut it.
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);
    await proxy.setMode('down');
    const err = await fetch(`${proxy.url}/v2/`).then(
      () => undefined,
      (e: Error & { cause?: { code?: string } }) => e,
    );
    expect(err?.cause?.code).toBe('ECONNREFUSED');
    await proxy.setMode('pass');
    expect((await c.req('GET', blobPath())).body.equals(layer())).toBe(true);
  });

  it('corrupt-blob: a blob GET keeps its length but one byte in the middle differs; manifests pass', async () => {
    await proxy.setMode('corrupt-blob');
    try {
      const b = await c.req('GET', blobPath());
      expect(b.status).toBe(200);
      expect(b.header('content-length')).toBe(String(layer().length));
      expect(b.body.length).toBe(layer().length);
      expect(sha(b.body)).not.toBe(sha(layer()));
      const diffs = [...b.body.keys()].filter((i) => b.body[i] !== layer()[i]);
      expect(diffs).toEqual([Math.floor(layer().length / 2)]);
      const m = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } });
      expect(m.body.equals(image.manifest)).toBe(true);
    } finally {
      await proxy.setMode('pass');
    }
  });

  it('hang: a request gets no answer at all; leaving the mode cuts the hanging connection', async () => {
    await proxy.setMode('hang');
    const before = proxy.count('blob-get');
    const hung = c.req('GET', blobPath()).then(
      (res: Res) => `answered ${res.status}`,
      (e: Error) => `error ${e.message}`,
    );
    const early = await Promise.race([hung, new Promise((r) => setTimeout(() => r('no answer'), 1_000))]);
    expect(early).toBe('no answer');
    expect(proxy.count('blob-get')).toBe(before + 1);
    await proxy.setMode('pass');
    expect(await hung).toMatch(/^error /);
    expect((await c.req('GET', blobPath())).body.equals(layer())).toBe(true);
  });

  it('slow: the body trickles (the first bytes arrive while most are still to come) and arrives intact', async () => {
    const big = randomBlob(2 * 1024 * 1024);
    const digest = await new RegistryClient(seed.url).pushBlob(repo, big);
    proxy.slowBytesPerSecond = 1024 * 1024;
    await proxy.setMode('slow');
    try {
      const res = await fetch(`${proxy.url}/v2/${repo}/blobs/${digest}`);
      expect(res.headers.get('content-length')).toBe(String(big.length));
      const reader = res.body!.getReader();
      const chunks: Uint8Array[] = [];
      let first = await reader.read();
      expect(first.value!.length).toBeLessThan(big.length / 2);
      while (!first.done) {
        chunks.push(first.value);
        first = await reader.read();
      }
      expect(Buffer.concat(chunks).equals(big)).toBe(true);
    } finally {
      await proxy.setMode('pass');
    }
  });
});
