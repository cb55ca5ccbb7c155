// LocalRegistry policy over the in-memory twins: repository isolation, manifest rules, uploads, listings.
import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalRegistry, paginate } from '../../../../src/distribution/registry/local-registry.js';
import { digestOf } from '../../../../src/oci/digest.js';
import { OciError } from '../../../../src/oci/errors.js';
import { MediaType } from '../../../../src/oci/manifest.js';
import { parseManifestReference, type RepositoryName } from '../../../../src/oci/reference.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';

const A = 'proj/a' as RepositoryName;
const B = 'proj/b' as RepositoryName;
const src = (s: string | Buffer) => Readable.from([Buffer.from(s)]);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof OciError ? err.code : `NOT_OCI: ${String(err)}`;
  }
  return 'NO_ERROR';
}

let registry: LocalRegistry;
let blobs: MemoryBlobStore;
beforeEach(() => {
  blobs = new MemoryBlobStore();
  registry = new LocalRegistry(blobs, new MemoryRepositoryStore());
});

async function pushImage(repo: RepositoryName, tag: string, extra: Record<string, unknown> = {}) {
  const config = Buffer.from(`{"config":"${repo}"}`);
  const layer = Buffer.from(`layer of ${repo} ${tag}`);
  await registry.uploadWhole(repo, digestOf(config), src(config));
  await registry.uploadWhole(repo, digestOf(layer), src(layer));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
      ...extra,
    }),
  );
  const record = await registry.putManifest(repo, parseManifestReference(tag), manifest, MediaType.OciManifest);
  return { record, manifest, config, layer };
}

