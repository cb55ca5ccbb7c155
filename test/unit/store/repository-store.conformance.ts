// The contract every RepositoryStore implementation passes.
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/manifest.js';
import type { RepositoryName, Tag } from '../../../src/oci/reference.js';
import type { RepositoryStore } from '../../../src/store/repository-store.js';

const A = 'team/app' as RepositoryName;
const B = 'team/other' as RepositoryName;
const d1 = digestOf(Buffer.from('one'));
const d2 = digestOf(Buffer.from('two'));
const d3 = digestOf(Buffer.from('three'), 'sha512');

export function describeRepositoryStore(name: string, create: () => Promise<RepositoryStore>): void {
  describe(`RepositoryStore conformance: ${name}`, () => {
    it('links blobs per repository', async () => {
      const s = await create();
      expect(await s.exists(A)).toBe(false);
      await s.linkBlob(A, d1);
      await s.linkBlob(A, d3);
      expect(await s.exists(A)).toBe(true);
      expect(await s.hasBlob(A, d1)).toBe(true);
      expect(await s.hasBlob(A, d3)).toBe(true);
      expect(await s.hasBlob(B, d1)).toBe(false);
      expect(await s.unlinkBlob(A, d1)).toBe(true);
      expect(await s.unlinkBlob(A, d1)).toBe(false);
      expect(await s.hasBlob(A, d1)).toBe(false);
    });

    it('keeps manifest records, tags and their deletion apart', async () => {
      const s = await create();
      await s.putManifest(A, { digest: d1, mediaType: MediaType.OciManifest, size: 3, subject: d2 });
      expect(await s.getManifest(A, d1)).toEqual({ digest: d1, mediaType: MediaType.OciManifest, size: 3, subject: d2 });
      expect(await s.getManifest(B, d1)).toBeUndefined();
      await s.setTag(A, 'v2' as Tag, d1);
      await s.setTag(A, 'v1' as Tag, d1);
      await s.setTag(A, 'latest' as Tag, d1);
      expect(await s.listTags(A)).toEqual(['latest', 'v1', 'v2']);
      expect(await s.getTag(A, 'v1' as Tag)).toBe(d1);
      await s.setTag(A, 'v1' as Tag, d2);
      expect(await s.getTag(A, 'v1' as Tag)).toBe(d2);
      expect(await s.deleteTag(A, 'v1' as Tag)).toBe(true);
      expect(await s.deleteTag(A, 'v1' as Tag)).toBe(false);
      expect(await s.listTags(A)).toEqual(['latest', 'v2']);
      expect(await s.deleteManifest(A, d1)).toBe(true);
      expect(await s.getManifest(A, d1)).toBeUndefined();
      expect(await s.listTags(B)).toBeUndefined();
    });

    it('lists repositories sorted, including nested names', async () => {
      const s = await create();
      await s.linkBlob(B, d1);
      await s.linkBlob(A, d1);
      await s.setTag('team' as RepositoryName, 'x' as Tag, d1);
      await s.addUpload('uploads/only' as RepositoryName, 'u1');
      expect(await s.listRepositories()).toEqual(['team', 'team/app', 'team/other']);
    });

    it('indexes referrers by subject', async () => {
      const s = await create();
      const r1 = { mediaType: MediaType.OciManifest, digest: d1, size: 10, artifactType: 'application/x.sig' };
      const r3 = { mediaType: MediaType.OciManifest, digest: d3, size: 30, artifactType: 'application/x.sbom', annotations: { k: 'v' } };
      await s.addReferrer(A, d2, r3);
      await s.addReferrer(A, d2, r1);
      expect(await s.listReferrers(A, d2)).toEqual([r1, r3]);
      expect(await s.listReferrers(B, d2)).toEqual([]);
      await s.removeReferrer(A, d2, d1);
      expect(await s.listReferrers(A, d2)).toEqual([r3]);
    });

    it('tracks upload sessions per repository', async () => {
      const s = await create();
      await s.addUpload(A, 'u1');
      expect(await s.hasUpload(A, 'u1')).toBe(true);
      expect(await s.hasUpload(B, 'u1')).toBe(false);
      await s.removeUpload(A, 'u1');
      expect(await s.hasUpload(A, 'u1')).toBe(false);
    });

    it('finds an upload session in any repository, also one that holds nothing else yet', async () => {
      const s = await create();
      await s.addUpload('first/push' as RepositoryName, 'u2');
      expect(await s.hasUploadInAnyRepository('u2')).toBe(true);
      expect(await s.hasUploadInAnyRepository('u3')).toBe(false);
      await s.removeUpload('first/push' as RepositoryName, 'u2');
      expect(await s.hasUploadInAnyRepository('u2')).toBe(false);
    });
  });
}
