// Collecting what a crash leaves of writeAtomic: temp files older than the grace period, nothing else.
import { mkdir, mkdtemp, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeStaleTempFiles, writeAtomic } from '../../../src/store/fs-util.js';

describe('removeStaleTempFiles', () => {
  it('removes old temp files at any depth, and leaves fresh ones and real records alone', async () => {
    const root = await mkdtemp(join(tmpdir(), 'layerd-fsutil-'));
    const deep = join(root, 'team', 'app', '_manifests', 'tags');
    await mkdir(deep, { recursive: true });
    await writeAtomic(join(deep, 'v1'), 'sha256:abc');
    const old = [join(deep, 'v2.tmp-0123456789ab'), join(root, 'x.json.tmp-a1b2c3d4e5f6')];
    for (const f of old) {
      await writeFile(f, 'half');
      await utimes(f, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    }
    const fresh = join(deep, 'v3.tmp-ffffffffffff');
    await writeFile(fresh, 'being written');
    await writeFile(join(root, 'notes.tmp-short'), 'not ours');

    expect(await removeStaleTempFiles(root, 60_000)).toBe(2);
    expect((await readdir(deep)).sort()).toEqual(['v1', 'v3.tmp-ffffffffffff']);
    expect((await readdir(root)).sort()).toEqual(['notes.tmp-short', 'team']);
    expect(await removeStaleTempFiles(join(root, 'missing'), 60_000)).toBe(0);
  });
});
