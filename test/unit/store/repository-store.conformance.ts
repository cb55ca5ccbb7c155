// The contract every RepositoryStore implementation passes.
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/manifest.js';
import type { RepositoryName, Tag } from '../../../src/oci/reference.js';
import type { RepositoryStore } from '../../../src/store/repository-store.js';
import type { LinkChange } from '../../../src/store/change-stream.js';

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

    // What garbage collection and eviction rely on: what a repository links is exactly what listLinked
    // says, for every repository listRepositories names; anything missed there is deleted.
    it('listLinked gives exactly the blobs linked and the manifests put, nothing else', async () => {
      const s = await create();
      const d4 = digestOf(Buffer.from('four'));
      const d5 = digestOf(Buffer.from('five'));
      await s.linkBlob(A, d1);
      await s.linkBlob(A, d3);
      await s.linkBlob(A, d1); // twice: listed once
      await s.putManifest(A, { digest: d2, mediaType: MediaType.OciManifest, size: 3 });
      // A tag, a referrer and an upload are not links: the tag's manifest is linked by its record only.
      await s.setTag(A, 'v1' as Tag, d4);
      await s.addReferrer(A, d2, { mediaType: MediaType.OciManifest, digest: d5, size: 1 });
      await s.addUpload(A, 'u1');
      expect([...(await s.listLinked(A))].sort()).toEqual([d1, d2, d3].sort());
      // Another repository's links are its own.
      await s.linkBlob(B, d4);
      expect(await s.listLinked(B)).toEqual([d4]);
      expect(await s.listLinked('team/none' as RepositoryName)).toEqual([]);
      // Unlinked or deleted: no longer listed.
      await s.unlinkBlob(A, d1);
      await s.deleteManifest(A, d2);
      expect(await s.listLinked(A)).toEqual([d3]);
    });

    it('keeps nested repositories apart in listLinked and lists both', async () => {
      const s = await create();
      const parent = 'team' as RepositoryName;
      const child = 'team/app/sub' as RepositoryName;
      await s.linkBlob(parent, d1);
      await s.linkBlob(A, d2);
      await s.putManifest(child, { digest: d3, mediaType: MediaType.OciManifest, size: 3 });
      expect(await s.listRepositories()).toEqual(['team', 'team/app', 'team/app/sub']);
      expect(await s.listLinked(parent)).toEqual([d1]);
      expect(await s.listLinked(A)).toEqual([d2]);
      expect(await s.listLinked(child)).toEqual([d3]);
    });

    it('lists a repository that has only links, only manifests or only tags; one with only uploads is found by hasUploadInAnyRepository instead', async () => {
      const s = await create();
      await s.linkBlob('only/links' as RepositoryName, d1);
      await s.putManifest('only/manifests' as RepositoryName, { digest: d2, mediaType: MediaType.OciManifest, size: 3 });
      await s.setTag('only/tags' as RepositoryName, 'v1' as Tag, d3);
      await s.addUpload('only/uploads' as RepositoryName, 'u9');
      expect(await s.listRepositories()).toEqual(['only/links', 'only/manifests', 'only/tags']);
      expect(await s.hasUploadInAnyRepository('u9')).toBe(true);
      // Emptied by unlinking, a repository is still listed (with nothing linked): it still exists.
      await s.unlinkBlob('only/links' as RepositoryName, d1);
      expect(await s.listRepositories()).toContain('only/links');
      expect(await s.listLinked('only/links' as RepositoryName)).toEqual([]);
    });

    it('lists a tag whose name looks like a temp file as any other', async () => {
      const s = await create();
      for (const tag of ['rel.tmp-0123456789ab', 'tmp-0123456789ab-v1', 'v1']) await s.setTag(A, tag as Tag, d1);
      expect(await s.listTags(A)).toEqual(['rel.tmp-0123456789ab', 'tmp-0123456789ab-v1', 'v1']);
      expect(await s.getTag(A, 'rel.tmp-0123456789ab' as Tag)).toBe(d1);
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

    describeLinkChanges(create);
  });
}

const line = (c: LinkChange) => `${c.kind} ${c.repository} ${c.digest}`;

/** The store's change stream of links: what the sharing policy follows to announce and withdraw. */
function describeLinkChanges(create: () => Promise<RepositoryStore>): void {
  describe('change stream', () => {
    it('tells of each link and manifest record written, and of each removed, before the call returns; nothing of tags, referrers, uploads', async () => {
      const s = await create();
      const seen: string[] = [];
      let during = 'nothing';
      s.subscribe((change) => seen.push(`${line(change)} during ${during}`));
      const step = async (name: string, work: () => Promise<unknown>) => {
        during = name;
        await work();
        during = 'nothing';
      };
      await step('link', () => s.linkBlob(A, d1));
      await step('link again', () => s.linkBlob(A, d1)); // a write, even of a link already there
      await step('put', () => s.putManifest(B, { digest: d3, mediaType: MediaType.OciManifest, size: 3 }));
      await s.setTag(A, 'v1' as Tag, d2);
      await s.addReferrer(A, d1, { mediaType: MediaType.OciManifest, digest: d2, size: 3 });
      await s.addUpload(A, 'u1');
      await step('unlink', () => s.unlinkBlob(A, d1));
      expect(await s.unlinkBlob(A, d1)).toBe(false); // nothing there: no change
      await step('delete', () => s.deleteManifest(B, d3));
      expect(await s.deleteManifest(B, d3)).toBe(false);
      await s.deleteTag(A, 'v1' as Tag);
      await s.removeReferrer(A, d1, d2);
      await s.removeUpload(A, 'u1');
      expect(seen).toEqual([
        `linked ${A} ${d1} during link`,
        `linked ${A} ${d1} during link again`,
        `linked ${B} ${d3} during put`,
        `unlinked ${A} ${d1} during unlink`,
        `unlinked ${B} ${d3} during delete`,
      ]);
    });

    it('tells listeners in the order they subscribed, changes in the order they happened, and none after unsubscribing', async () => {
      const s = await create();
      const seen: string[] = [];
      const stopFirst = s.subscribe((change) => seen.push(`first ${line(change)}`));
      const stopSecond = s.subscribe((change) => seen.push(`second ${line(change)}`));
      await s.linkBlob(A, d1);
      await s.linkBlob(B, d2);
      stopFirst();
      stopFirst();
      await s.unlinkBlob(A, d1);
      stopSecond();
      await s.unlinkBlob(B, d2);
      expect(seen).toEqual([`first linked ${A} ${d1}`, `second linked ${A} ${d1}`, `first linked ${B} ${d2}`, `second linked ${B} ${d2}`, `second unlinked ${A} ${d1}`]);
    });
  });
}
