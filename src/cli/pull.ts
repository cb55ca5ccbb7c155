// `layerd pull IMAGE`: pulls an image through a node's /v2 endpoint exactly as a container runtime
// would (containerd's ?ns=<registry>, Accept for every manifest type), so the node fetches and keeps
// everything it does not hold yet. Every manifest and blob is checked against its digest here too: the
// command proves the node serves the right bytes, not only that it answered.
import {
  ACCEPT_ALL_MANIFESTS,
  algorithmOf,
  DOCKER_HUB,
  formatImageReference,
  isManifestMediaType,
  MAX_MANIFEST_BYTES,
  MediaType,
  newHash,
  OciError,
  parseDigest,
  parseImageReference,
  parseManifest,
  type Descriptor,
  type Digest,
  type ImageReference,
  type ParsedManifest,
} from '../oci/index.js';
import { RuntimeError, UsageError } from './command.js';
import { humanBytes, seconds, shortDigest } from './format.js';
import { NodeClient, TRANSFER_IDLE_MS, fetchFailureReason, idleTimeout } from './node-client.js';
import { createProgress, type Progress } from './progress.js';

/** Blobs transferred at once, as containerd does by default. */
const PARALLEL_BLOBS = 3;
/** Indexes of indexes are legal; deeper than this is a loop or an attack, not an image. */
const MAX_INDEX_DEPTH = 4;

export type Source = 'local' | 'peer' | 'upstream' | 'unknown';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PulledBlob {
  digest: string;
  size: number;
  source: Source;
}

export interface PulledManifest extends PulledBlob {
  mediaType: string;
  platform?: string;
}

export interface PullSummary {
  image: string;
  digest: string;
  manifests: PulledManifest[];
  blobs: PulledBlob[];
  /** `unknown` only when the node did not say (it is not layerd): absent otherwise. */
  bytesBySource: { local: number; peer: number; upstream: number; unknown?: number };
  seconds: number;
}

export interface PullOptions {
  node: string;
  /** The Authorization header to send (--user), for private repositories. */
  authorization?: string;
  image: string;
  platform?: string;
  /** Machine output: no per-blob lines on a non-terminal stderr. */
  json: boolean;
  stderr: NodeJS.WriteStream;
}

/** Parses IMAGE as users type it; a bad one is a usage error (exit 2). */
export function parseImageArg(input: string): ImageReference {
  try {
    return parseImageReference(input, DOCKER_HUB);
  } catch (err) {
    if (err instanceof OciError) throw new UsageError(`invalid image reference ${JSON.stringify(input)}: ${err.message}`);
    throw err;
  }
}

/** `os/arch[/variant]`, e.g. linux/amd64 or linux/arm/v7. */
export function parsePlatform(input: string): Platform {
  const parts = input.split('/');
  const valid = parts.length >= 2 && parts.length <= 3 && parts.every((p) => /^[a-z0-9][a-z0-9._-]*$/i.test(p));
  if (!valid) throw new UsageError(`--platform: invalid platform ${JSON.stringify(input)}: want os/arch[/variant], e.g. linux/amd64`);
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return p;
}

function platformOf(d: Descriptor): string | undefined {
  const p = d.platform;
  if (!p || typeof p.os !== 'string' || typeof p.architecture !== 'string') return undefined;
  return [p.os, p.architecture, typeof p.variant === 'string' ? p.variant : undefined].filter(Boolean).join('/');
}

function matches(d: Descriptor, want: Platform): boolean {
  const p = d.platform;
  if (!p) return false;
  return p.os === want.os && p.architecture === want.architecture && (want.variant === undefined || p.variant === want.variant);
}

function sourceOf(res: Response): Source {
  const s = res.headers.get('x-layerd-source');
  return s === 'local' || s === 'peer' || s === 'upstream' ? s : 'unknown';
}

class Puller {
  private readonly client: NodeClient;
  private readonly ns: string;

