// Content is reachable only through the repositories that link it, on real `layerd serve` processes
// (issue 13, items 1, 2, 7 and 11): the blob store is content-addressed and shared by every repository,
// so holding a digest must never let a node serve it under another name.
//
//   seed   docker-registry: a seed for the `seed:5000` registry (node A: by ?ns= only; node B: the default)
//   A      --token-file, --private-repos team/secret and library/internal, P2P on (peers by digest for
//          docker.io, which has no seed; a short peer lookup, as no peer is there to find): private
//          pushes, read back through every other name and API
//   B      --upstream seed:5000 as its default registry, no credentials: pushes sharing layers with what it
//          holds for the seed's repositories, with a real skopeo
//   probe  a bare libp2p peer asking A over the blob protocol
import '../../src/polyfill.js'; // Promise.withResolvers on Node 20, for the in-test libp2p peer (as layerd's cli loads it)
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { loadOrCreateIdentity } from '../../src/p2p/identity.js';
import { askPeerDirectly } from '../helpers/peer-probe.js';
import { emptyRegistriesConf, requireTool, runTool } from '../helpers/clients.js';
import { buildTestLayout, readReachableBlobs, reachableDigests, type TestLayout } from '../helpers/oci-image.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, startDistribution, tempDir, until } from '../helpers/processes.js';
import { AuthClient, descriptor, digestOf, expectError, jsonBytes, MT, randomBlob, RegistryClient, type PushedImage, type Res } from '../helpers/registry-client.js';

const TOKEN = 'ci-5d1e0c7a9b3f42e8a6c4d2b0';
const SEED = 'seed:5000';

const nodes = new NodeSet('layerd-private-content-node-');
const dirs: string[] = [];
let seed: Awaited<ReturnType<typeof startDistribution>>;
let a: TestNode;
let b: TestNode;
let anonymous: RegistryClient;
let authorized: RegistryClient;
let probe: LayerdLibp2p;
let secret: PushedImage;
let internal: PushedImage;

/** Every digest of a pushed image: manifest, config, layers. */
const digestsOf = (img: PushedImage) => [img.digest, digestOf(img.config), ...img.layers.map((l) => digestOf(l))];

