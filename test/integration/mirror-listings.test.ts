// Content discovery through the mirror (issue 13, found by the OCI conformance suite): a node answers
// tags/list and the referrers API for a seed's repository from the seed, with the seed's paging turned
// into this node's Link headers, and from what it last knew (marked stale) while the seed is down. The
// seeds are real: CNCF distribution for tags (it has no referrers API: 404, so clients fall back to the
// tag schema), and a second layerd for referrers. Each seed is reached through a fault proxy that can
// take it down. Also here: the OCI-Namespace header a ?ns= request is answered with.
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listen, startFaultProxy, trackSockets, type FaultProxy } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { logLines, removeDir, startDistribution, until } from '../helpers/processes.js';
import { descriptor, digestOf, expectError, jsonBytes, MT, randomBlob, RegistryClient, type Res } from '../helpers/registry-client.js';
import { requireTool } from '../helpers/clients.js';

const DIST = 'dist.test:5000';
const LSEED = 'lseed.test:5000';
/** A seed that pages everything and lies where a test says so (a small server: no real registry does both). */
const FAKE = 'fake.test:5000';
const FAKE_SUBJECT = `sha256:${'ab'.repeat(32)}`;
const fakeRef = (n: number) => ({ mediaType: MT.ociManifest, digest: `sha256:${String(n).repeat(64)}`, size: 100 + n, artifactType: SBOM });
const SBOM = 'application/vnd.example.sbom.v1';
const SIG = 'application/vnd.example.signature.v1';
const TAGS = ['1.0', 'alpha', 'beta', 'gamma', 'latest', 'v1', 'v2'];

const cleanups: Array<() => Promise<unknown>> = [];
const nodes = new NodeSet('layerd-mirror-listings-');
let dist: Awaited<ReturnType<typeof startDistribution>>;
let lseed: TestNode;
let distProxy: FaultProxy;
let lseedProxy: FaultProxy;
let node: TestNode;
let c: RegistryClient;
let subject: { digest: string; size: number };
const referrers: Record<string, string> = {};

beforeAll(async () => {
  await requireTool('docker-registry');
  [dist, lseed] = await Promise.all([startDistribution(), nodes.start('lseed')]);
  cleanups.push(async () => (await dist.stop(), await removeDir(dist.rootDir)));
  cleanups.push(() => nodes.stopAll('SIGTERM'));
  [distProxy, lseedProxy] = await Promise.all([startFaultProxy(dist.url), startFaultProxy(lseed.url)]);
  cleanups.push(() => distProxy.close(), () => lseedProxy.close());

  // Tags at the distribution seed, pushed out of order.
  const seedClient = new RegistryClient(dist.url);
  const img = await seedClient.pushImage('list/img', 'latest');
  for (const tag of ['v2', 'alpha', 'gamma', '1.0', 'v1', 'beta']) await seedClient.pushManifest('list/img', tag, img.manifest, img.mediaType);

  // An image and two artifacts about it at the layerd seed, pushed with plain HTTP.
  const ls = new RegistryClient(lseed.url);
  const app = await ls.pushImage('ref/app', 'v1');
  subject = { digest: app.digest, size: app.manifest.length };
  const empty = Buffer.from('{}');
  await ls.pushBlob('ref/app', empty);
  for (const [kind, artifactType] of [['sbom', SBOM], ['sig', SIG]] as const) {
    const layer = randomBlob(64);
    await ls.pushBlob('ref/app', layer);
    const body = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType,
      config: descriptor(MT.ociEmpty, empty),
      layers: [descriptor('application/octet-stream', layer)],
      subject: { mediaType: MT.ociManifest, ...subject },
      annotations: { 'org.example.kind': kind },
    });
    referrers[kind] = await ls.pushManifest('ref/app', digestOf(body), body, MT.ociManifest);
  }

  const fake = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const json = (body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const last = url.searchParams.get('last');
    switch (url.pathname) {
      case '/v2/paged/app/tags/list': {
        // Three pages, each in no order, each pointing at the next.
        if (last === null) return json({ name: 'paged/app', tags: ['b', 'a'] }, { link: '</v2/paged/app/tags/list?n=2&last=b>; rel="next"' });
        if (last === 'b') return json({ name: 'paged/app', tags: ['d', 'c'] }, { link: '</v2/paged/app/tags/list?n=2&last=d>; rel="next"' });
        return json({ name: 'paged/app', tags: ['e'] });
      }
      case '/v2/circle/app/tags/list':
        return json({ tags: ['x', 'y'] }, { link: '</v2/circle/app/tags/list?last=x>; rel="next"' });
      case '/v2/evil/app/tags/list':
        return json({ name: 'evil/app', tags: ['ok', '../../../etc/passwd'] });
      case '/v2/huge/app/tags/list':
        return json(`{"tags":["${'a'.repeat(5 * 1024 * 1024)}"]}`);
      case `/v2/evil/app/referrers/${FAKE_SUBJECT}`:
        return json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: 'sha256:../../x', size: 1 }] });
      case `/v2/paged/app/referrers/${FAKE_SUBJECT}`: {
        if (url.searchParams.get('page') === '2') return json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [fakeRef(2)] }, { 'content-type': MT.ociIndex });
        // An extra field the node must not pass on, and a Link with a cursor of the seed's own.
        return json(
          { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...fakeRef(1), injected: '<script>' }] },
          { 'content-type': MT.ociIndex, link: `<http://elsewhere.invalid/v2/paged/app/referrers/${FAKE_SUBJECT}?page=2&ns=evil.test>; rel="next"` },
        );
      }
      default:
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
    }
  });
  const fakeSockets = trackSockets(fake);
  const fakeUrl = `http://127.0.0.1:${await listen(fake)}`;
  cleanups.push(() => closeServer(fake, fakeSockets));

  node = await nodes.start('node', {
    args: [
      '--upstream', `${FAKE}=${fakeUrl}`,
      '--upstream', `${DIST}=${distProxy.url}`,
      '--upstream', `${LSEED}=${lseedProxy.url}`,
      '--default-registry', DIST,
      // A tag list from the seed is trusted for the tag TTL: short, so that the seed is soon asked again.
      '--tag-ttl', '1s',
      '--upstream-timeout', '2s',
      '--upstream-retries', '0',
    ],
  });
  // Stopped before the seeds' proxies close; its data dir goes with the set's.
  cleanups.push(() => node.stop());
  c = node.c;
});