  constructor(
    node: string,
    private readonly ref: ImageReference,
    authorization?: string,
  ) {
    this.client = new NodeClient(node, authorization);
    // containerd names the registry it means in ?ns=; the node mirrors that registry.
    this.ns = `ns=${encodeURIComponent(ref.registry)}`;
  }

  private path(kind: 'manifests' | 'blobs', reference: string): string {
    return `/v2/${this.ref.repository}/${kind}/${reference}?${this.ns}`;
  }

  /** Fetches a manifest (small: read whole, bounded), checks its digest and parses it. */
  async manifest(reference: string, expected?: Digest): Promise<{ pulled: PulledManifest; parsed: ParsedManifest }> {
    const what = `manifest ${reference}`;
    const idle = idleTimeout(TRANSFER_IDLE_MS);
    const chunks: Uint8Array[] = [];
    let size = 0;
    let res: Response;
    try {
      res = await this.client.stream(this.path('manifests', reference), { headers: { accept: ACCEPT_ALL_MANIFESTS }, signal: idle.signal }, what);
      for await (const chunk of res.body ?? []) {
        idle.touch();
        size += chunk.length;
        if (size > MAX_MANIFEST_BYTES) throw new RuntimeError(`${what}: larger than ${MAX_MANIFEST_BYTES} bytes`);
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError(`${what}: ${fetchFailureReason(err)}`);
    } finally {
      idle.clear();
    }
    const bytes = Buffer.concat(chunks);
    const header = res.headers.get('docker-content-digest');
    let claimed: Digest | undefined = expected;
    if (!claimed && header) {
      try {
        claimed = parseDigest(header);
      } catch {
        throw new RuntimeError(`${what}: node sent an invalid Docker-Content-Digest ${JSON.stringify(header.slice(0, 100))}`);
      }
    }
    const alg = claimed ? algorithmOf(claimed) : 'sha256';
    const actual = `${alg}:${newHash(alg).update(bytes).digest('hex')}`;
    if (claimed && actual !== claimed) throw new RuntimeError(`${what}: digest mismatch: expected ${claimed}, got ${actual}`);
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(bytes, res.headers.get('content-type') ?? undefined);
    } catch (err) {
      throw new RuntimeError(`${what}: ${(err as Error).message}`);
    }
    return { pulled: { digest: actual, size: bytes.length, source: sourceOf(res), mediaType: parsed.mediaType }, parsed };
  }

  /** Streams one blob through a hash, never holding it: its size and digest must be the manifest's. */
  async blob(desc: Descriptor, progress: Progress): Promise<PulledBlob> {
    const what = `blob ${desc.digest}`;
    const idle = idleTimeout(TRANSFER_IDLE_MS);
    const hash = newHash(algorithmOf(desc.digest));
    let received = 0;
    let source: Source = 'unknown';
    try {
      const res = await this.client.stream(this.path('blobs', desc.digest), { signal: idle.signal }, what);
      source = sourceOf(res);
      progress.start(desc.digest, shortDigest(desc.digest), desc.size);
      for await (const chunk of res.body ?? []) {
        idle.touch();
        received += chunk.length;
        if (received > desc.size) throw new RuntimeError(`${what}: more than the ${desc.size} bytes the manifest gives`);
        hash.update(chunk);
        progress.advance(desc.digest, chunk.length);
      }
    } catch (err) {
      progress.fail(desc.digest);
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError(`${what}: ${fetchFailureReason(err)}`);
    } finally {
      idle.clear();
    }
    const fail = (why: string) => {
      progress.fail(desc.digest);
      return new RuntimeError(`${what}: ${why}`);
    };
    if (received !== desc.size) throw fail(`got ${received} bytes, the manifest gives ${desc.size}`);
    const actual = `${algorithmOf(desc.digest)}:${hash.digest('hex')}`;
    if (actual !== desc.digest) throw fail(`digest mismatch: got ${actual}`);
    progress.done(desc.digest, `${desc.digest}  ${humanBytes(desc.size)}  from ${source}`);
    return { digest: desc.digest, size: desc.size, source };
  }
}

