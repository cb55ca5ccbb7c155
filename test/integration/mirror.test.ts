// The per-host mirror (issue 4) against real seeds: docker-registry processes started here, holding an
// image copied in with skopeo from an offline layout, and fronted where a test needs it by a Docker Hub
// style token-auth proxy or by a fault proxy that takes the seed down, corrupts blobs, trickles or hangs.
// What the seed was asked is read from its access log (or the proxy's counters): that is how these tests
// tell a blob served from the node's cache from one fetched again.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets, parseAccessLog, logSettled } from '../helpers/access-log.js';
import { emptyRegistriesConf, requireTool, runTool } from '../helpers/clients.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { buildTestLayout, type TestLayout } from '../helpers/oci-image.js';
import { NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { removeDir, startDistribution, tempDir, until, type RunningProcess } from '../helpers/processes.js';
import { digestOf, errorCodes, MT, randomBlob, RegistryClient, type Res } from '../helpers/registry-client.js';
import { startTokenAuthProxy, type TokenAuthProxy } from '../helpers/token-auth-proxy.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;

const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');
const SEED1 = 'seed1.test:5000';
const SEED2 = 'seed2.test:5000';

let work: string;
let layout: TestLayout;
let seed1: Seed;
let seed2: Seed;
/** Every process and proxy started here, stopped in afterAll whatever happened. */
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  await requireTool('docker-registry');
  await requireTool('skopeo');
  work = await tempDir('layerd-mirror-');
  [seed1, seed2, layout] = await Promise.all([startDistribution(), startDistribution(), buildTestLayout(join(work, 'layout'))]);
  for (const s of [seed1, seed2]) cleanups.push(async () => (await s.stop(), await removeDir(s.rootDir)));
  // The image every pull test checks against: copied verbatim (--preserve-digests) from the offline layout.
  await runTool(
    'skopeo',
    ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout.dir}:v1`, `docker://127.0.0.1:${seed1.port}/test/img:v1`],
    { CONTAINERS_REGISTRIES_CONF: await emptyRegistriesConf(work) },
  );
});

afterAll(async () => {
  await launched.stopAll('SIGTERM');
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  if (work) await removeDir(work);
});

const launched = new NodeSet('layerd-mirror-');

function node(args: string[]): Promise<Node> {
  return launched.start(`node${launched.nodes.length + 1}`, { args });
}

// ---------- requests ----------

const q = (ns?: string) => (ns ? `?ns=${encodeURIComponent(ns)}` : '');

function getManifest(c: RegistryClient, repo: string, ref: string, ns?: string, method = 'GET'): Promise<Res> {
  return c.req(method, `/v2/${repo}/manifests/${ref}${q(ns)}`, { headers: { accept: ACCEPT } });
}

function getBlob(c: RegistryClient, repo: string, digest: string, ns?: string, headers: Record<string, string> = {}): Promise<Res> {
  return c.req('GET', `/v2/${repo}/blobs/${digest}${q(ns)}`, { headers });
}

interface Streamed {
  status: number;
  headers: IncomingHttpHeaders;
  /** `sha256:<hex>` of the body. */
  digest: string;
  length: number;
}

/**
 * A GET whose body is hashed as it streams in (50 parallel multi-MB bodies are not kept in memory).
 * Rejects when the connection fails or the body ends short: a cut-off response is an error here.
 */