afterAll(async () => {
  for (const f of cleanups.reverse()) await f().catch(() => undefined);
});

/** The rel="next" target of a Link header as path + query, or undefined when there is none. */
function nextOf(res: Res): string | undefined {
  const link = res.header('link');
  if (link === undefined) return undefined;
  const m = /^<([^>]+)>;\s*rel="next"$/.exec(link.trim());
  expect(m, `Link header ${link}`).not.toBeNull();
  expect(m![1]!.startsWith('/v2/'), `a Link on this node's own path: ${link}`).toBe(true);
  return m![1]!;
}

/** Follows Link headers from `first`: every page's tags in order, and how many pages. */
async function allPages(first: string): Promise<{ tags: string[]; pages: number; responses: Res[] }> {
  const tags: string[] = [];
  const responses: Res[] = [];
  let next: string | undefined = first;
  while (next !== undefined) {
    const res = await c.req('GET', next);
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    responses.push(res);
    tags.push(...((res.json() as { tags: string[] | null }).tags ?? []));
    next = nextOf(res);
    expect(responses.length).toBeLessThan(50);
  }
  return { tags, pages: responses.length, responses };
}

describe('tags/list of a seed repository', () => {
  it('lists the seed\'s tags, sorted here (it answered 404 NAME_UNKNOWN before; distribution 2.8 lists them in no order)', async () => {
    const res = await c.req('GET', '/v2/list/img/tags/list');
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    expect(res.json()).toEqual({ name: 'list/img', tags: TAGS });
    expect(res.header('x-layerd-stale')).toBeUndefined();
  });

  it('pages with n and last: Link headers on this node\'s path yield every tag exactly once', async () => {
    const first = await c.req('GET', '/v2/list/img/tags/list?n=3');
    expect(first.json()).toEqual({ name: 'list/img', tags: TAGS.slice(0, 3) });
    expect(nextOf(first)).toBe('/v2/list/img/tags/list?n=3&last=beta');
    const walked = await allPages('/v2/list/img/tags/list?n=3');
    expect(walked.tags).toEqual(TAGS);
    expect(walked.pages).toBe(3);
    // last alone, and n with last, as the seed would answer them.
    expect((await c.req('GET', '/v2/list/img/tags/list?last=latest')).json()).toEqual({ name: 'list/img', tags: ['v1', 'v2'] });
    expect((await c.req('GET', '/v2/list/img/tags/list?n=2&last=alpha')).json()).toEqual({ name: 'list/img', tags: ['beta', 'gamma'] });
  });

  it('with ?ns=: the Link keeps ns, and the answer says OCI-Namespace', async () => {
    const res = await c.req('GET', `/v2/list/img/tags/list?n=4&ns=${DIST}`);
    expect(res.status).toBe(200);
    expect(res.header('oci-namespace')).toBe(DIST);
    expect(nextOf(res)).toBe(`/v2/list/img/tags/list?n=4&last=gamma&ns=${encodeURIComponent(DIST)}`);
    expect((await allPages(`/v2/list/img/tags/list?n=4&ns=${DIST}`)).tags).toEqual(TAGS);
  });

  it('a repository the seed does not have answers 404 NAME_UNKNOWN', async () => {
    expectError(await c.req('GET', '/v2/list/never/tags/list'), 404, 'NAME_UNKNOWN');
  });

  it('a repository pushed to the node itself is listed from the node, not the seed', async () => {
    const img = await c.pushImage('list/img', 'local-only');
    const before = distProxy.requests().length;
    expect((await c.req('GET', '/v2/list/img/tags/list')).json()).toEqual({ name: 'list/img', tags: ['local-only'] });
    expect(distProxy.requests().length).toBe(before);
    expect(img.digest).toMatch(/^sha256:/);
  });
});

