// Manifests against a real `layerd serve`, per the OCI Distribution Spec v1.1 ("Pulling manifests",
// "Pushing Manifests", "Deleting tags", "Deleting Manifests"): push by tag and digest, exact bytes,
// content negotiation for the four manifest types, validation errors and deletes.
import { beforeAll, describe, expect, it } from 'vitest';
import { useRegistryTarget } from '../helpers/nodes.js';
import {
  descriptor,
  digestOf,
  expectError,
  jsonBytes,
  MT,
  type PushedImage,
  randomBlob,
} from '../helpers/registry-client.js';

const { client: c, url: targetUrl } = useRegistryTarget();

const ALL_MANIFEST_TYPES = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

/** Pushes config + layer blobs for an OCI image manifest and returns the (not yet pushed) manifest bytes. */
async function ociImage(repo: string, extra: Record<string, unknown> = {}, indent?: number): Promise<Buffer> {
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', nonce: randomBlob(8).toString('hex') });
  const layer = randomBlob(700);
  await c.pushBlob(repo, config);
  await c.pushBlob(repo, layer);
  return jsonBytes(
    { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)], ...extra },
    indent,
  );
}

function expectManifestHeaders(res: { header(n: string): string | undefined }, body: Buffer, mediaType: string): void {
  expect(res.header('content-type')).toBe(mediaType);
  expect(res.header('content-length')).toBe(String(body.length));
  expect(res.header('docker-content-digest')).toBe(digestOf(body));
}

