// The registry's own content: what a client pushed to this node, served back under the OCI
// distribution API. It enforces the repository rules (links, tags, referrers) over the two stores and
// speaks only in OciErrors, so the HTTP layer above needs no knowledge of storage.
import { Readable } from 'node:stream';
import {
  algorithmOf,
  compareLexical,
  digestOf,
  MediaType,
  OciError,
  parseManifest,
  parseRepositoryName,
  type ByteRange,
  type Descriptor,
  type Digest,
  type ManifestReference,
  type RepositoryName,
  type Tag,
} from '../../oci/index.js';
import {
  BlobNotFoundError,
  DigestMismatchError,
  OffsetMismatchError,
  readSmallBlob,
  type BlobInfo,
  type BlobStore,
  type BlobWriter,
  type ByteSource,
  type CollectionGuard,
  type ManifestRecord,
  type OpenBlob,
  type RepositoryStore,
} from '../../store/index.js';
import { tooLarge, withinLimit } from './byte-limit.js';
import type { UploadSessions } from './upload-sessions.js';

/** What pushes may take: the largest blob, and the sessions open at once. */
export interface UploadLimits {
  maxUploadBytes?: number;
  sessions?: UploadSessions;
}

export interface RegistryOptions extends UploadLimits {
  /**
   * Held from before a push commits a blob or manifest until its link is written, so a collection that
   * begins in between does not take the new content for unlinked (the blob store's guard).
   */
  guard?: CollectionGuard;
}

export interface StoredManifest extends ManifestRecord {
  bytes: Buffer;
}

/**
 * What a manifest PUT may take that the repository does not link yet: a blob or child manifest that a
 * pull of this very repository would be served (so a HEAD or GET told the pushing client it is there,
 * and it skipped the upload). True (or the record) once it is in the store.
 */
export interface Adopter {
  blob(digest: Digest): Promise<boolean>;
  manifest(digest: Digest): Promise<ManifestRecord | undefined>;
}

export interface Page<T> {
  items: T[];
  /** The last item returned, when more remain after it. */
  next?: string;
}

export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: typeof MediaType.OciIndex;
  manifests: Descriptor[];
}

/**
 * The registry this node is to its clients: what was pushed here, under the rules a push must meet. Not
 * a seed (seed/) and not a registry name (a request's ?ns=): "local" says which of the three it is.
 */
export class LocalRegistry {
  /** Names places in the session count for pushes that have no session id (yet). */
  private sessionTokens = 0;

  constructor(
    private readonly blobs: BlobStore,
    private readonly repos: RepositoryStore,
    private readonly limits: RegistryOptions = {},
  ) {}

  /** Runs `work` (a commit and its link) with `digest` held from collections. */
  private held<T>(digest: Digest, work: () => Promise<T>): Promise<T> {
    return this.limits.guard ? this.limits.guard.holding(digest, work) : work();
  }

  // ---- manifests ----

  async resolveManifest(repo: RepositoryName, ref: ManifestReference): Promise<ManifestRecord> {
    const digest = ref.kind === 'digest' ? ref.digest : await this.repos.getTag(repo, ref.tag);
    const record = digest ? await this.repos.getManifest(repo, digest) : undefined;
    if (!record) throw await this.manifestUnknown(repo, ref);
    return record;
  }

  async getManifest(repo: RepositoryName, ref: ManifestReference): Promise<StoredManifest> {
    const record = await this.resolveManifest(repo, ref);
    try {
      return { ...record, bytes: await readSmallBlob(this.blobs, record.digest) };
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw await this.manifestUnknown(repo, ref);
      throw err;
    }
  }

  private async manifestUnknown(repo: RepositoryName, ref: ManifestReference): Promise<OciError> {
    if (!(await this.repos.exists(repo))) return new OciError('NAME_UNKNOWN', `repository ${repo} not known to registry`);
    const what = ref.kind === 'tag' ? `tag ${ref.tag}` : ref.digest;
    return new OciError('MANIFEST_UNKNOWN', `manifest ${what} not found in ${repo}`);
  }

