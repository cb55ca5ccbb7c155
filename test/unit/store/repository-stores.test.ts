import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/manifest.js';
import type { RepositoryName, Tag } from '../../../src/oci/reference.js';
import { FsRepositoryStore } from '../../../src/store/fs-repository-store.js';
import { MemoryRepositoryStore } from '../../../src/store/memory-repository-store.js';
import { CollectionGuard, GuardedRepositoryStore } from '../../../src/store/collection-guard.js';
import { describeRepositoryStore } from './repository-store.conformance.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describeRepositoryStore('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'layerd-repostore-'));
  dirs.push(dir);
  return new FsRepositoryStore(dir).init();
});
describeRepositoryStore('memory', async () => new MemoryRepositoryStore());
// What the node hands out: the guard around a store keeps its whole contract, change stream included.
describeRepositoryStore('guarded memory', async () => new GuardedRepositoryStore(new MemoryRepositoryStore(), new CollectionGuard()));

describe('FsRepositoryStore specifics', () => {
  it('never lists a temp file (a write in progress or a crash leftover) as a link, tag, referrer or repository', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'layerd-repostore-'));
    dirs.push(dir);
    const s = await new FsRepositoryStore(dir).init();
    const repo = 'team/app' as RepositoryName;
    const d1 = digestOf(Buffer.from('one'));
    const hex = d1.slice('sha256:'.length);
    await s.linkBlob(repo, d1);
    await s.putManifest(repo, { digest: d1, mediaType: MediaType.OciManifest, size: 3 });
    await s.setTag(repo, 'v1' as Tag, d1);
    await s.addReferrer(repo, d1, { mediaType: MediaType.OciManifest, digest: d1, size: 3 });
    const base = join(dir, 'repositories', 'team', 'app');
    const temps = [
      join(base, '_layers', 'sha256', `.tmp-0123456789ab-${hex}`),
      join(base, '_manifests', 'revisions', 'sha256', `.tmp-0123456789ab-${hex}`),
      join(base, '_manifests', 'tags', '.tmp-0123456789ab-v2'),
      join(base, '_referrers', 'sha256', hex, `.tmp-0123456789ab-sha256-${hex}`),
      join(dir, 'repositories', 'team', '.tmp-0123456789ab-x'),
    ];
    for (const t of temps) {
      await mkdir(join(t, '..'), { recursive: true });
      await writeFile(t, '');
    }
    // A half-made repository directory named like a temp file is not a repository either.
    await mkdir(join(dir, 'repositories', '.tmp-0123456789ab-y', '_layers'), { recursive: true });
    expect(await s.listLinked(repo)).toEqual([d1, d1]);
    expect(await s.listTags(repo)).toEqual(['v1']);
    expect((await s.listReferrers(repo, d1)).map((r) => r.digest)).toEqual([d1]);
    expect(await s.listRepositories()).toEqual(['team/app']);
    // Writes leave no temp file behind.
    await s.setTag(repo, 'v3' as Tag, d1);
    expect((await readdir(join(base, '_manifests', 'tags'))).filter((n) => !n.startsWith('.tmp-0123456789ab')).sort()).toEqual(['v1', 'v3']);
  });
});
