// The RepositoryStore seam: what each repository links to. Content lives once in the BlobStore;
// a repository only holds links (blobs it may serve, manifest revisions, tags, referrers, uploads),
// so a blob pushed to repository A is not readable from B until B links it too.
import type { Descriptor, Digest, RepositoryName, Tag } from '../oci/index.js';
import type { ChangeStream, LinkChange } from './change-stream.js';

export interface ManifestRecord {
  digest: Digest;
  mediaType: string;
  size: number;
  /** The manifest's subject, kept so deleting the manifest also drops its referrer entry. */
  subject?: Digest;
}

/** Every store tells its subscribers of each link written or removed (LinkChange, change-stream.ts). */
export interface RepositoryStore extends ChangeStream<LinkChange> {
  exists(repo: RepositoryName): Promise<boolean>;
  listRepositories(): Promise<RepositoryName[]>;

  linkBlob(repo: RepositoryName, digest: Digest): Promise<void>;
  hasBlob(repo: RepositoryName, digest: Digest): Promise<boolean>;
  unlinkBlob(repo: RepositoryName, digest: Digest): Promise<boolean>;
  /** Every digest the repository links: its blobs and its manifests (for garbage collection). */
  listLinked(repo: RepositoryName): Promise<Digest[]>;

  putManifest(repo: RepositoryName, record: ManifestRecord): Promise<void>;
  getManifest(repo: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined>;
  deleteManifest(repo: RepositoryName, digest: Digest): Promise<boolean>;

  setTag(repo: RepositoryName, tag: Tag, digest: Digest): Promise<void>;
  getTag(repo: RepositoryName, tag: Tag): Promise<Digest | undefined>;
  deleteTag(repo: RepositoryName, tag: Tag): Promise<boolean>;
  /** Sorted tag names, or undefined when the repository does not exist. */
  listTags(repo: RepositoryName): Promise<Tag[] | undefined>;

  addReferrer(repo: RepositoryName, subject: Digest, referrer: Descriptor): Promise<void>;
  removeReferrer(repo: RepositoryName, subject: Digest, referrer: Digest): Promise<void>;
  listReferrers(repo: RepositoryName, subject: Digest): Promise<Descriptor[]>;

  addUpload(repo: RepositoryName, id: string): Promise<void>;
  hasUpload(repo: RepositoryName, id: string): Promise<boolean>;
  removeUpload(repo: RepositoryName, id: string): Promise<void>;
  /**
   * Whether any repository has an upload session `id`, including a repository that holds nothing else
   * yet (the first push to a new name): what decides, after a restart, whether an upload area is kept.
   */
  hasUploadInAnyRepository(id: string): Promise<boolean>;
}
