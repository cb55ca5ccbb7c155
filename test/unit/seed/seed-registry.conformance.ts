// The contract every SeedRegistry passes (the seam's one shared suite): the in-memory twin
// (test/unit/seed/seed-registries.test.ts) and HttpSeedRegistry against real registries, CNCF
// distribution and a layerd node that was pushed to (test/integration/seed-registry.test.ts). Run it
// with describeSeedRegistry(name, factory); each case pushes to repositories of its own.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import type { ManifestReference, RepositoryName, Tag } from '../../../src/oci/reference.js';
import type { SeedRegistry, SeedTagPage } from '../../../src/seed/seed-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const SBOM = 'application/vnd.example.sbom.v1';

/** How content gets to the seed: the way a client pushes it (HTTP for a real registry). */
export interface SeedPusher {
  blob(repo: string, bytes: Buffer): Promise<void>;
  /** `reference`: a tag, or the manifest's digest. */
  manifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<void>;
}

export interface SeedUnderTest {
  seed: SeedRegistry;
  push: SeedPusher;
  /** Whether the seed has the referrers API (distribution 2.8 has not: its answer is undefined). */
  referrers: boolean;
  close(): Promise<void>;
}

const tagRef = (tag: string): ManifestReference => ({ kind: 'tag', tag: tag as Tag });
const digestRef = (digest: Digest): ManifestReference => ({ kind: 'digest', digest });
const repoName = (what: string) => `conformance/${what}-${randomBytes(4).toString('hex')}` as RepositoryName;

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Pushes a config, one layer and an image manifest under `tag`. */
async function pushImage(push: SeedPusher, repo: string, tag: string, mediaType = OCI_MANIFEST, extra: object = {}) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layer = randomBytes(3000);
  await push.blob(repo, config);
  await push.blob(repo, layer);
  const docker = mediaType === DOCKER_MANIFEST;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }],
      ...extra,
    }),
  );
  await push.manifest(repo, tag, manifest, mediaType);
  return { manifest, digest: digestOf(manifest), layer, layerDigest: digestOf(layer) };
}

/** Every page of a tag list, from the first, following `next`. */
async function allTags(seed: SeedRegistry, repo: RepositoryName): Promise<{ tags: string[]; pages: number }> {
  const tags: string[] = [];
  let page: SeedTagPage | undefined = await seed.listTags(repo);
  let pages = 0;
  while (page && pages < 50) {
    pages++;
    tags.push(...page.tags);
    page = page.next ? await seed.listTags(repo, page.next) : undefined;
  }
  return { tags, pages };
}

