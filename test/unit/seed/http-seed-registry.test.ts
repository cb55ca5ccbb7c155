// HttpSeedRegistry's edge, against a small HTTP server on loopback that answers what a real registry
// would not: the one place statuses and headers are read, so the one place their lies are caught.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import type { RepositoryName, Tag } from '../../../src/oci/reference.js';
import { SeedError } from '../../../src/seed/errors.js';
import { HttpSeedRegistry } from '../../../src/seed/http-seed-registry.js';

const REPO = 'team/app' as RepositoryName;
const BLOB = Buffer.from('0123456789');
const D = digestOf(BLOB);
const OTHER = digestOf(Buffer.from('other')) as Digest;

/** What the server answers each `<METHOD> <path>` with; anything else is a 404. */
const answers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>([
  [`GET /v2/${REPO}/blobs/${D}`, (_req, res) => res.writeHead(206, { 'content-range': 'bytes 2-9/10' }).end(BLOB.subarray(2))],
  [`HEAD /v2/${REPO}/blobs/${D}`, (_req, res) => res.writeHead(200, { 'transfer-encoding': 'chunked' }).end()],
  [`GET /v2/${REPO}/manifests/v1`, (_req, res) => res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': OTHER }).end('{"schemaVersion":2}')],
  [`GET /v2/${REPO}/manifests/v2`, (_req, res) => res.writeHead(403).end()],
  [`GET /v2/${REPO}/manifests/v3`, (_req, res) => res.writeHead(503).end()],
  [`GET /v2/${REPO}/tags/list`, (_req, res) => res.writeHead(200, { link: `</v2/${REPO}/tags/list?n=2&last=b&evil=1>; rel="next"` }).end('{"tags":["a","b","a"]}')],
  [`GET /v2/${REPO}/tags/list?n=2&last=b`, (_req, res) => res.writeHead(200).end('{"tags":["../../etc"]}')],
]);

let server: ReturnType<typeof createServer>;
let seed: HttpSeedRegistry;

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = answers.get(`${req.method} ${req.url}`);
    if (answer) answer(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  seed = new HttpSeedRegistry({ name: 'seed.test', url: `http://127.0.0.1:${port}`, timeoutMs: 5_000, retries: 0, userAgent: 'test' });
});

afterAll(async () => {
  seed.close();
  await new Promise((r) => server.close(r));
});

const failure = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => err as SeedError);

describe('HttpSeedRegistry: what a seed must not get away with', () => {
  it('a 206 that does not start where asked is a protocol failure, not bytes of the blob', async () => {
    const err = await failure(seed.openBlob(REPO, D as Digest, 5));
    expect(err).toBeInstanceOf(SeedError);
    expect(err).toMatchObject({ kind: 'protocol' });
  });

  it('a blob HEAD without a length is a protocol failure', async () => {
    expect(await failure(seed.statBlob(REPO, D as Digest))).toMatchObject({ kind: 'protocol' });
  });

  it('a manifest whose bytes are not the digest the seed announced is refused', async () => {
    const err = await failure(seed.getManifest(REPO, { kind: 'tag', tag: 'v1' as Tag }));
    expect(err).toMatchObject({ kind: 'protocol' });
    expect(err?.message).toMatch(/not sha256:/);
  });

  it('a status other than 200 and 404 is a SeedError that says what it means', async () => {
    const denied = await failure(seed.getManifest(REPO, { kind: 'tag', tag: 'v2' as Tag }));
    expect(denied).toMatchObject({ kind: 'status', status: 403, denied: true, unavailable: false });
    const down = await failure(seed.getManifest(REPO, { kind: 'tag', tag: 'v3' as Tag }));
    expect(down).toMatchObject({ kind: 'status', status: 503, unavailable: true });
    // A 404 is no failure: the answer is "not there".
    expect(await seed.getManifest(REPO, { kind: 'tag', tag: 'v4' as Tag })).toBeUndefined();
  });

  it('a tag list is deduplicated, its next page read from the Link (n and last only), and a page with a bad tag refused', async () => {
    expect(await seed.listTags(REPO)).toEqual({ tags: ['a', 'b'], next: { n: 2, last: 'b' } });
    expect(await failure(seed.listTags(REPO, { n: 2, last: 'b' as Tag }))).toMatchObject({ kind: 'protocol' });
  });
});
