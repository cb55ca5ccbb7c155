// Media types and manifest parsing. A manifest is validated once when it is pushed (or fetched from a
// seed), and the parts the registry needs — what it references, its subject — are pulled out here.
import { OciError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
];

/** What a client sends in Accept to get any manifest layerd can store. */
export const ACCEPT_ALL_MANIFESTS = MANIFEST_MEDIA_TYPES.join(', ');

/** Pushes larger than this are refused, as the OCI spec recommends (4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const NON_DISTRIBUTABLE = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Record<string, unknown>;
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  isIndex: boolean;
  /** Blobs this manifest needs in the same repository (config and layers). */
  blobs: Descriptor[];
  /** Manifests an index references. */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function isManifestMediaType(value: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(value);
}

/** A media type without its parameters (`; charset=utf-8`), lower-cased. */
export function bareMediaType(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const bare = contentType.split(';')[0]!.trim().toLowerCase();
  return bare === '' ? undefined : bare;
}

function invalid(message: string): OciError {
  return new OciError('MANIFEST_INVALID', message);
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where}: descriptor must be an object`);
  const v = value as Record<string, unknown>;
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw invalid(`${where}: mediaType missing`);
  if (typeof v.digest !== 'string') throw invalid(`${where}: digest missing`);
  let digest: Digest;
  try {
    digest = parseDigest(v.digest);
  } catch {
    throw invalid(`${where}: invalid digest ${JSON.stringify(v.digest.slice(0, 80))}`);
  }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw invalid(`${where}: size must be a non-negative integer`);
  const d: Descriptor = { mediaType: v.mediaType, digest, size: v.size };
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isStringMap(v.annotations)) d.annotations = v.annotations;
  else if (v.annotations !== undefined && v.annotations !== null) throw invalid(`${where}: annotations must map strings to strings`);
  if (typeof v.platform === 'object' && v.platform !== null) d.platform = v.platform as Record<string, unknown>;
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string');
  return d;
}

function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((x) => typeof x === 'string');
}

/**
 * Parses manifest bytes pushed with the given Content-Type. The media type is the Content-Type when it
 * names a manifest type, else the body's own `mediaType` field; the two must agree when both are given.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new OciError('SIZE_INVALID', `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`, { status: 413 });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw invalid('manifest is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('manifest must be a JSON object');
  const m = doc as Record<string, unknown>;
  const declared = bareMediaType(contentType);
  const bodyType = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  if (declared === MediaType.DockerSchema1 || declared === MediaType.DockerSchema1Signed || m.schemaVersion === 1) {
    throw invalid('Docker schema 1 manifests are not supported');
  }
  let mediaType: string | undefined;
  if (declared && isManifestMediaType(declared)) {
    if (bodyType !== undefined && bodyType !== declared) throw invalid(`mediaType ${bodyType} does not match Content-Type ${declared}`);
    mediaType = declared;
  } else if (bodyType !== undefined) {
    mediaType = bodyType;
  } else if (Array.isArray(m.manifests)) {
    mediaType = MediaType.OciIndex; // OCI allows the field to be absent
  } else if (m.config !== undefined) {
    mediaType = MediaType.OciManifest;
  }
  if (!mediaType || !isManifestMediaType(mediaType)) {
    throw invalid(`unsupported manifest media type: ${mediaType ?? declared ?? 'unknown'}`);
  }
  if (m.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const isIndex = mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
  const parsed: ParsedManifest = { mediaType, isIndex, blobs: [], manifests: [] };
  if (isIndex) {
    if (!Array.isArray(m.manifests)) throw invalid('index must have a manifests array');
    parsed.manifests = m.manifests.map((d, i) => parseDescriptor(d, `manifests[${i}]`));
  } else {
    const config = parseDescriptor(m.config, 'config');
    if (!Array.isArray(m.layers)) throw invalid('manifest must have a layers array');
    const layers = m.layers.map((d, i) => parseDescriptor(d, `layers[${i}]`));
    parsed.blobs = [config, ...layers.filter((l) => !NON_DISTRIBUTABLE.has(l.mediaType))];
    // An OCI artifact's type is its artifactType, else its config's media type (image-spec 1.1).
    parsed.artifactType = typeof m.artifactType === 'string' ? m.artifactType : config.mediaType;
  }
  if (isIndex && typeof m.artifactType === 'string') parsed.artifactType = m.artifactType;
  if (m.subject !== undefined && m.subject !== null) parsed.subject = parseDescriptor(m.subject, 'subject');
  if (isStringMap(m.annotations)) parsed.annotations = m.annotations;
  return parsed;
}

/** `os/arch[/variant]` as layerd's rollout API and CLI take it, e.g. linux/amd64 or linux/arm/v7. */
export function isPlatform(text: string): boolean {
  return /^[a-z0-9_.-]+\/[a-z0-9_.-]+(\/[a-z0-9_.-]+)?$/.test(text);
}

/** Whether an index entry is for the platform `want` (os/arch[/variant]; no variant matches any). */
export function platformMatches(d: Descriptor, want: string): boolean {
  const [os, arch, variant] = want.split('/');
  const p = (d.platform ?? {}) as { os?: string; architecture?: string; variant?: string };
  return p.os === os && p.architecture === arch && (variant === undefined || p.variant === variant);
}
