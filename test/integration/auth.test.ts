// Authentication and access policy of /v2 on real `layerd serve` processes. A node listening on 0.0.0.0
// (reached through 127.0.0.1) asks for credentials to push and to read --private-repos; with none
// configured it is read-only for the network; on loopback with nothing configured it stays open.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSet } from '../helpers/nodes.js';
import { layerdBin, removeDir, stablePort, tempDir, until, type RunningProcess } from '../helpers/processes.js';
import { AuthClient, basic, digestOf, expectError, MT, randomBlob, RegistryClient, type Res } from '../helpers/registry-client.js';

const USER = 'alice';
const PASSWORD = 'correct-horse-battery';
const TOKEN = 'ci-0f8e2b7c41d94a6e9b3355aa';
const CHALLENGE = /^Basic realm="layerd"/;

/** 401 with the Basic challenge and an UNAUTHORIZED OCI body (none for a HEAD). */
function expectChallenge(res: Res, what: string): void {
  expect(res.status, `${what}: ${res.body.toString().slice(0, 200)}`).toBe(401);
  expect(res.header('www-authenticate'), what).toMatch(CHALLENGE);
  if (res.body.length > 0) expectError(res, 401, 'UNAUTHORIZED');
}

const dirs: string[] = [];
const nodes = new NodeSet('layerd-auth-');

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  for (const d of dirs) await removeDir(d);
});

/** Starts layerd listening on 0.0.0.0 (its URL still says 127.0.0.1, which reaches it). */
async function startExposed(args: string[]): Promise<RunningProcess> {
  const port = await stablePort();
  return nodes.start('exposed', { port, args: ['--listen', `0.0.0.0:${port}`, ...args] });
}

