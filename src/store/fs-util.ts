// Small filesystem helpers shared by the filesystem stores: "absent" is an answer, not an error.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoOf } from '../oci/index.js';

export function isNotFound(err: unknown): boolean {
  return errnoOf(err) === 'ENOENT';
}

/**
 * Whether writes are made durable (fsync) before they are acknowledged. LAYERD_UNSAFE_NO_FSYNC=1 turns
 * that off: for benchmarks that measure what durability costs, never for a node that holds anything.
 */
export const FSYNC = process.env.LAYERD_UNSAFE_NO_FSYNC !== '1';

/**
 * writeAtomic's temp names: `.tmp-<12 hex>-<final name>`. The leading dot is a name no tag ([A-Za-z0-9_]
 * first), digest, repository component ([a-z0-9] first), store folder (`_`) or record id can take, so a
 * tag such as `rel.tmp-0123456789ab` is never mistaken for a crash's leftover.
 */
const TEMP_NAME = /^\.tmp-[0-9a-f]{12}-/;

export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** fsyncs a directory, so the names created, renamed or removed in it survive a power cut. */
export async function syncDir(dir: string): Promise<void> {
  if (!FSYNC) return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes `dir` and the names in it durable after `mkdir -p` created `created` (its return: the first
 * directory it made, or undefined when `dir` existed): each new directory's entry lives in its parent.
 */
export async function syncCreatedDir(dir: string, created: string | undefined): Promise<void> {
  const dirs = [dir];
  if (created !== undefined) {
    for (let d = dir; ; d = dirname(d)) {
      dirs.push(dirname(d));
      if (d === created || dirname(d) === d) break;
    }
  }
  // In any order: all are done before the write is acknowledged.
  await Promise.all(dirs.map(syncDir));
}

/**
 * Writes via a temporary name and a rename, so readers see the old content or the new, never half; and
 * durably: the bytes are fsynced before the rename and the directory after it, so once this resolves a
 * power cut leaves the new content, and before, the old (or nothing), never an empty or partial file.
 */
export async function writeAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  const created = await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}-${basename(path)}`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      if (FSYNC) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncCreatedDir(dir, created);
}

/** Removes a file and makes the removal durable (a delete acknowledged to a client). */
export async function removeFileDurably(path: string): Promise<boolean> {
  const removed = await removeFile(path);
  if (removed) await syncDir(dirname(path));
  return removed;
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
    if (isNotFound(err) || errnoOf(err) === 'ENOTDIR') return [];
    throw err;
  }
}

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
      else if (e.isFile() && isTempName(e.name)) {
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
