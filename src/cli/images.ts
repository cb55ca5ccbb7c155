// `layerd ls` (GET /api/images) and `layerd gc` (POST /api/gc), in words.
import type { GcAnswer, ImageAnswer, Loose } from '../http/index.js';
import { humanBytes, percent, shortDigest, table } from './format.js';

/** An /api/images entry and an /api/gc answer, as read from a node of any version. */
export type ImageDoc = Loose<ImageAnswer>;
export type GcDoc = Loose<GcAnswer>;

export function formatImages(images: ImageDoc[]): string {
  if (images.length === 0) return 'no images cached';
  const rows = images.map((i) => [
    // Pushed content is "local": its repository alone names it.
    !i.registry || i.registry === 'local' ? (i.repository ?? '?') : `${i.registry}/${i.repository ?? '?'}`,
    Array.isArray(i.tags) && i.tags.length > 0 ? i.tags.join(',') : '<none>',
    shortDigest(i.digest),
    humanBytes(i.size),
    percent(i.heldBytes, i.size),
  ]);
  return table(['REGISTRY/REPOSITORY', 'TAGS', 'DIGEST', 'SIZE', 'HELD'], rows);
}

export function formatGc(r: GcDoc): string {
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return `gc: removed ${n(r.removedBlobs)} blobs and ${n(r.removedUploads)} unfinished uploads, evicted ${n(r.evicted)}, freed ${humanBytes(n(r.freedBytes))}`;
}
