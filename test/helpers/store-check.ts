// What a fault test checks on a node's data dir after the fault: every file under blobs/ is a whole
// blob (its sha256 is its name), and the node's usage index (/api/status store) agrees with the disk.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskBlobs {
  /** Digests of the files under blobs/, each verified. */
  digests: string[];
  bytes: number;
  /** Files whose content does not hash to their name, or that are not named like a blob. */
  bad: string[];
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Hashes every file under <dataDir>/blobs. */
export async function diskBlobs(dataDir: string): Promise<DiskBlobs> {
  const out: DiskBlobs = { digests: [], bytes: 0, bad: [] };
  const root = join(dataDir, 'blobs');
  for (const alg of await entries(root)) {
    for (const prefix of await entries(join(root, alg))) {
      for (const name of await entries(join(root, alg, prefix))) {
        const path = join(root, alg, prefix, name);
        const st = await stat(path);
        if (!st.isFile() || alg !== 'sha256' || !/^[0-9a-f]{64}$/.test(name) || name.slice(0, 2) !== prefix) {
          out.bad.push(`${path}: not a blob file`);
          continue;
        }
        const actual = await sha256File(path);
        if (actual !== name) out.bad.push(`${path}: content hashes to ${actual}`);
        else {
          out.digests.push(`sha256:${name}`);
          out.bytes += st.size;
        }
      }
    }
  }
  return out;
}

export interface StoreStatus {
  bytes: number;
  blobs: number;
}

/** The node's own count of what it holds. */
export async function storeStatus(url: string): Promise<StoreStatus> {
  const res = await fetch(`${url}/api/status`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`${url}/api/status: ${res.status}`);
  const body = (await res.json()) as { store: StoreStatus };
  return { bytes: body.store.bytes, blobs: body.store.blobs };
}

/**
 * Every blob file verifies and the index matches the disk; returns a list of problems (empty when all is
 * well), so a caller can report every run's problems at once.
 */
export async function storeProblems(url: string, dataDir: string, settleMs = 10_000): Promise<string[]> {
  // A pull's client can finish before its blob's commit does (bytes stream through while they land), so
  // index and disk may differ for a moment: only a difference that lasts is a problem.
  const deadline = Date.now() + settleMs;
  for (;;) {
    const disk = await diskBlobs(dataDir);
    const index = await storeStatus(url);
    const problems = [...disk.bad];
    if (index.blobs !== disk.digests.length || index.bytes !== disk.bytes) {
      problems.push(`index says ${index.blobs} blobs / ${index.bytes} bytes, disk holds ${disk.digests.length} / ${disk.bytes}`);
    }
    if (problems.length === disk.bad.length || Date.now() > deadline) return problems;
    await new Promise((r) => setTimeout(r, 200));
  }
}
