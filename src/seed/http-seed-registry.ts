// A seed registry over HTTP: the OCI distribution API's read side, through SeedClient (auth, retries,
// timeouts). This is the one place a seed's statuses and headers are read: a 404 becomes the answer
// "not there", every other status but the one expected a SeedError, and headers and bodies are parsed
// (bounded, checked) into the typed answers of seed-registry.ts.
import type { IncomingMessage } from 'node:http';
import {
  ACCEPT_ALL_MANIFESTS,
  algorithmOf,
  bareMediaType,
  digestOf,
  isManifestMediaType,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseDigest,
  parseManifest,
  referenceString,
  type Digest,
  type ManifestReference,
  type RepositoryName,
} from '../oci/index.js';
import { SeedError } from './errors.js';
import { readBody } from './http.js';
import { jsonOf, nextOfLink, parseReferrers, parseTagList, tagPageOf } from './listing-bodies.js';
import { SeedClient, headerOf, type SeedClientOptions } from './registry-client.js';
import type { SeedBlob, SeedManifest, SeedManifestHead, SeedReferrers, SeedRegistry, SeedTagPage, TagPageQuery } from './seed-registry.js';

/** A tag list is names of at most 128 characters: 4 MiB is some 30,000 of them. */
const MAX_TAG_LIST_BYTES = 4 * 1024 * 1024;

export class HttpSeedRegistry implements SeedRegistry {
  readonly name: string;
  private readonly client: SeedClient;

  constructor(opts: SeedClientOptions) {
    this.client = new SeedClient(opts);
    this.name = this.client.name;
  }

  async headManifest(repo: RepositoryName, ref: ManifestReference): Promise<SeedManifestHead | undefined> {
    const res = await this.client.request('HEAD', repo, `manifests/${referenceString(ref)}`, { accept: ACCEPT_ALL_MANIFESTS });
    res.resume();
    if (!this.found(res, 200)) return undefined;
    const digest = digestHeader(res);
    return digest ? { digest } : {};
  }

  async getManifest(repo: RepositoryName, ref: ManifestReference): Promise<SeedManifest | undefined> {
    const res = await this.client.request('GET', repo, `manifests/${referenceString(ref)}`, { accept: ACCEPT_ALL_MANIFESTS });
    if (!this.found(res, 200)) return undefined;
    const bytes = await this.body(res, MAX_MANIFEST_BYTES, 'manifest body');
    // By digest, the bytes must be the digest asked for; by tag, the one the seed announced (if it did).
    const want = ref.kind === 'digest' ? ref.digest : digestHeader(res);
    const digest = digestOf(bytes, want ? algorithmOf(want) : 'sha256');
    if (want && digest !== want) {
      throw new SeedError(this.name, 'protocol', `manifest ${referenceString(ref)} has digest ${digest}, not ${want}: refused`);
    }
    return { bytes, digest, mediaType: manifestMediaType(bytes, headerOf(res, 'content-type')) };
  }

  async statBlob(repo: RepositoryName, digest: Digest): Promise<{ size: number } | undefined> {
    const res = await this.client.request('HEAD', repo, `blobs/${digest}`);
    res.resume();
    if (!this.found(res, 200)) return undefined;
    const size = Number(headerOf(res, 'content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw new SeedError(this.name, 'protocol', 'blob HEAD without a length');
    return { size };
  }

  /**
   * From an offset, a Range is asked for. A seed that answers it with 200 sends the whole blob (start 0):
   * the caller skips what it has. A 206 must start where asked and run to the end of the blob.
   */
  async openBlob(repo: RepositoryName, digest: Digest, from = 0): Promise<SeedBlob | undefined> {
    const res = await this.client.request('GET', repo, `blobs/${digest}`, from > 0 ? { range: `bytes=${from}-` } : {});
    if (from > 0 && res.statusCode === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headerOf(res, 'content-range')?.trim() ?? '');
      const [start, end, size] = range ? [Number(range[1]), Number(range[2]), Number(range[3])] : [];
      if (start !== from || !Number.isSafeInteger(size) || end !== size! - 1) {
        res.destroy();
        throw new SeedError(this.name, 'protocol', `answered a Range from ${from} with Content-Range ${headerOf(res, 'content-range') ?? '(none)'}`);
      }
      return { size, start, stream: res };
    }
    if (!this.found(res, 200)) return undefined;
    const length = Number(headerOf(res, 'content-length'));
    return { size: Number.isSafeInteger(length) && length >= 0 ? length : undefined, start: 0, stream: res };
  }

  async listTags(repo: RepositoryName, page?: TagPageQuery): Promise<SeedTagPage | undefined> {
    const q = new URLSearchParams();
    if (page?.n !== undefined) q.set('n', String(page.n));
    if (page?.last !== undefined) q.set('last', page.last);
    const res = await this.client.request('GET', repo, `tags/list${q.size > 0 ? `?${q}` : ''}`, { accept: 'application/json' });
    if (!this.found(res, 200)) return undefined;
    const tags = parseTagList(this.name, jsonOf(this.name, await this.body(res, MAX_TAG_LIST_BYTES, 'tag list'), 'tag list'));
    const next = tagPageOf(nextOfLink(headerOf(res, 'link')));
    return next ? { tags, next } : { tags };
  }

  async referrers(repo: RepositoryName, subject: Digest, query: URLSearchParams): Promise<SeedReferrers | undefined> {
    const res = await this.client.request('GET', repo, `referrers/${subject}${query.size > 0 ? `?${query}` : ''}`, { accept: MediaType.OciIndex });
    if (!this.found(res, 200)) return undefined;
    const manifests = parseReferrers(this.name, jsonOf(this.name, await this.body(res, MAX_MANIFEST_BYTES, 'referrers index'), 'referrers index'));
    const applied = (headerOf(res, 'oci-filters-applied') ?? '').split(',').map((f) => f.trim());
    const answer: SeedReferrers = { manifests, filtered: applied.includes('artifactType') };
    const next = nextOfLink(headerOf(res, 'link'));
    if (next) answer.next = next;
    return answer;
  }

  close(): void {
    this.client.close();
  }

  /** `expected`: the answer asked for; 404: not there (false); anything else: the seed failed. */
  private found(res: IncomingMessage, expected: number): boolean {
    const status = res.statusCode ?? 0;
    if (status === expected) return true;
    res.resume();
    if (status === 404) return false;
    throw new SeedError(this.name, 'status', `answered ${status}`, status);
  }

  private async body(res: IncomingMessage, max: number, what: string): Promise<Buffer> {
    try {
      return await readBody(res, max);
    } catch (err) {
      throw new SeedError(this.name, 'protocol', `${what}: ${(err as Error).message}`);
    }
  }
}

function digestHeader(res: IncomingMessage): Digest | undefined {
  const value = headerOf(res, 'docker-content-digest');
  if (!value) return undefined;
  try {
    return parseDigest(value.trim());
  } catch {
    return undefined;
  }
}

/** The media type to serve a fetched manifest with: the seed's Content-Type if it names one, else the body's. */
function manifestMediaType(bytes: Buffer, contentType: string | undefined): string {
  const declared = bareMediaType(contentType);
  if (declared && isManifestMediaType(declared)) return declared;
  try {
    return parseManifest(bytes, contentType).mediaType;
  } catch {
    return declared ?? 'application/octet-stream';
  }
}
