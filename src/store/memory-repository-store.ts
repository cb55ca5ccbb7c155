// The in-memory twin of FsRepositoryStore, for unit tests of registry policy.
import type { Descriptor, Digest, RepositoryName, Tag } from '../oci/index.js';
import type { ManifestRecord, RepositoryStore } from './repository-store.js';
import { LinkChanges, type LinkChange, type Listener, type Unsubscribe } from './change-stream.js';

interface Repo {
  /** Set once anything but an upload lands, as the filesystem store's folders appear. */
  known: boolean;
  blobs: Set<Digest>;
  manifests: Map<Digest, ManifestRecord>;
  tags: Map<Tag, Digest>;
  referrers: Map<Digest, Map<Digest, Descriptor>>;
  uploads: Set<string>;
}

export class MemoryRepositoryStore implements RepositoryStore {
  private readonly repos = new Map<RepositoryName, Repo>();
  private readonly changes = new LinkChanges();

  subscribe(listener: Listener<LinkChange>): Unsubscribe {
    return this.changes.subscribe(listener);
  }

  private repo(name: RepositoryName): Repo {
    let repo = this.repos.get(name);
    if (!repo) {
      repo = { known: false, blobs: new Set(), manifests: new Map(), tags: new Map(), referrers: new Map(), uploads: new Set() };
      this.repos.set(name, repo);
    }
    return repo;
  }

  /** Mirrors the filesystem store: a repository exists once a blob, manifest or tag was ever put in it. */
  async exists(name: RepositoryName): Promise<boolean> {
    return this.repos.get(name)?.known ?? false;
  }

  private known(name: RepositoryName): Repo {
    const repo = this.repo(name);
    repo.known = true;
    return repo;
  }

  async listRepositories(): Promise<RepositoryName[]> {
    const names: RepositoryName[] = [];
    for (const name of this.repos.keys()) if (await this.exists(name)) names.push(name);
    return names.sort();
  }

  async linkBlob(name: RepositoryName, digest: Digest): Promise<void> {
    this.known(name).blobs.add(digest);
    this.changes.changed('linked', name, digest);
  }

  async hasBlob(name: RepositoryName, digest: Digest): Promise<boolean> {
    return this.repos.get(name)?.blobs.has(digest) ?? false;
  }

  async listLinked(name: RepositoryName): Promise<Digest[]> {
    const repo = this.repos.get(name);
    return repo ? [...repo.blobs, ...repo.manifests.keys()] : [];
  }

  async unlinkBlob(name: RepositoryName, digest: Digest): Promise<boolean> {
    return this.changes.changed('unlinked', name, digest, this.repos.get(name)?.blobs.delete(digest) ?? false);
  }

  async putManifest(name: RepositoryName, record: ManifestRecord): Promise<void> {
    this.known(name).manifests.set(record.digest, { ...record });
    this.changes.changed('linked', name, record.digest);
  }

  async getManifest(name: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined> {
    const record = this.repos.get(name)?.manifests.get(digest);
    return record ? { ...record } : undefined;
  }

  async deleteManifest(name: RepositoryName, digest: Digest): Promise<boolean> {
    return this.changes.changed('unlinked', name, digest, this.repos.get(name)?.manifests.delete(digest) ?? false);
  }

  async setTag(name: RepositoryName, tag: Tag, digest: Digest): Promise<void> {
    this.known(name).tags.set(tag, digest);
  }

  async getTag(name: RepositoryName, tag: Tag): Promise<Digest | undefined> {
    return this.repos.get(name)?.tags.get(tag);
  }

  async deleteTag(name: RepositoryName, tag: Tag): Promise<boolean> {
    return this.repos.get(name)?.tags.delete(tag) ?? false;
  }

  async listTags(name: RepositoryName): Promise<Tag[] | undefined> {
    if (!(await this.exists(name))) return undefined;
    return [...this.repo(name).tags.keys()].sort();
  }

  async addReferrer(name: RepositoryName, subject: Digest, referrer: Descriptor): Promise<void> {
    const repo = this.repo(name);
    let set = repo.referrers.get(subject);
    if (!set) repo.referrers.set(subject, (set = new Map()));
    set.set(referrer.digest, { ...referrer });
  }

  async removeReferrer(name: RepositoryName, subject: Digest, referrer: Digest): Promise<void> {
    this.repos.get(name)?.referrers.get(subject)?.delete(referrer);
  }

  async listReferrers(name: RepositoryName, subject: Digest): Promise<Descriptor[]> {
    const set = this.repos.get(name)?.referrers.get(subject);
    if (!set) return [];
    return [...set.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1));
  }

  async addUpload(name: RepositoryName, id: string): Promise<void> {
    this.repo(name).uploads.add(id);
  }

  async hasUpload(name: RepositoryName, id: string): Promise<boolean> {
    return this.repos.get(name)?.uploads.has(id) ?? false;
  }

  async removeUpload(name: RepositoryName, id: string): Promise<void> {
    this.repos.get(name)?.uploads.delete(id);
  }

  async hasUploadInAnyRepository(id: string): Promise<boolean> {
    for (const r of this.repos.values()) if (r.uploads.has(id)) return true;
    return false;
  }
}
