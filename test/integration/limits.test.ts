// Limits that hold under abuse, against real `layerd serve` processes: oversized manifests (pushed, or
// from a seed), oversized blobs (monolithic and chunked), too many push sessions, HTTP clients that
// stall (mid-headers, mid-body, or dripping their headers), libp2p peers that open layerd's blob
// protocol and stall (sending nothing, or reading nothing), the per-peer stream caps, and the upload
// rate limit. Every stall is shown cut by polling for the closed socket or reset stream with a deadline;
// no test measures time.
import '../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { readdir } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_PROTOCOL, fetchFromPeer, PeerFetchError } from '../../src/p2p/blob-protocol.js';
import { CLAIM_PROTOCOL } from '../../src/p2p/fetch-claims.js';
import { ROLLOUT_PROTOCOL } from '../../src/p2p/rollout-protocol.js';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { NodeSet, type TestNode as Proc } from '../helpers/nodes.js';
import { until } from '../helpers/processes.js';
import { descriptor, digestOf, expectError, jsonBytes, MT, randomBlob, RegistryClient, withQuery, type Res } from '../helpers/registry-client.js';

const MiB = 1024 * 1024;
const MAX_MANIFEST = 4 * MiB;
const MAX_UPLOAD = 1 * MiB;
const octet = { 'content-type': 'application/octet-stream' };

const nodes = new NodeSet('layerd-limits-');
afterAll(() => nodes.stopAll('SIGTERM'));

/**
 * Sends a request whose body goes out in `chunks` (chunked encoding unless a content-length is given)
 * and resolves with the answer, even when the server answers before it has read the whole body.
 */
