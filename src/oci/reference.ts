// Repository names, tags and image references, validated by the OCI spec's grammar. Parsing happens
// once, at the edge (HTTP path or CLI argument); the branded types say "already checked".
import { OciError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

declare const nameBrand: unique symbol;
export type RepositoryName = string & { readonly [nameBrand]: true };
declare const tagBrand: unique symbol;
export type Tag = string & { readonly [tagBrand]: true };

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_GRAMMAR = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Same limit as CNCF distribution: keeps names inside filesystem path limits. */
export const MAX_NAME_LENGTH = 255;

export function parseRepositoryName(value: string): RepositoryName {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH || !NAME_GRAMMAR.test(value)) {
    throw new OciError('NAME_INVALID', `invalid repository name: ${JSON.stringify(String(value).slice(0, 300))}`);
  }
  return value as RepositoryName;
}

export function parseTag(value: string): Tag {
  if (typeof value !== 'string' || !TAG_GRAMMAR.test(value)) {
    throw new OciError('TAG_INVALID', `invalid tag: ${JSON.stringify(String(value).slice(0, 200))}`);
  }
  return value as Tag;
}

export function isTag(value: string): boolean {
  return TAG_GRAMMAR.test(value);
}

/**
 * The order of tags/list and _catalog: the spec's "lexical (case-insensitive alphanumeric) order",
 * with a case-sensitive tie-break so that the order is total and `last` is unambiguous.
 */
export function compareLexical(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (la !== lb) return la < lb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The <reference> of /v2/<name>/manifests/<reference>: a tag or a digest. */
export type ManifestReference = { kind: 'tag'; tag: Tag } | { kind: 'digest'; digest: Digest };

export function parseManifestReference(value: string): ManifestReference {
  if (value.includes(':')) return { kind: 'digest', digest: parseDigest(value) };
  return { kind: 'tag', tag: parseTag(value) };
}

export function referenceString(ref: ManifestReference): string {
  return ref.kind === 'tag' ? ref.tag : ref.digest;
}

/** A full image reference as users type it: [registry/]repository[:tag][@digest]. */
export interface ImageReference {
  registry: string;
  repository: RepositoryName;
  tag?: Tag;
  digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API lives: the name docker.io is not itself a registry host. */
export const DOCKER_HUB_URL = 'https://registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const REGISTRY_GRAMMAR = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$|^\[[0-9a-f:.]+\](?::\d{1,5})?$/;

/** A registry host name as clients say it (`docker.io`, `seed:5000`), lower-cased, Docker Hub's aliases folded. */
export function parseRegistryName(raw: string): string {
  let name = String(raw).trim().toLowerCase();
  if (DOCKER_HUB_ALIASES.has(name)) name = DOCKER_HUB;
  if (!REGISTRY_GRAMMAR.test(name)) {
    throw new OciError('NAME_INVALID', `invalid registry name ${JSON.stringify(String(raw).slice(0, 100))}: want a host[:port] such as docker.io or seed:5000`);
  }
  return name;
}

/** Docker Hub keeps official images under library/: `alpine` there means `library/alpine`. */
export function normalizeRepository(registry: string, repository: RepositoryName): RepositoryName {
  return registry === DOCKER_HUB && !repository.includes('/') ? (`library/${repository}` as RepositoryName) : repository;
}

/**
 * Parses `alpine`, `alpine:3`, `ghcr.io/org/app@sha256:...`, `127.0.0.1:5000/test/img:v1`.
 * The first component names a registry when it looks like a host (has a dot or a port, or is localhost),
 * as docker does; otherwise the image lives on defaultRegistry. Docker Hub implies `library/` for
 * single-component names.
 */
export function parseImageReference(input: string, defaultRegistry: string = DOCKER_HUB): ImageReference {
  if (typeof input !== 'string' || input.length === 0 || input.length > 1024) {
    throw new OciError('NAME_INVALID', 'invalid image reference: empty or too long');
  }
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: Tag | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = parseTag(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  let registry = defaultRegistry;
  const firstSlash = rest.indexOf('/');
  if (firstSlash > 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(firstSlash + 1);
    }
  }
  registry = parseRegistryName(registry);
  const repository = normalizeRepository(registry, parseRepositoryName(rest));
  if (!tag && !digest) tag = 'latest' as Tag;
  const ref: ImageReference = { registry, repository };
  if (tag) ref.tag = tag;
  if (digest) ref.digest = digest;
  return ref;
}

export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
