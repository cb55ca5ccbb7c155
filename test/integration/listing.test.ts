// Content discovery against a real `layerd serve`: tags/list and _catalog with n/last pagination
// and RFC 5988 Link headers, and the v1.1 referrers API (subject, OCI-Subject, artifactType
// filtering with OCI-Filters-Applied).
import { beforeAll, describe, expect, it } from 'vitest';
import { useRegistryTarget } from '../helpers/nodes.js';
import {
  descriptor,
  digestOf,
  expectError,
  jsonBytes,
  MT,
  randomBlob,
  type Res,
} from '../helpers/registry-client.js';

const { client: c, url: targetUrl } = useRegistryTarget();

/** The rel="next" target of a Link header as path + query, or undefined when there is no next page. */
function nextLink(res: Res): string | undefined {
  const link = res.header('link');
  if (link === undefined) return undefined;
  const m = /^<([^>]+)>;\s*rel="next"$/.exec(link.trim());
  expect(m, `Link header ${link}`).not.toBeNull();
  const u = new URL(m![1]!, targetUrl());
  return u.pathname + u.search;
}

/** Follows Link headers from `first`, returning every page's items (read with `items`) in order. */
async function paginate(first: string, items: (body: any) => string[] | null): Promise<{ all: string[]; pages: number }> {
  const all: string[] = [];
  let next: string | undefined = first;
  let pages = 0;
  while (next !== undefined) {
    const res = await c.req('GET', next);
    expect(res.status).toBe(200);
    all.push(...(items(res.json()) ?? []));
    next = nextLink(res);
    pages++;
    expect(pages).toBeLessThan(100);
  }
  return { all, pages };
}