export function describeSeedRegistry(name: string, create: () => Promise<SeedUnderTest>): void {
  describe(`SeedRegistry conformance: ${name}`, () => {
    const withSeed = (test: (s: SeedUnderTest) => Promise<void>) => async () => {
      const s = await create();
      try {
        await test(s);
      } finally {
        await s.close();
      }
    };

    it('answers a manifest by tag and by digest with its bytes, media type and digest; a HEAD names the digest', withSeed(async ({ seed, push }) => {
      const repo = repoName('manifest');
      const img = await pushImage(push, repo, 'v1');
      for (const ref of [tagRef('v1'), digestRef(img.digest as Digest)]) {
        const got = await seed.getManifest(repo, ref);
        expect(got?.bytes.equals(img.manifest)).toBe(true);
        expect(got?.digest).toBe(img.digest);
        expect(got?.mediaType).toBe(OCI_MANIFEST);
      }
      expect(await seed.headManifest(repo, tagRef('v1'))).toEqual({ digest: img.digest });
    }));

    it('answers a Docker manifest with its Docker media type', withSeed(async ({ seed, push }) => {
      const repo = repoName('docker');
      const img = await pushImage(push, repo, 'v1', DOCKER_MANIFEST);
      const got = await seed.getManifest(repo, tagRef('v1'));
      expect(got).toMatchObject({ mediaType: DOCKER_MANIFEST, digest: img.digest });
    }));

    it('says "not there" as an answer, not a failure: unknown tags, digests, blobs and repositories', withSeed(async ({ seed, push }) => {
      const repo = repoName('missing');
      const img = await pushImage(push, repo, 'v1');
      const nothing = digestOf(Buffer.from(`nothing ${repo}`)) as Digest;
      const unknown = repoName('unknown');
      expect(await seed.headManifest(repo, tagRef('v2'))).toBeUndefined();
      expect(await seed.getManifest(repo, tagRef('v2'))).toBeUndefined();
      expect(await seed.getManifest(repo, digestRef(nothing))).toBeUndefined();
      expect(await seed.getManifest(unknown, tagRef('v1'))).toBeUndefined();
      expect(await seed.statBlob(repo, nothing)).toBeUndefined();
      expect(await seed.openBlob(repo, nothing)).toBeUndefined();
      expect(await seed.listTags(unknown)).toBeUndefined();
      // A blob is a repository's: another repository does not have it, whatever the seed stores.
      expect(await seed.statBlob(unknown, img.layerDigest as Digest)).toBeUndefined();
      expect(await seed.openBlob(unknown, img.layerDigest as Digest)).toBeUndefined();
    }));

    it('stats a blob and opens it whole and from an offset', withSeed(async ({ seed, push }) => {
      const repo = repoName('blob');
      const { layer, layerDigest } = await pushImage(push, repo, 'v1');
      const digest = layerDigest as Digest;
      expect(await seed.statBlob(repo, digest)).toEqual({ size: layer.length });
      const whole = await seed.openBlob(repo, digest);
      expect(whole).toMatchObject({ size: layer.length, start: 0 });
      expect((await readAll(whole!.stream)).equals(layer)).toBe(true);
      // From an offset: the bytes from there on, or (a seed that ignores it) from an earlier start.
      const rest = await seed.openBlob(repo, digest, 1000);
      expect(rest?.size).toBe(layer.length);
      expect(rest!.start).toBeLessThanOrEqual(1000);
      expect((await readAll(rest!.stream)).equals(layer.subarray(rest!.start))).toBe(true);
    }));

    it('lists every tag of a repository once, over its pages', withSeed(async ({ seed, push }) => {
      const repo = repoName('tags');
      const img = await pushImage(push, repo, 'latest');
      const tags = ['latest', 'v1', 'v2', 'alpha', '1.0'];
      for (const t of tags.slice(1)) await push.manifest(repo, t, img.manifest, OCI_MANIFEST);
      const listed = await allTags(seed, repo);
      expect([...listed.tags].sort()).toEqual([...tags].sort());
    }));

    it('answers referrers of a subject (with the artifactType filter), or nothing without the API', withSeed(async ({ seed, push, referrers }) => {
      const repo = repoName('referrers');
      const subject = await pushImage(push, repo, 'v1');
      const about = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length };
      const sbom = await pushImage(push, repo, 'sbom', OCI_MANIFEST, { artifactType: SBOM, subject: about, annotations: { 'org.example.kind': 'sbom' } });
      const answer = await seed.referrers(repo, subject.digest as Digest, new URLSearchParams());
      if (!referrers) {
        expect(answer).toBeUndefined();
        return;
      }
      expect(answer?.manifests).toEqual([{ mediaType: OCI_MANIFEST, digest: sbom.digest, size: sbom.manifest.length, artifactType: SBOM, annotations: { 'org.example.kind': 'sbom' } }]);
      const filtered = await seed.referrers(repo, subject.digest as Digest, new URLSearchParams({ artifactType: 'application/vnd.example.other' }));
      expect(filtered?.filtered).toBe(true);
      expect(filtered?.manifests).toEqual([]);
      expect((await seed.referrers(repo, sbom.digest as Digest, new URLSearchParams()))?.manifests).toEqual([]);
    }));
  });
}
