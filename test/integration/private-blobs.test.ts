// Private content and peers, on real processes over loopback: a node never announces in the DHT, nor
// serves on the blob protocol, a blob it holds only for a --private-repos repository, unless
// --share-private-blobs; a blob a public repository also links is shared as usual. And a seed's
// credentials never reach a log, an API answer, or a peer.
//
//   seed     docker-registry; `proxy` in front of it demands a user and password (Docker Hub's token dance)
//   node1    private repositories under secret/; mirrors the seed through the proxy with credentials
//   node2    plain node mirroring the seed directly, bootstrapped to node1: the peer that asks
//   node3    private repositories under secret/ with --share-private-blobs
// A test that needs another node to find a provider waits for the provider's debug line "provided".
import '../../src/polyfill.js'; // Promise.withResolvers on Node 20, for the in-test libp2p peer (as layerd's cli loads it)
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { loadOrCreateIdentity } from '../../src/p2p/identity.js';
import { askPeerDirectly } from '../helpers/peer-probe.js';
import { blobGets, logSettled } from '../helpers/access-log.js';
import { connected, NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { removeDir, startDistribution, tempDir, until } from '../helpers/processes.js';
import { startTokenAuthProxy, type TokenAuthProxy } from '../helpers/token-auth-proxy.js';
import { digestOf, expectError, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

const REGISTRY = 'seed:5000';
const SEED_USER = 'puller';
const SEED_PASSWORD = 'seed-Pa55word-never-logged';

type Seed = Awaited<ReturnType<typeof startDistribution>>;

let seed: Seed;
let proxy: TokenAuthProxy;
let node1: Node;
let node2: Node;
let node3: Node;
let probe: LayerdLibp2p;
const nodes = new NodeSet('layerd-private-');
const dirs: string[] = [];

/** A node on P2P with debug logs (the "provided" lines the tests wait for). */
const startNode = (name: string, args: string[], bootstrap?: Node) => nodes.start(name, { p2p: true, bootstrap, logLevel: 'debug', args });

function logLines(node: Node): Array<Record<string, unknown>> {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Waits for the node's "provided" lines for every digest: its DHT announcements went out. */
async function provided(node: Node, digests: string[]): Promise<void> {
  await until(`${node.name} to announce ${digests.join(', ')}`, () => {
    const done = new Set(logLines(node).filter((l) => l.msg === 'provided').map((l) => l.digest));
    return digests.every((d) => done.has(d)) ? true : undefined;
  }, 30_000);
}

/** Every provide the node attempted for the digest, done or failed. */
function provideAttempts(node: Node, digest: string): number {
  return logLines(node).filter((l) => (l.msg === 'provided' || l.msg === 'provide failed') && l.digest === digest).length;
}

function same(got: Buffer | string, want: Buffer): boolean {
  return Buffer.isBuffer(got) && got.equals(want);
}

/** Asks a node for a blob directly over the blob protocol, as any peer can: its bytes, or the status it answered. */
async function askDirectly(node: Node, digest: string): Promise<Buffer | string> {
  return askPeerDirectly(probe, await node.status(), digest);
}

beforeAll(async () => {
  seed = await startDistribution();
  dirs.push(seed.rootDir);
  proxy = await startTokenAuthProxy({ backend: seed.url, username: SEED_USER, password: SEED_PASSWORD, allowAnonymous: false });
  // The seed's credentials can only come from the config file.
  const configDir = await tempDir('layerd-private-config-');
  dirs.push(configDir);
  const config = join(configDir, 'layerd.yml');
  await writeFile(
    config,
    [
      'upstream:',
      `  "${REGISTRY}": { url: "${proxy.url}", username: ${SEED_USER}, password: "${SEED_PASSWORD}" }`,
      `default-registry: "${REGISTRY}"`,
      'private-repos: [secret]',
      '',
    ].join('\n'),
  );
  node1 = await startNode('node1', ['--config', config]);
  node2 = await startNode('node2', ['--upstream', `${REGISTRY}=${seed.url}`, '--default-registry', REGISTRY], node1);
  node3 = await startNode('node3', ['--private-repos', 'secret', '--share-private-blobs', 'true'], node1);
  const probeDir = await tempDir('layerd-private-probe-');
  dirs.push(probeDir);
  probe = await createP2PNode({ privateKey: await loadOrCreateIdentity(join(probeDir, 'identity.key')), listen: [], announce: [], bootstrap: [], providerTtlMs: 60_000 });
  await connected(node1, 2);
  await connected(node2, 1);
  await connected(node3, 1);
});

afterAll(async () => {
  await probe?.stop();
  await proxy?.close();
  await nodes.stopAll('SIGTERM');
  await seed?.stop();
  for (const d of dirs) await removeDir(d);
});

describe('blobs of private repositories and peers', () => {
  it('a blob pushed only to a private repository is neither announced nor served to peers', async () => {
    const secret = randomBlob(300_000);
    const open = randomBlob(200_000);
    const secretDigest = await node1.c.putBlob('secret/app', secret);
    const openDigest = await node1.c.putBlob('team/app', open);
    // The public blob, pushed after the private one, is announced: the provide queue has had its turn.
    await provided(node1, [openDigest]);
    expect(provideAttempts(node1, secretDigest)).toBe(0);

    // Asked directly, as any peer can: not-found for the private blob, the bytes for the public one.
    expect(await askDirectly(node1, secretDigest)).toBe('not-found');
    expect(same(await askDirectly(node1, openDigest), open)).toBe(true);

    // node2 looks for it (its seed does not have it): a clean 404, not node1's bytes.
    expectError(await node2.c.req('GET', `/v2/secret/app/blobs/${secretDigest}`), 404, 'BLOB_UNKNOWN');
    const got = await node2.c.req('GET', `/v2/team/app/blobs/${openDigest}`);
    expect(got.status).toBe(200);
    expect(got.header('x-layerd-source')).toBe('peer');
    expect(got.body.equals(open)).toBe(true);
  });

  it('a peer that needs a private blob takes it from its own seed, never from the node holding it privately', async () => {
    const blob = randomBlob(250_000);
    const digest = await new RegistryClient(seed.url).putBlob('secret/app', blob);
    await node1.c.putBlob('secret/app', blob);
    await logSettled(seed);
    const before = blobGets(seed.output()).filter((g) => g.digest === digest).length;
    const got = await node2.c.req('GET', `/v2/secret/app/blobs/${digest}`);
    expect(got.status).toBe(200);
    expect(got.header('x-layerd-source')).toBe('upstream');
    expect(got.body.equals(blob)).toBe(true);
    await logSettled(seed);
    expect(blobGets(seed.output()).filter((g) => g.digest === digest).length).toBe(before + 1);
    expect(provideAttempts(node1, digest)).toBe(0);
    expect(await askDirectly(node1, digest)).toBe('not-found');
  });

  it('a blob a node fetched from its seed for a private repository is not offered to peers either', async () => {
    const seedClient = new RegistryClient(seed.url);
    const secret = randomBlob(160_000);
    const open = randomBlob(140_000);
    const secretDigest = await seedClient.putBlob('secret/mirrored', secret);
    const openDigest = await seedClient.putBlob('team/mirrored', open);
    for (const [repo, digest] of [['secret/mirrored', secretDigest], ['team/mirrored', openDigest]] as const) {
      const res = await node1.c.req('GET', `/v2/${repo}/blobs/${digest}`);
      expect(res.status, repo).toBe(200);
      expect(res.header('x-layerd-source')).toBe('upstream');
    }
    await provided(node1, [openDigest]);
    expect(provideAttempts(node1, secretDigest)).toBe(0);
    expect(await askDirectly(node1, secretDigest)).toBe('not-found');
    // The public blob is offered once its repository links it in the seed's cache, a moment after the
    // download commits (the client's 200 may come first): poll for it, with a deadline.
    const shared = await until('the public blob to be served to a peer', async () => {
      const got = await askDirectly(node1, openDigest);
      return Buffer.isBuffer(got) ? got : undefined;
    });
    expect(same(shared, open)).toBe(true);
  });

  it('a private blob that a public repository also links is shared as usual', async () => {
    const blob = randomBlob(180_000);
    const digest = await node1.c.putBlob('secret/lib', blob);
    expect(await askDirectly(node1, digest)).toBe('not-found');
    const mount = await node1.c.req('POST', `/v2/team/lib/blobs/uploads/?mount=${digest}&from=secret/lib`);
    expect(mount.status).toBe(201);
    await provided(node1, [digest]); // announced when the public link appeared
    expect(same(await askDirectly(node1, digest), blob)).toBe(true);
    const got = await node2.c.req('GET', `/v2/team/lib/blobs/${digest}`);
    expect(got.status).toBe(200);
    expect(got.header('x-layerd-source')).toBe('peer');
    expect(got.body.equals(blob)).toBe(true);
  });

  it('with --share-private-blobs a private blob is announced and served like any other', async () => {
    const blob = randomBlob(220_000);
    const digest = await node3.c.putBlob('secret/app', blob);
    await provided(node3, [digest]);
    expect(same(await askDirectly(node3, digest), blob)).toBe(true);
    const got = await node2.c.req('GET', `/v2/secret/app/blobs/${digest}`);
    expect(got.status).toBe(200);
    expect(got.header('x-layerd-source')).toBe('peer');
    expect(got.body.equals(blob)).toBe(true);
  });
});

describe("a seed's credentials", () => {
  it('are used with the seed, and appear in no log, API answer or peer of the cluster', async () => {
    const seedClient = new RegistryClient(seed.url);
    const image = await seedClient.pushImage('team/base', 'v1', { layers: 2, layerSize: 150_000 });
    const blobs = [image.config, ...image.layers];
    // node1 pulls through the seed with its credentials.
    const manifest = await node1.c.req('GET', '/v2/team/base/manifests/v1', { headers: { accept: MT.ociManifest } });
    expect(manifest.status).toBe(200);
    for (const b of blobs) {
      const res = await node1.c.req('GET', `/v2/team/base/blobs/${digestOf(b)}`);
      expect(res.status).toBe(200);
      expect(res.header('x-layerd-source')).toBe('upstream');
    }
    expect(proxy.tokenRequests().some((r) => r.user === SEED_USER && r.granted)).toBe(true);
    // node2 takes the layers from node1 (a peer), so node1 talked to it over every protocol a pull uses.
    await provided(node1, blobs.map((b) => digestOf(b)));
    for (const b of image.layers) {
      const res = await node2.c.req('GET', `/v2/team/base/blobs/${digestOf(b)}`);
      expect(res.status).toBe(200);
      expect(res.header('x-layerd-source')).toBe('peer');
    }
    // A rollout from node1: every node gets node1's offer and reports back to it.
    const started = await fetch(`${node1.url}/api/rollouts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: `${REGISTRY}/team/base:v1` }) });
    expect(started.status).toBeLessThan(300);
    const { id } = (await started.json()) as { id: string };
    const view = await until('every node to report on the rollout', async () => {
      const v = (await (await fetch(`${node1.url}/api/rollouts/${id}`)).json()) as { nodes: Array<{ status: string }> };
      return v.nodes.length >= 3 && v.nodes.every((n) => n.status !== 'running') ? v : undefined;
    }, 60_000);
    expect(view.nodes.length).toBe(3);

    const answers: string[] = [];
    for (const n of [node1, node2, node3]) {
      for (const path of ['/api/status', '/metrics', '/api/images', '/api/blobs', '/api/pulls', `/api/rollouts/${id}`, '/api/rollouts']) {
        answers.push(await (await fetch(`${n.url}${path}`)).text());
      }
    }
    const encoded = Buffer.from(`${SEED_USER}:${SEED_PASSWORD}`).toString('base64');
    for (const [what, text] of [
      ['node1 log', node1.output()],
      ['node2 log', node2.output()],
      ['node3 log', node3.output()],
      ['API answers', answers.join('\n')],
    ] as const) {
      expect(text.length, what).toBeGreaterThan(0);
      expect(text, what).not.toContain(SEED_PASSWORD);
      expect(text, what).not.toContain(encoded);
    }
  });
});