function send(base: string, method: string, path: string, headers: Record<string, string>, chunks: Buffer[]): Promise<Res> {
  const url = new URL(base);
  return new Promise<Res>((resolve, reject) => {
    let answering = false;
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      answering = true;
      const body: Buffer[] = [];
      let ended = false;
      res.on('data', (c: Buffer) => body.push(c));
      res.on('end', () => {
        ended = true;
        const buf = Buffer.concat(body);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as IncomingHttpHeaders,
          body: buf,
          header: (name) => {
            const v = res.headers[name.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          },
          json: () => JSON.parse(buf.toString('utf8')),
        });
      });
      res.on('close', () => ended || reject(new Error(`${method} ${path}: answer cut short`)));
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    // Once the answer has begun, a write cut short (the client closes its side when the answer ends,
    // the body still unsent) is expected: the answer is what counts.
    req.on('error', (err) => (answering ? undefined : reject(Object.assign(err, { message: `${err.message} (send ${method} ${path} ${JSON.stringify(headers)})` }))));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

function split(data: Buffer, pieces: number): Buffer[] {
  const size = Math.ceil(data.length / pieces);
  return Array.from({ length: pieces }, (_, i) => data.subarray(i * size, (i + 1) * size)).filter((b) => b.length > 0);
}

/** The writer areas under the node's uploads/ (pushes in progress, and downloads). */
async function uploadsLeft(dataDir: string): Promise<string[]> {
  try {
    return await readdir(join(dataDir, 'uploads'));
  } catch {
    return [];
  }
}

/** A raw TCP client that sends `first` and then whatever the test writes; tells when the server closed it. */
function rawClient(port: number, first: string | Buffer): { socket: Socket; closed(): boolean; received(): string } {
  const socket = connect(port, '127.0.0.1');
  let closed = false;
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  socket.write(first);
  return { socket, closed: () => closed, received: () => received };
}

// ---------- HTTP: sizes and sessions ----------

describe('HTTP limits', () => {
  let node: Proc;
  let c: RegistryClient;
  let seed: Server;
  let seedName: string;
  const hugeManifest = Buffer.alloc(MAX_MANIFEST + 1, 0x20); // JSON whitespace: only its size is wrong

  beforeAll(async () => {
    // A hostile seed: its manifests are 4 MiB + 1 bytes, once with a Content-Length and once without.
    seed = createServer((req, res) => {
      if (req.url === '/v2/' || req.url === '/v2') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (req.url?.startsWith('/v2/huge/manifests/')) {
        const chunked = req.url.endsWith('/chunked');
        res.writeHead(200, { 'content-type': MT.ociManifest, ...(chunked ? {} : { 'content-length': String(hugeManifest.length) }) });
        if (req.method === 'HEAD') return void res.end();
        for (const piece of split(hugeManifest, 16)) res.write(piece);
        return void res.end();
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
    });
    await new Promise<void>((r) => seed.listen(0, '127.0.0.1', r));
    const port = (seed.address() as { port: number }).port;
    seedName = `127.0.0.1:${port}`;
    node = await nodes.start('uploads', {
      args: ['--upstream', `${seedName}=http://${seedName}`, '--max-upload-bytes', String(MAX_UPLOAD), '--max-upload-sessions', '3', '--log-level', 'warn'],
    });
    c = new RegistryClient(node.url);
  });
  afterAll(async () => {
    await new Promise<void>((r) => seed?.close(() => r()));
  });

  it('takes a manifest of exactly 4 MiB, and answers one byte more with 413 SIZE_INVALID, declared or chunked', async () => {
    const config = jsonBytes({ architecture: 'amd64', os: 'linux' });
    await c.putBlob('limits/manifest', config);
    const base = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [], annotations: { pad: '' } };
    const pad = MAX_MANIFEST - jsonBytes(base).length;
    const exact = jsonBytes({ ...base, annotations: { pad: 'x'.repeat(pad) } });
    expect(exact.length).toBe(MAX_MANIFEST);
    expect((await c.putManifest('limits/manifest', 'exact', exact, MT.ociManifest)).status).toBe(201);

    const over = jsonBytes({ ...base, annotations: { pad: 'x'.repeat(pad + 1) } });
    const declared = await send(node.url, 'PUT', '/v2/limits/manifest/manifests/over', { 'content-type': MT.ociManifest, 'content-length': String(over.length) }, split(over, 8));
    expectError(declared, 413, 'SIZE_INVALID');
    const chunked = await send(node.url, 'PUT', '/v2/limits/manifest/manifests/over', { 'content-type': MT.ociManifest }, split(over, 64));
    expectError(chunked, 413, 'SIZE_INVALID');
    expect((await c.req('GET', '/v2/limits/manifest/manifests/over')).status).toBe(404);
  });

  it('refuses a seed manifest over 4 MiB (with or without Content-Length) with an OCI error, and keeps serving', async () => {
    for (const ref of ['latest', 'chunked']) {
      const res = await c.req('GET', `/v2/huge/manifests/${ref}?ns=${seedName}`, { headers: { accept: MT.ociManifest } });
      expectError(res, 502, 'UNAVAILABLE');
      expect(res.json().errors[0].message).toMatch(/larger than 4194304 bytes/);
    }
    expect((await c.req('GET', '/v2/')).status).toBe(200);
  });

  it('takes a blob of exactly --max-upload-bytes', async () => {
    const data = randomBlob(MAX_UPLOAD);
    const digest = digestOf(data);
    const res = await c.req('POST', `/v2/limits/blobs/blobs/uploads/?digest=${digest}`, { headers: octet, body: data });
    expect(res.status).toBe(201);
    expect((await c.req('GET', `/v2/limits/blobs/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it('answers a monolithic push over the limit with 413, declared or chunked, and keeps none of it', async () => {
    const data = randomBlob(MAX_UPLOAD + 1);
    const digest = digestOf(data);
    const path = `/v2/limits/blobs/blobs/uploads/?digest=${digest}`;
    expectError(await send(node.url, 'POST', path, { ...octet, 'content-length': String(data.length) }, split(data, 4)), 413, 'SIZE_INVALID');
    const chunked = await send(node.url, 'POST', path, octet, split(data, 32));
    expectError(chunked, 413, 'SIZE_INVALID');
    expect(chunked.json().errors[0].detail).toEqual({ limit: MAX_UPLOAD });
    expect((await c.req('HEAD', `/v2/limits/blobs/blobs/${digest}`)).status).toBe(404);
    expect(await until('uploads/ to be empty', async () => ((await uploadsLeft(node.dataDir)).length === 0 ? true : undefined))).toBe(true);
  });

  it('answers a session push over the limit with 413 (PUT, or the PATCH that crosses it), drops the session and its bytes', async () => {
    const data = randomBlob(MAX_UPLOAD + 1000);
    const digest = digestOf(data);
    // POST, then one PUT with the whole body (no Content-Length: it is found out while reading).
    const post = await c.req('POST', '/v2/limits/blobs/blobs/uploads/');
    expect(post.status).toBe(202);
    const location = post.header('location')!;
    expectError(await send(node.url, 'PUT', withQuery(location, `digest=${digest}`), octet, split(data, 16)), 413, 'SIZE_INVALID');
    expectError(await c.req('GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');

    // Chunked: the first PATCH fits, the second crosses the limit.
    const start = await c.req('POST', '/v2/limits/blobs/blobs/uploads/');
    const at = start.header('location')!;
    const half = Math.floor(data.length / 2);
    const first = await c.req('PATCH', at, { headers: { ...octet, 'content-range': `0-${half - 1}` }, body: data.subarray(0, half) });
    expect(first.status).toBe(202);
    expect((await uploadsLeft(node.dataDir)).length).toBe(1);
    const second = await send(node.url, 'PATCH', first.header('location')!, { ...octet, 'content-range': `${half}-${data.length - 1}`, 'content-length': String(data.length - half) }, [data.subarray(half)]);
    expectError(second, 413, 'SIZE_INVALID');
    // Undeclared, the same: read up to the limit, then refused.
    const again = await c.req('POST', '/v2/limits/blobs/blobs/uploads/');
    const third = await send(node.url, 'PATCH', again.header('location')!, octet, split(data, 16));
    expectError(third, 413, 'SIZE_INVALID');
    expectError(await c.req('GET', at), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await c.req('GET', again.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
    expect(await until('uploads/ to be empty', async () => ((await uploadsLeft(node.dataDir)).length === 0 ? true : undefined))).toBe(true);
    expect((await c.req('HEAD', `/v2/limits/blobs/blobs/${digest}`)).status).toBe(404);
  });

  it('answers a push session past --max-upload-sessions with 429 TOOMANYREQUESTS and Retry-After; a freed session lets a new one in', async () => {
    const sessions: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await c.req('POST', '/v2/limits/sessions/blobs/uploads/');
      expect(res.status).toBe(202);
      sessions.push(res.header('location')!);
    }
    const refused = await c.req('POST', '/v2/limits/sessions/blobs/uploads/');
    expectError(refused, 429, 'TOOMANYREQUESTS');
    expect(Number(refused.header('retry-after'))).toBeGreaterThan(0);
    // A monolithic push is a session while it runs: refused too.
    const data = randomBlob(1000);
    expectError(await c.req('POST', `/v2/limits/sessions/blobs/uploads/?digest=${digestOf(data)}`, { headers: octet, body: data }), 429, 'TOOMANYREQUESTS');

    // Cancelling one frees its place.
    expect((await c.req('DELETE', sessions.shift()!)).status).toBe(204);
    const next = await c.req('POST', '/v2/limits/sessions/blobs/uploads/');
    expect(next.status).toBe(202);
    sessions.push(next.header('location')!);
    expectError(await c.req('POST', '/v2/limits/sessions/blobs/uploads/'), 429, 'TOOMANYREQUESTS');

    // Completing one frees its place too.
    const put = await c.req('PUT', withQuery(sessions.shift()!, `digest=${digestOf(data)}`), { headers: octet, body: data });
    expect(put.status).toBe(201);
    const mono = randomBlob(500);
    expect((await c.req('POST', `/v2/limits/sessions/blobs/uploads/?digest=${digestOf(mono)}`, { headers: octet, body: mono })).status).toBe(201);

    for (const s of sessions) expect((await c.req('DELETE', s)).status).toBe(204);
  });
});

// ---------- HTTP: clients that stall ----------

describe('HTTP idle timeout', () => {
  const IDLE = '3s';
  let node: Proc;
  let c: RegistryClient;
  // Small enough to sit in the socket buffers at once: a pull never waits on this (busy) test process
  // to read, so no pull here can itself look idle.
  const blob = randomBlob(64 * 1024);
  let blobDigest: string;

  beforeAll(async () => {
    node = await nodes.start('idle', { args: ['--http-idle-timeout', IDLE, '--log-level', 'warn'] });
    c = new RegistryClient(node.url);
    blobDigest = await c.putBlob('limits/idle', blob);
  });

  async function pullWorks(): Promise<void> {
    const res = await c.req('GET', `/v2/limits/idle/blobs/${blobDigest}`);
    expect(res.status).toBe(200);
    expect(digestOf(res.body)).toBe(blobDigest);
  }

  it('cuts a client that stalls mid-headers, and one that stalls mid-body, while others are served', async () => {
    const midHeaders = rawClient(node.port, 'GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ');
    const data = randomBlob(100_000);
    const midBody = rawClient(
      node.port,
      Buffer.concat([
        Buffer.from(`POST /v2/limits/idle/blobs/uploads/?digest=${digestOf(data)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`),
        data.subarray(0, 10_000),
      ]),
    );
    // The node is pulled from while both sit there.
    await pullWorks();
    await until('the mid-headers client to be cut', () => (midHeaders.closed() ? true : undefined), 30_000);
    await until('the mid-body client to be cut', () => (midBody.closed() ? true : undefined), 30_000);
    expect(midBody.received()).toBe(''); // cut, not answered: the push never finished
    expect((await c.req('HEAD', `/v2/limits/idle/blobs/${digestOf(data)}`)).status).toBe(404);
    expect(await until('uploads/ to be empty', async () => ((await uploadsLeft(node.dataDir)).length === 0 ? true : undefined))).toBe(true);
    await pullWorks();
  });

  it('cuts a client that drips its headers (slowloris) with 408, though it is never idle', async () => {
    const drip = rawClient(node.port, 'GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ');
    // A byte every 200 ms: well inside the idle timeout, so only the headers deadline can end it.
    const timer = setInterval(() => drip.closed() || drip.socket.write('a'), 200);
    try {
      await pullWorks();
      await until('the dripping client to be cut', () => (drip.closed() ? true : undefined), 30_000);
    } finally {
      clearInterval(timer);
    }
    expect(drip.received()).toMatch(/^HTTP\/1\.1 408 /);
    await pullWorks();
  });

  it('never cuts a slow transfer that keeps moving', async () => {
    // 24 pieces 150 ms apart: the upload lasts longer than the 3 s idle timeout, no gap comes near it.
    const data = randomBlob(24 * 4096);
    const digest = digestOf(data);
    const url = new URL(node.url);
    const res = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, method: 'POST', path: `/v2/limits/idle/blobs/uploads/?digest=${digest}`, headers: { ...octet, 'content-length': String(data.length) }, agent: false },
        (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      let i = 0;
      const timer = setInterval(() => {
        req.write(data.subarray(i * 4096, (i + 1) * 4096));
        if (++i === 24) {
          clearInterval(timer);
          req.end();
        }
      }, 150);
    });
    expect(res).toBe(201);
    expect(digestOf((await c.req('GET', `/v2/limits/idle/blobs/${digest}`)).body)).toBe(digest);
  });
});

// ---------- libp2p: stalled streams, stream caps, upload rate ----------

describe('peer limits', () => {
  let node: Proc;
  let addr: string;
  let nodeId: string;
  const clients: LayerdLibp2p[] = [];
  const big = randomBlob(6 * MiB);
  let bigDigest: string;

  async function rawPeer(): Promise<LayerdLibp2p> {
    const p = await createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: [], announce: [], bootstrap: [], providerTtlMs: 3_600_000 });
    clients.push(p);
    return p;
  }

  async function status(): Promise<{ peerId: string; multiaddrs: string[]; peers: Array<{ id: string; uploaded: number }> }> {
    const res = await fetch(`${node.url}/api/status`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as never;
  }

  /** Opens a blob stream; with a request, asks for the big blob and stops reading (pause: no window updates). */
  async function stalledStream(peer: LayerdLibp2p, ask: boolean): Promise<Stream> {
    const stream = await peer.dialProtocol(multiaddr(addr), BLOB_PROTOCOL);
    stream.maxReadBufferLength = 64 * MiB;
    if (ask) {
      stream.pause();
      stream.send(Buffer.from(`${JSON.stringify({ digest: bigDigest })}\n`));
    }
    return stream;
  }

  async function fetchWhole(peer: LayerdLibp2p): Promise<Buffer> {
    const got = await fetchFromPeer(peer, { id: nodeId, addrs: [addr] }, bigDigest as never, undefined, AbortSignal.timeout(60_000));
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }

  beforeAll(async () => {
    node = await nodes.start('peers', {
      p2p: true,
      args: [
        '--peer-idle-timeout', '4s',
        '--max-uploads-per-peer', '2',
        '--max-streams-per-peer', '4',
        '--max-upload-rate', '16MB/s',
        '--max-upload-rate-per-peer', '8MB/s',
        '--log-level', 'warn',
      ],
    });
    bigDigest = await new RegistryClient(node.url).putBlob('limits/p2p', big);
    const s = await status();
    nodeId = s.peerId;
    addr = s.multiaddrs.find((a) => a.includes('/tcp/'))!;
    expect(addr).toBeTruthy();
  });
  afterAll(async () => {
    for (const p of clients) await p.stop();
  });

  it('resets a stream that sends no request, and one whose peer stops reading, while it serves another peer', async () => {
    const stalling = await rawPeer();
    const silent = await stalledStream(stalling, false);
    const unread = await stalledStream(stalling, true);
    // Another peer is served, at the rate limits, while those two hold their streams.
    const other = await rawPeer();
    expect(digestOf(await fetchWhole(other))).toBe(bigDigest);
    await until('the silent stream to be reset', () => (silent.status === 'open' ? undefined : silent.status), 30_000);
    await until('the unread stream to be reset', () => (unread.status === 'open' ? undefined : unread.status), 30_000);
    expect(silent.status).toBe('reset');
    expect(unread.status).toBe('reset');
    // Its slots are free again: the same peer is served in full.
    expect(digestOf(await fetchWhole(stalling))).toBe(bigDigest);
  });

  it('resets a silent stream on the claim and rollout protocols too', async () => {
    const stalling = await rawPeer();
    const streams = await Promise.all([CLAIM_PROTOCOL, ROLLOUT_PROTOCOL].map((protocol) => stalling.dialProtocol(multiaddr(addr), protocol)));
    for (const [i, stream] of streams.entries()) {
      await until(`the silent ${stream.protocol} stream to be reset`, () => (stream.status === 'open' ? undefined : stream.status), 30_000);
      expect(streams[i]!.status).toBe('reset');
    }
  });

  it('answers busy past --max-uploads-per-peer and refuses streams past --max-streams-per-peer', async () => {
    const greedy = await rawPeer();
    // Two transfers the peer does not read hold both of its upload slots.
    const held = [await stalledStream(greedy, true), await stalledStream(greedy, true)];
    // Both are being served (their answers have begun) before anything else is asked.
    await until('both held transfers to have begun', () => (held.every((h) => h.readBufferLength > 0) ? true : undefined), 30_000);
    const busy = await Promise.allSettled([fetchWhole(greedy), fetchWhole(greedy)]);
    for (const b of busy) {
      expect(b.status).toBe('rejected');
      expect((b as PromiseRejectedResult).reason).toBeInstanceOf(PeerFetchError);
      expect((b as PromiseRejectedResult).reason.status).toBe('busy');
    }
    // Two more open streams reach the cap of four on the connection; the fifth is refused by libp2p.
    const open = [await stalledStream(greedy, false), await stalledStream(greedy, false)];
    const fifth = await stalledStream(greedy, false).catch((err: Error) => err);
    const refused = fifth instanceof Error ? 'refused' : await until('the fifth stream to be reset', () => (fifth.status === 'open' ? undefined : fifth.status), 30_000);
    expect(['refused', 'reset']).toContain(refused);
    // Meanwhile another peer is served.
    expect(digestOf(await fetchWhole(await rawPeer()))).toBe(bigDigest);
    for (const s of [...held, ...open]) s.abort(new Error('test done'));
  });

  it('sends every byte, counted once, with the upload rate limits on', async () => {
    const before = await status();
    const reader = await rawPeer();
    const got = await Promise.all([fetchWhole(reader), fetchWhole(reader)]);
    for (const g of got) expect(g.equals(big)).toBe(true);
    const id = reader.peerId.toString();
    const after = await until('the node to count the bytes it sent', async () => {
      const s = await status();
      const uploaded = s.peers.find((p) => p.id === id)?.uploaded ?? 0;
      return uploaded >= 2 * big.length ? s : undefined;
    });
    expect(after.peers.find((p) => p.id === id)!.uploaded).toBe(2 * big.length);
    expect(before.peers.find((p) => p.id === id)).toBeUndefined();
  });
});
