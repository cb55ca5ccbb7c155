// RepositoryStore on a filesystem directory, one folder per repository (names are validated by the
// spec's grammar before they get here, so they cannot climb out of it):
//   <root>/repositories/<name>/_layers/<alg>/<hex>                    blob links (empty files)
//   <root>/repositories/<name>/_manifests/revisions/<alg>/<hex>       manifest records (JSON)
//   <root>/repositories/<name>/_manifests/tags/<tag>                  the digest a tag points at
//   <root>/repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>     referrer descriptors (JSON)
//   <root>/repositories/<name>/_uploads/<id>                          upload sessions of this repository
// Name components never start with "_", so these folders cannot collide with nested repositories, nor
// with ".": what starts with one is a write in progress (fs-util's temp names), never listed.
// Every write is durable before it resolves (writeAtomic), and so is every delete a client is told of.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { algorithmOf, hexOf, isTag, parseDigest, type Descriptor, type Digest, type RepositoryName, type Tag } from '../oci/index.js';
import { isTempName, pathExists, readOrUndefined, readdirOrEmpty, removeFile, removeFileDurably, writeAtomic } from './fs-util.js';
import type { ManifestRecord, RepositoryStore } from './repository-store.js';
import { LinkChanges, type LinkChange, type Listener, type Unsubscribe } from './change-stream.js';

export class FsRepositoryStore implements RepositoryStore {
  private readonly reposDir: string;
  private readonly changes = new LinkChanges();

  constructor(root: string) {
    this.reposDir = join(root, 'repositories');
  }

  subscribe(listener: Listener<LinkChange>): Unsubscribe {
    return this.changes.subscribe(listener);
  }

  async init(): Promise<this> {
    await mkdir(this.reposDir, { recursive: true });
    return this;
  }

  private repoDir(repo: RepositoryName): string {
    return join(this.reposDir, repo);
  }

  private digestPath(repo: RepositoryName, folder: string, digest: Digest): string {
    return join(this.repoDir(repo), folder, algorithmOf(digest), hexOf(digest));
  }

  async exists(repo: RepositoryName): Promise<boolean> {
    const dir = this.repoDir(repo);
    return (await pathExists(join(dir, '_manifests'))) || (await pathExists(join(dir, '_layers')));
  }