  /**
   * Stores a pushed manifest. Everything it references must already be in the repository, so a tag
   * never points at an image that cannot be pulled; `adopt` may vouch for what the repository does not
   * link yet (see Adopter), and that is then linked into it.
   */
  async putManifest(repo: RepositoryName, ref: ManifestReference, bytes: Buffer, contentType: string | undefined, adopt?: Adopter): Promise<ManifestRecord> {
    const parsed = parseManifest(bytes, contentType);
    const digest = digestOf(bytes, ref.kind === 'digest' ? algorithmOf(ref.digest) : 'sha256');
    if (ref.kind === 'digest' && ref.digest !== digest) {
      throw new OciError('DIGEST_INVALID', `manifest body has digest ${digest}, not ${ref.digest}`);
    }
    const adoptedBlobs: Digest[] = [];
    const adoptedManifests: ManifestRecord[] = [];
    for (const blob of parsed.blobs) {
      if ((await this.repos.hasBlob(repo, blob.digest)) && (await this.blobs.stat(blob.digest))) continue;
      if (adopt && (await adopt.blob(blob.digest)) && (await this.blobs.stat(blob.digest))) {
        adoptedBlobs.push(blob.digest);
        continue;
      }
      throw new OciError('MANIFEST_BLOB_UNKNOWN', `blob ${blob.digest} is not in ${repo}`, { detail: { digest: blob.digest } });
    }
    for (const child of parsed.manifests) {
      if (await this.repos.getManifest(repo, child.digest)) continue;
      const adopted = adopt ? await adopt.manifest(child.digest) : undefined;
      if (adopted && (await this.blobs.stat(child.digest))) {
        adoptedManifests.push(adopted);
        continue;
      }
      throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest ${child.digest} is not in ${repo}`, { detail: { digest: child.digest } });
    }
    // Links made while a collection runs are recorded by the guarded stores, so these are spared too.
    for (const d of adoptedBlobs) await this.repos.linkBlob(repo, d);
    for (const m of adoptedManifests) await this.repos.putManifest(repo, m);
    const record: ManifestRecord = { digest, mediaType: parsed.mediaType, size: bytes.length };
    if (parsed.subject) record.subject = parsed.subject.digest;
    await this.held(digest, async () => {
      await this.blobs.put(Readable.from([bytes]), digest);
      await this.repos.putManifest(repo, record);
    });
    if (ref.kind === 'tag') await this.repos.setTag(repo, ref.tag, digest);
    if (parsed.subject) {
      const referrer: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.length };
      if (parsed.artifactType) referrer.artifactType = parsed.artifactType;
      if (parsed.annotations) referrer.annotations = parsed.annotations;
      await this.repos.addReferrer(repo, parsed.subject.digest, referrer);
    }
    return record;
  }

  /** By tag: removes the tag only. By digest: removes the manifest, every tag on it, and its referrer entry. */
  async deleteManifest(repo: RepositoryName, ref: ManifestReference): Promise<void> {
    if (ref.kind === 'tag') {
      if (!(await this.repos.deleteTag(repo, ref.tag))) throw await this.manifestUnknown(repo, ref);
      return;
    }
    const record = await this.repos.getManifest(repo, ref.digest);
    if (!record) throw await this.manifestUnknown(repo, ref);
    for (const tag of (await this.repos.listTags(repo)) ?? []) {
      if ((await this.repos.getTag(repo, tag)) === ref.digest) await this.repos.deleteTag(repo, tag);
    }
    if (record.subject) await this.repos.removeReferrer(repo, record.subject, record.digest);
    await this.repos.deleteManifest(repo, ref.digest);
    // The bytes stay in the blob store: another repository may link the same manifest. GC reclaims them.
  }

  // ---- blobs ----

  async statBlob(repo: RepositoryName, digest: Digest): Promise<BlobInfo> {
    const info = (await this.repos.hasBlob(repo, digest)) ? await this.blobs.stat(digest) : undefined;
    if (!info) throw blobUnknown(repo, digest);
    return info;
  }

  async openBlob(repo: RepositoryName, digest: Digest, range?: ByteRange): Promise<OpenBlob> {
    if (!(await this.repos.hasBlob(repo, digest))) throw blobUnknown(repo, digest);
    try {
      return await this.blobs.open(digest, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw blobUnknown(repo, digest);
      throw err;
    }
  }

  /** Unlinks the blob from this repository only; the content stays for others that link it. */
  async deleteBlob(repo: RepositoryName, digest: Digest): Promise<void> {
    if (!(await this.repos.unlinkBlob(repo, digest))) throw blobUnknown(repo, digest);
  }

  // ---- uploads ----

  /** Cross-repository mount: true when `from` holds the blob and it is now linked into `repo`. */
  async mountBlob(repo: RepositoryName, digest: Digest, from: string): Promise<boolean> {
    const source = parseRepositoryName(from);
    // Held before the check: a collection cannot remove the blob between the check and the new link.
    return this.held(digest, async () => {
      if (!(await this.repos.hasBlob(source, digest)) || !(await this.blobs.stat(digest))) return false;
      await this.repos.linkBlob(repo, digest);
      return true;
    });
  }

  async startUpload(repo: RepositoryName): Promise<string> {
    // The place is held from before the writer exists, so concurrent starts cannot overshoot the limit.
    const pending = `pending-${++this.sessionTokens}`;
    this.limits.sessions?.admit(pending);
    try {
      const writer = await this.blobs.createWriter();
      this.limits.sessions?.touch(writer.id);
      await this.repos.addUpload(repo, writer.id);
      return writer.id;
    } finally {
      this.limits.sessions?.close(pending);
    }
  }
  /** POST ?digest=: the whole blob in one request (a session too while it runs). `declared`: its Content-Length. */
  async uploadWhole(repo: RepositoryName, digest: Digest, body: ByteSource, declared?: number): Promise<BlobInfo> {
    const max = this.limits.maxUploadBytes;
    if (max !== undefined && declared !== undefined && declared > max) throw tooLarge(max);
    const session = `whole-${++this.sessionTokens}`;
    this.limits.sessions?.admit(session);
    try {
      const source = max === undefined ? body : withinLimit(body, max, max);
      return await this.held(digest, async () => {
        const info = await this.withDigestCheck(() => this.blobs.put(source, digest));
        await this.repos.linkBlob(repo, digest);
        return info;
      });
    } finally {
      this.limits.sessions?.close(session);
    }
  }

  async uploadSize(repo: RepositoryName, id: string): Promise<number> {
    return (await this.writer(repo, id)).size();
  }

  /**
   * PATCH: one chunk; `at` is the chunk's start from Content-Range, when the client sent one, and
   * `declared` its Content-Length. A chunk that would take the blob past the upload limit ends the
   * session: its bytes are dropped and the client is answered 413.
   */
  async appendUpload(repo: RepositoryName, id: string, body: ByteSource, at?: number, declared?: number): Promise<number> {
    const writer = await this.writer(repo, id);
    const max = this.limits.maxUploadBytes;
    let source = body;
    try {
      if (max !== undefined) {
        const start = at ?? writer.size();
        if (declared !== undefined && start + declared > max) throw tooLarge(max);
        source = withinLimit(body, max - start, max);
      }
      return await writer.append(source, { at });
    } catch (err) {
      if (err instanceof OffsetMismatchError) {
        throw new OciError('RANGE_INVALID', err.message, { detail: { offset: err.actual } });
      }
      if (err instanceof OciError && err.status === 413) await this.dropUpload(repo, id, writer);
      throw err;
    }
  }

  /** PUT ?digest=: the optional last chunk, then verify and commit. A digest mismatch ends the session. */
  async completeUpload(repo: RepositoryName, id: string, digest: Digest, body: ByteSource | undefined, at?: number, declared?: number): Promise<BlobInfo> {
    const writer = await this.writer(repo, id);
    if (body) await this.appendUpload(repo, id, body, at, declared);
    const info = await this.held(digest, async () => {
      let committed: BlobInfo;
      try {
        committed = await this.withDigestCheck(() => writer.commit(digest));
      } catch (err) {
        if (err instanceof OciError && err.code === 'DIGEST_INVALID') await this.dropUpload(repo, id, writer);
        throw err;
      }
      await this.repos.linkBlob(repo, digest);
      return committed;
    });
    await this.repos.removeUpload(repo, id);
    this.limits.sessions?.close(id);
    return info;
  }

  async cancelUpload(repo: RepositoryName, id: string): Promise<void> {
    const writer = await this.writer(repo, id);
    await writer.abort();
    await this.repos.removeUpload(repo, id);
    this.limits.sessions?.close(id);
  }

  /** Ends a session that cannot go on: its bytes and its record go, and its place is free. */
  private async dropUpload(repo: RepositoryName, id: string, writer: BlobWriter): Promise<void> {
    await writer.abort().catch(() => undefined);
    await this.repos.removeUpload(repo, id);
    this.limits.sessions?.close(id);
  }

  private async writer(repo: RepositoryName, id: string): Promise<BlobWriter> {
    const writer = UPLOAD_ID.test(id) && (await this.repos.hasUpload(repo, id)) ? await this.blobs.resumeWriter(id) : undefined;
    if (!writer) throw new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${id} not found in ${repo}`);
    this.limits.sessions?.touch(id);
    return writer;
  }

