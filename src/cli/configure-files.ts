// The file work of `layerd configure`: read what is there, then (once every edit has been computed, so a
// refused file leaves all of them untouched) keep a timestamped copy of each file about to change and
// replace it atomically with its mode kept, or remove it.
import { constants } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RuntimeError } from './command.js';

/** One file's planned change: `after` undefined removes it. */
export interface FileChange {
  path: string;
  before: string | undefined;
  after: string | undefined;
  /** Remove the folder too if it is left empty (containerd's certs.d/<registry>/). */
  pruneDir?: boolean;
  /** A removal of a file configure wrote whole: it holds nothing of the owner's, so it is not backed up. */
  allOurs?: boolean;
}

export interface Applied {
  path: string;
  action: 'created' | 'changed' | 'removed' | 'unchanged';
  backup?: string;
}

const fail = (what: string, path: string, err: unknown) => new RuntimeError(`${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);

/** The file's text, or undefined if there is none. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fail('cannot read', path, err);
  }
}

/** 20261204T181500Z: sortable, and the same for every file of one run. */
export function backupStamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Copies path to path.layerd-backup-STAMP (with -N if that exists); never overwrites a backup. */
async function backup(path: string, stamp: string): Promise<string> {
  for (let n = 0; ; n++) {
    const name = `${path}.layerd-backup-${stamp}${n === 0 ? '' : `-${n}`}`;
    try {
      await copyFile(path, name, constants.COPYFILE_EXCL);
      return name;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw fail('cannot back up', path, err);
    }
  }
}

/** Writes through a temp file in the same folder and a rename: a crash leaves the old file or the new one. */
async function replace(path: string, text: string): Promise<void> {
  const mode = await stat(path).then((s) => s.mode & 0o7777, () => 0o644);
  const temp = `${path}.layerd-tmp-${process.pid}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(temp, text, { mode });
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw fail('cannot write', path, err);
  }
}

async function pruneIfEmpty(dir: string): Promise<void> {
  if ((await readdir(dir).catch(() => ['?'])).length === 0) await rmdir(dir).catch(() => undefined);
}

/** Applies the changes in order; each file with content of the owner's that changes is backed up first. */
export async function applyChanges(changes: FileChange[], now = new Date()): Promise<Applied[]> {
  const stamp = backupStamp(now);
  const done: Applied[] = [];
  for (const c of changes) {
    if (c.before === c.after) {
      done.push({ path: c.path, action: 'unchanged' });
      continue;
    }
    const saved = c.before === undefined || (c.after === undefined && c.allOurs) ? undefined : await backup(c.path, stamp);
    if (c.after === undefined) {
      await unlink(c.path).catch((err: unknown) => {
        throw fail('cannot remove', c.path, err);
      });
      if (c.pruneDir) await pruneIfEmpty(dirname(c.path));
      done.push({ path: c.path, action: 'removed', backup: saved });
    } else {
      await replace(c.path, c.after);
      done.push({ path: c.path, action: c.before === undefined ? 'created' : 'changed', backup: saved });
    }
  }
  return done;
}
