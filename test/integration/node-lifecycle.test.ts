// A node's lifecycle, in process: stopping it leaves none of layerd's protocols on its libp2p node, and
// a start that fails part way (the HTTP port taken) stops what had started, libp2p included.
import '../../src/polyfill.js'; // Promise.withResolvers on Node 20, as the cli loads it
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobSharing, Observations, RepositoryVisibility } from '../../src/distribution/index.js';
import { loadConfig } from '../../src/node/config.js';
import { createDistribution } from '../../src/node/distribution.js';
import { startInOrder } from '../../src/node/lifecycle.js';
import { startNode } from '../../src/node/node.js';
import { createP2P } from '../../src/node/p2p.js';
import { openStorage, RepositoryDirs } from '../../src/node/storage.js';
import { BLOB_PROTOCOL } from '../../src/p2p/blob-protocol.js';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const undo of cleanup.splice(0).reverse()) await undo();
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'layerd-lifecycle-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger whose lines are kept, to see what the node did. */
function capturingLogger(): { logger: Logger; messages: string[] } {
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) messages.push((JSON.parse(line) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), messages };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

const closeServer = (server: Server) => new Promise((resolve) => server.close(resolve));
const layerdProtocols = (libp2p: LayerdLibp2p) => libp2p.getProtocols().filter((p) => p.startsWith('/layerd/') && !p.startsWith('/layerd/kad/')).sort();
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap' || r === 'TCPSocketWrap').length;

/** Polls `done` until it holds or the deadline passes. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

describe('node lifecycle', () => {
  it('a stopped node has unhandled its protocols: a peer can no longer open them, and libp2p lists none', async () => {
    const dir = await dataDir();
    const config = loadConfig({ flags: { 'data-dir': dir, listen: '127.0.0.1:0', 'p2p-listen': ['/ip4/127.0.0.1/tcp/0'] } });
    const { logger } = capturingLogger();
    const observed = new Observations();
    const p2p = await createP2P(config, dir, observed, new Registry(), logger);
    const visibility = new RepositoryVisibility([]);
    const dirs = await RepositoryDirs.open(dir, []);
    const sharing = new BlobSharing({ visibility, sharePrivate: false, stores: () => dirs.all() });
    const storage = await openStorage(dir, dirs, sharing, p2p.router);
    const dist = createDistribution(config, { storage, sharing, visibility, p2p, observed, logger });
    // As the node starts them: the libp2p node and the claim protocol, then the blob and rollout protocols.
    const libp2pAndClaims = await startInOrder(p2p.services, () => undefined);
    cleanup.push(() => libp2pAndClaims.stop());
    const served = await startInOrder(dist.protocols, () => undefined);
    cleanup.push(() => served.stop());
    expect(layerdProtocols(p2p.libp2p)).toEqual(['/layerd/blob/1.0.0', '/layerd/claim/1.0.0', '/layerd/rollout/1.0.0']);

    const peer = await createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap: [], providerTtlMs: 60_000 });
    cleanup.push(async () => peer.stop());
    const open = await peer.dialProtocol(p2p.libp2p.getMultiaddrs(), BLOB_PROTOCOL);
    open.abort(new Error('only checking it opens'));

    // The blob and rollout protocols stopped, libp2p running on: a peer's dial of the blob protocol is refused.
    await served.stop();
    expect(layerdProtocols(p2p.libp2p)).toEqual(['/layerd/claim/1.0.0']);
    await expect(peer.dialProtocol(p2p.libp2p.getMultiaddrs(), BLOB_PROTOCOL)).rejects.toThrow();

    await libp2pAndClaims.stop();
    expect(layerdProtocols(p2p.libp2p)).toEqual([]);
    expect(p2p.libp2p.status).toBe('stopped');
  });

  it('a start that fails part way (the HTTP port taken) stops what had started: libp2p, its port, every socket', async () => {
    const blocker = createServer();
    const httpPort = await listen(blocker, 0);
    cleanup.push(() => closeServer(blocker));
    const probe = createServer();
    const p2pPort = await listen(probe, 0);
    await closeServer(probe);
    const config = loadConfig({ flags: { 'data-dir': await dataDir(), listen: `127.0.0.1:${httpPort}`, 'p2p-listen': [`/ip4/127.0.0.1/tcp/${p2pPort}`] } });
    const handles = tcpHandles();
    const timersBefore = timers();
    const { logger, messages } = capturingLogger();

    await expect(startNode(config, logger)).rejects.toThrow(/EADDRINUSE/);
    expect(messages).toContain('p2p started'); // libp2p was listening when the HTTP port failed
    expect(messages).not.toContain('stopping failed');
    // Sockets and timers are released once their close callbacks have run, a moment after stop() returns.
    await until(() => tcpHandles() === handles && timers() <= timersBefore, 5_000);
    expect(tcpHandles()).toBe(handles);
    expect(timers()).toBeLessThanOrEqual(timersBefore);
    const again = createServer();
    expect(await listen(again, p2pPort)).toBe(p2pPort); // libp2p let its port go
    await closeServer(again);
  });
});