  private async withDigestCheck<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof DigestMismatchError) {
        throw new OciError('DIGEST_INVALID', err.message, { detail: { expected: err.expected, actual: err.actual } });
      }
      throw err;
    }
  }

  // ---- listings ----

  async listTags(repo: RepositoryName, n?: number, last?: string): Promise<Page<Tag>> {
    const tags = await this.repos.listTags(repo);
    if (!tags) throw new OciError('NAME_UNKNOWN', `repository ${repo} not known to registry`);
    return paginate(tags, n, last);
  }

  /** The repositories `visible` lets the caller see (filtered before paging, so pages stay full). */
  async catalog(n?: number, last?: string, visible: (repo: RepositoryName) => boolean = () => true): Promise<Page<RepositoryName>> {
    return paginate((await this.repos.listRepositories()).filter(visible), n, last);
  }

  /** Whether anything was pushed to (or mounted into) the repository on this node. */
  async hasRepository(repo: RepositoryName): Promise<boolean> {
    return this.repos.exists(repo);
  }

  /** Points each tag at a manifest the repository holds (a push by digest with `?tag=`). */
  async tagManifest(repo: RepositoryName, digest: Digest, tags: readonly Tag[]): Promise<void> {
    if (!(await this.repos.getManifest(repo, digest))) throw new OciError('MANIFEST_UNKNOWN', `manifest ${digest} not found in ${repo}`);
    for (const tag of tags) await this.repos.setTag(repo, tag, digest);
  }

  async referrers(repo: RepositoryName, subject: Digest, artifactType?: string): Promise<ReferrersIndex> {
    let manifests = await this.repos.listReferrers(repo, subject);
    if (artifactType !== undefined) manifests = manifests.filter((d) => d.artifactType === artifactType);
    return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  }
}

/** Upload ids are the store's writer ids: UUIDs. Anything else never reaches a path. */
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function blobUnknown(repo: RepositoryName, digest: Digest): OciError {
  return new OciError('BLOB_UNKNOWN', `blob ${digest} not found in ${repo}`, { detail: { digest } });
}

/** The spec's pagination: the items in lexical order after `last`, at most `n` of them. */
export function paginate<T extends string>(all: readonly T[], n?: number, last?: string): Page<T> {
  const sorted = [...all].sort(compareLexical);
  const from = last === undefined ? sorted : sorted.filter((item) => compareLexical(item, last) > 0);
  if (n === undefined || from.length <= n) return { items: from };
  const items = from.slice(0, n);
  const page: Page<T> = { items };
  if (items.length > 0) page.next = items[items.length - 1];
  return page;
}