function streamGet(url: string, opts: { headers?: Record<string, string>; timeoutMs?: number; onData?: (received: number) => void } = {}): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: opts.headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        opts.onData?.(length);
      });
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error(`response cut off after ${length} bytes`));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, digest: `sha256:${hash.digest('hex')}`, length }));
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`client timeout: no answer to GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

// ---------- what the seed was asked, from its access log ----------

/** Manifest GET and HEAD requests the seed logged whose path contains `part`. */
function manifestRequests(seed: RunningProcess, part: string): number {
  return parseAccessLog(seed.output()).filter((e) => (e.method === 'GET' || e.method === 'HEAD') && e.path.includes('/manifests/') && e.path.includes(part)).length;
}

function blobGetsOf(seed: RunningProcess, digest: string): number {
  return blobGets(seed.output()).filter((g) => g.digest === digest).length;
}

function settled(seed: RunningProcess): Promise<void> {
  return logSettled(seed);
}

function expectSource(res: { headers: IncomingHttpHeaders }, source: 'local' | 'upstream', what: string): void {
  expect(res.headers['x-layerd-source'], `X-Layerd-Source of ${what}`).toBe(source);
}

/** A 5xx (502/503/504) with an OCI JSON error body. */
function expectUpstreamError(res: Res, what: string): void {
  expect([502, 503, 504], `status of ${what}: ${res.status} ${res.body.toString().slice(0, 200)}`).toContain(res.status);
  expect(errorCodes(res).length).toBeGreaterThan(0);
}

// =====================================================================================================

describe('pulling through the mirror', () => {
  let n: Awaited<ReturnType<typeof node>>;
  let slow: FaultProxy;
  beforeAll(async () => {
    // A third upstream name reaches seed 1 through a proxy that trickles bodies, for the Range test.
    slow = await startFaultProxy(seed1.url, { mode: 'slow', slowBytesPerSecond: 3 * 1024 * 1024 });
    cleanups.push(() => slow.close());
    n = await node([
      '--upstream', `${SEED1}=${seed1.url}`,
      '--upstream', `${SEED2}=${seed2.url}`,
      '--upstream', `slow.test=${slow.url}`,
      '--default-registry', SEED1,
      '--tag-ttl', '60s',
    ]);
  });

  it('pulls an image by tag, then config and layers by digest: the bytes pushed, X-Layerd-Source: upstream', async () => {
    const m = await getManifest(n.c, 'test/img', 'v1', SEED1);
    expect(m.status).toBe(200);
    expect(m.body.equals(layout.image.manifest)).toBe(true);
    expect(m.header('docker-content-digest')).toBe(layout.image.digest);
    expect(m.header('content-type')).toBe(MT.ociManifest);
    expectSource(m, 'upstream', 'the first manifest GET');
    for (const d of [layout.image.config, ...layout.image.layers]) {
      const b = await getBlob(n.c, 'test/img', d.digest, SEED1);
      expect(b.status, d.digest).toBe(200);
      expect(digestOf(b.body)).toBe(d.digest);
      expect(b.body.length).toBe(d.size);
      expect(b.header('docker-content-digest')).toBe(d.digest);
      expectSource(b, 'upstream', `the first GET of ${d.digest}`);
    }
  });

  it('a second pull is served locally (X-Layerd-Source: local) and sends no blob GET to the seed', async () => {
    await settled(seed1);
    const before = seed1.blobGets();
    const m = await getManifest(n.c, 'test/img', 'v1', SEED1);
    expect(m.body.equals(layout.image.manifest)).toBe(true);
    expectSource(m, 'local', 'the second manifest GET');
    for (const d of [layout.image.config, ...layout.image.layers]) {
      const b = await getBlob(n.c, 'test/img', d.digest, SEED1);
      expect(digestOf(b.body)).toBe(d.digest);
      expectSource(b, 'local', `the second GET of ${d.digest}`);
    }
    await settled(seed1);
    expect(seed1.blobGets()).toBe(before);
  });

  it('within the tag TTL, repeated pulls by tag send no manifest request to the seed', async () => {
    await getManifest(n.c, 'test/img', 'v1', SEED1);
    await settled(seed1);
    const before = manifestRequests(seed1, '/v2/test/img/manifests/');
    for (let i = 0; i < 5; i++) {
      const m = await getManifest(n.c, 'test/img', 'v1', SEED1, i % 2 ? 'HEAD' : 'GET');
      expect(m.status).toBe(200);
      expect(m.header('docker-content-digest')).toBe(layout.image.digest);
    }
    await settled(seed1);
    expect(manifestRequests(seed1, '/v2/test/img/manifests/')).toBe(before);
  });

  it('50 concurrent GETs of one 8 MB blob cause exactly one blob GET at the seed, and all get the right bytes', async () => {
    const data = randomBlob(8 * 1024 * 1024);
    const digest = await new RegistryClient(seed1.url).pushBlob('test/big', data);
    const url = `${n.url}/v2/test/big/blobs/${digest}${q(SEED1)}`;
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => streamGet(url)));
    const bad = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`#${i}: ${String(r.reason)}`] : r.value.status !== 200 || r.value.digest !== digest ? [`#${i}: ${r.value.status} ${r.value.digest}`] : [],
    );
    expect(bad).toEqual([]);
    await until('the seed to log the blob GET', () => (blobGetsOf(seed1, digest) > 0 ? true : undefined));
    await settled(seed1);
    expect(blobGetsOf(seed1, digest)).toBe(1);
  });

  it('a Range request on a blob that is still downloading gets the right bytes', async () => {
    const data = randomBlob(12 * 1024 * 1024); // about 4 s through the trickling proxy
    const digest = await new RegistryClient(seed1.url).pushBlob('test/slow', data);
    const base = `${n.url}/v2/test/slow/blobs/${digest}${q('slow.test')}`;
    let received = 0;
    let fullDone = false;
    const full = streamGet(base, { onData: (r) => (received = r) }).finally(() => (fullDone = true));
    // The first bytes have reached the client: the node is mid-download.
    await until('the first bytes of the full GET', () => (received > 0 ? true : undefined));
    const ranges: Array<[number, number]> = [
      [0, 99],
      [5 * 1024 * 1024, 5 * 1024 * 1024 + 65_535],
      [data.length - 1000, data.length - 1],
    ];
    const asked = Promise.all(ranges.map(([a, b]) => getBlob(n.c, 'test/slow', digest, 'slow.test', { range: `bytes=${a}-${b}` })));
    // Checked when the ranges are asked, not when answered: a node may answer the tail range only once
    // the download (and its digest check) is complete.
    expect(fullDone, 'the full GET had not finished when the ranges were asked').toBe(false);
    expect(received).toBeLessThan(data.length);
    const parts = await asked;
    for (const [i, [a, b]] of ranges.entries()) {
      const p = parts[i]!;
      expect(p.status, `bytes=${a}-${b}`).toBe(206);
      expect(p.header('content-range')).toBe(`bytes ${a}-${b}/${data.length}`);
      expect(p.body.equals(data.subarray(a, b + 1)), `bytes of ${a}-${b}`).toBe(true);
    }
    const whole = await full;
    expect(whole.status).toBe(200);
    expect(whole.digest).toBe(digest);
  });

  it('a manifest by digest is fetched from the seed once, then served locally', async () => {
    const img = await new RegistryClient(seed1.url).pushImage('test/bydigest', 'v1');
    const first = await getManifest(n.c, 'test/bydigest', img.digest, SEED1);
    expect(first.status).toBe(200);
    expect(first.body.equals(img.manifest)).toBe(true);
    await settled(seed1);
    const fetched = manifestRequests(seed1, `/v2/test/bydigest/manifests/${img.digest}`);
    expect(fetched).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) {
      const again = await getManifest(n.c, 'test/bydigest', img.digest, SEED1, i === 1 ? 'HEAD' : 'GET');
      expect(again.status).toBe(200);
      expect(again.header('docker-content-digest')).toBe(img.digest);
      expectSource(again, 'local', `manifest ${img.digest} asked again`);
    }
    await settled(seed1);
    expect(manifestRequests(seed1, `/v2/test/bydigest/manifests/${img.digest}`)).toBe(fetched);
  });

  describe('?ns= routing', () => {
    let one: Awaited<ReturnType<RegistryClient['pushImage']>>;
    let two: Awaited<ReturnType<RegistryClient['pushImage']>>;
    beforeAll(async () => {
      // The same name and tag on both seeds, with different content.
      one = await new RegistryClient(seed1.url).pushImage('route/img', 'v1');
      two = await new RegistryClient(seed2.url).pushImage('route/img', 'v1');
    });

    it('?ns=<second upstream> gets seed 2 content: manifest and blob', async () => {
      const m = await getManifest(n.c, 'route/img', 'v1', SEED2);
      expect(m.status).toBe(200);
      expect(m.header('docker-content-digest')).toBe(two.digest);
      const b = await getBlob(n.c, 'route/img', digestOf(two.layers[0]!), SEED2);
      expect(b.body.equals(two.layers[0]!)).toBe(true);
    });

    it('without ns the --default-registry is meant (seed 1), even with seed 2 content of that tag cached', async () => {
      const m = await getManifest(n.c, 'route/img', 'v1');
      expect(m.status).toBe(200);
      expect(m.header('docker-content-digest')).toBe(one.digest);
      expect((await getManifest(n.c, 'route/img', 'v1', SEED1)).header('docker-content-digest')).toBe(one.digest);
    });

    it('a registry with no upstream and no local content: 404 with an OCI error body', async () => {
      const res = await getManifest(n.c, 'nowhere/img', 'v1', 'unconfigured.test');
      expect(res.status).toBe(404);
      expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain(errorCodes(res)[0]);
    });

    it('a tag cached from one upstream is not served for a registry without upstream', async () => {
      const res = await getManifest(n.c, 'route/img', 'v1', 'unconfigured.test');
      expect(res.status).toBe(404);
      expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain(errorCodes(res)[0]);
    });

    it('content pushed to the node itself is served, and wins over the seed (no ns, and ?ns=<default>)', async () => {
      const seedImg = await new RegistryClient(seed1.url).pushImage('route/own', 'v1');
      const own = await n.c.pushImage('route/own', 'v1');
      expect(own.digest).not.toBe(seedImg.digest);
      for (const ns of [undefined, SEED1]) {
        const m = await getManifest(n.c, 'route/own', 'v1', ns);
        expect(m.status, `ns=${ns}`).toBe(200);
        expect(m.header('docker-content-digest'), `ns=${ns}`).toBe(own.digest);
        expectSource(m, 'local', `pushed manifest, ns=${ns}`);
        const b = await getBlob(n.c, 'route/own', digestOf(own.layers[0]!), ns);
        expect(b.body.equals(own.layers[0]!)).toBe(true);
        expectSource(b, 'local', `pushed blob, ns=${ns}`);
      }
    });
  });
});

