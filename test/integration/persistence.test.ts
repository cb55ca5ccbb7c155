// What a layerd node keeps on disk: content survives a SIGTERM and restart on the same data
// directory, and a blob pushed to several repositories is stored once. These tests look at the
// data directory, so they always run a real layerd (never the distribution stand-in).
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { removeDir, tempDir } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, type PushedImage, type RegistryClient, withQuery } from '../helpers/registry-client.js';

const nodes = new NodeSet('layerd-persist-');
afterAll(() => nodes.stopAll('SIGTERM'));

/** Every regular file below a `blobs` directory anywhere in the data dir (the store: blobs/<alg>/<xx>/<hex>). */
async function blobFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .filter((p) => p.slice(dataDir.length).split('/').includes('blobs'));
}

async function filesWithDigest(files: string[], digest: string): Promise<number> {
  const [alg] = digest.split(':') as ['sha256' | 'sha512'];
  let n = 0;
  for (const f of files) if (`${alg}:${createHash(alg).update(await readFile(f)).digest('hex')}` === digest) n++;
  return n;
}

describe('restart on the same data directory', () => {
  let dataDir: string;
  let node: Node | undefined;
  let c: RegistryClient;

  // What was pushed before the restart.
  let oci: PushedImage;
  let docker: PushedImage;
  const sha512Blob = randomBlob(2000);
  let sha512Digest: string;
  let indexBody: Buffer;
  let referrer: Buffer;
  let deletedBlob: string;
  let before: Record<string, unknown>;
  let exit: { code: number | null; signal: NodeJS.Signals | null };

  const snapshot = async () => ({
    catalog: (await c.req('GET', '/v2/_catalog')).json(),
    tagsA: (await c.req('GET', '/v2/keep/a/tags/list')).json(),
    tagsB: (await c.req('GET', '/v2/keep/b/tags/list')).json(),
    referrers: (await c.req('GET', `/v2/keep/a/referrers/${oci.digest}`)).json(),
  });

  beforeAll(async () => {
    dataDir = await tempDir('layerd-persist-');
    node = await nodes.start('restarted', { dataDir });
    c = node.c;

    oci = await c.pushImage('keep/a', 'v1', { layers: 2 });
    docker = await c.pushImage('keep/b', 'latest', { format: 'docker' });
    await c.pushManifest('keep/a', 'gone', oci.manifest, oci.mediaType);
    sha512Digest = await c.pushBlob('keep/a', sha512Blob, 'sha512');
    indexBody = jsonBytes({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...descriptor(MT.ociManifest, oci.manifest), platform: { architecture: 'amd64', os: 'linux' } }] });
    await c.pushManifest('keep/a', 'multi', indexBody, MT.ociIndex);
    const empty = Buffer.from('{}');
    await c.pushBlob('keep/a', empty);
    referrer = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.sbom.v1',
      config: descriptor(MT.ociEmpty, empty),
      layers: [descriptor(MT.ociEmpty, empty)],
      subject: { mediaType: MT.ociManifest, digest: oci.digest, size: oci.manifest.length },
      annotations: { 'org.example.kind': 'sbom' },
    });
    await c.pushManifest('keep/a', digestOf(referrer), referrer, MT.ociManifest);
    // Deletions must persist too.
    expect((await c.req('DELETE', '/v2/keep/a/manifests/gone')).status).toBe(202);
    deletedBlob = await c.pushBlob('keep/b', randomBlob(100));
    expect((await c.req('DELETE', `/v2/keep/b/blobs/${deletedBlob}`)).status).toBe(202);

    before = await snapshot();

    // The restart itself: SIGTERM, wait for exit, start again on the same directory.
    const child = node.child;
    await node.stop('SIGTERM');
    exit = { code: child.exitCode, signal: child.signalCode };
    node = await nodes.restart(node);
    c = node.c;
  });

  afterAll(async () => {
    await node?.stop('SIGKILL');
    await removeDir(dataDir);
  });

  it('SIGTERM stopped the node cleanly (exit code 0, not killed by the signal)', () => {
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('blobs, including sha512 ones, are still there byte for byte', async () => {
    for (const blob of [oci.config, ...oci.layers]) {
      const res = await c.req('GET', `/v2/keep/a/blobs/${digestOf(blob)}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(blob)).toBe(true);
    }
    const res = await c.req('GET', `/v2/keep/a/blobs/${sha512Digest}`);
    expect(res.body.equals(sha512Blob)).toBe(true);
  });

  it('repository scoping survives: a blob of keep/a is still not readable from keep/b', async () => {
    expect((await c.req('HEAD', `/v2/keep/b/blobs/${digestOf(oci.layers[0]!)}`)).status).toBe(404);
  });

  it('manifests are still there by tag and digest with their media types', async () => {
    for (const [repo, tag, img] of [['keep/a', 'v1', oci], ['keep/b', 'latest', docker]] as const) {
      for (const ref of [tag, img.digest]) {
        const res = await c.req('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: img.mediaType } });
        expect(res.status).toBe(200);
        expect(res.header('content-type')).toBe(img.mediaType);
        expect(res.body.equals(img.manifest)).toBe(true);
      }
    }
    const index = await c.req('GET', '/v2/keep/a/manifests/multi', { headers: { accept: MT.ociIndex } });
    expect(index.header('content-type')).toBe(MT.ociIndex);
    expect(index.body.equals(indexBody)).toBe(true);
  });

  it('deletions are still in effect', async () => {
    expect((await c.req('GET', '/v2/keep/a/manifests/gone')).status).toBe(404);
    expect((await c.req('HEAD', `/v2/keep/b/blobs/${deletedBlob}`)).status).toBe(404);
  });

  it('tags, referrers and the catalog answer exactly as before the restart', async () => {
    const after = await snapshot();
    expect(after).toEqual(before);
    expect((after.tagsA as { tags: string[] }).tags).toEqual(['multi', 'v1']);
    expect((after.referrers as { manifests: Array<{ digest: string }> }).manifests.map((d) => d.digest)).toEqual([digestOf(referrer)]);
    expect((after.catalog as { repositories: string[] }).repositories).toEqual(['keep/a', 'keep/b']);
  });

  it('the restarted node accepts new pushes next to the old content', async () => {
    const img = await c.pushImage('keep/a', 'v2');
    expect((await c.req('GET', '/v2/keep/a/tags/list')).json().tags).toEqual(['multi', 'v1', 'v2']);
    expect((await c.req('HEAD', `/v2/keep/a/manifests/${img.digest}`)).status).toBe(200);
  });
});

describe('content-addressed storage on disk', () => {
  let node: Node;
  let c: RegistryClient;

  beforeAll(async () => {
    node = await nodes.start('dedup');
    c = node.c;
  });

  it('a blob and a manifest pushed to three repositories are each stored once', async () => {
    const layer = randomBlob(64 * 1024);
    const config = jsonBytes({ architecture: 'amd64', os: 'linux' });
    const manifest = jsonBytes({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociConfig, config),
      layers: [descriptor(MT.ociLayer, layer)],
    });
    // Three independent pushes (no mounts), each through a different upload style.
    await c.pushBlob('dedup/one', layer);
    const post = await c.req('POST', '/v2/dedup/two/blobs/uploads/');
    const put = await c.req('PUT', withQuery(post.header('location')!, `digest=${digestOf(layer)}`), {
      headers: { 'content-type': 'application/octet-stream' },
      body: layer,
    });
    expect(put.status).toBe(201);
    await c.pushBlob('dedup/three', layer);
    for (const repo of ['dedup/one', 'dedup/two', 'dedup/three']) {
      await c.pushBlob(repo, config);
      await c.pushManifest(repo, 'v1', manifest, MT.ociManifest);
    }

    const files = await blobFiles(node.dataDir);
    expect(await filesWithDigest(files, digestOf(layer))).toBe(1);
    expect(await filesWithDigest(files, digestOf(config))).toBe(1);
    expect(await filesWithDigest(files, digestOf(manifest))).toBe(1);
    // Nothing else: no leftover upload files or per-repository copies under blobs/.
    expect(files).toHaveLength(3);
    const hex = digestOf(layer).slice('sha256:'.length);
    expect(files.some((f) => f.endsWith(join('blobs', 'sha256', hex.slice(0, 2), hex)))).toBe(true);
  });
});
