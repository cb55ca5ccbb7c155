// What peers send about rollouts (an offered rollout, a progress report), checked before it is believed.
import { formatImageReference, isPlatform, parseManifestReference, parseRegistryName, parseRepositoryName, referenceString } from '../../oci/index.js';
import type { NodeProgress, NodeState, Repoint, RolloutSpec, StripeProgress, StripeShape } from './view.js';

const ID = /^[0-9a-f-]{36}$/;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A libp2p peer id as text: base58btc (12D3KooW…, Qm…), the only form layerd sends. */
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,100}$/;

export function looksLikePeerId(id: string): boolean {
  return PEER_ID.test(id);
}
/** Nodes in one rollout's order at most: as many as `expected` may name. */
const MAX_ORDER = 10_000;

/** A rollout's order from a peer: a list of distinct peer ids, or an error (the offer is refused). */
function orderFrom(v: unknown, isPeerId: (id: string) => boolean): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_ORDER) throw new Error('bad order: want 1 to 10000 peer ids');
  const seen = new Set<string>();
  for (const id of v) {
    if (typeof id !== 'string' || id.length > 100 || !isPeerId(id)) throw new Error('bad order: not a peer id');
    if (seen.has(id)) throw new Error('bad order: a node twice');
    seen.add(id);
  }
  return v as string[];
}

function strings(v: unknown, max: number): string[] {
  if (!Array.isArray(v) || v.length > max || !v.every((x) => typeof x === 'string' && x.length < 512)) throw new Error('bad list');
  return v as string[];
}

/** A rollout offered by a peer, or an error saying why it is refused. */
export function specFrom(raw: unknown, isPeerId: (id: string) => boolean = looksLikePeerId): RolloutSpec {
  const d = raw as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || typeof d.id !== 'string' || !ID.test(d.id)) throw new Error('bad rollout id');
  if (typeof d.origin !== 'string' || !isCount(d.createdAt)) throw new Error('bad rollout');
  if (d.platform !== undefined && (typeof d.platform !== 'string' || !isPlatform(d.platform))) throw new Error('bad platform');
  if (typeof d.registry !== 'string' || typeof d.repository !== 'string' || typeof d.reference !== 'string') throw new Error('bad image');
  const registry = parseRegistryName(d.registry);
  const repository = parseRepositoryName(d.repository);
  const reference = parseManifestReference(d.reference);
  return {
    id: d.id,
    image: formatImageReference({ registry, repository, ...(reference.kind === 'tag' ? { tag: reference.tag } : { digest: reference.digest }) }),
    registry,
    repository,
    reference: referenceString(reference),
    ...(d.platform ? { platform: d.platform as string } : {}),
    origin: d.origin,
    originAddrs: strings(d.originAddrs, 32),
    createdAt: d.createdAt,
    expected: strings(d.expected, 10_000),
    ...(d.order !== undefined ? { order: orderFrom(d.order, isPeerId) } : {}),
    ...(d.stripes !== undefined ? { stripes: stripeShapeFrom(d.stripes) } : {}),
  };
}

/** Stripes a peer may ask for: 2 to 16, of 64 KiB to 64 MiB chunks. */
const MAX_STRIPES = 16;
const CHUNK_BYTES = { min: 64 * 1024, max: 64 * 1024 * 1024 };

function stripeShapeFrom(v: unknown): StripeShape {
  const d = v as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || !isCount(d.k) || d.k < 2 || d.k > MAX_STRIPES) throw new Error('bad stripes: want k of 2 to 16');
  if (!isCount(d.chunkBytes) || d.chunkBytes < CHUNK_BYTES.min || d.chunkBytes > CHUNK_BYTES.max) throw new Error('bad stripes: chunkBytes out of range');
  return { k: d.k, chunkBytes: d.chunkBytes };
}

/** Suspects one report may name (a node names each stripe parent that failed it once). */
const MAX_SUSPECTS = 64;

function stripeProgressFrom(v: unknown): StripeProgress {
  const d = v as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || !Array.isArray(d.have) || d.have.length > MAX_STRIPES || !d.have.every(isCount)) throw new Error('bad stripes');
  if (!Array.isArray(d.suspects) || d.suspects.length > MAX_SUSPECTS) throw new Error('bad stripe suspects');
  const suspects = d.suspects.map((x: unknown) => {
    const s = x as Record<string, unknown>;
    if (typeof s !== 'object' || s === null || !isCount(s.stripe) || s.stripe >= MAX_STRIPES || typeof s.parent !== 'string' || s.parent.length > 100) throw new Error('bad stripe suspect');
    return { stripe: s.stripe, parent: s.parent };
  });
  return { have: d.have as number[], suspects };
}

/** A repoint from a peer; `from` must be the rollout's origin (the caller checks, knowing the rollout). */
export function repointFrom(raw: unknown): Repoint {
  const d = raw as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || typeof d.rollout !== 'string' || !ID.test(d.rollout)) throw new Error('bad repoint: rollout');
  if (!isCount(d.stripe) || d.stripe >= MAX_STRIPES) throw new Error('bad repoint: stripe');
  if (typeof d.parent !== 'string' || d.parent.length > 100) throw new Error('bad repoint: parent');
  return { rollout: d.rollout, stripe: d.stripe, parent: d.parent };
}

/** A progress report from a peer; `from` is who sent it (a node reports only for itself). */
export function progressFrom(raw: unknown, from: string): NodeProgress {
  const d = raw as Record<string, unknown>;
  const by = d?.bySource as Record<string, unknown> | undefined;
  if (typeof d !== 'object' || d === null || typeof d.rollout !== 'string' || d.node !== from) throw new Error('bad report');
  if (!['running', 'done', 'failed'].includes(d.state as string)) throw new Error('bad state');
  for (const k of ['blobsTotal', 'blobsDone', 'bytesTotal', 'bytesDone', 'startedAt'] as const) if (!isCount(d[k])) throw new Error(`bad ${k}`);
  if (!by || !isCount(by.local) || !isCount(by.peer) || !isCount(by.upstream)) throw new Error('bad bySource');
  if (d.finishedAt !== undefined && !isCount(d.finishedAt)) throw new Error('bad finishedAt');
  return {
    rollout: d.rollout,
    node: from,
    state: d.state as NodeState,
    blobsTotal: d.blobsTotal as number,
    blobsDone: d.blobsDone as number,
    bytesTotal: d.bytesTotal as number,
    bytesDone: d.bytesDone as number,
    bySource: { local: by.local, peer: by.peer, upstream: by.upstream },
    startedAt: d.startedAt as number,
    ...(d.finishedAt !== undefined ? { finishedAt: d.finishedAt as number } : {}),
    ...(typeof d.error === 'string' ? { error: d.error.slice(0, 500) } : {}),
    ...(d.stripes !== undefined ? { stripes: stripeProgressFrom(d.stripes) } : {}),
  };
}