describe('tag TTL', () => {
  it('with --tag-ttl 1s, a retag at the seed is served once the TTL has passed', async () => {
    const n = await node(['--upstream', `${SEED1}=${seed1.url}`, '--default-registry', SEED1, '--tag-ttl', '1s']);
    const seedClient = new RegistryClient(seed1.url);
    const a = await seedClient.pushImage('ttl/img', 'v1');
    expect((await getManifest(n.c, 'ttl/img', 'v1')).header('docker-content-digest')).toBe(a.digest);
    const b = await seedClient.pushImage('ttl/img', 'v1');
    // Poll, no timing asserted: at some point after the TTL the node asks the seed again.
    const res = await until('the node to serve the new digest', async () => {
      const m = await getManifest(n.c, 'ttl/img', 'v1');
      return m.header('docker-content-digest') === b.digest ? m : undefined;
    });
    expect(res.status).toBe(200);
    expect(res.body.equals(b.manifest)).toBe(true);
  });
});

describe('docker.io semantics', () => {
  it('--upstream docker.io=<seed>: /v2/alpine/... (no ns) fetches library/alpine from the seed', async () => {
    const img = await new RegistryClient(seed2.url).pushImage('library/alpine', 'v1', { format: 'docker' });
    const n = await node(['--upstream', `docker.io=${seed2.url}`]);
    const m = await getManifest(n.c, 'alpine', 'v1');
    expect(m.status).toBe(200);
    expect(m.body.equals(img.manifest)).toBe(true);
    expect(m.header('content-type')).toBe(MT.dockerManifest);
    await settled(seed2);
    expect(manifestRequests(seed2, '/v2/library/alpine/manifests/')).toBeGreaterThanOrEqual(1);
    expect(manifestRequests(seed2, '/v2/alpine/')).toBe(0);
    const layer = img.layers[0]!;
    const b = await getBlob(n.c, 'alpine', digestOf(layer));
    expect(b.body.equals(layer)).toBe(true);
    // The long name means the same image.
    expect((await getManifest(n.c, 'library/alpine', 'v1')).header('docker-content-digest')).toBe(img.digest);
  });
});