describe('referrers of a seed repository', () => {
  const path = () => `/v2/ref/app/referrers/${subject.digest}?ns=${LSEED}`;

  it('lists the seed\'s referrers (it answered an empty index before)', async () => {
    const res = await c.req('GET', path());
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    expect(res.header('content-type')).toBe(MT.ociIndex);
    expect(res.header('oci-namespace')).toBe(LSEED);
    const index = res.json() as { schemaVersion: number; mediaType: string; manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> };
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(MT.ociIndex);
    const byDigest = new Map(index.manifests.map((d) => [d.digest, d]));
    expect([...byDigest.keys()].sort()).toEqual([referrers.sbom, referrers.sig].sort());
    expect(byDigest.get(referrers.sbom!)).toMatchObject({ artifactType: SBOM, annotations: { 'org.example.kind': 'sbom' } });
    expect(byDigest.get(referrers.sig!)).toMatchObject({ artifactType: SIG, annotations: { 'org.example.kind': 'sig' } });
    expect(res.header('oci-filters-applied')).toBeUndefined();
  });

  it('?artifactType= is forwarded; OCI-Filters-Applied is kept because the seed applied it', async () => {
    const res = await c.req('GET', `${path()}&artifactType=${encodeURIComponent(SBOM)}`);
    expect(res.status).toBe(200);
    expect((res.json() as { manifests: Array<{ digest: string }> }).manifests.map((d) => d.digest)).toEqual([referrers.sbom]);
    expect(res.header('oci-filters-applied')).toBe('artifactType');
  });

  it('a seed without the referrers API (distribution 2.8 answers 404): 404 NAME_UNKNOWN, so clients fall back to the tag schema', async () => {
    const img = await new RegistryClient(dist.url).pushImage('ref/plain', 'v1');
    expectError(await c.req('GET', `/v2/ref/plain/referrers/${img.digest}`), 404, 'NAME_UNKNOWN');
  });
});

