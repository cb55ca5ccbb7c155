// Test images built offline: an OCI image layout on disk (oci-layout, index.json, blobs/sha256/...) holding
// a 3-layer image and a two-platform image index, written by hand so no registry or internet is needed.
// Layers are gzip tars of random bytes: sizes are fixed (so transfers are comparable), content differs on
// every build (so no cache anywhere can hold them from an earlier run).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export interface TestImage {
  /** Tag in the layout (`oci:DIR:tag`); undefined for a manifest that is only reachable through an index. */
  tag?: string;
  /** Digest of the manifest bytes. */
  digest: string;
  manifest: Buffer;
  config: Descriptor;
  layers: Descriptor[];
  platform: { architecture: string; os: string };
}

export interface TestIndex {
  tag: string;
  digest: string;
  index: Buffer;
  manifests: TestImage[];
}

export interface TestLayout {
  dir: string;
  /** The 3-layer linux/amd64 image. */
  image: TestImage & { tag: string };
  /** The linux/amd64 + linux/arm64 index; each platform has its own config and layers. */
  index: TestIndex;
  tags: string[];
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function blobPath(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(layoutDir, 'blobs', alg!, hex!);
}

/** Serializes JSON the way it is stored: the digest is over these exact bytes. */
function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

// --- a minimal ustar writer: regular files only, which is all a test layer needs ---

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii'); // mode
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(1_700_000_000, 12), 136, 'ascii'); // mtime: fixed, it only has to be valid
  h.write('        ', 148, 'ascii'); // checksum is computed with this field as spaces
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** A tar archive holding one regular file, padded to 512-byte records and closed by two empty records. */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const pad = (512 - (content.length % 512)) % 512;
  return Buffer.concat([tarHeader(name, content.length), content, Buffer.alloc(pad), Buffer.alloc(1024)]);
}

// --- the layout ---

class LayoutWriter {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), jsonBytes({ imageLayoutVersion: '1.0.0' }));
  }

  async blob(mediaType: string, data: Buffer): Promise<Descriptor> {
    const digest = sha256(data);
    await writeFile(blobPath(this.dir, digest), data);
    return { mediaType, digest, size: data.length };
  }

  /** Writes a platform image: one gzip layer per size in layerSizes, a config naming their diff_ids, a manifest. */
  async image(platform: { architecture: string; os: string }, layerSizes: number[]): Promise<TestImage> {
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const [i, size] of layerSizes.entries()) {
      const tar = tarOneFile(`layer-${i + 1}-${platform.architecture}.bin`, randomBytes(size));
      diffIds.push(sha256(tar));
      layers.push(await this.blob(OCI_LAYER_GZIP, gzipSync(tar, { level: 1 })));
    }
    const config = await this.blob(
      OCI_CONFIG,
      jsonBytes({
        created: '2024-01-01T00:00:00Z',
        architecture: platform.architecture,
        os: platform.os,
        config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layerd test layer ${i + 1}` })),
      }),
    );
    const manifest = jsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers });
    const desc = await this.blob(OCI_MANIFEST, manifest);
    return { digest: desc.digest, manifest, config, layers, platform };
  }

  async index(manifests: TestImage[]): Promise<{ digest: string; index: Buffer }> {
    const index = jsonBytes({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: manifests.map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.manifest.length, platform: m.platform })),
    });
    const desc = await this.blob(OCI_INDEX, index);
    return { digest: desc.digest, index };
  }

  async writeIndexJson(refs: Array<Descriptor & { tag: string }>): Promise<void> {
    const manifests = refs.map(({ tag, mediaType, digest, size }) => ({ mediaType, digest, size, annotations: { [REF_NAME]: tag } }));
    await writeFile(join(this.dir, 'index.json'), jsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  }
}

/** Default sizes (uncompressed file bytes per layer): random bytes barely compress, so blobs are about this big. */
export const IMAGE_LAYER_SIZES = [300_000, 1_000_000, 2_500_000];
export const INDEX_LAYER_SIZES = [200_000, 700_000];

/**
 * Builds the layout in `dir` (created if missing): tag `v1` is the 3-layer linux/amd64 image, tag `multi`
 * the linux/amd64 + linux/arm64 index. Copy them with `skopeo copy oci:DIR:v1 ...` (`--all` for `multi`).
 */
export async function buildTestLayout(
  dir: string,
  opts: { imageLayerSizes?: number[]; indexLayerSizes?: number[] } = {},
): Promise<TestLayout> {
  const w = new LayoutWriter(dir);
  await w.init();
  const amd64 = { architecture: 'amd64', os: 'linux' };
  const arm64 = { architecture: 'arm64', os: 'linux' };

  const image = { ...(await w.image(amd64, opts.imageLayerSizes ?? IMAGE_LAYER_SIZES)), tag: 'v1' };
  const platforms = [await w.image(amd64, opts.indexLayerSizes ?? INDEX_LAYER_SIZES), await w.image(arm64, opts.indexLayerSizes ?? INDEX_LAYER_SIZES)];
  const idx = await w.index(platforms);
  const index: TestIndex = { tag: 'multi', digest: idx.digest, index: idx.index, manifests: platforms };

  await w.writeIndexJson([
    { tag: image.tag, mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length },
    { tag: index.tag, mediaType: OCI_INDEX, digest: index.digest, size: index.index.length },
  ]);
  return { dir, image, index, tags: [image.tag, index.tag] };
}

/** Digests of every blob an index or manifest reaches (itself included), in a stable order. */
export function reachableDigests(img: TestImage | TestIndex): string[] {
  const ofImage = (m: TestImage) => [m.digest, m.config.digest, ...m.layers.map((l) => l.digest)];
  const all = 'index' in img ? [img.digest, ...img.manifests.flatMap(ofImage)] : ofImage(img);
  return [...new Set(all)].sort();
}

/** Reads the descriptor a tag points to in a layout's index.json. */
export async function layoutRef(layoutDir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const found = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!found) throw new Error(`tag ${tag} not in ${layoutDir}/index.json`);
  return found;
}

/**
 * Walks a layout from a tag and returns every reachable blob (index → manifests → config + layers) as
 * digest → bytes, after checking each file hashes to its name.
 */
export async function readReachableBlobs(layoutDir: string, tag: string): Promise<Map<string, Buffer>> {
  const blobs = new Map<string, Buffer>();
  const visit = async (desc: Descriptor): Promise<void> => {
    if (blobs.has(desc.digest)) return;
    const data = await readFile(blobPath(layoutDir, desc.digest));
    if (sha256(data) !== desc.digest) throw new Error(`${layoutDir}: blob ${desc.digest} does not hash to its name`);
    blobs.set(desc.digest, data);
    if (desc.mediaType === OCI_INDEX || desc.mediaType === OCI_MANIFEST) {
      const doc = JSON.parse(data.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
      for (const child of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) await visit(child);
    }
  };
  await visit(await layoutRef(layoutDir, tag));
  return blobs;
}