  async listRepositories(): Promise<RepositoryName[]> {
    const found: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdirOrEmpty(dir);
      if (prefix && (entries.includes('_manifests') || entries.includes('_layers'))) found.push(prefix);
      for (const entry of entries) {
        if (!isComponentStart(entry)) continue;
        await walk(join(dir, entry), prefix ? `${prefix}/${entry}` : entry);
      }
    };
    await walk(this.reposDir, '');
    return found.sort() as RepositoryName[];
  }

  async linkBlob(repo: RepositoryName, digest: Digest): Promise<void> {
    await writeAtomic(this.digestPath(repo, '_layers', digest), '');
    this.changes.changed('linked', repo, digest);
  }

  hasBlob(repo: RepositoryName, digest: Digest): Promise<boolean> {
    return pathExists(this.digestPath(repo, '_layers', digest));
  }

  async unlinkBlob(repo: RepositoryName, digest: Digest): Promise<boolean> {
    return this.changes.changed('unlinked', repo, digest, await removeFileDurably(this.digestPath(repo, '_layers', digest)));
  }

  async listLinked(repo: RepositoryName): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const folder of ['_layers', '_manifests/revisions']) {
      const base = join(this.repoDir(repo), folder);
      for (const algorithm of await readdirOrEmpty(base)) {
        for (const hex of await readdirOrEmpty(join(base, algorithm))) {
          if (isTempName(hex)) continue; // a link still being written, or a crash's leftover
          try {
            out.push(parseDigest(`${algorithm}:${hex}`));
          } catch {
            // not a link of ours
          }
        }
      }
    }
    return out;
  }

  async putManifest(repo: RepositoryName, record: ManifestRecord): Promise<void> {
    await writeAtomic(this.digestPath(repo, '_manifests/revisions', record.digest), JSON.stringify(record));
    this.changes.changed('linked', repo, record.digest);
  }

  async getManifest(repo: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined> {
    const text = await readOrUndefined(this.digestPath(repo, '_manifests/revisions', digest));
    return text === undefined ? undefined : (JSON.parse(text) as ManifestRecord);
  }

  async deleteManifest(repo: RepositoryName, digest: Digest): Promise<boolean> {
    return this.changes.changed('unlinked', repo, digest, await removeFileDurably(this.digestPath(repo, '_manifests/revisions', digest)));
  }

  async setTag(repo: RepositoryName, tag: Tag, digest: Digest): Promise<void> {
    await writeAtomic(join(this.repoDir(repo), '_manifests/tags', tag), digest);
  }

  async getTag(repo: RepositoryName, tag: Tag): Promise<Digest | undefined> {
    const text = await readOrUndefined(join(this.repoDir(repo), '_manifests/tags', tag));
    return text === undefined ? undefined : parseDigest(text.trim());
  }

  deleteTag(repo: RepositoryName, tag: Tag): Promise<boolean> {
    return removeFileDurably(join(this.repoDir(repo), '_manifests/tags', tag));
  }

  async listTags(repo: RepositoryName): Promise<Tag[] | undefined> {
    if (!(await this.exists(repo))) return undefined;
    const names = await readdirOrEmpty(join(this.repoDir(repo), '_manifests/tags'));
    return names.filter((n) => isTag(n)).sort() as Tag[];
  }

  private referrerDir(repo: RepositoryName, subject: Digest): string {
    return this.digestPath(repo, '_referrers', subject);
  }

  async addReferrer(repo: RepositoryName, subject: Digest, referrer: Descriptor): Promise<void> {
    await writeAtomic(join(this.referrerDir(repo, subject), referrer.digest.replace(':', '-')), JSON.stringify(referrer));
  }

  async removeReferrer(repo: RepositoryName, subject: Digest, referrer: Digest): Promise<void> {
    await removeFileDurably(join(this.referrerDir(repo, subject), referrer.replace(':', '-')));
  }

  async listReferrers(repo: RepositoryName, subject: Digest): Promise<Descriptor[]> {
    const dir = this.referrerDir(repo, subject);
    const out: Descriptor[] = [];
    for (const name of (await readdirOrEmpty(dir)).sort()) {
      if (name.startsWith('.')) continue; // a write in progress
      const text = await readOrUndefined(join(dir, name));
      if (text !== undefined) out.push(JSON.parse(text) as Descriptor);
    }
    return out;
  }

  async addUpload(repo: RepositoryName, id: string): Promise<void> {
    await writeAtomic(join(this.repoDir(repo), '_uploads', id), new Date().toISOString());
  }

  hasUpload(repo: RepositoryName, id: string): Promise<boolean> {
    return pathExists(join(this.repoDir(repo), '_uploads', id));
  }

  async removeUpload(repo: RepositoryName, id: string): Promise<void> {
    await removeFile(join(this.repoDir(repo), '_uploads', id));
  }

  async hasUploadInAnyRepository(id: string): Promise<boolean> {
    // Not through listRepositories: a repository whose first push is still running has only _uploads.
    const walk = async (dir: string): Promise<boolean> => {
      const entries = await readdirOrEmpty(dir);
      if (entries.includes('_uploads') && (await pathExists(join(dir, '_uploads', id)))) return true;
      for (const entry of entries) {
        if (isComponentStart(entry) && (await walk(join(dir, entry)))) return true;
      }
      return false;
    };
    return walk(this.reposDir);
  }
}

/** Whether a directory entry may be a repository name component (not a store folder, not a temp file). */
function isComponentStart(entry: string): boolean {
  return !entry.startsWith('_') && !entry.startsWith('.');
}
