// Request bodies arrive as streams (see server.ts: no body is parsed up front), so blobs of any size pass
// through with bounded memory; only manifests, small by the spec's limit, are read whole.
import type { FastifyRequest } from 'fastify';
import { OciError } from '../oci/index.js';

export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (request.headers['transfer-encoding'] !== undefined) return true;
  return length !== undefined && length !== '0';
}

/** Content-Length as a number, undefined when absent; a malformed value is the client's error. */
export function contentLength(request: FastifyRequest): number | undefined {
  const raw = request.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new OciError('SIZE_INVALID', 'invalid Content-Length');
  return n;
}

export async function readBounded(request: FastifyRequest, max: number): Promise<Buffer> {
  const declared = contentLength(request);
  if (declared !== undefined && declared > max) {
    throw new OciError('SIZE_INVALID', `body exceeds ${max} bytes`, { status: 413 });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  // Not destroyed on the early exit: the error answer must still reach the client (see errors.ts).
  for await (const chunk of request.raw.iterator({ destroyOnReturn: false })) {
    total += (chunk as Buffer).length;
    if (total > max) {
      throw new OciError('SIZE_INVALID', `body exceeds ${max} bytes`, { status: 413 });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