export async function pull(opts: PullOptions): Promise<PullSummary> {
  const ref = parseImageArg(opts.image);
  const platform = opts.platform === undefined ? undefined : parsePlatform(opts.platform);
  const started = performance.now();
  const puller = new Puller(opts.node, ref, opts.authorization);

  // Manifests first, walking an index down to the image manifests wanted.
  const manifests: PulledManifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const top = await puller.manifest(ref.digest ?? ref.tag!, ref.digest);
  manifests.push(top.pulled);
  const visit = async (m: ParsedManifest, depth: number): Promise<void> => {
    for (const b of m.blobs) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
    if (!m.isIndex) return;
    if (depth >= MAX_INDEX_DEPTH) throw new RuntimeError(`index nested deeper than ${MAX_INDEX_DEPTH} levels`);
    // Only manifests are followed; an index may also list other artifacts, which an image pull skips.
    let children = m.manifests.filter((d) => isManifestMediaType(d.mediaType));
    if (platform) children = children.filter((d) => matches(d, platform) || (d.platform === undefined && isIndexType(d.mediaType)));
    if (platform && depth === 0 && children.length === 0) {
      const offered = m.manifests.map(platformOf).filter(Boolean).join(', ') || 'none';
      throw new RuntimeError(`${formatImageReference(ref)} has no manifest for ${opts.platform} (platforms: ${offered})`);
    }
    for (const d of children) {
      const child = await puller.manifest(d.digest, d.digest);
      const p = platformOf(d);
      manifests.push(p ? { ...child.pulled, platform: p } : child.pulled);
      await visit(child.parsed, depth + 1);
    }
  };
  await visit(top.parsed, 0);

  // Then the blobs, a few at a time; one failure does not stop the others, so all failures are named.
  const queue = [...blobs.values()];
  const progress = createProgress(opts.stderr, { quiet: opts.json, blobs: queue.length });
  const pulled: PulledBlob[] = [];
  const failed: string[] = [];
  const worker = async () => {
    for (let d = queue.shift(); d; d = queue.shift()) {
      try {
        pulled.push(await puller.blob(d, progress));
      } catch (err) {
        failed.push(`${d.digest} (${(err as Error).message.replace(`blob ${d.digest}: `, '')})`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_BLOBS, queue.length) }, worker));
  } finally {
    progress.close();
  }
  if (failed.length > 0) throw new RuntimeError(`pull ${formatImageReference(ref)}: ${failed.length} of ${blobs.size} blobs failed: ${failed.join('; ')}`);

  // In manifest order, whatever order they finished in.
  const order = [...blobs.keys()];
  pulled.sort((a, b) => order.indexOf(a.digest) - order.indexOf(b.digest));
  const bytesBySource: PullSummary['bytesBySource'] = { local: 0, peer: 0, upstream: 0 };
  for (const b of pulled) bytesBySource[b.source] = (bytesBySource[b.source] ?? 0) + b.size;
  return {
    image: formatImageReference(ref),
    digest: top.pulled.digest,
    blobs: pulled,
    bytesBySource,
    seconds: Math.round(performance.now() - started) / 1000,
    manifests,
  };
}

function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

/** The summary line: image, digest, blobs, bytes, bytes by source, time. */
export function summaryLine(s: PullSummary): string {
  const total = s.blobs.reduce((n, b) => n + b.size, 0);
  const sources = (['local', 'peer', 'upstream', 'unknown'] as const)
    .filter((k) => s.bytesBySource[k] !== undefined)
    .map((k) => `${k} ${humanBytes(s.bytesBySource[k])}`)
    .join(', ');
  return `pulled ${s.image} ${s.digest}: ${s.blobs.length} blobs, ${humanBytes(total)} (${sources}) in ${seconds(s.seconds)}`;
}