describe('bearer token auth at the seed', () => {
  const USER = 'mirror-bot';
  const PASSWORD = 'Pa55-w0rd-never-logged';
  const WRONG_PASSWORD = 'wr0ng-pa55-never-logged';
  let anon: TokenAuthProxy;
  let authed: TokenAuthProxy;
  let wrong: TokenAuthProxy;
  let short: TokenAuthProxy;
  let n: Awaited<ReturnType<typeof node>>;

  beforeAll(async () => {
    [anon, authed, wrong, short] = await Promise.all([
      startTokenAuthProxy({ backend: seed1.url }),
      startTokenAuthProxy({ backend: seed1.url, username: USER, password: PASSWORD, allowAnonymous: false }),
      startTokenAuthProxy({ backend: seed1.url, username: USER, password: PASSWORD, allowAnonymous: false }),
      startTokenAuthProxy({ backend: seed1.url, tokenLifetimeSeconds: 2 }),
    ]);
    for (const p of [anon, authed, wrong, short]) cleanups.push(() => p.close());
    const config = join(work, 'token-config.yml');
    await writeFile(
      config,
      [
        'upstream:',
        `  "anon.test": {url: "${anon.url}"}`,
        `  "auth.test": {url: "${authed.url}", username: "${USER}", password: "${PASSWORD}"}`,
        `  "wrong.test": {url: "${wrong.url}", username: "${USER}", password: "${WRONG_PASSWORD}"}`,
        `  "short.test": {url: "${short.url}"}`,
        '',
      ].join('\n'),
    );
    // Debug logging: the most output there is in which credentials could leak.
    n = await node(['--config', config, '--log-level', 'debug']);
  });

  /** Pulls manifest, config and layers of `repo:tag` via `ns`, asserting every byte. */
  async function pull(repo: string, tag: string, ns: string, expected: { manifest: Buffer; blobs: Buffer[] }): Promise<void> {
    const m = await getManifest(n.c, repo, tag, ns);
    expect(m.status, `${ns} ${repo}:${tag}: ${m.body.toString().slice(0, 200)}`).toBe(200);
    expect(m.body.equals(expected.manifest)).toBe(true);
    for (const blob of expected.blobs) {
      const b = await getBlob(n.c, repo, digestOf(blob), ns);
      expect(b.status).toBe(200);
      expect(b.body.equals(blob)).toBe(true);
    }
  }

  const blobsOf = (img: { config: Buffer; layers: Buffer[] }) => [img.config, ...img.layers];

  it('anonymous: the pull works after the 401 → token → retry dance, and the token is reused', async () => {
    const seedClient = new RegistryClient(seed1.url);
    const first = await seedClient.pushImage('auth/anon', 'v1', { layers: 2 });
    await pull('auth/anon', 'v1', 'anon.test', { manifest: first.manifest, blobs: blobsOf(first) });
    expect(anon.challenges()).toBeGreaterThanOrEqual(1);
    expect(anon.tokenRequests().length).toBeGreaterThanOrEqual(1);
    expect(anon.tokenRequests().every((t) => t.granted && t.service === 'test-registry')).toBe(true);
    expect(anon.proxied().filter((r) => r.kind === 'blob-get').length).toBe(3);

    // More upstream requests for the same repository: the cached token serves them.
    const tokensBefore = anon.tokenRequests().length;
    const second = await seedClient.pushImage('auth/anon', 'v2', { layers: 2 });
    await pull('auth/anon', 'v2', 'anon.test', { manifest: second.manifest, blobs: blobsOf(second) });
    expect(anon.proxied().filter((r) => r.kind === 'blob-get').length).toBe(6);
    expect(anon.tokenRequests().length).toBe(tokensBefore);
  });

  it('basic credentials from the YAML config: the pull works, every token request names the user', async () => {
    const img = await new RegistryClient(seed1.url).pushImage('auth/private', 'v1', { layers: 2 });
    await pull('auth/private', 'v1', 'auth.test', { manifest: img.manifest, blobs: blobsOf(img) });
    const tokens = authed.tokenRequests();
    expect(tokens.length).toBeGreaterThanOrEqual(1);
    expect(tokens.length).toBeLessThanOrEqual(2);
    expect(tokens.every((t) => t.user === USER && t.granted)).toBe(true);
  });

  it('wrong credentials: the pull fails with an error, not a hang and not a 200', async () => {
    const img = await new RegistryClient(seed1.url).pushImage('auth/refused', 'v1');
    const res = await getManifest(n.c, 'auth/refused', 'v1', 'wrong.test');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(errorCodes(res).length).toBeGreaterThan(0);
    expect(wrong.tokenRequests().length).toBeGreaterThanOrEqual(1);
    expect(wrong.tokenRequests().every((t) => !t.granted)).toBe(true);
    expect(wrong.proxied()).toHaveLength(0);
    expect(res.body.includes(img.manifest)).toBe(false);
  });

  it('a 2-second token: a pull after it has expired still works (a new token is fetched)', async () => {
    const seedClient = new RegistryClient(seed1.url);
    const a = await seedClient.pushImage('auth/short', 'a');
    await pull('auth/short', 'a', 'short.test', { manifest: a.manifest, blobs: blobsOf(a) });
    const tokensBefore = short.tokenRequests().length;
    expect(tokensBefore).toBeGreaterThanOrEqual(1);
    // Wait for a condition, not a time: every token the proxy issued so far has expired.
    await until('the tokens to expire', () => (short.liveTokens() === 0 ? true : undefined));
    const b = await seedClient.pushImage('auth/short', 'b');
    await pull('auth/short', 'b', 'short.test', { manifest: b.manifest, blobs: blobsOf(b) });
    expect(short.tokenRequests().length).toBeGreaterThan(tokensBefore);
  });

  it('credentials never appear in the node output', async () => {
    const out = n.output();
    expect(out.length).toBeGreaterThan(0);
    // Not vacuous: the node did send both passwords (to the token endpoints) during this file.
    expect(authed.tokenRequests().some((t) => t.user === USER)).toBe(true);
    expect(wrong.tokenRequests().some((t) => t.user === USER)).toBe(true);
    for (const secret of [PASSWORD, WRONG_PASSWORD]) {
      expect(out.includes(secret), `password ${secret} in the node's output`).toBe(false);
      const basic = Buffer.from(`${USER}:${secret}`).toString('base64');
      expect(out.includes(basic), `Basic credentials for ${secret} in the node's output`).toBe(false);
    }
  });
});