describe('what a seed says is checked, and its paging followed', () => {
  it('a tag list the seed pages is followed to the end and paged here in this node\'s order', async () => {
    const res = await c.req('GET', `/v2/paged/app/tags/list?ns=${FAKE}`);
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    expect(res.json()).toEqual({ name: 'paged/app', tags: ['a', 'b', 'c', 'd', 'e'] });
    expect((await allPages(`/v2/paged/app/tags/list?n=2&ns=${FAKE}`)).tags).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a seed whose Link goes round in circles does not hold the node: the tags seen are listed', async () => {
    const res = await c.req('GET', `/v2/circle/app/tags/list?ns=${FAKE}`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ name: 'circle/app', tags: ['x', 'y'] });
  });

  it('a tag list with an invalid tag, or beyond the size bound, is refused: 502 with an OCI error body', async () => {
    for (const repo of ['evil/app', 'huge/app']) {
      const res = await c.req('GET', `/v2/${repo}/tags/list?ns=${FAKE}`);
      expect(res.status, repo).toBe(502);
      expect((res.json() as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNAVAILABLE');
      expect(res.body.toString()).not.toContain('passwd');
    }
  });

  it('a referrers index with an invalid digest is refused: 502', async () => {
    const res = await c.req('GET', `/v2/evil/app/referrers/${FAKE_SUBJECT}?ns=${FAKE}`);
    expect(res.status).toBe(502);
  });

  it('paged referrers: the seed\'s Link becomes one on this node\'s path (its cursor kept, its host and ns not), fields rebuilt', async () => {
    const first = await c.req('GET', `/v2/paged/app/referrers/${FAKE_SUBJECT}?ns=${FAKE}`);
    expect(first.status, first.body.toString().slice(0, 200)).toBe(200);
    expect((first.json() as { manifests: unknown[] }).manifests).toEqual([fakeRef(1)]);
    const next = nextOf(first);
    expect(next).toBe(`/v2/paged/app/referrers/${FAKE_SUBJECT}?page=2&ns=${encodeURIComponent(FAKE)}`);
    const second = await c.req('GET', next!);
    expect((second.json() as { manifests: unknown[] }).manifests).toEqual([fakeRef(2)]);
    expect(second.header('link')).toBeUndefined();
  });
});

describe('OCI-Namespace', () => {
  it('a read scoped by ?ns= is answered with OCI-Namespace: <the ns value>, hits and misses alike', async () => {
    const img = await new RegistryClient(dist.url).pushImage('ns/app', 'v1');
    const manifest = await c.req('GET', `/v2/ns/app/manifests/v1?ns=${DIST}`, { headers: { accept: MT.ociManifest } });
    expect(manifest.status).toBe(200);
    expect(manifest.header('oci-namespace')).toBe(DIST);
    const blob = await c.req('HEAD', `/v2/ns/app/blobs/${digestOf(img.config)}?ns=${DIST}`);
    expect(blob.status).toBe(200);
    expect(blob.header('oci-namespace')).toBe(DIST);
    const miss = await c.req('GET', `/v2/ns/app/manifests/absent?ns=${DIST}`);
    expect(miss.status).toBe(404);
    expect(miss.header('oci-namespace')).toBe(DIST);
  });

  it('no ns, or one that names no registry: no OCI-Namespace', async () => {
    expect((await c.req('GET', '/v2/list/img/tags/list')).header('oci-namespace')).toBeUndefined();
    const bad = await c.req('GET', `/v2/list/img/tags/list?ns=${encodeURIComponent('not a/registry')}`);
    expect(bad.status).toBe(400);
    expect(bad.header('oci-namespace')).toBeUndefined();
  });
});

describe('while the seed is down', () => {
  beforeAll(async () => {
    // What the node knows: a repository's full tag list (and the referrers above), asked while the seeds were up.
    const seedClient = new RegistryClient(dist.url);
    const img = await seedClient.pushImage('stale/img', 'c');
    for (const tag of ['b', 'a']) await seedClient.pushManifest('stale/img', tag, img.manifest, img.mediaType);
    expect((await c.req('GET', '/v2/stale/img/tags/list')).json()).toEqual({ name: 'stale/img', tags: ['a', 'b', 'c'] });
    await Promise.all([distProxy.setMode('down'), lseedProxy.setMode('down')]);
  });
  afterAll(async () => {
    await Promise.all([distProxy.setMode('pass'), lseedProxy.setMode('pass')]);
  });

  it('tags/list is answered from what the node knew, marked stale (Warning 110, X-Layerd-Stale), with a log line', async () => {
    // Within the TTL the list is fresh; once it has passed, the (down) seed is asked and the list is stale.
    const res = await until('the tag list to be served stale', async () => {
      const r = await c.req('GET', '/v2/stale/img/tags/list');
      return r.status !== 200 || r.header('x-layerd-stale') !== undefined ? r : undefined;
    });
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    expect(res.header('x-layerd-stale')).toBe('true');
    expect(res.header('warning') ?? '').toMatch(/\b110\b/);
    expect(res.json()).toEqual({ name: 'stale/img', tags: ['a', 'b', 'c'] });
    const paged = await allPages('/v2/stale/img/tags/list?n=2');
    expect(paged.tags).toEqual(['a', 'b', 'c']);
    expect(paged.responses.every((r) => r.header('x-layerd-stale') === 'true')).toBe(true);
    expect(logLines(node).some((l) => l.msg === 'seed unreachable: serving a stale tag list')).toBe(true);
  });

  it('referrers are answered from what the node knew, marked stale, filtered here when asked', async () => {
    const res = await c.req('GET', path());
    expect(res.status, res.body.toString().slice(0, 200)).toBe(200);
    expect(res.header('x-layerd-stale')).toBe('true');
    expect((res.json() as { manifests: Array<{ digest: string }> }).manifests.map((d) => d.digest).sort()).toEqual([referrers.sbom, referrers.sig].sort());
    const filtered = await c.req('GET', `${path()}&artifactType=${encodeURIComponent(SIG)}`);
    expect((filtered.json() as { manifests: Array<{ digest: string }> }).manifests.map((d) => d.digest)).toEqual([referrers.sig]);
    expect(filtered.header('oci-filters-applied')).toBe('artifactType');
    expect(logLines(node).some((l) => l.msg === 'seed unreachable: serving stale referrers')).toBe(true);
  });

  it('a repository never listed has nothing to fall back on: 5xx with an OCI error body', async () => {
    const res = await c.req('GET', '/v2/never/listed/tags/list');
    expect([502, 503, 504]).toContain(res.status);
    expect((res.json() as { errors: unknown[] }).errors.length).toBe(1);
  });

  function path(): string {
    return `/v2/ref/app/referrers/${subject.digest}?ns=${LSEED}`;
  }
});
