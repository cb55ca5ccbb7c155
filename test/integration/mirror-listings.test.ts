// Content discovery through the mirror (issue 13, found by the OCI conformance suite): a node answers
// tags/list and the referrers API for a seed's repository from the seed, with the seed's paging turned
// into this node's Link headers, and from what it last knew (marked stale) while the seed is down. The
// seeds are real: CNCF distribution for tags (it has no referrers API: 404, so clients fall back to the
// tag schema), and a second layerd for referrers. Each seed is reached through a fault proxy that can
// take it down. Also here: the OCI-Namespace header a ?ns= request is answered with.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { logLines, removeDir, startDistribution, startLayerd, until } from '../helpers/processes.js';
import { descriptor, digestOf, expectError, jsonBytes, MT, randomBlob, RegistryClient, type Res } from '../helpers/registry-client.js';
import { requireTool } from '../helpers/clients.js';

const DIST = 'dist.test:5000';
const LSEED = 'lseed.test:5000';
const SBOM = 'application/vnd.example.sbom.v1';
const SIG = 'application/vnd.example.signature.v1';
const TAGS = ['1.0', 'alpha', 'beta', 'gamma', 'latest', 'v1', 'v2'];

const cleanups: Array<() => Promise<unknown>> = [];
let dist: Awaited<ReturnType<typeof startDistribution>>;
let lseed: Awaited<ReturnType<typeof startLayerd>>;
let distProxy: FaultProxy;
let lseedProxy: FaultProxy;
let node: Awaited<ReturnType<typeof startLayerd>>;
let c: RegistryClient;
let subject: { digest: string; size: number };
const referrers: Record<string, string> = {};

beforeAll(async () => {
  await requireTool('docker-registry');
  [dist, lseed] = await Promise.all([startDistribution(), startLayerd()]);
  cleanups.push(async () => (await dist.stop(), await removeDir(dist.rootDir)));
  cleanups.push(async () => (await lseed.stop(), await removeDir(lseed.dataDir)));
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

  node = await startLayerd({
    args: [
      '--upstream', `${DIST}=${distProxy.url}`,
      '--upstream', `${LSEED}=${lseedProxy.url}`,
      '--default-registry', DIST,
      // A tag list from the seed is trusted for the tag TTL: short, so that the seed is soon asked again.
      '--tag-ttl', '1s',
      '--upstream-timeout', '2s',
      '--upstream-retries', '0',
    ],
  });
  cleanups.push(async () => (await node.stop(), await removeDir(node.dataDir)));
  c = new RegistryClient(node.url);
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
