import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { FsRepositoryStore } from '../../../src/store/fs-repository-store.js';
import { MemoryRepositoryStore } from '../../../src/store/memory-repository-store.js';
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