describe('an exposed node with htpasswd users and tokens', () => {
  let node: RunningProcess;
  let anonymous: RegistryClient;
  let alice: RegistryClient;
  let bearer: RegistryClient;

  beforeAll(async () => {
    const dir = await tempDir('layerd-auth-');
    dirs.push(dir);
    // As `htpasswd -B` writes it: $2y$ (bcryptjs writes $2b$, the same algorithm).
    const hash = bcrypt.hashSync(PASSWORD, 6).replace(/^\$2b\$/, '$2y$');
    await writeFile(join(dir, 'htpasswd'), `# users\n${USER}:${hash}\n`);
    await writeFile(join(dir, 'tokens'), `ci:${TOKEN}\n`);
    node = await startExposed(['--htpasswd', join(dir, 'htpasswd'), '--token-file', join(dir, 'tokens'), '--private-repos', 'secret']);
    anonymous = new RegistryClient(node.url);
    alice = new AuthClient(node.url, basic(USER, PASSWORD));
    bearer = new AuthClient(node.url, `Bearer ${TOKEN}`);
  });

  it('refuses every kind of write without credentials: 401, a Basic challenge and an OCI error body', async () => {
    const blob = randomBlob(1000);
    const digest = digestOf(blob);
    expectChallenge(await anonymous.req('POST', '/v2/team/app/blobs/uploads/'), 'POST upload');
    expectChallenge(await anonymous.req('POST', `/v2/team/app/blobs/uploads/?digest=${digest}`, { body: blob }), 'monolithic POST');
    expectChallenge(await anonymous.putManifest('team/app', 'v1', Buffer.from('{}'), MT.ociManifest), 'PUT manifest');
    expectChallenge(await anonymous.req('DELETE', `/v2/team/app/manifests/${digest}`), 'DELETE manifest');
    expectChallenge(await anonymous.req('DELETE', `/v2/team/app/blobs/${digest}`), 'DELETE blob');
    // An upload session started by someone else is no way in either.
    const post = await alice.req('POST', '/v2/team/app/blobs/uploads/');
    expect(post.status).toBe(202);
    const location = post.header('location')!;
    expectChallenge(await anonymous.req('PATCH', location, { body: blob, headers: { 'content-type': 'application/octet-stream' } }), 'PATCH');
    expectChallenge(await anonymous.req('GET', location), 'upload status');
    expectChallenge(await anonymous.req('PUT', `${location}?digest=${digest}`, { body: blob }), 'PUT upload');
    // Nothing landed.
    expect((await alice.req('HEAD', `/v2/team/app/blobs/${digest}`)).status).toBe(404);
  });

  it('refuses a wrong password, an unknown user and a wrong token, and logs none of them', async () => {
    const wrong = [basic(USER, 'wrong-password-xyz'), basic('mallory', PASSWORD), `Bearer ${TOKEN}-not`, basic('ci', 'not-the-token-at-all')];
    for (const authorization of wrong) {
      const c = new AuthClient(node.url, authorization);
      expectChallenge(await c.req('POST', '/v2/team/app/blobs/uploads/'), authorization);
      expectChallenge(await c.req('GET', '/v2/'), `ping with ${authorization}`);
    }
    const logged = await until('the failures in the log', () => (node.output().split('authentication failed').length > wrong.length * 2 ? node.output() : undefined));
    expect(logged).toContain('wrong password or unknown user \\"mallory\\"');
    for (const secret of ['wrong-password-xyz', PASSWORD, TOKEN, 'not-the-token-at-all', ...wrong.map((w) => w.split(' ')[1]!)]) {
      expect(logged, 'a secret in the log').not.toContain(secret);
    }
  });

  it('takes a whole image from the htpasswd user, and serves it back anonymously (public repository)', async () => {
    const image = await alice.pushImage('team/app', 'v1', { layers: 2 });
    const manifest = await anonymous.req('GET', '/v2/team/app/manifests/v1', { headers: { accept: MT.ociManifest } });
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(image.manifest)).toBe(true);
    const layer = await anonymous.req('GET', `/v2/team/app/blobs/${digestOf(image.layers[0]!)}`);
    expect(layer.status).toBe(200);
    expect(layer.body.equals(image.layers[0]!)).toBe(true);
    expect((await anonymous.req('GET', '/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: ['v1'] });
  });

  it('takes a push with the bearer token, or with the token as the password of its name', async () => {
    await bearer.pushImage('team/tool', 'v1');
    await new AuthClient(node.url, basic('ci', TOKEN)).pushImage('team/tool', 'v2');
    expect((await anonymous.req('GET', '/v2/team/tool/tags/list')).json()).toEqual({ name: 'team/tool', tags: ['v1', 'v2'] });
  });

  it('answers the base endpoint 401 to anonymous callers (so clients learn the challenge) and 200 to a user', async () => {
    expectChallenge(await anonymous.req('GET', '/v2/'), 'anonymous ping');
    expect((await alice.req('GET', '/v2/')).status).toBe(200);
    expect((await bearer.req('GET', '/v2/')).status).toBe(200);
  });

  it('asks for credentials to read a private repository, and not for a public one', async () => {
    const image = await alice.pushImage('secret/app', 'v1');
    const layer = digestOf(image.layers[0]!);
    const reads: Array<[string, string]> = [
      ['GET', '/v2/secret/app/manifests/v1'],
      ['HEAD', '/v2/secret/app/manifests/v1'],
      ['GET', `/v2/secret/app/manifests/${image.digest}`],
      ['GET', `/v2/secret/app/blobs/${layer}`],
      ['HEAD', `/v2/secret/app/blobs/${layer}`],
      ['GET', '/v2/secret/app/tags/list'],
      ['GET', `/v2/secret/app/referrers/${image.digest}`],
      // A repository that does not exist is no oracle: the same 401.
      ['GET', '/v2/secret/nothing/tags/list'],
    ];
    for (const [method, path] of reads) {
      expectChallenge(await anonymous.req(method, path), `anonymous ${method} ${path}`);
      const res = await alice.req(method, path);
      if (path.includes('nothing')) expectError(res, 404, 'NAME_UNKNOWN');
      else expect(res.status, `alice ${method} ${path}`).toBe(200);
    }
    expect((await bearer.req('GET', `/v2/secret/app/blobs/${layer}`)).body.equals(image.layers[0]!)).toBe(true);
    // The same layer is public once a public repository has it (here by a mount), and only there.
    const mount = await alice.req('POST', `/v2/team/mounted/blobs/uploads/?mount=${layer}&from=secret/app`);
    expect(mount.status).toBe(201);
    expect((await anonymous.req('GET', `/v2/team/mounted/blobs/${layer}`)).status).toBe(200);
    expectChallenge(await anonymous.req('GET', `/v2/secret/app/blobs/${layer}`), 'still private under its private name');
    // A prefix is whole path components: secretive/ is public.
    await alice.pushImage('secretive/app', 'v1');
    expect((await anonymous.req('GET', '/v2/secretive/app/tags/list')).status).toBe(200);
  });

  it('hides private repositories from anonymous catalog callers, and pages over what they may see', async () => {
    await alice.pushImage('secret/other', 'v1');
    const all = (await alice.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    expect(all).toEqual(expect.arrayContaining(['secret/app', 'secret/other', 'team/app', 'secretive/app']));
    const seen = (await anonymous.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    expect(seen).toEqual(all.filter((r) => !r.startsWith('secret/')));
    // Page by page, anonymous callers get full pages of public names only.
    const paged: string[] = [];
    let path: string | undefined = '/v2/_catalog?n=2';
    while (path) {
      const res = await anonymous.req('GET', path);
      expect(res.status).toBe(200);
      const items = res.json<{ repositories: string[] }>().repositories;
      expect(items.length).toBeLessThanOrEqual(2);
      paged.push(...items);
      path = /<([^>]+)>; rel="next"/.exec(res.header('link') ?? '')?.[1];
    }
    expect(paged).toEqual(seen);
    // The node's own API has no credentials: private names stay out of its image list and recent pulls.
    await anonymous.req('GET', '/v2/team/app/manifests/v1');
    await alice.req('GET', '/v2/secret/app/manifests/v1');
    const images = await (await fetch(`${node.url}/api/images`)).text();
    const pulls = await (await fetch(`${node.url}/api/pulls`)).text();
    expect(images).toContain('team/app');
    expect(pulls).toContain('team/app');
    for (const text of [images, pulls]) expect(text).not.toContain('secret/');
  });
});

describe('an exposed node with no credentials configured', () => {
  let node: RunningProcess;
  let client: RegistryClient;

  beforeAll(async () => {
    node = await startExposed(['--private-repos', 'secret']);
    client = new RegistryClient(node.url);
  });

  it('says at start that it is read-only for the network', async () => {
    await until('the read-only warning', () => (node.output().includes('read-only for the network') ? true : undefined));
  });

  it('refuses pushes and private reads with 403 DENIED, and answers public reads', async () => {
    const blob = randomBlob(100);
    expectError(await client.req('POST', '/v2/team/app/blobs/uploads/'), 403, 'DENIED');
    expectError(await client.req('POST', `/v2/team/app/blobs/uploads/?digest=${digestOf(blob)}`, { body: blob }), 403, 'DENIED');
    expectError(await client.putManifest('team/app', 'v1', Buffer.from('{}'), MT.ociManifest), 403, 'DENIED');
    expectError(await client.req('GET', '/v2/secret/app/tags/list'), 403, 'DENIED');
    // Credentials change nothing when there is nothing to check them against.
    expectError(await new AuthClient(node.url, basic('alice', 'x')).req('POST', '/v2/team/app/blobs/uploads/'), 403, 'DENIED');
    expect((await client.req('GET', '/v2/')).status).toBe(200);
    expectError(await client.req('GET', '/v2/team/app/tags/list'), 404, 'NAME_UNKNOWN');
    expect((await client.req('GET', '/v2/_catalog')).json()).toEqual({ repositories: [] });
  });
});

describe('a node on loopback with nothing configured', () => {
  it('stays open, as before: pushes and reads without credentials', async () => {
    const node = await nodes.start('loopback', { args: ['--private-repos', 'secret'] });
    const client = new RegistryClient(node.url);
    expect((await client.req('GET', '/v2/')).status).toBe(200);
    const image = await client.pushImage('secret/app', 'v1');
    const got = await client.req('GET', `/v2/secret/app/blobs/${digestOf(image.layers[0]!)}`);
    expect(got.body.equals(image.layers[0]!)).toBe(true);
    expect((await client.req('GET', '/v2/_catalog')).json()).toEqual({ repositories: ['secret/app'] });
    expect(node.output()).not.toContain('read-only for the network');
  });
});

describe('credentials files that are wrong', () => {
  it.each([
    ['an MD5 htpasswd entry', 'htpasswd', 'alice:$apr1$Sm5vB9rD$8gN3j0c1kq0yLqJ8b7Yr30\n', /htpasswd: .*line 1: user alice has no bcrypt hash/],
    ['a short token', 'token-file', 'name:tooshort\n', /token-file: .*line 1: a token must be at least 16 printable characters/],
    ['a missing file', 'htpasswd', undefined, /htpasswd: .*cannot read: ENOENT/],
  ])('stop the node with one line and exit 2: %s', async (_what, flag, content, message) => {
    const dir = await tempDir('layerd-auth-bad-');
    dirs.push(dir);
    const file = join(dir, 'creds');
    if (content !== undefined) await writeFile(file, content);
    const child = spawn(process.execPath, [layerdBin, 'serve', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), `--${flag}`, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
    expect(stderr).not.toContain('$apr1$Sm5vB9rD');
    expect(stderr).not.toContain('tooshort');
  });
});