describe('push and pull', () => {
  const repo = 'man/basic';
  let body: Buffer;
  let digest: string;

  beforeAll(async () => {
    // Indented JSON: the registry must keep the exact bytes, not a re-serialisation.
    body = await ociImage(repo, { annotations: { 'org.example.note': 'kept verbatim' } }, 3);
    digest = digestOf(body);
  });

  it('PUT by tag answers 201 with a pullable Location and Docker-Content-Digest', async () => {
    const res = await c.putManifest(repo, 'v1', body, MT.ociManifest);
    expect(res.status).toBe(201);
    expect(res.header('docker-content-digest')).toBe(digest);
    const location = res.header('location');
    expect(location).toBeTruthy();
    const pulled = await c.req('GET', location!, { headers: { accept: MT.ociManifest } });
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(body)).toBe(true);
  });

  it('GET by tag answers 200 with the exact pushed bytes, Content-Type, Content-Length and Docker-Content-Digest', async () => {
    const res = await c.req('GET', `/v2/${repo}/manifests/v1`, { headers: { accept: MT.ociManifest } });
    expect(res.status).toBe(200);
    expectManifestHeaders(res, body, MT.ociManifest);
    expect(res.body.equals(body)).toBe(true);
  });

  it('GET by digest answers the same', async () => {
    const res = await c.req('GET', `/v2/${repo}/manifests/${digest}`, { headers: { accept: MT.ociManifest } });
    expect(res.status).toBe(200);
    expectManifestHeaders(res, body, MT.ociManifest);
    expect(res.body.equals(body)).toBe(true);
  });

  it.each(['v1', 'digest'])('HEAD by %s answers 200 with the same headers and no body', async (ref) => {
    const res = await c.req('HEAD', `/v2/${repo}/manifests/${ref === 'digest' ? digest : ref}`, { headers: { accept: MT.ociManifest } });
    expect(res.status).toBe(200);
    expectManifestHeaders(res, body, MT.ociManifest);
    expect(res.body.length).toBe(0);
  });

  it('PUT by digest answers 201 with Location and Docker-Content-Digest, and creates no tag', async () => {
    const other = await ociImage(repo);
    const d = digestOf(other);
    const res = await c.putManifest(repo, d, other, MT.ociManifest);
    expect(res.status).toBe(201);
    expect(res.header('docker-content-digest')).toBe(d);
    expect(new URL(res.header('location')!, targetUrl()).pathname).toBe(`/v2/${repo}/manifests/${d}`);
    const get = await c.req('GET', `/v2/${repo}/manifests/${d}`, { headers: { accept: MT.ociManifest } });
    expect(get.body.equals(other)).toBe(true);
    const tags = (await c.req('GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags;
    expect(tags).toEqual(['v1']);
  });

  it('PUT by a sha512 digest stores the manifest under that digest', async () => {
    const other = await ociImage(repo);
    const d = digestOf(other, 'sha512');
    const res = await c.putManifest(repo, d, other, MT.ociManifest);
    expect(res.status).toBe(201);
    // The spec: Docker-Content-Digest "MUST be equal to the client provided digest".
    expect(res.header('docker-content-digest')).toBe(d);
    const get = await c.req('GET', `/v2/${repo}/manifests/${d}`, { headers: { accept: MT.ociManifest } });
    expect(get.status).toBe(200);
    expect(get.header('docker-content-digest')).toBe(d);
    expect(get.body.equals(other)).toBe(true);
  });

  it('the same manifest under a second tag resolves under both', async () => {
    expect((await c.putManifest(repo, 'also', body, MT.ociManifest)).status).toBe(201);
    for (const tag of ['v1', 'also']) {
      const res = await c.req('GET', `/v2/${repo}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
      expect(res.header('docker-content-digest')).toBe(digest);
    }
  });

  it('re-pushing a tag with another manifest moves the tag and keeps the old manifest by digest', async () => {
    const first = await ociImage(repo);
    const second = await ociImage(repo);
    await c.pushManifest(repo, 'moving', first, MT.ociManifest);
    await c.pushManifest(repo, 'moving', second, MT.ociManifest);
    const byTag = await c.req('GET', `/v2/${repo}/manifests/moving`, { headers: { accept: MT.ociManifest } });
    expect(byTag.body.equals(second)).toBe(true);
    const old = await c.req('GET', `/v2/${repo}/manifests/${digestOf(first)}`, { headers: { accept: MT.ociManifest } });
    expect(old.status).toBe(200);
    expect(old.body.equals(first)).toBe(true);
  });

  it('a manifest without a mediaType field is served with the Content-Type it was pushed with', async () => {
    const noType = JSON.parse((await ociImage(repo)).toString()) as Record<string, unknown>;
    delete noType.mediaType;
    const bytes = jsonBytes(noType);
    await c.pushManifest(repo, 'notype', bytes, MT.ociManifest);
    const res = await c.req('GET', `/v2/${repo}/manifests/notype`, { headers: { accept: MT.ociManifest } });
    expect(res.status).toBe(200);
    expectManifestHeaders(res, bytes, MT.ociManifest);
  });

  it('Content-Type parameters on PUT are ignored and not echoed on GET', async () => {
    const bytes = await ociImage(repo);
    const res = await c.req('PUT', `/v2/${repo}/manifests/params`, {
      headers: { 'content-type': `${MT.ociManifest}; charset=utf-8` },
      body: bytes,
    });
    expect(res.status).toBe(201);
    const get = await c.req('GET', `/v2/${repo}/manifests/params`, { headers: { accept: MT.ociManifest } });
    expect(get.header('content-type')).toBe(MT.ociManifest);
  });

  it('a manifest of about 4 MB is accepted (the spec: registries SHOULD accept at least 4 megabytes)', async () => {
    const big = await ociImage(repo, { annotations: { 'org.example.padding': 'x'.repeat(4_000_000) } });
    expect(big.length).toBeGreaterThan(4_000_000);
    const res = await c.putManifest(repo, 'big', big, MT.ociManifest);
    expect(res.status).toBe(201);
    const get = await c.req('GET', `/v2/${repo}/manifests/big`, { headers: { accept: MT.ociManifest } });
    expect(digestOf(get.body)).toBe(digestOf(big));
  });
});

describe('content negotiation: a stored manifest is served as pushed, whatever the Accept header', () => {
  const repo = 'man/negotiate';
  const stored: Record<string, { body: Buffer; mediaType: string }> = {};

  beforeAll(async () => {
    const oci: PushedImage = await c.pushImage(repo, 'oci', { format: 'oci' });
    const docker: PushedImage = await c.pushImage(repo, 'docker', { format: 'docker' });
    const platform = { architecture: 'amd64', os: 'linux' };
    const index = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [{ ...descriptor(MT.ociManifest, oci.manifest), platform }],
    });
    const list = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.dockerList,
      manifests: [{ ...descriptor(MT.dockerManifest, docker.manifest), platform }],
    });
    await c.pushManifest(repo, 'index', index, MT.ociIndex);
    await c.pushManifest(repo, 'list', list, MT.dockerList);
    stored.oci = { body: oci.manifest, mediaType: MT.ociManifest };
    stored.docker = { body: docker.manifest, mediaType: MT.dockerManifest };
    stored.index = { body: index, mediaType: MT.ociIndex };
    stored.list = { body: list, mediaType: MT.dockerList };
  });

  const tags = ['oci', 'docker', 'index', 'list'];
  const accepts: Array<[string, (own: string) => string | undefined]> = [
    ['its own type', (own) => own],
    ['all four types', () => ALL_MANIFEST_TYPES],
    ['no Accept header', () => undefined],
    ['*/*', () => '*/*'],
    ['only another type', (own) => (own === MT.ociManifest ? MT.dockerManifest : MT.ociManifest)],
  ];

  for (const tag of tags) {
    for (const [label, accept] of accepts) {
      it(`GET ${tag} with ${label} answers 200 with the pushed type and bytes`, async () => {
        const { body, mediaType } = stored[tag]!;
        const a = accept(mediaType);
        for (const ref of [tag, digestOf(body)]) {
          const res = await c.req('GET', `/v2/${repo}/manifests/${ref}`, { headers: a ? { accept: a } : {} });
          expect(res.status).toBe(200);
          expectManifestHeaders(res, body, mediaType);
          expect(res.body.equals(body)).toBe(true);
        }
      });
    }
    it(`HEAD ${tag} with only another type in Accept answers 200 with the pushed type`, async () => {
      const { body, mediaType } = stored[tag]!;
      const res = await c.req('HEAD', `/v2/${repo}/manifests/${tag}`, {
        headers: { accept: mediaType === MT.ociManifest ? MT.dockerManifest : MT.ociManifest },
      });
      expect(res.status).toBe(200);
      expectManifestHeaders(res, body, mediaType);
    });
  }
});

describe('manifest push errors', () => {
  const repo = 'man/errors';

  it('a layer that is not in the repository: 400 MANIFEST_BLOB_UNKNOWN, nothing stored', async () => {
    const config = jsonBytes({ os: 'linux' });
    await c.pushBlob(repo, config);
    const body = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociConfig, config),
      layers: [descriptor(MT.ociLayer, randomBlob(50))],
    });
    expectError(await c.putManifest(repo, 'nolayer', body, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect((await c.req('HEAD', `/v2/${repo}/manifests/nolayer`)).status).toBe(404);
    expect((await c.req('HEAD', `/v2/${repo}/manifests/${digestOf(body)}`)).status).toBe(404);
  });

  it('a config that is not in the repository: 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const layer = randomBlob(50);
    await c.pushBlob(repo, layer);
    const body = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociConfig, jsonBytes({ missing: true })),
      layers: [descriptor(MT.ociLayer, layer)],
    });
    expectError(await c.putManifest(repo, 'noconfig', body, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a blob that only another repository has: 400 MANIFEST_BLOB_UNKNOWN (blobs are per repository)', async () => {
    const config = jsonBytes({ os: 'linux', n: 1 });
    const layer = randomBlob(50);
    await c.pushBlob(repo, config);
    await c.pushBlob('man/elsewhere', layer);
    const body = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociConfig, config),
      layers: [descriptor(MT.ociLayer, layer)],
    });
    expectError(await c.putManifest(repo, 'foreign', body, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  // The same rule for both list formats: every manifest a list names must already be in the repository.
  it.each([
    ['an index that lists a manifest the repository does not have', MT.ociIndex, MT.ociManifest, 'badindex'],
    ['a Docker manifest list that lists an unknown manifest', MT.dockerList, MT.dockerManifest, 'badlist'],
  ])('%s: 400 MANIFEST_BLOB_UNKNOWN', async (_label, listType, childType, tag) => {
    const body = jsonBytes({
      schemaVersion: 2,
      mediaType: listType,
      manifests: [{ mediaType: childType, digest: digestOf(`no such manifest in ${tag}`), size: 16, platform: { architecture: 'amd64', os: 'linux' } }],
    });
    expectError(await c.putManifest(repo, tag, body, listType), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a subject that does not exist is accepted (the spec: MUST initially accept)', async () => {
    const body = await ociImage(repo, { subject: { mediaType: MT.ociManifest, digest: digestOf('future subject'), size: 123 } });
    const res = await c.putManifest(repo, digestOf(body), body, MT.ociManifest);
    expect(res.status).toBe(201);
  });

  it.each([
    ['not JSON', Buffer.from('{this is not json')],
    ['an empty body', Buffer.alloc(0)],
    ['a JSON array', jsonBytes([1, 2, 3])],
    ['a config that is not a descriptor', jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: 'nope', layers: [] })],
    ['layers that are not an array', jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: digestOf('{}'), size: 2 }, layers: {} })],
    ['a descriptor with an invalid digest', jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: 'sha256:zz', size: 2 }, layers: [] })],
    ['schemaVersion 1 under an OCI media type', jsonBytes({ schemaVersion: 1, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: digestOf('{}'), size: 2 }, layers: [] })],
    ['an index whose manifests is not an array', jsonBytes({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: 'x' })],
    ['JSON null', Buffer.from('null')],
    ['a JSON string', Buffer.from('"manifest"')],
    ['a negative descriptor size', jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociEmpty, digest: digestOf('{}'), size: -2 }, layers: [] })],
    ['a subject with an invalid digest', jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociEmpty, digest: digestOf('{}'), size: 2 }, layers: [], subject: { mediaType: MT.ociManifest, digest: 'sha256:zz', size: 1 } })],
    ['a config without a mediaType', jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: { digest: digestOf('{}'), size: 2 }, layers: [] })],
  ])('%s: 400 MANIFEST_INVALID', async (label, body) => {
    const mediaType = label.includes('index') ? MT.ociIndex : MT.ociManifest;
    expectError(await c.putManifest(repo, 'invalid', body, mediaType), 400, 'MANIFEST_INVALID');
    expect((await c.req('HEAD', `/v2/${repo}/manifests/invalid`)).status).toBe(404);
  });

  it('a Content-Type that contradicts the body\'s mediaType: 400 MANIFEST_INVALID', async () => {
    // A client must send mediaType as Content-Type; storing the pair inconsistently would make every
    // later GET answer a Content-Type that clients are told to reject.
    const body = await ociImage(repo);
    expectError(await c.putManifest(repo, 'mismatch', body, MT.dockerManifest), 400, 'MANIFEST_INVALID');
    expect((await c.req('HEAD', `/v2/${repo}/manifests/mismatch`)).status).toBe(404);
  });

  it('PUT by a digest that the body does not hash to: 400 DIGEST_INVALID, nothing stored', async () => {
    const body = await ociImage(repo);
    const wrong = digestOf('a different body');
    expectError(await c.putManifest(repo, wrong, body, MT.ociManifest), 400, 'DIGEST_INVALID');
    expect((await c.req('HEAD', `/v2/${repo}/manifests/${wrong}`)).status).toBe(404);
    expect((await c.req('HEAD', `/v2/${repo}/manifests/${digestOf(body)}`)).status).toBe(404);
  });

  it('PUT by a malformed digest reference: 400', async () => {
    const body = await ociImage(repo);
    const res = await c.putManifest(repo, 'sha256:abc', body, MT.ociManifest);
    expectError(res, 400, ['DIGEST_INVALID', 'MANIFEST_INVALID', 'TAG_INVALID']);
  });

  it('POST on a manifest URL is not a supported method: 405 UNSUPPORTED', async () => {
    const body = await ociImage(repo);
    const res = await c.req('POST', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': MT.ociManifest }, body });
    expectError(res, 405, 'UNSUPPORTED');
  });
});

describe('tag syntax', () => {
  const repo = 'man/tags';
  let body: Buffer;
  beforeAll(async () => {
    body = await ociImage(repo);
    await c.pushManifest(repo, 'base', body, MT.ociManifest);
  });

  it.each([
    ['128 characters (the maximum)', 'a'.repeat(128)],
    ['a leading underscore', '_private'],
    ['upper case, dots and dashes', 'V1.2-RC_3'],
  ])('a tag of %s is accepted', async (_, tag) => {
    expect((await c.putManifest(repo, tag, body, MT.ociManifest)).status).toBe(201);
    const res = await c.req('GET', `/v2/${repo}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
    expect(res.status).toBe(200);
  });

  it.each([
    ['129 characters', 'a'.repeat(129)],
    ['a leading dot', '.hidden'],
    ['a leading dash', '-dash'],
    ['a plus sign', 'v1+build'],
  ])('PUT with a tag of %s answers 400 TAG_INVALID or MANIFEST_INVALID and creates no tag', async (_, tag) => {
    const res = await c.putManifest(repo, tag, body, MT.ociManifest);
    expectError(res, 400, ['TAG_INVALID', 'MANIFEST_INVALID']);
    const tags = (await c.req('GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags;
    expect(tags.some((t) => t.length > 128 || t.startsWith('.') || t.startsWith('-') || t.includes('+'))).toBe(false);
  });

  // The spec lists only 404 for a manifest GET/HEAD (end-3), as distribution answers: there is no such
  // manifest. (layerd answered 400 TAG_INVALID, which the conformance suite flagged.)
  it.each([
    ['129 characters', 'a'.repeat(129)],
    ['a leading dot', '.hidden'],
    ['a leading dash', '-dash'],
    ['a plus sign', 'v1+build'],
  ])('GET and HEAD with a tag of %s answer 404 MANIFEST_UNKNOWN', async (_, tag) => {
    expectError(await c.req('GET', `/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
    const head = await c.req('HEAD', `/v2/${repo}/manifests/${tag}`);
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });
});

describe('?tag= on a push by digest (OCI-Tag)', () => {
  const repo = 'man/tagparams';
  let body: Buffer;
  beforeAll(async () => {
    body = await ociImage(repo);
  });

  /** Every tag named by the OCI-Tag field lines of an answer (each line a comma-separated list). */
  const ociTags = (res: { headers: Record<string, string | string[] | undefined> }): string[] => {
    const v = res.headers['oci-tag'];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((line) => line.split(',').map((t) => t.trim()));
  };
  const tagsOf = async () => (await c.req('GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] | null }>().tags ?? [];

  it('PUT by digest with several tag parameters: 201, one OCI-Tag for each tag, and every tag resolves', async () => {
    const digest = digestOf(body);
    const res = await c.req('PUT', `/v2/${repo}/manifests/${digest}?tag=1.2.3&tag=1.2&tag=1&tag=latest&tag=1.2`, { headers: { 'content-type': MT.ociManifest }, body });
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.header('docker-content-digest')).toBe(digest);
    expect(ociTags(res).sort()).toEqual(['1', '1.2', '1.2.3', 'latest']);
    for (const tag of ['1.2.3', '1.2', '1', 'latest']) {
      const got = await c.req('GET', `/v2/${repo}/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
      expect(got.status, tag).toBe(200);
      expect(got.header('docker-content-digest')).toBe(digest);
    }
  });

  it('a sha512 manifest pushed by digest gets its tags (what the conformance suite skipped without them)', async () => {
    const b = await ociImage(repo, { annotations: { 'org.example.alg': 'sha512' } });
    const digest = digestOf(b, 'sha512');
    const res = await c.req('PUT', `/v2/${repo}/manifests/${digest}?tag=sha512-tag`, { headers: { 'content-type': MT.ociManifest }, body: b });
    expect(res.status, res.body.toString()).toBe(201);
    expect(ociTags(res)).toEqual(['sha512-tag']);
    const got = await c.req('GET', `/v2/${repo}/manifests/sha512-tag`, { headers: { accept: MT.ociManifest } });
    expect(got.header('docker-content-digest')).toBe(digest);
    expect(got.body.equals(b)).toBe(true);
  });

  it('one malformed tag parameter refuses the whole push: 400 TAG_INVALID, no manifest, no tag', async () => {
    const b = await ociImage(repo, { annotations: { 'org.example.try': 'bad-tag' } });
    const digest = digestOf(b);
    const res = await c.req('PUT', `/v2/${repo}/manifests/${digest}?tag=good-one&tag=.bad`, { headers: { 'content-type': MT.ociManifest }, body: b });
    expectError(res, 400, 'TAG_INVALID');
    expect(res.header('oci-tag')).toBeUndefined();
    expect(await tagsOf()).not.toContain('good-one');
    expectError(await c.req('GET', `/v2/${repo}/manifests/${digest}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('tag parameters on a push by tag are refused (the spec defines them for a push by digest)', async () => {
    const res = await c.req('PUT', `/v2/${repo}/manifests/by-tag?tag=other`, { headers: { 'content-type': MT.ociManifest }, body });
    expectError(res, 400, 'TAG_INVALID');
    expect(await tagsOf()).not.toContain('other');
  });

  it('more than 100 tag parameters: 414, nothing tagged (the spec: SHOULD take at least 10, MAY answer 414)', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `tag=t${i}`).join('&');
    const res = await c.req('PUT', `/v2/${repo}/manifests/${digestOf(body)}?${many}`, { headers: { 'content-type': MT.ociManifest }, body });
    expect(res.status).toBe(414);
    expect((await tagsOf()).some((t) => /^t\d+$/.test(t))).toBe(false);
  });

  it('a push by digest without tag parameters has no OCI-Tag header', async () => {
    const res = await c.putManifest(repo, digestOf(body), body, MT.ociManifest);
    expect(res.status).toBe(201);
    expect(res.header('oci-tag')).toBeUndefined();
  });
});

describe('manifest reads that miss', () => {
  const repo = 'man/missing';
  beforeAll(async () => {
    await c.pushImage(repo, 'present');
  });

  it('GET of an unknown tag answers 404 MANIFEST_UNKNOWN', async () => {
    expectError(await c.req('GET', `/v2/${repo}/manifests/absent`), 404, 'MANIFEST_UNKNOWN');
  });

  it('GET of an unknown digest answers 404 MANIFEST_UNKNOWN', async () => {
    expectError(await c.req('GET', `/v2/${repo}/manifests/${digestOf('nope')}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('HEAD of an unknown tag answers 404 with no body', async () => {
    const res = await c.req('HEAD', `/v2/${repo}/manifests/absent`);
    expect(res.status).toBe(404);
    expect(res.body.length).toBe(0);
  });

  it('GET in a repository that does not exist answers 404 NAME_UNKNOWN or MANIFEST_UNKNOWN', async () => {
    expectError(await c.req('GET', '/v2/man/never/created/manifests/latest'), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN']);
  });

  it('a blob digest is not a manifest: GET /manifests/<blob digest> answers 404 MANIFEST_UNKNOWN', async () => {
    const digest = await c.pushBlob(repo, randomBlob(40));
    expectError(await c.req('GET', `/v2/${repo}/manifests/${digest}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('GET by a malformed digest reference answers 400 or 404, never 200/500', async () => {
    const res = await c.req('GET', `/v2/${repo}/manifests/sha256:totallywrong`);
    expect([400, 404]).toContain(res.status);
    expectError(res, res.status, ['DIGEST_INVALID', 'MANIFEST_INVALID', 'TAG_INVALID', 'MANIFEST_UNKNOWN']);
  });
});

describe('manifest deletion', () => {
  const repo = 'man/delete';

  it('DELETE by digest answers 202; GET by digest and by its tag then answer 404 MANIFEST_UNKNOWN', async () => {
    const img = await c.pushImage(repo, 'doomed');
    const del = await c.req('DELETE', `/v2/${repo}/manifests/${img.digest}`);
    expect(del.status).toBe(202);
    expectError(await c.req('GET', `/v2/${repo}/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
    expectError(await c.req('GET', `/v2/${repo}/manifests/doomed`), 404, 'MANIFEST_UNKNOWN');
    expect((await c.req('HEAD', `/v2/${repo}/manifests/${img.digest}`)).status).toBe(404);
    const tags = (await c.req('GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] | null }>().tags ?? [];
    expect(tags).not.toContain('doomed');
  });

  it('DELETE by tag answers 202 and removes only that tag: the manifest and its other tags remain', async () => {
    const img = await c.pushImage(repo, 'one');
    await c.pushManifest(repo, 'two', img.manifest, img.mediaType);
    const del = await c.req('DELETE', `/v2/${repo}/manifests/one`);
    expect(del.status).toBe(202);
    expectError(await c.req('GET', `/v2/${repo}/manifests/one`), 404, 'MANIFEST_UNKNOWN');
    const byDigest = await c.req('GET', `/v2/${repo}/manifests/${img.digest}`, { headers: { accept: img.mediaType } });
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.equals(img.manifest)).toBe(true);
    expect((await c.req('GET', `/v2/${repo}/manifests/two`, { headers: { accept: img.mediaType } })).status).toBe(200);
    const tags = (await c.req('GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags;
    expect(tags).toContain('two');
    expect(tags).not.toContain('one');
  });

  it('DELETE of an unknown digest or tag answers 404 MANIFEST_UNKNOWN', async () => {
    await c.pushImage(repo, 'keep');
    expectError(await c.req('DELETE', `/v2/${repo}/manifests/${digestOf('nothing')}`), 404, 'MANIFEST_UNKNOWN');
    expectError(await c.req('DELETE', `/v2/${repo}/manifests/nosuchtag`), 404, 'MANIFEST_UNKNOWN');
  });

  it('DELETE in a repository that does not exist answers 404', async () => {
    const res = await c.req('DELETE', `/v2/man/not/there/manifests/${digestOf('x')}`);
    expectError(res, 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN']);
  });

  it('deleting a manifest in repo A leaves the same manifest and its blobs readable in repo B', async () => {
    const a = 'man/shared-a';
    const b = 'man/shared-b';
    const img = await c.pushImage(a, 'v1', { layers: 2 });
    // B gets the very same blobs and manifest bytes.
    for (const blob of [img.config, ...img.layers]) await c.pushBlob(b, blob);
    await c.pushManifest(b, 'v1', img.manifest, img.mediaType);

    expect((await c.req('DELETE', `/v2/${a}/manifests/${img.digest}`)).status).toBe(202);
    expect((await c.req('GET', `/v2/${a}/manifests/${img.digest}`)).status).toBe(404);

    const m = await c.req('GET', `/v2/${b}/manifests/v1`, { headers: { accept: img.mediaType } });
    expect(m.status).toBe(200);
    expect(m.body.equals(img.manifest)).toBe(true);
    for (const blob of [img.config, ...img.layers]) {
      const res = await c.req('GET', `/v2/${b}/blobs/${digestOf(blob)}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(blob)).toBe(true);
    }
  });

  it('deleting blobs in repo A leaves a manifest in repo B that uses them fully pullable', async () => {
    const a = 'man/shared-c';
    const b = 'man/shared-d';
    const img = await c.pushImage(a, 'v1');
    for (const blob of [img.config, ...img.layers]) await c.pushBlob(b, blob);
    await c.pushManifest(b, 'v1', img.manifest, img.mediaType);
    for (const blob of [img.config, ...img.layers]) {
      expect((await c.req('DELETE', `/v2/${a}/blobs/${digestOf(blob)}`)).status).toBe(202);
    }
    for (const blob of [img.config, ...img.layers]) {
      expect((await c.req('GET', `/v2/${b}/blobs/${digestOf(blob)}`)).body.equals(blob)).toBe(true);
    }
  });
});
