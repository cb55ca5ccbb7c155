// The read path a client meets: content pushed to this node first, then the mirror of the registry the
// request means (containerd's ?ns=, else the default registry). Writes (pushes, deletes) only ever go
// to this node's own registry.
import { failureOf, parseRegistryName, type Digest, type ManifestReference, type RepositoryName } from '../../oci/index.js';
import type { BlobAnswer, ManifestAnswer } from '../answers.js';
import type { Mirror } from './mirror.js';
import type { MirrorListings, ReferrersAnswer, TagsAnswer } from './mirror-listings.js';
import type { Adopter, LocalRegistry } from '../registry/index.js';
import type { ManifestRecord } from '../../store/index.js';

export class Distribution {
  constructor(
    readonly registry: LocalRegistry,
    private readonly mirror: Mirror | undefined,
    private readonly defaultRegistry: string,
    /** Tags and referrers of seed repositories (absent: only this node's own are listed). */
    private readonly listings?: MirrorListings,
  ) {}

  /** The registry a request means: `?ns=` when given, else the default. */
  targetOf(ns: string | null): string {
    return ns === null || ns === '' ? this.defaultRegistry : parseRegistryName(ns);
  }

  async manifest(name: RepositoryName, ref: ManifestReference, ns: string | null): Promise<ManifestAnswer> {
    const target = this.targetOf(ns);
    try {
      const local = await this.registry.getManifest(name, ref);
      return { record: local, bytes: local.bytes, source: 'local', stale: false };
    } catch (err) {
      if (!this.mirrors(err, target, 'manifest')) throw err;
    }
    return { ...(await this.mirror!.manifest(target, name, ref)), registry: target };
  }

  async blob(name: RepositoryName, digest: Digest, ns: string | null, head: boolean): Promise<BlobAnswer> {
    const target = this.targetOf(ns);
    try {
      const info = await this.registry.statBlob(name, digest);
      return { digest, size: info.size, source: 'local', open: async (range) => (await this.registry.openBlob(name, digest, range)).stream };
    } catch (err) {
      if (!this.mirrors(err, target, 'blob')) throw err;
    }
    return { ...(await this.mirror!.blob(target, name, digest, head)), registry: target };
  }

  /**
   * A repository pushed to this node lists its own tags; any other is listed by the seed of the registry
   * the request means, when there is one.
   */
  async tags(name: RepositoryName, n: number | undefined, last: string | undefined, ns: string | null): Promise<TagsAnswer> {
    const target = this.targetOf(ns);
    try {
      const page = await this.registry.listTags(name, n, last);
      return { tags: page.items, next: page.next !== undefined && n !== undefined ? { n, last: page.next } : undefined, stale: false };
    } catch (err) {
      // The registry's one miss here is an unknown repository: listed by the seed, if there is one.
      if (failureOf(err) !== 'not-found' || !this.listings?.serves(target)) throw err;
    }
    return this.listings.tags(target, name, n, last);
  }

  /** Referrers, the same way: this node's own for a repository pushed to it, else the seed's. */
  async referrers(name: RepositoryName, subject: Digest, params: URLSearchParams, ns: string | null): Promise<ReferrersAnswer> {
    const target = this.targetOf(ns);
    if (this.listings?.serves(target) && !(await this.registry.hasRepository(name))) {
      return this.listings.referrers(target, name, subject, params);
    }
    const artifactType = params.get('artifactType') ?? undefined;
    const index = await this.registry.referrers(name, subject, artifactType);
    return { manifests: index.manifests, filtered: artifactType !== undefined, stale: false };
  }

  /**
   * A pushed manifest. HEAD and GET on /v2/<name>/... serve what the mirror of the default registry
   * serves for that name (content fetched for it, or that its seed or, with no seed, the peers have),
   * and a pushing client skips uploading whatever they answer 200 for. So the PUT takes exactly that
   * too, through the same path as a GET (fetching it if it is not held), and links it into the
   * repository: HEAD, GET and PUT agree, and nothing a pull could not read is linked. Everything else
   * must be pushed or mounted (?mount=) into the repository first.
   */
  putManifest(name: RepositoryName, ref: ManifestReference, bytes: Buffer, contentType: string | undefined): Promise<ManifestRecord> {
    return this.registry.putManifest(name, ref, bytes, contentType, this.mirror ? this.adopter(this.mirror, name) : undefined);
  }

  private adopter(mirror: Mirror, name: RepositoryName): Adopter {
    const target = this.defaultRegistry;
    return {
      blob: async (digest) => {
        if (!mirror.servesBlobs(target)) return false;
        try {
          await (await mirror.blob(target, name, digest, false)).stored;
          return true;
        } catch {
          return false; // the seed and peers do not have it for this name (or cannot say): not in the repository
        }
      },
      manifest: async (digest) => {
        if (!mirror.serves(target)) return undefined;
        try {
          return (await mirror.manifest(target, name, { kind: 'digest', digest })).record;
        } catch {
          return undefined;
        }
      },
    };
  }

  /**
   * A local miss goes to the mirror when it can get the content: a seed for manifests, a seed or peers for
   * blobs. A miss is what the failure says of itself (failureOf), not the class or status it comes in:
   * anything else (a broken disk, a refusal) is the registry's own answer and goes to the client.
   */
  private mirrors(err: unknown, target: string, kind: 'manifest' | 'blob'): boolean {
    if (failureOf(err) !== 'not-found' || !this.mirror) return false;
    return kind === 'manifest' ? this.mirror.serves(target) : this.mirror.servesBlobs(target);
  }
}