describe('LocalRegistry', () => {
  it('serves a pushed image by tag and by digest with its media type', async () => {
    const { record, manifest } = await pushImage(A, 'v1');
    const byTag = await registry.getManifest(A, parseManifestReference('v1'));
    expect(byTag.bytes.equals(manifest)).toBe(true);
    expect(byTag.mediaType).toBe(MediaType.OciManifest);
    const byDigest = await registry.resolveManifest(A, parseManifestReference(record.digest));
    expect(byDigest.size).toBe(manifest.length);
  });

  it('keeps repositories apart until a blob is mounted', async () => {
    const { layer } = await pushImage(A, 'v1');
    const d = digestOf(layer);
    expect(await code(registry.statBlob(B, d))).toBe('BLOB_UNKNOWN');
    expect(await registry.mountBlob(B, d, 'proj/nothing-here')).toBe(false);
    expect(await registry.mountBlob(B, d, A)).toBe(true);
    expect((await registry.statBlob(B, d)).size).toBe(layer.length);
    expect(await code(registry.mountBlob(B, d, '../A'))).toBe('NAME_INVALID');
  });

  it('refuses a manifest whose blobs or child manifests are not in the repository', async () => {
    const { manifest, record } = await pushImage(A, 'v1');
    expect(await code(registry.putManifest(B, parseManifestReference('v1'), manifest, MediaType.OciManifest))).toBe('MANIFEST_BLOB_UNKNOWN');
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: MediaType.OciManifest, digest: record.digest, size: record.size }] }),
    );
    expect(await code(registry.putManifest(B, parseManifestReference('all'), index, MediaType.OciIndex))).toBe('MANIFEST_BLOB_UNKNOWN');
    expect((await registry.putManifest(A, parseManifestReference('all'), index, MediaType.OciIndex)).mediaType).toBe(MediaType.OciIndex);
  });

  it('checks a manifest pushed by digest against that digest', async () => {
    const { manifest } = await pushImage(A, 'v1');
    const wrong = digestOf(Buffer.from('something else'));
    expect(await code(registry.putManifest(A, parseManifestReference(wrong), manifest, MediaType.OciManifest))).toBe('DIGEST_INVALID');
    const sha512 = digestOf(manifest, 'sha512');
    expect((await registry.putManifest(A, parseManifestReference(sha512), manifest, MediaType.OciManifest)).digest).toBe(sha512);
  });

  it('deletes a tag without its manifest, and a manifest with all its tags', async () => {
    const { record } = await pushImage(A, 'v1');
    await registry.putManifest(A, parseManifestReference('v2'), (await registry.getManifest(A, parseManifestReference('v1'))).bytes, MediaType.OciManifest);
    await registry.deleteManifest(A, parseManifestReference('v1'));
    expect(await code(registry.getManifest(A, parseManifestReference('v1')))).toBe('MANIFEST_UNKNOWN');
    expect((await registry.getManifest(A, parseManifestReference(record.digest))).digest).toBe(record.digest);
    await registry.deleteManifest(A, parseManifestReference(record.digest));
    expect(await code(registry.getManifest(A, parseManifestReference('v2')))).toBe('MANIFEST_UNKNOWN');
    expect((await registry.listTags(A)).items).toEqual([]);
    expect(await code(registry.deleteManifest(A, parseManifestReference(record.digest)))).toBe('MANIFEST_UNKNOWN');
    expect(await code(registry.getManifest(B, parseManifestReference('v1')))).toBe('NAME_UNKNOWN');
  });

  it('never loses a blob another repository links when one repository deletes', async () => {
    const { layer, record } = await pushImage(A, 'v1');
    const d = digestOf(layer);
    await registry.mountBlob(B, d, A);
    await registry.deleteManifest(A, parseManifestReference(record.digest));
    await registry.deleteBlob(A, d);
    expect(await code(registry.statBlob(A, d))).toBe('BLOB_UNKNOWN');
    expect((await registry.statBlob(B, d)).size).toBe(layer.length);
    expect(await code(registry.deleteBlob(A, d))).toBe('BLOB_UNKNOWN');
  });

  it('indexes referrers and filters them by artifact type', async () => {
    const { record: subject } = await pushImage(A, 'v1');
    const subjectDesc = { mediaType: MediaType.OciManifest, digest: subject.digest, size: subject.size };
    const { record: sig } = await pushImage(A, 'sig', { artifactType: 'application/x.sig', subject: subjectDesc, annotations: { by: 'me' } });
    expect(sig.subject).toBe(subject.digest);
    const { record: sbom } = await pushImage(A, 'sbom', { artifactType: 'application/x.sbom', subject: subjectDesc });
    const all = await registry.referrers(A, subject.digest);
    expect(all.mediaType).toBe(MediaType.OciIndex);
    expect(all.manifests.map((m) => m.digest).sort()).toEqual([sig.digest, sbom.digest].sort());
    expect(all.manifests.find((m) => m.digest === sig.digest)).toMatchObject({ artifactType: 'application/x.sig', annotations: { by: 'me' } });
    const sigs = await registry.referrers(A, subject.digest, 'application/x.sig');
    expect(sigs.manifests.map((m) => m.digest)).toEqual([sig.digest]);
    await registry.deleteManifest(A, parseManifestReference(sig.digest));
    expect((await registry.referrers(A, subject.digest)).manifests.map((m) => m.digest)).toEqual([sbom.digest]);
    expect((await registry.referrers(B, subject.digest)).manifests).toEqual([]);
  });

  it('runs a chunked upload, refusing out-of-order chunks, and ends the session on a bad digest', async () => {
    const id = await registry.startUpload(A);
    expect(await registry.appendUpload(A, id, src('hello '), 0)).toBe(6);
    expect(await code(registry.appendUpload(A, id, src('x'), 3))).toBe('RANGE_INVALID');
    expect(await registry.uploadSize(A, id)).toBe(6);
    expect(await code(registry.uploadSize(B, id))).toBe('BLOB_UPLOAD_UNKNOWN');
    const info = await registry.completeUpload(A, id, digestOf(Buffer.from('hello world')), src('world'), 6);
    expect(info.size).toBe(11);
    expect(await code(registry.uploadSize(A, id))).toBe('BLOB_UPLOAD_UNKNOWN');

    const bad = await registry.startUpload(A);
    await registry.appendUpload(A, bad, src('abc'));
    expect(await code(registry.completeUpload(A, bad, digestOf(Buffer.from('xyz')), undefined))).toBe('DIGEST_INVALID');
    expect(await code(registry.uploadSize(A, bad))).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(await blobs.stat(digestOf(Buffer.from('abc')))).toBeUndefined();
  });

  it('cancels an upload', async () => {
    const id = await registry.startUpload(A);
    await registry.cancelUpload(A, id);
    expect(await code(registry.cancelUpload(A, id))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('lists tags and the catalog sorted and paginated', async () => {
    await pushImage(A, 'b');
    await pushImage(A, 'a');
    await pushImage(B, 'c');
    expect(await registry.listTags(A)).toEqual({ items: ['a', 'b'] });
    expect(await registry.listTags(A, 1)).toEqual({ items: ['a'], next: 'a' });
    expect(await registry.listTags(A, 1, 'a')).toEqual({ items: ['b'] });
    expect(await registry.catalog()).toEqual({ items: [A, B] });
    expect(await registry.catalog(1)).toEqual({ items: [A], next: A });
    expect(await code(registry.listTags('proj/none' as RepositoryName))).toBe('NAME_UNKNOWN');
  });
});

describe('paginate', () => {
  const items = ['a', 'b', 'c', 'd'];
  it('returns everything without n, and a next marker only when more remain', () => {
    expect(paginate(items)).toEqual({ items });
    expect(paginate(items, 4)).toEqual({ items });
    expect(paginate(items, 2)).toEqual({ items: ['a', 'b'], next: 'b' });
    expect(paginate(items, 2, 'b')).toEqual({ items: ['c', 'd'] });
    expect(paginate(items, 10, 'bb')).toEqual({ items: ['c', 'd'] });
    expect(paginate(items, 0)).toEqual({ items: [] });
  });
});