/** A 404 with the spec's error body (a HEAD has no body: its status says it all). */
function expectNotFound(res: Res, what: string): void {
  expect(res.status, `${what}: ${res.body.toString().slice(0, 200)}`).toBe(404);
  if (res.body.length > 0) expectError(res, 404, ['BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
}

async function apiText(path: string, authorization?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${a.url}${path}`, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

/** Asks A for a blob over the blob protocol, as any peer can: its bytes, or the status it answered. */
async function askAsPeer(digest: string): Promise<Buffer | string> {
  const status = (await (await fetch(`${a.url}/api/status`)).json()) as { peerId: string; multiaddrs: string[] };
  return askPeerDirectly(probe, status, digest);
}

beforeAll(async () => {
  seed = await startDistribution();
  dirs.push(seed.rootDir);
  const dir = await tempDir('layerd-private-content-');
  dirs.push(dir);
  await writeFile(join(dir, 'tokens'), `ci:${TOKEN}\n`);
  // A mirrors the seed without making it the default registry: its args say so themselves.
  a = await nodes.start('A', {
    p2p: true,
    args: ['--token-file', join(dir, 'tokens'), '--private-repos', 'team/secret', '--private-repos', 'library/internal', '--upstream', `${SEED}=${seed.url}`, '--peer-lookup-timeout', '300ms'],
  });
  b = await nodes.start('B', { mirror: { registry: SEED, url: seed.url } });
  anonymous = new RegistryClient(a.url);
  authorized = new AuthClient(a.url, `Bearer ${TOKEN}`);
  secret = await authorized.pushImage('team/secret', 'v1', { layers: 2, layerSize: 50_000 });
  internal = await authorized.pushImage('internal', 'v1', { layers: 1, layerSize: 40_000 });
  const probeDir = await tempDir('layerd-private-content-probe-');
  dirs.push(probeDir);
  probe = await createP2PNode({ privateKey: await loadOrCreateIdentity(join(probeDir, 'identity.key')), listen: [], announce: [], bootstrap: [], providerTtlMs: 60_000 });
}, 60_000);

afterAll(async () => {
  await probe?.stop();
  await nodes.stopAll('SIGTERM');
  await seed?.stop();
  for (const d of dirs) await removeDir(d);
});

describe('a private repository through other names (item 1)', () => {
  it('serves none of its blobs or manifests under another name, whatever registry is meant: 404 with an OCI body', async () => {
    // No ns: docker.io, which has no seed here, so peers by digest; ?ns=seed:5000: the seed decides.
    for (const digest of digestsOf(secret)) {
      for (const name of ['library/anything', 'team/secretive']) {
        for (const ns of ['', `?ns=${SEED}`]) {
          for (const method of ['GET', 'HEAD']) {
            expectNotFound(await anonymous.req(method, `/v2/${name}/blobs/${digest}${ns}`), `${method} ${name} blob ${digest}${ns}`);
          }
        }
      }
      // Credentials do not make another repository link it either.
      expectNotFound(await authorized.req('GET', `/v2/whatever/blobs/${digest}`), `authorized GET whatever blob ${digest}`);
    }
    for (const name of ['whatever', 'library/anything', 'team/secretive']) {
      for (const ns of ['', `?ns=${SEED}`]) {
        for (const method of ['GET', 'HEAD']) {
          expectNotFound(await anonymous.req(method, `/v2/${name}/manifests/${secret.digest}${ns}`, { headers: { accept: MT.ociManifest } }), `${method} ${name} manifest${ns}`);
        }
      }
    }
  });

  it('serves it whole to the authorized caller under its own name', async () => {
    const manifest = await authorized.req('GET', '/v2/team/secret/manifests/v1', { headers: { accept: MT.ociManifest } });
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(secret.manifest)).toBe(true);
    for (const blob of [secret.config, ...secret.layers]) {
      const res = await authorized.req('GET', `/v2/team/secret/blobs/${digestOf(blob)}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(blob)).toBe(true);
    }
    expect((await anonymous.req('GET', '/v2/team/secret/manifests/v1')).status).toBe(401);
  });
});

