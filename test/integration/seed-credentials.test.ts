// Issue 13 item 4: a seed's credentials go only to the seed's own origin and to the token realm the
// seed itself named. The seed here is a real docker-registry behind a token-auth proxy that gives tokens
// only for Basic credentials (the normal dance, which must keep working); between the two sits a
// redirector that sends every blob GET to another loopback origin, as registries send blobs to object
// storage. That origin answers 401 with a Bearer challenge naming a realm of its own, and records every
// request it gets: it must never see the seed's credentials.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/clients.js';
import { closeServer, forward, listen, trackSockets } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, startDistribution, tempDir } from '../helpers/processes.js';
import { basic, digestOf, MT, RegistryClient, type PushedImage } from '../helpers/registry-client.js';
import { startTokenAuthProxy, type TokenAuthProxy } from '../helpers/token-auth-proxy.js';

const USER = 'seed-bot';
const PASSWORD = 'S33d-pa55-for-the-seed-only';
const SEED = 'seed.test';

interface Seen {
  method: string;
  url: string;
  authorization?: string;
}

const cleanups: Array<() => Promise<unknown>> = [];
let auth: TokenAuthProxy;
const nodes = new NodeSet('layerd-seed-creds-');
let node: TestNode;
let img: PushedImage;
/** Every request the foreign origin (the redirect target and its own realm) received. */
const seenAbroad: Seen[] = [];

/** An HTTP server on loopback; `handle` answers each request. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle);
  const sockets = trackSockets(server);
  const port = await listen(server);
  cleanups.push(() => closeServer(server, sockets));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  await requireTool('docker-registry');
  const work = await tempDir('layerd-seed-creds-');
  cleanups.push(() => removeDir(work));
  const dist = await startDistribution();
  cleanups.push(async () => (await dist.stop(), await removeDir(dist.rootDir)));
  img = await new RegistryClient(dist.url).pushImage('creds/app', 'v1');

  // The foreign origin: a blob URL that wants a token from a realm of its own, which would hand one out.
  let abroadUrl = '';
  abroadUrl = await serve((req, res) => {
    seenAbroad.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    if ((req.url ?? '').startsWith('/token')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'foreign-token', expires_in: 300 }));
      return;
    }
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${abroadUrl}/token",service="storage"`, 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}');
  });

  // Between the token proxy and the registry: blob GETs are redirected abroad, the rest passes.
  let selfUrl = '';
  const redirector = await serve((req, res) => {
    const m = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    if (req.method === 'GET' && m) {
      req.resume();
      res.writeHead(307, { location: `${abroadUrl}/storage/${m[1]}` });
      res.end();
      return;
    }
    forward(req, res, { backend: dist.url, self: selfUrl, dropRequestHeaders: ['authorization'] });
  });
  selfUrl = redirector;
  auth = await startTokenAuthProxy({ backend: redirector, username: USER, password: PASSWORD, allowAnonymous: false });
  cleanups.push(() => auth.close());

  const config = join(work, 'config.yml');
  await writeFile(config, ['upstream:', `  "${SEED}": {url: "${auth.url}", username: "${USER}", password: "${PASSWORD}"}`, ''].join('\n'));
  node = await nodes.start('node', { args: ['--config', config, '--default-registry', SEED, '--upstream-retries', '0', '--upstream-timeout', '5s'] });
  cleanups.push(() => nodes.stopAll('SIGTERM'));
});

afterAll(async () => {
  for (const f of cleanups.reverse()) await f().catch(() => undefined);
});

describe('seed credentials and redirects to another origin', () => {
  it('the token dance with the seed\'s own realm works: the manifest is pulled, tokens were asked for with the credentials', async () => {
    const res = await new RegistryClient(node.url).req('GET', '/v2/creds/app/manifests/v1', { headers: { accept: MT.ociManifest } });
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    expect(res.body.equals(img.manifest)).toBe(true);
    const tokens = auth.tokenRequests();
    expect(tokens.length).toBeGreaterThanOrEqual(1);
    expect(tokens.every((t) => t.user === USER && t.granted)).toBe(true);
  });

  it('a blob GET redirected to another origin that challenges with its own realm: that origin never gets the seed\'s credentials', async () => {
    const blob = digestOf(img.layers[0]!);
    const res = await new RegistryClient(node.url).req('GET', `/v2/creds/app/blobs/${blob}`);
    // The redirect was followed (not vacuous): the foreign origin was asked for the blob.
    expect(seenAbroad.some((r) => r.url === `/storage/${blob}`)).toBe(true);
    // Its challenge is not the seed's: no credentials, no token request, no Authorization at all.
    const basicCreds = basic(USER, PASSWORD);
    expect(seenAbroad.filter((r) => r.authorization === basicCreds), JSON.stringify(seenAbroad)).toEqual([]);
    expect(seenAbroad.filter((r) => r.url.startsWith('/token'))).toEqual([]);
    expect(seenAbroad.filter((r) => r.authorization !== undefined)).toEqual([]);
    // The client gets an error, not the foreign origin's answer passed off as the blob.
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.includes(img.layers[0]!)).toBe(false);
  });
});
