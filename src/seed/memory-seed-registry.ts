// The in-memory twin of a seed registry: content put in by the test, per repository as a registry keeps
// it, answered through the SeedRegistry seam with the same contract as HttpSeedRegistry
// (test/unit/seed/seed-registry.conformance.ts). The unit tests of the mirror's policy run against it,
// with the few controls they need: every call recorded, a seed that is down, one that ignores ranges
// or pages its tag list, and a blob body the test lets through by hand.
import { PassThrough, Readable } from 'node:stream';
import {
  compareLexical,
  digestOf,
  parseManifest,
  referenceString,
  type Descriptor,
  type Digest,
  type ManifestReference,
  type RepositoryName,
  type Tag,
} from '../oci/index.js';
import { SeedError } from './errors.js';
import type { SeedBlob, SeedManifest, SeedManifestHead, SeedReferrers, SeedRegistry, SeedTagPage, TagPageQuery } from './seed-registry.js';

export interface MemorySeedOptions {
  /** Answer an offset with the whole blob from byte 0, as a seed that ignores Range does. */
  ignoresRange?: boolean;
  /** At most this many tags per page of a tag list, the rest behind `next`. */
  tagPageSize?: number;
}

/** A blob body the test lets through: bytes up to an offset, then the rest. */
export interface HeldBody {
  /** Sends the bytes before `offset` to every body opened (and to be opened). */
  sendTo(offset: number): void;
  /** Sends the rest and ends the bodies. */
  finish(): void;
}

interface Repository {
  blobs: Map<Digest, Buffer>;
  manifests: Map<Digest, { bytes: Buffer; mediaType: string }>;
  tags: Map<Tag, Digest>;
}

interface Hold {
  sent: number;
  done: boolean;
  bodies: Array<{ body: PassThrough; at: number }>;
}

const CHUNK = 16 * 1024;

export class MemorySeedRegistry implements SeedRegistry {
  /** Every call, as `<method> <repo> <reference>[ <query>]`, oldest first. */
  readonly calls: string[] = [];
  /** While true, every call fails as an unreachable seed's would. */
  down = false;
  private readonly repos = new Map<string, Repository>();
  private readonly held = new Map<Digest, Hold>();

  constructor(
    readonly name: string,
    private readonly opts: MemorySeedOptions = {},
  ) {}

  // ---- content, as a client pushes it ----

  /** Puts a blob into a repository. `digest` may be a lie: the seed then serves other bytes under it. */
  putBlob(repo: string, bytes: Buffer, digest: Digest = digestOf(bytes)): Digest {
    this.repo(repo).blobs.set(digest, Buffer.from(bytes));
    return digest;
  }

  /** Puts a manifest into a repository, under `tag` when given. */
  putManifest(repo: string, bytes: Buffer, mediaType: string, tag?: string): Digest {
    const digest = digestOf(bytes);
    const r = this.repo(repo);
    r.manifests.set(digest, { bytes: Buffer.from(bytes), mediaType });
    if (tag !== undefined) r.tags.set(tag as Tag, digest);
    return digest;
  }

  /** Holds the bodies of a blob: nothing of it is sent until the test says. */
  holdBody(digest: Digest): HeldBody {
    const hold: Hold = { sent: 0, done: false, bodies: [] };
    this.held.set(digest, hold);
    return {
      sendTo: (offset) => {
        hold.sent = Math.max(hold.sent, offset);
        this.flush(digest, hold);
      },
      finish: () => {
        hold.done = true;
        this.flush(digest, hold);
      },
    };
  }

  /** Writes to each held body what the test let through and it has not had yet. */
  private flush(digest: Digest, hold: Hold): void {
    const bytes = this.blobBytes(digest) ?? Buffer.alloc(0);
    const to = hold.done ? bytes.length : Math.min(hold.sent, bytes.length);
    for (const b of hold.bodies) {
      if (to > b.at) b.body.write(bytes.subarray(b.at, to));
      b.at = Math.max(b.at, to);
      if (hold.done && !b.body.writableEnded) b.body.end();
    }
  }

  // ---- the seam ----

  async headManifest(repo: RepositoryName, ref: ManifestReference): Promise<SeedManifestHead | undefined> {
    this.call('headManifest', repo, referenceString(ref));
    const found = this.manifestOf(repo, ref);
    return found && { digest: found.digest };
  }