describe('--private-repos library/internal and the short name internal (item 7)', () => {
  it('asks credentials for internal, hides it from the anonymous catalog, and shows it to the authorized caller', async () => {
    expect((await anonymous.req('GET', '/v2/internal/manifests/v1')).status).toBe(401);
    expect((await anonymous.req('GET', `/v2/internal/blobs/${digestOf(internal.layers[0]!)}`)).status).toBe(401);
    const open = (await anonymous.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    expect(open).not.toContain('internal');
    expect(open).not.toContain('team/secret');
    const all = (await authorized.req('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories;
    expect(all).toEqual(expect.arrayContaining(['internal', 'team/secret']));
  });

  it('serves none of its blobs to peers (nor team/secret)', async () => {
    for (const digest of [...digestsOf(internal), ...digestsOf(secret)]) expect(await askAsPeer(digest), digest).toBe('not-found');
    // The control: a public repository's blob is served to the same peer.
    const open = await authorized.pushImage('team/open', 'v1', { layers: 1, layerSize: 30_000 });
    const got = await askAsPeer(digestOf(open.layers[0]!));
    expect(Buffer.isBuffer(got) && got.equals(open.layers[0]!)).toBe(true);
  });
});

describe('/api answers (items 1, 7, 11)', () => {
  it('name no private repository and list no private digest to an anonymous caller; the authorized caller sees them all', async () => {
    // Authorized pulls put both private repositories in /api/pulls; a rollout of each in /api/rollouts.
    for (const repo of ['team/secret', 'internal']) expect((await authorized.req('GET', `/v2/${repo}/manifests/v1`)).status).toBe(200);
    const ids: string[] = [];
    for (const image of ['team/secret:v1', 'internal:v1']) {
      const res = await fetch(`${a.url}/api/rollouts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ image }),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const privateDigests = [...digestsOf(secret), ...digestsOf(internal)];
    const paths = ['/api/images', '/api/blobs', '/api/pulls', '/api/rollouts'];
    for (const path of paths) {
      const { status, text } = await apiText(path);
      expect(status, path).toBe(200);
      for (const name of ['team/secret', 'internal']) expect(text, `${path} names ${name}`).not.toContain(name);
      for (const d of privateDigests) expect(text, `${path} lists ${d}`).not.toContain(d);
    }
    for (const id of ids) {
      const { status, text } = await apiText(`/api/rollouts/${id}`);
      expect(status, text).toBe(404);
      expect((JSON.parse(text) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('NAME_UNKNOWN');
    }
    // The public repository's digests are listed to anyone (the filter is not "hide everything").
    const publicDigest = await authorized.pushBlob('team/open', Buffer.from('public bytes'));
    expect((await apiText('/api/blobs')).text).toContain(publicDigest);

    const auth = `Bearer ${TOKEN}`;
    const images = (await apiText('/api/images', auth)).text;
    for (const name of ['team/secret', 'internal']) expect(images).toContain(`"repository":"${name}"`);
    const allBlobs = (await apiText('/api/blobs', auth)).text;
    for (const d of privateDigests) expect(allBlobs).toContain(d);
    const pulls = (await apiText('/api/pulls', auth)).text;
    for (const name of ['team/secret', 'internal']) expect(pulls).toContain(`"repository":"${name}"`);
    const rollouts = (await apiText('/api/rollouts', auth)).text;
    for (const id of ids) expect(rollouts).toContain(id);
    for (const id of ids) expect((await apiText(`/api/rollouts/${id}`, auth)).status).toBe(200);
    // Bad credentials are refused, not taken for anonymous.
    expect((await apiText('/api/blobs', 'Bearer not-the-token-0123456789')).status).toBe(401);
  });
});

describe('pushing an image that shares layers with what a mirror holds (item 2)', () => {
  let work: string;
  let layout: TestLayout;
  let skopeo: (args: string[]) => Promise<string>;

  beforeAll(async () => {
    await requireTool('skopeo');
    work = await tempDir('layerd-private-content-skopeo-');
    dirs.push(work);
    layout = await buildTestLayout(join(work, 'layout'), { imageLayerSizes: [100_000, 200_000], indexLayerSizes: [50_000] });
    const conf = await emptyRegistriesConf(work);
    skopeo = (args) => runTool('skopeo', args, { CONTAINERS_REGISTRIES_CONF: conf });
    // The seed has the image as base/app; B pulls it through (plain HTTP, so skopeo's blob cache never
    // learns that B holds these layers and cannot mount them: the HEAD alone decides what it uploads).
    await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout.dir}:v1`, `docker://${new URL(seed.url).host}/base/app:v1`]);
    const c = new RegistryClient(b.url);
    expect((await c.req('GET', '/v2/base/app/manifests/v1', { headers: { accept: MT.ociManifest } })).status).toBe(200);
    for (const d of reachableDigests(layout.image).filter((x) => x !== layout.image.digest)) {
      const res = await c.req('GET', `/v2/base/app/blobs/${d}`);
      expect(res.status, d).toBe(200);
    }
  }, 120_000);

  it('HEAD on a new repository is 404 for a layer the node holds for the seed\'s base/app, and 200 for base/app', async () => {
    const c = new RegistryClient(b.url);
    for (const layer of layout.image.layers) {
      expectNotFound(await c.req('HEAD', `/v2/team/newapp/blobs/${layer.digest}`), `HEAD team/newapp ${layer.digest}`);
      expectNotFound(await c.req('GET', `/v2/team/newapp/blobs/${layer.digest}`), `GET team/newapp ${layer.digest}`);
      // Held once the pull above committed it: a client can have its last (verified) byte a moment before.
      const held = await until(`${layer.digest} held for base/app`, async () => {
        const res = await c.req('HEAD', `/v2/base/app/blobs/${layer.digest}`);
        return res.status === 200 && res.header('x-layerd-source') === 'local' ? res : undefined;
      });
      expect(held.status).toBe(200);
    }
  });

  it('skopeo pushes the image to a new repository and to the seed\'s repository name, and pulls both back bit for bit', async () => {
    const host = new URL(b.url).host;
    const want = await readReachableBlobs(layout.dir, 'v1');
    for (const repo of ['team/newapp', 'base/app']) {
      await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout.dir}:v1`, `docker://${host}/${repo}:pushed`]);
      const out = join(work, `pulled-${repo.replace('/', '-')}`);
      await skopeo(['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/${repo}:pushed`, `oci:${out}:v1`]);
      const got = await readReachableBlobs(out, 'v1');
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [d, bytes] of want) expect(got.get(d)!.equals(bytes), d).toBe(true);
    }
    // The pushes are B's own: its catalog has them, and the tag is served locally.
    const tags = await until('the pushed tag', async () => {
      const res = await new RegistryClient(b.url).req('GET', '/v2/team/newapp/tags/list');
      return res.status === 200 ? res.json<{ tags: string[] }>().tags : undefined;
    });
    expect(tags).toEqual(['pushed']);
  });

  it('a layer the seed has for the repository but the node does not hold: HEAD says 200, so the manifest PUT takes it too (fetched then)', async () => {
    const layer = randomBlob(120_000);
    const layerDigest = await new RegistryClient(seed.url).putBlob('base/tool', layer);
    const c = new RegistryClient(b.url);
    const head = await c.req('HEAD', `/v2/base/tool/blobs/${layerDigest}`);
    expect(head.status).toBe(200);
    // The client skips the upload HEAD answered 200 for, pushes the rest and the manifest.
    const config = jsonBytes({ architecture: 'amd64', os: 'linux', nonce: randomBlob(8).toString('hex') });
    await c.pushBlob('base/tool', config);
    const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)] });
    const put = await c.putManifest('base/tool', 'mine', manifest, MT.ociManifest);
    expect(put.status, put.body.toString()).toBe(201);
    const got = await c.req('GET', `/v2/base/tool/blobs/${layerDigest}`);
    expect(got.status).toBe(200);
    expect(got.header('x-layerd-source')).toBe('local');
    expect(got.body.equals(layer)).toBe(true);
    // A name the seed does not have it for gets a 404 on HEAD, and its manifest PUT is refused.
    expectNotFound(await c.req('HEAD', `/v2/team/tool/blobs/${layerDigest}`), 'HEAD team/tool');
    await c.pushBlob('team/tool', config);
    expectError(await c.putManifest('team/tool', 'mine', manifest, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('an index PUT takes a child manifest a pull of the same name is served (cached for the seed\'s repository), and no other', async () => {
    const c = new RegistryClient(b.url);
    const image = await new RegistryClient(seed.url).pushImage('base/lib', 'v1', { layers: 1, layerSize: 20_000 });
    expect((await c.req('GET', '/v2/base/lib/manifests/v1', { headers: { accept: MT.ociManifest } })).status).toBe(200); // cached by B, pushed to B nowhere
    const child = { mediaType: MT.ociManifest, digest: image.digest, size: image.manifest.length, platform: { architecture: 'amd64', os: 'linux' } };
    const index = jsonBytes({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [child] });
    const put = await c.putManifest('base/lib', 'idx', index, MT.ociIndex);
    expect(put.status, put.body.toString()).toBe(201);
    const got = await c.req('GET', '/v2/base/lib/manifests/idx', { headers: { accept: MT.ociIndex } });
    expect(got.status).toBe(200);
    expect(got.body.equals(index)).toBe(true);
    expectNotFound(await c.req('HEAD', `/v2/team/elsewhere/manifests/${image.digest}`), 'HEAD team/elsewhere manifest');
    expectError(await c.putManifest('team/elsewhere', 'idx', index, MT.ociIndex), 400, 'MANIFEST_BLOB_UNKNOWN');
  });
});