describe('tags/list', () => {
  const repo = 'list/tags';
  const TAGS = ['1.0', 'alpha', 'beta', 'gamma', 'latest', 'v1', 'v2'];

  beforeAll(async () => {
    const img = await c.pushImage(repo, 'latest');
    // Pushed out of order so that sorting is the registry's job.
    for (const tag of ['v2', 'alpha', 'gamma', '1.0', 'v1', 'beta']) await c.pushManifest(repo, tag, img.manifest, img.mediaType);
  });

  it('lists every tag, sorted, with the repository name', async () => {
    const res = await c.req('GET', `/v2/${repo}/tags/list`);
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toMatch(/^application\/json\b/);
    expect(res.json()).toEqual({ name: repo, tags: TAGS });
  });

  it('n limits the page and a Link header points at the next one', async () => {
    const res = await c.req('GET', `/v2/${repo}/tags/list?n=3`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(['1.0', 'alpha', 'beta']);
    const next = new URL(nextLink(res)!, targetUrl());
    expect(next.pathname).toBe(`/v2/${repo}/tags/list`);
    expect(next.searchParams.get('n')).toBe('3');
    expect(next.searchParams.get('last')).toBe('beta');
  });

  it('following Link headers yields every tag exactly once, and the last page has no Link', async () => {
    const { all, pages } = await paginate(`/v2/${repo}/tags/list?n=2`, (b) => b.tags);
    expect(all).toEqual(TAGS);
    expect(pages).toBe(4);
  });

  it('n and last together return up to n tags after last', async () => {
    const res = await c.req('GET', `/v2/${repo}/tags/list?n=2&last=beta`);
    expect(res.json().tags).toEqual(['gamma', 'latest']);
  });

  it('last alone returns every tag after it', async () => {
    const res = await c.req('GET', `/v2/${repo}/tags/list?last=gamma`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(['latest', 'v1', 'v2']);
    expect(res.header('link')).toBeUndefined();
  });

  it('last need not be an existing tag', async () => {
    const res = await c.req('GET', `/v2/${repo}/tags/list?last=b`);
    expect(res.json().tags).toEqual(['beta', 'gamma', 'latest', 'v1', 'v2']);
  });

  it('n=0 returns an empty list and no Link header', async () => {
    const res = await c.req('GET', `/v2/${repo}/tags/list?n=0`);
    expect(res.status).toBe(200);
    expect(res.json().tags ?? []).toEqual([]);
    expect(res.header('link')).toBeUndefined();
  });

  it('n at least the number of tags returns them all and no Link header', async () => {
    for (const n of [7, 100]) {
      const res = await c.req('GET', `/v2/${repo}/tags/list?n=${n}`);
      expect(res.json().tags).toEqual(TAGS);
      expect(res.header('link')).toBeUndefined();
    }
  });

  it('tags are in case-insensitive lexical order (the spec: "case-insensitive alphanumeric order")', async () => {
    const img = await c.pushImage('list/case', 'gamma');
    for (const tag of ['V2', 'Beta', 'alpha', 'v1']) await c.pushManifest('list/case', tag, img.manifest, img.mediaType);
    const res = await c.req('GET', '/v2/list/case/tags/list');
    expect(res.json().tags).toEqual(['alpha', 'Beta', 'gamma', 'v1', 'V2']);
  });

  it('a repository whose manifests have no tags answers 200 with an empty list', async () => {
    const img = await c.pushImage('list/untagged', 'tmp');
    expect((await c.req('DELETE', '/v2/list/untagged/manifests/tmp')).status).toBe(202);
    const res = await c.req('GET', '/v2/list/untagged/tags/list');
    expect(res.status).toBe(200);
    expect(res.json().tags ?? []).toEqual([]);
    expect((await c.req('HEAD', `/v2/list/untagged/manifests/${img.digest}`)).status).toBe(200);
  });

  it('an unknown repository answers 404 NAME_UNKNOWN', async () => {
    expectError(await c.req('GET', '/v2/list/nobody/tags/list'), 404, 'NAME_UNKNOWN');
  });
});

describe('_catalog', () => {
  const REPOS = ['cat/a', 'cat/b', 'cat/c', 'cat/d', 'cat/e'];

  beforeAll(async () => {
    for (const r of [...REPOS].reverse()) await c.pushImage(r, 'v1');
  });

  it('lists repositories sorted', async () => {
    const res = await c.req('GET', '/v2/_catalog');
    expect(res.status).toBe(200);
    const repos = res.json<{ repositories: string[] }>().repositories;
    expect(repos).toEqual(expect.arrayContaining(REPOS));
    expect(repos).toEqual([...repos].sort());
  });

  it('n limits the page and the Link header points at the next page', async () => {
    const all = (await c.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    const res = await c.req('GET', '/v2/_catalog?n=2');
    expect(res.json().repositories).toEqual(all.slice(0, 2));
    const next = new URL(nextLink(res)!, targetUrl());
    expect(next.pathname).toBe('/v2/_catalog');
    expect(next.searchParams.get('n')).toBe('2');
    expect(next.searchParams.get('last')).toBe(all[1]);
  });

  it('following Link headers yields every repository exactly once', async () => {
    const all = (await c.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    const paged = await paginate('/v2/_catalog?n=2', (b) => b.repositories);
    expect(paged.all).toEqual(all);
  });

  it('last returns the repositories after it', async () => {
    const res = await c.req('GET', '/v2/_catalog?n=2&last=cat/b');
    expect(res.json().repositories).toEqual(['cat/c', 'cat/d']);
  });

  it('n=0 returns an empty list and no Link header', async () => {
    const res = await c.req('GET', '/v2/_catalog?n=0');
    expect(res.status).toBe(200);
    expect(res.json().repositories ?? []).toEqual([]);
    expect(res.header('link')).toBeUndefined();
  });
});

describe('referrers', () => {
  const repo = 'ref/app';
  const SBOM = 'application/vnd.example.sbom.v1';
  const SIG_CONFIG = 'application/vnd.example.signature.config.v1+json';
  const EMPTY = Buffer.from('{}');
  let subject: { digest: string; size: number };
  const pushed: Record<string, { body: Buffer; res: Res }> = {};

  /** An artifact manifest about `subjectDigest`; `extra` may set artifactType, config, annotations. */
  async function artifact(subjectDesc: { digest: string; size: number }, extra: Record<string, unknown>): Promise<Buffer> {
    const layer = randomBlob(64);
    await c.pushBlob(repo, layer);
    return jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociEmpty, EMPTY),
      layers: [descriptor('application/octet-stream', layer)],
      subject: { mediaType: MT.ociManifest, ...subjectDesc },
      ...extra,
    });
  }

  beforeAll(async () => {
    await c.pushBlob(repo, EMPTY);
    const img = await c.pushImage(repo, 'v1');
    subject = { digest: img.digest, size: img.manifest.length };

    // 1: artifactType set explicitly.
    const sbom = await artifact(subject, { artifactType: SBOM, annotations: { 'org.example.kind': 'sbom' } });
    // 2: no artifactType, so the referrers list must use the config media type.
    const sigConfig = jsonBytes({ signer: 'test' });
    await c.pushBlob(repo, sigConfig);
    const sig = await artifact(subject, { config: descriptor(SIG_CONFIG, sigConfig), annotations: { 'org.example.kind': 'signature' } });
    // 3: an index with a subject and no artifactType: the descriptor must omit artifactType.
    const index = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [descriptor(MT.ociManifest, sbom)],
      subject: { mediaType: MT.ociManifest, ...subject },
      annotations: { 'org.example.kind': 'bundle' },
    });
    for (const [name, body, mt] of [
      ['sbom', sbom, MT.ociManifest],
      ['sig', sig, MT.ociManifest],
      ['index', index, MT.ociIndex],
    ] as const) {
      pushed[name] = { body, res: await c.putManifest(repo, digestOf(body), body, mt) };
    }
  });

  it('PUT of a manifest with a subject answers 201 with OCI-Subject: <subject digest>', () => {
    for (const name of ['sbom', 'sig', 'index']) {
      expect(pushed[name]!.res.status, name).toBe(201);
      expect(pushed[name]!.res.header('oci-subject'), name).toBe(subject.digest);
    }
  });

  it('PUT of a manifest without a subject has no OCI-Subject header', async () => {
    const img = await c.pushImage(repo, 'plain');
    const res = await c.putManifest(repo, 'plain2', img.manifest, img.mediaType);
    expect(res.status).toBe(201);
    expect(res.header('oci-subject')).toBeUndefined();
  });

  it('GET referrers answers 200 with an OCI index of every referrer descriptor', async () => {
    const res = await c.req('GET', `/v2/${repo}/referrers/${subject.digest}`);
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toBe(MT.ociIndex);
    const body = res.json();
    expect(body.schemaVersion).toBe(2);
    expect(body.mediaType).toBe(MT.ociIndex);
    const byDigest = Object.fromEntries((body.manifests as any[]).map((d) => [d.digest, d]));
    expect(Object.keys(byDigest).sort()).toEqual(['sbom', 'sig', 'index'].map((n) => digestOf(pushed[n]!.body)).sort());
    // Each entry is the referrer's descriptor, carrying its artifactType and annotations.
    const kind = (k: string) => ({ 'org.example.kind': k });
    expect(byDigest[digestOf(pushed.sbom!.body)]).toEqual(descriptor(MT.ociManifest, pushed.sbom!.body, { artifactType: SBOM, annotations: kind('sbom') }));
    expect(byDigest[digestOf(pushed.sig!.body)]).toEqual(descriptor(MT.ociManifest, pushed.sig!.body, { artifactType: SIG_CONFIG, annotations: kind('signature') }));
    expect(byDigest[digestOf(pushed.index!.body)]).toEqual(descriptor(MT.ociIndex, pushed.index!.body, { annotations: kind('bundle') }));
  });

  it('?artifactType= filters and sets OCI-Filters-Applied: artifactType', async () => {
    const res = await c.req('GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=${encodeURIComponent(SBOM)}`);
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toBe(MT.ociIndex);
    expect(res.header('oci-filters-applied')).toBe('artifactType');
    const manifests = res.json().manifests as any[];
    expect(manifests.map((d) => d.digest)).toEqual([digestOf(pushed.sbom!.body)]);
  });

  it('the filter matches an artifactType taken from the config media type', async () => {
    const res = await c.req('GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=${encodeURIComponent(SIG_CONFIG)}`);
    expect(res.header('oci-filters-applied')).toBe('artifactType');
    expect((res.json().manifests as any[]).map((d) => d.digest)).toEqual([digestOf(pushed.sig!.body)]);
  });

  it('a filter that matches nothing answers 200 with an empty list', async () => {
    const res = await c.req('GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=application%2Fvnd.none`);
    expect(res.status).toBe(200);
    expect(res.header('oci-filters-applied')).toBe('artifactType');
    expect(res.json().manifests).toEqual([]);
  });

  it('an unfiltered request has no OCI-Filters-Applied header', async () => {
    const res = await c.req('GET', `/v2/${repo}/referrers/${subject.digest}`);
    expect(res.header('oci-filters-applied')).toBeUndefined();
  });

  it('referrers of a digest nothing refers to: 200 with an empty manifests list', async () => {
    const res = await c.req('GET', `/v2/${repo}/referrers/${digestOf('nobody refers to me')}`);
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toBe(MT.ociIndex);
    expect(res.json()).toMatchObject({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] });
  });

  it('a referrer pushed before its subject is listed', async () => {
    const future = { digest: digestOf('subject pushed later'), size: 20 };
    const body = await artifact(future, { artifactType: SBOM });
    const put = await c.putManifest(repo, digestOf(body), body, MT.ociManifest);
    expect(put.status).toBe(201);
    expect(put.header('oci-subject')).toBe(future.digest);
    const res = await c.req('GET', `/v2/${repo}/referrers/${future.digest}`);
    expect((res.json().manifests as any[]).map((d) => d.digest)).toEqual([digestOf(body)]);
  });

  it('referrers are per repository: the same subject digest in another repository has none', async () => {
    await c.pushImage('ref/other', 'v1');
    const res = await c.req('GET', `/v2/ref/other/referrers/${subject.digest}`);
    expect(res.status).toBe(200);
    expect(res.json().manifests).toEqual([]);
  });

  it('a deleted referrer is no longer listed', async () => {
    const body = await artifact(subject, { artifactType: 'application/vnd.example.temp' });
    await c.pushManifest(repo, digestOf(body), body, MT.ociManifest);
    const before = (await c.req('GET', `/v2/${repo}/referrers/${subject.digest}`)).json().manifests as any[];
    expect(before.map((d) => d.digest)).toContain(digestOf(body));
    expect((await c.req('DELETE', `/v2/${repo}/manifests/${digestOf(body)}`)).status).toBe(202);
    const after = (await c.req('GET', `/v2/${repo}/referrers/${subject.digest}`)).json().manifests as any[];
    expect(after.map((d) => d.digest)).not.toContain(digestOf(body));
    expect(after).toHaveLength(3);
  });

  it.each(['notadigest', 'sha256:abc', `sha256:${'Z'.repeat(64)}`])('an invalid digest (%s) answers 400 DIGEST_INVALID', async (bad) => {
    expectError(await c.req('GET', `/v2/${repo}/referrers/${bad}`), 400, 'DIGEST_INVALID');
  });
});