  async getManifest(repo: RepositoryName, ref: ManifestReference): Promise<SeedManifest | undefined> {
    this.call('getManifest', repo, referenceString(ref));
    const found = this.manifestOf(repo, ref);
    return found && { bytes: Buffer.from(found.bytes), mediaType: found.mediaType, digest: found.digest };
  }

  async statBlob(repo: RepositoryName, digest: Digest): Promise<{ size: number } | undefined> {
    this.call('statBlob', repo, digest);
    const bytes = this.repos.get(repo)?.blobs.get(digest);
    return bytes && { size: bytes.length };
  }

  async openBlob(repo: RepositoryName, digest: Digest, from = 0): Promise<SeedBlob | undefined> {
    this.call('openBlob', repo, digest, from > 0 ? `from=${from}` : undefined);
    const bytes = this.repos.get(repo)?.blobs.get(digest);
    if (!bytes) return undefined;
    const start = this.opts.ignoresRange ? 0 : Math.min(from, bytes.length);
    const hold = this.held.get(digest);
    if (!hold) return { size: bytes.length, start, stream: Readable.from(chunks(bytes.subarray(start))) };
    const body = new PassThrough();
    hold.bodies.push({ body, at: start });
    this.flush(digest, hold);
    return { size: bytes.length, start, stream: body };
  }

  async listTags(repo: RepositoryName, page: TagPageQuery = {}): Promise<SeedTagPage | undefined> {
    this.call('listTags', repo, '', page.last !== undefined ? `last=${page.last}` : undefined);
    const r = this.repos.get(repo);
    if (!r) return undefined;
    const all = [...r.tags.keys()].sort(compareLexical).filter((t) => page.last === undefined || compareLexical(t, page.last) > 0);
    const n = Math.min(page.n ?? Infinity, this.opts.tagPageSize ?? Infinity);
    const tags = all.slice(0, n);
    return tags.length < all.length ? { tags, next: { n: tags.length, last: tags.at(-1)! } } : { tags };
  }

  async referrers(repo: RepositoryName, subject: Digest, query: URLSearchParams): Promise<SeedReferrers | undefined> {
    this.call('referrers', repo, subject, query.size > 0 ? String(query) : undefined);
    const r = this.repos.get(repo);
    if (!r) return undefined;
    const artifactType = query.get('artifactType') ?? undefined;
    const manifests: Descriptor[] = [];
    for (const [digest, m] of r.manifests) {
      const parsed = parseManifest(m.bytes, m.mediaType);
      if (parsed.subject?.digest !== subject) continue;
      if (artifactType !== undefined && parsed.artifactType !== artifactType) continue;
      const d: Descriptor = { mediaType: parsed.mediaType, digest, size: m.bytes.length };
      if (parsed.artifactType) d.artifactType = parsed.artifactType;
      if (parsed.annotations) d.annotations = parsed.annotations;
      manifests.push(d);
    }
    return { manifests, filtered: artifactType !== undefined };
  }

  // ----

  private call(method: string, repo: string, ref: string, query?: string): void {
    this.calls.push([method, repo, ref, query].filter((p) => p).join(' '));
    if (this.down) throw new SeedError(this.name, 'unreachable', 'cannot connect (down)');
  }

  private repo(name: string): Repository {
    let r = this.repos.get(name);
    if (!r) this.repos.set(name, (r = { blobs: new Map(), manifests: new Map(), tags: new Map() }));
    return r;
  }

  private manifestOf(repo: string, ref: ManifestReference): { bytes: Buffer; mediaType: string; digest: Digest } | undefined {
    const r = this.repos.get(repo);
    const digest = ref.kind === 'digest' ? ref.digest : r?.tags.get(ref.tag);
    const m = digest && r?.manifests.get(digest);
    return m ? { ...m, digest: digest! } : undefined;
  }

  private blobBytes(digest: Digest): Buffer | undefined {
    for (const r of this.repos.values()) {
      const bytes = r.blobs.get(digest);
      if (bytes) return bytes;
    }
    return undefined;
  }
}

function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += CHUNK) out.push(bytes.subarray(at, at + CHUNK));
  return out;
}
