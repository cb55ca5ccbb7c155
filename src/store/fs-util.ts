// Small filesystem helpers shared by the filesystem stores: "absent" is an answer, not an error.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Writes via a temporary name and a rename, so readers see the old content or the new, never half. */
export async function writeAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function removeFile(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

/** What writeAtomic leaves behind if the process dies between the write and the rename. */
const TEMP_NAME = /\.tmp-[0-9a-f]{12}$/;

/** Removes writeAtomic's leftovers under `dir` older than `olderThanMs`; returns how many. */
export async function removeStaleTempFiles(dir: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const e of entries) {
      const path = `${d}/${e.name}`;
      if (e.isDirectory()) await walk(path);
      else if (e.isFile() && TEMP_NAME.test(e.name)) {
        try {
          if (now - (await stat(path)).mtimeMs < olderThanMs) continue; // may be mid-write
          await rm(path, { force: true });
          removed++;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
  };
  await walk(dir);
  return removed;
}
