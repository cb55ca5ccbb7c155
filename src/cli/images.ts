// `layerd ls` (GET /api/images) and `layerd gc` (POST /api/gc), in words.
import { humanBytes, percent, shortDigest, table } from './format.js';

export interface ImageDoc {
  registry?: string;
  repository?: string;
  tags?: string[];
  digest?: string;
  size?: number;
  heldBytes?: number;
}

export interface GcDoc {
  removedUploads?: number;
  removedBlobs?: number;
  freedBytes?: number;
  evicted?: number;
}

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
