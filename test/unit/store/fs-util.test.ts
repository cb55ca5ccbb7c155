// Collecting what a crash leaves of writeAtomic: temp files older than the grace period, nothing else;
// and the temp names themselves, which no tag, digest or repository name can take.
import { mkdir, mkdtemp, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTag } from '../../../src/oci/reference.js';
import { isTempName, removeStaleTempFiles, writeAtomic } from '../../../src/store/fs-util.js';

const old = (f: string) => utimes(f, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));

describe('removeStaleTempFiles', () => {
  it('removes old temp files at any depth, and leaves fresh ones and real records alone', async () => {
    const root = await mkdtemp(join(tmpdir(), 'layerd-fsutil-'));
    const deep = join(root, 'team', 'app', '_manifests', 'tags');
    await mkdir(deep, { recursive: true });
    await writeAtomic(join(deep, 'v1'), 'sha256:abc');
    const stale = [join(deep, '.tmp-0123456789ab-v2'), join(root, '.tmp-a1b2c3d4e5f6-x.json')];
    for (const f of stale) {
      await writeFile(f, 'half');
      await old(f);
    }
    const fresh = join(deep, '.tmp-ffffffffffff-v3');
    await writeFile(fresh, 'being written');
    await writeFile(join(root, 'notes.tmp-short'), 'not ours');
    // Tags that look like temp names of any format are tags: they stay however old they are.
    for (const tag of ['rel.tmp-0123456789ab', 'tmp-0123456789ab-v4']) {
      await writeFile(join(deep, tag), 'sha256:abc');
      await old(join(deep, tag));
    }

    expect(await removeStaleTempFiles(root, 60_000)).toBe(2);
    expect((await readdir(deep)).sort()).toEqual(['.tmp-ffffffffffff-v3', 'rel.tmp-0123456789ab', 'tmp-0123456789ab-v4', 'v1']);
    expect((await readdir(root)).sort()).toEqual(['notes.tmp-short', 'team']);
    expect(await removeStaleTempFiles(join(root, 'missing'), 60_000)).toBe(0);
  });
});

describe('writeAtomic', () => {
  it('leaves only the final name, and its temp names are names no tag can take', async () => {
    const root = await mkdtemp(join(tmpdir(), 'layerd-fsutil-'));
    const path = join(root, 'a', 'b', 'rel.tmp-0123456789ab');
    await writeAtomic(path, 'one');
    await writeAtomic(path, 'two');
    expect(await readdir(join(root, 'a', 'b'))).toEqual(['rel.tmp-0123456789ab']);
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(isTempName('rel.tmp-0123456789ab')).toBe(false);
    expect(isTempName('.tmp-0123456789ab-rel')).toBe(true);
    expect(isTag('.tmp-0123456789ab-rel')).toBe(false);
  });
});
