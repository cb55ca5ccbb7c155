// What a web page can make a browser do to a node (issue 13 items 8 and 11), on real `layerd serve`
// processes: a loopback node answers only to loopback Host names (DNS rebinding gets nothing), writes and
// /api refuse a cross-site Origin, /api POSTs want a JSON body (a form cannot send one without a CORS
// preflight), and /api writes need the same credentials as a push wherever pushes need them.
import { request as httpRequest } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, runCli as cli, stablePort, tempDir, type RunningProcess } from '../helpers/processes.js';
import { basic } from '../helpers/registry-client.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request to 127.0.0.1:port with exactly these headers (Host included), whatever they say. */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const all: Record<string, string> = { ...headers };
    if (body !== undefined || ['POST', 'PUT', 'PATCH'].includes(method)) all['content-length'] ??= String(Buffer.byteLength(body ?? ''));
    const r = httpRequest({ host: '127.0.0.1', port, method, path, headers: all, agent: false, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    r.setTimeout(30_000, () => r.destroy(new Error(`${method} ${path} timed out`)));
    r.on('error', reject);
    r.end(body);
  });
}

function ociCode(a: Answer): string | undefined {
  try {
    return (JSON.parse(a.body) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

const JSON_TYPE = { 'content-type': 'application/json' };
const dirs: string[] = [];
const launched = new NodeSet('layerd-browser-');

afterAll(async () => {
  await launched.stopAll('SIGTERM');
  for (const d of dirs) await removeDir(d);
});

function start(args: string[], port?: number): Promise<TestNode> {
  return launched.start(`node${launched.nodes.length + 1}`, { args, port });
}

describe('a default node on loopback', () => {
  let node: RunningProcess;
  let host: string;
  let origin: string;

  beforeAll(async () => {
    node = await start([]);
    host = `127.0.0.1:${node.port}`;
    origin = `http://${host}`;
  });

  it('refuses a Host that is not a loopback name (DNS rebinding) with 403 and an OCI body, on every endpoint', async () => {
    for (const foreign of [`evil.example:${node.port}`, 'evil.example', `192.168.1.10:${node.port}`, `localhost.evil.example:${node.port}`, `127.0.0.1.evil.example:${node.port}`]) {
      for (const [method, path] of [
        ['GET', '/v2/'],
        ['GET', '/v2/_catalog'],
        ['POST', '/v2/team/app/blobs/uploads/'],
        ['GET', '/api/status'],
        ['GET', '/api/blobs'],
        ['GET', '/metrics'],
        ['GET', '/'],
      ] as const) {
        const a = await send(node.port, method, path, { host: foreign });
        expect(a.status, `${method} ${path} with Host ${foreign}`).toBe(403);
        expect(ociCode(a), `${method} ${path} with Host ${foreign}`).toBe('DENIED');
      }
    }
  });

  it('answers every loopback form of Host, with or without a port, as registry clients send them', async () => {
    const forms = [host, `localhost:${node.port}`, `LocalHost:${node.port}`, 'localhost', `127.1.2.3:${node.port}`, `[::1]:${node.port}`, '[::1]', `localhost.:${node.port}`];
    for (const form of forms) {
      expect((await send(node.port, 'GET', '/v2/', { host: form })).status, `Host ${form}`).toBe(200);
      expect((await send(node.port, 'GET', '/api/status', { host: form })).status, `Host ${form}`).toBe(200);
    }
    // A push as skopeo or docker sends it: no Origin, Host as configured.
    const post = await send(node.port, 'POST', '/v2/team/app/blobs/uploads/', { host: `localhost:${node.port}` });
    expect(post.status).toBe(202);
  });

  it('refuses a cross-site Origin on upload sessions, other writes and every /api call', async () => {
    for (const foreign of ['http://evil.example', `http://evil.example:${node.port}`, 'null', `http://127.0.0.1:${node.port + 1}`, `https://localhost:${node.port}.evil.example`]) {
      const h = { host, origin: foreign };
      const checks: Array<[string, string, Record<string, string>, string?]> = [
        ['POST', '/v2/team/app/blobs/uploads/', h],
        ['PUT', '/v2/team/app/manifests/v1', { ...h, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, '{}'],
        ['DELETE', '/v2/team/app/manifests/v1', h],
        ['GET', '/api/status', h],
        ['GET', '/api/images', h],
        ['POST', '/api/gc', { ...h, ...JSON_TYPE }, '{}'],
        ['POST', '/api/rollouts', { ...h, ...JSON_TYPE }, JSON.stringify({ image: 'docker.io/library/alpine:3' })],
      ];
      for (const [method, path, headers, body] of checks) {
        const a = await send(node.port, method, path, headers, body);
        expect(a.status, `${method} ${path} from Origin ${foreign}: ${a.body.slice(0, 200)}`).toBe(403);
        expect(ociCode(a)).toBe('DENIED');
      }
    }
    // Nothing was started by any of them.
    const rollouts = JSON.parse((await send(node.port, 'GET', '/api/rollouts', { host })).body) as { rollouts: unknown[] };
    expect(rollouts.rollouts).toEqual([]);
  });

  it("takes the dashboard's own same-origin calls, and pulls whatever their Origin", async () => {
    for (const own of [origin, `http://localhost:${node.port}`]) {
      expect((await send(node.port, 'GET', '/api/status', { host, origin: own })).status).toBe(200);
      expect((await send(node.port, 'POST', '/api/gc', { host, origin: own, ...JSON_TYPE }, '{}')).status).toBe(200);
    }
    const started = await send(node.port, 'POST', '/api/rollouts', { host, origin, ...JSON_TYPE }, JSON.stringify({ image: 'docker.io/library/alpine:3' }));
    expect(started.status, started.body).toBe(202);
    expect((await send(node.port, 'POST', '/v2/team/app/blobs/uploads/', { host, origin })).status).toBe(202);
    // Reads of /v2 are not writes: a page may fetch a public manifest (it cannot read the answer without CORS anyway).
    expect((await send(node.port, 'GET', '/v2/', { host, origin: 'http://evil.example' })).status).toBe(200);
  });

  it('answers 415 to an /api POST that is not JSON, as a form would send it', async () => {
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
      const headers: Record<string, string> = { host };
      if (type) headers['content-type'] = type;
      for (const path of ['/api/gc', '/api/rollouts']) {
        const a = await send(node.port, 'POST', path, headers, JSON.stringify({ image: 'docker.io/library/alpine:3' }));
        expect(a.status, `${path} as ${type}: ${a.body.slice(0, 200)}`).toBe(415);
        expect(ociCode(a)).toBeDefined();
      }
    }
    expect((await send(node.port, 'POST', '/api/gc', { host, 'content-type': 'application/json; charset=utf-8' }, '{}')).status).toBe(200);
  });
});

describe('a node listening beyond loopback', () => {
  it('answers whatever Host it is reached by, and still refuses a cross-site Origin on writes', async () => {
    const port = await stablePort();
    const node = await start(['--listen', `0.0.0.0:${port}`], port);
    expect((await send(port, 'GET', '/v2/', { host: `registry.example.com:${port}` })).status).toBe(200);
    expect((await send(port, 'GET', '/api/status', { host: 'registry.example.com' })).status).toBe(200);
    const a = await send(port, 'GET', '/api/status', { host: `registry.example.com:${port}`, origin: 'http://evil.example' });
    expect(a.status).toBe(403);
    expect((await send(port, 'GET', '/api/status', { host: `registry.example.com:${port}`, origin: `http://registry.example.com:${port}` })).status).toBe(200);
    // With nothing configured the network may not write through /api either (item 11), exactly like a push.
    const gc = await send(port, 'POST', '/api/gc', { host: `127.0.0.1:${node.port}`, ...JSON_TYPE }, '{}');
    expect(gc.status, gc.body).toBe(403);
    expect(ociCode(gc)).toBe('DENIED');
    const rollout = await send(port, 'POST', '/api/rollouts', { host: `127.0.0.1:${node.port}`, ...JSON_TYPE }, JSON.stringify({ image: 'docker.io/library/alpine:3' }));
    expect(rollout.status).toBe(403);
    expect((await send(port, 'POST', '/v2/team/app/blobs/uploads/', { host: `127.0.0.1:${node.port}` })).status).toBe(403);
  });
});

describe('/api writes on a node with --htpasswd (item 11)', () => {
  let node: RunningProcess;
  let host: string;
  const USER = 'alice';
  const PASSWORD = 'correct-horse-battery';

  beforeAll(async () => {
    const dir = await tempDir('layerd-api-auth-');
    dirs.push(dir);
    await writeFile(join(dir, 'htpasswd'), `${USER}:${bcrypt.hashSync(PASSWORD, 4)}\n`);
    node = await start(['--htpasswd', join(dir, 'htpasswd')]);
    host = `127.0.0.1:${node.port}`;
  });

  it('answers 401 with the Basic challenge to anonymous or wrong credentials, as a push', async () => {
    const rollout = JSON.stringify({ image: 'docker.io/library/alpine:3' });
    for (const auth of [undefined, basic(USER, 'wrong-password')]) {
      const headers: Record<string, string> = { host, ...JSON_TYPE, ...(auth ? { authorization: auth } : {}) };
      for (const [path, body] of [
        ['/api/gc', '{}'],
        ['/api/rollouts', rollout],
      ] as const) {
        const a = await send(node.port, 'POST', path, headers, body);
        expect(a.status, `${path} ${auth ?? 'anonymous'}: ${a.body.slice(0, 200)}`).toBe(401);
        expect(String(a.headers['www-authenticate'])).toMatch(/^Basic realm="layerd"/);
        expect(ociCode(a)).toBe('UNAUTHORIZED');
      }
    }
    expect(JSON.parse((await send(node.port, 'GET', '/api/rollouts', { host })).body)).toEqual({ rollouts: [] });
  });

  it('takes them with the credentials of a push', async () => {
    const headers = { host, ...JSON_TYPE, authorization: basic(USER, PASSWORD) };
    expect((await send(node.port, 'POST', '/api/gc', headers, '{}')).status).toBe(200);
    const started = await send(node.port, 'POST', '/api/rollouts', headers, JSON.stringify({ image: 'docker.io/library/alpine:3' }));
    expect(started.status, started.body).toBe(202);
    // Reads of /api stay open on loopback.
    expect((await send(node.port, 'GET', '/api/status', { host })).status).toBe(200);
  });

  it('takes them from the CLI with --user, or LAYERD_USER and LAYERD_PASSWORD; refuses the CLI without', async () => {
    const node1 = `http://127.0.0.1:${node.port}`;
    const refused = await cli(['gc', '--node', node1]);
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/401 UNAUTHORIZED/);
    const ok = await cli(['gc', '--node', node1, '--user', `${USER}:${PASSWORD}`, '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveProperty('removedBlobs');
    const env = await cli(['rollout', 'docker.io/library/alpine:3', '--node', node1, '--json'], { LAYERD_USER: USER, LAYERD_PASSWORD: PASSWORD });
    expect(env.status, env.stderr).toBe(0);
    expect(JSON.parse(env.stdout)).toHaveProperty('id');
    const wrong = await cli(['gc', '--node', node1, '--user', `${USER}:nope`]);
    expect(wrong.status).toBe(1);
    const noPassword = await cli(['gc', '--node', node1, '--user', USER]);
    expect(noPassword.status).toBe(2);
    expect(noPassword.stderr).toContain('LAYERD_PASSWORD');
  });
});