describe('when the seed fails', () => {
  let fault: FaultProxy;
  /** Serves stale (the default); a short TTL so the cached tag is soon due for revalidation. */
  let n: Awaited<ReturnType<typeof node>>;
  /** The same, with --serve-stale false. */
  let strict: Awaited<ReturnType<typeof node>>;
  /** On the seed, never pulled through either node. */
  let uncachedBlob: string;
  const FLAKY = 'flaky.test';

  beforeAll(async () => {
    fault = await startFaultProxy(seed1.url);
    cleanups.push(() => fault.close());
    const common = ['--upstream', `${FLAKY}=${fault.url}`, '--default-registry', FLAKY, '--tag-ttl', '1s', '--upstream-timeout', '2s', '--upstream-retries', '1'];
    [n, strict] = await Promise.all([node(common), node([...common, '--serve-stale', 'false'])]);
    uncachedBlob = await new RegistryClient(seed1.url).pushBlob('test/img', randomBlob(100_000));
    // Warm both nodes: the image is cached, tag and all.
    for (const x of [n, strict]) {
      expect((await getManifest(x.c, 'test/img', 'v1')).header('docker-content-digest')).toBe(layout.image.digest);
      for (const d of [layout.image.config, ...layout.image.layers]) expect(digestOf((await getBlob(x.c, 'test/img', d.digest)).body)).toBe(d.digest);
    }
  });

  describe('seed down (connections refused)', () => {
    beforeAll(async () => fault.setMode('down'));
    afterAll(async () => fault.setMode('pass'));

    it('a cached tag past its TTL is served stale: Warning 110 and X-Layerd-Stale: true', async () => {
      const res = await until('the tag to be served stale', async () => {
        const m = await getManifest(n.c, 'test/img', 'v1');
        return m.header('x-layerd-stale') !== undefined || m.status !== 200 ? m : undefined;
      });
      expect(res.status).toBe(200);
      expect(res.body.equals(layout.image.manifest)).toBe(true);
      expect(res.header('x-layerd-stale')).toBe('true');
      expect(res.header('warning') ?? '').toMatch(/\b110\b/);
    });

    it('digest pulls of cached content work', async () => {
      const m = await getManifest(n.c, 'test/img', layout.image.digest);
      expect(m.status).toBe(200);
      expect(m.body.equals(layout.image.manifest)).toBe(true);
      for (const d of [layout.image.config, ...layout.image.layers]) {
        const b = await getBlob(n.c, 'test/img', d.digest);
        expect(b.status).toBe(200);
        expect(digestOf(b.body)).toBe(d.digest);
      }
    });

    it('an uncached manifest or blob answers 5xx with an OCI error body, without hanging', async () => {
      // RegistryClient gives up after 30 s: an answer at all is what is checked here.
      expectUpstreamError(await getManifest(n.c, 'test/img', 'not-cached'), 'an uncached tag');
      expectUpstreamError(await getManifest(n.c, 'test/img', digestOf('no such manifest')), 'an uncached manifest digest');
      expectUpstreamError(await getBlob(n.c, 'test/img', uncachedBlob), 'an uncached blob');
    });

    it('--serve-stale false: the cached tag past its TTL is an error, not stale content', async () => {
      const res = await until('the tag to be revalidated', async () => {
        const m = await getManifest(strict.c, 'test/img', 'v1');
        return m.status !== 200 || m.header('x-layerd-stale') !== undefined ? m : undefined;
      });
      expect(res.header('x-layerd-stale')).toBeUndefined();
      expectUpstreamError(res, 'a stale tag with --serve-stale false');
      // Content by digest is immutable: it is still served.
      expect((await getManifest(strict.c, 'test/img', layout.image.digest)).status).toBe(200);
    });
  });

  describe('seed sends wrong bytes', () => {
    afterAll(async () => fault.setMode('pass'));

    it('the client response is cut off, nothing is stored, and a later pull fetches correct bytes again', async () => {
      const data = randomBlob(1024 * 1024);
      const digest = await new RegistryClient(seed1.url).pushBlob('test/img', data);
      await fault.setMode('corrupt-blob');
      const outcome = await streamGet(`${n.url}/v2/test/img/blobs/${digest}`).then(
        (r) => `completed: ${r.status}, ${r.length} bytes, ${r.digest === digest ? 'right' : 'wrong'} digest`,
        (e: Error) => `failed: ${e.message}`,
      );
      // Cut off (or refused outright with an error status), never a complete 2xx body.
      expect(outcome).toMatch(/^failed: |^completed: [45]\d\d,/);
      expect(fault.count('blob-get', digest)).toBeGreaterThanOrEqual(1);

      await fault.setMode('pass');
      const before = fault.count('blob-get', digest);
      const again = await streamGet(`${n.url}/v2/test/img/blobs/${digest}`);
      expect(again.status).toBe(200);
      expect(again.digest).toBe(digest);
      expect(again.headers['x-layerd-source']).toBe('upstream');
      expect(fault.count('blob-get', digest)).toBe(before + 1);
    });
  });

  describe('seed hangs', () => {
    afterAll(async () => fault.setMode('pass'));

    it('an uncached blob or manifest gets an error within the upstream timeout instead of hanging', async () => {
      await fault.setMode('hang');
      const before = fault.requests().length;
      const blob = await getBlob(n.c, 'test/img', uncachedBlob);
      expectUpstreamError(blob, 'an uncached blob while the seed hangs');
      const manifest = await getManifest(n.c, 'test/img', 'hang-tag');
      expectUpstreamError(manifest, 'an uncached tag while the seed hangs');
      // The node did ask the (hanging) seed: the error is a timeout, not a refusal to try.
      expect(fault.requests().length).toBeGreaterThan(before);
    });
  });
});
