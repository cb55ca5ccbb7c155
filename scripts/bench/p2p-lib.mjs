// Helpers shared by the p2p benchmarks (p2p-transfer, p2p-lookup, p2p-fanout), on top of lib.mjs: random blobs,
// streamed pushes, timed GETs, polling with a deadline, percentiles, and CPU profiles grouped by package.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { MiB, readBody, request, round1 } from './lib.mjs';

/** Writes `bytes` random bytes to `path` in 1 MiB pieces (never all in memory); returns the sha256 digest. */
export async function createRandomBlob(path, bytes) {
  const hash = createHash('sha256');
  async function* chunks() {
    for (let left = bytes; left > 0; left -= MiB) {
      const chunk = await new Promise((ok, fail) => randomBytes(Math.min(MiB, left), (err, b) => (err ? fail(err) : ok(b))));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(chunks, createWriteStream(path));
  return `sha256:${hash.digest('hex')}`;
}


/** PUTs a manifest (bytes) under a tag. */
export async function pushManifest(server, repo, tag, bytes, mediaType) {
  const res = await request(`${server.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType, 'content-length': bytes.length },
    body: bytes,
  });
  const body = await readBody(res);
  if (res.statusCode !== 201) throw new Error(`${server.name}: PUT manifest → ${res.statusCode} ${body}`);
}

export async function getJson(url) {
  const res = await request(url, { headers: { accept: 'application/json' } });
  const body = await readBody(res);
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode} ${body}`);
  return JSON.parse(body.toString());
}

/**
 * GETs a blob to its end, counting (and with `hash`, hashing) the bytes with a data listener, the cheapest client.
 * Returns status, headers, bytes, digest and times: ttfbMs (request → first body byte), ms (→ last byte).
 * Anything but 200 throws, with the status in the message.
 */
export async function timedGet(url, { hash = false, headers = {}, agent = false } = {}) {
  const t0 = performance.now();
  const res = await request(url, { headers, agent });
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode} ${await readBody(res)}`);
  const h = hash ? createHash('sha256') : null;
  let bytes = 0;
  let first;
  await new Promise((ok, fail) => {
    res.on('data', (c) => {
      first ??= performance.now();
      bytes += c.length;
      if (h) h.update(c);
    });
    res.on('end', ok);
    res.on('error', fail);
  });
  const end = performance.now();
  return { status: res.statusCode, headers: res.headers, bytes, digest: h ? `sha256:${h.digest('hex')}` : null, ms: end - t0, ttfbMs: (first ?? end) - t0 };
}

/** Polls `check` (sync or async; truthy = done) every `everyMs` until it holds or `timeoutMs` passes; returns its value. */
export async function pollUntil(what, check, { timeoutMs = 30_000, everyMs = 25 } = {}) {
  const deadline = performance.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs)); // poll interval, not a readiness sleep
  }
}

/** p-th percentile (0..100) by nearest rank; null without samples. */
export function percentile(xs, p) {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * Self time in a V8 .cpuprofile grouped by where the code lives: an npm package (node_modules/<pkg>), a file of
 * ours (dist/...), node's own internals (node:internal/<area>), native functions, or V8 pseudo-frames ((garbage
 * collector), (program)). Answers "the crypto, the muxer, our copies or the disk?" where per-function lists
 * scatter. `windowsUs` ([start, end] pairs on the profile's clock, see lib.mjs monotonicUs) keeps only samples
 * taken inside them, so start-up does not count.
 */
export async function cpuProfileByPackage(file, { top = 14, windowsUs } = {}) {
  const prof = JSON.parse(await readFile(file, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const groups = new Map();
  let busyUs = 0;
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    const dt = (i + 1 < prof.timeDeltas.length ? prof.timeDeltas[i + 1] : prof.endTime - t) || 0;
    if (windowsUs && !windowsUs.some(([a, b]) => t >= a && t <= b)) continue;
    const { url, functionName } = nodes.get(prof.samples[i]).callFrame;
    if (functionName === '(idle)') continue;
    busyUs += dt;
    let group;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (pkg) group = pkg[1];
    else if (url.includes('/dist/')) group = url.slice(url.indexOf('/dist/') + 1);
    else if (url.startsWith('node:')) group = url.split('/').slice(0, 3).join('/');
    else if (!url) group = functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
    else group = url.replace(/^file:\/\//, '');
    groups.set(group, (groups.get(group) ?? 0) + dt);
  }
  return {
    busyMs: round1(busyUs / 1000),
    groups: [...groups.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, us]) => ({ where, selfMs: round1(us / 1000), pctOfBusy: round1((us / Math.max(1, busyUs)) * 100) })),
  };
}

/**
 * Who calls `functionName` (by self time): the `depth` frames above it, merged by call path. For "which copy is
 * that _copyActual?" questions a flat list cannot answer.
 */
export async function cpuProfileCallers(file, functionName, { depth = 4, top = 5, windowsUs } = {}) {
  const prof = JSON.parse(await readFile(file, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const paths = new Map();
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    const dt = (i + 1 < prof.timeDeltas.length ? prof.timeDeltas[i + 1] : prof.endTime - t) || 0;
    if (windowsUs && !windowsUs.some(([a, b]) => t >= a && t <= b)) continue;
    const id = prof.samples[i];
    if (nodes.get(id).callFrame.functionName !== functionName) continue;
    const chain = [];
    for (let p = parent.get(id), k = 0; p !== undefined && k < depth; p = parent.get(p), k++) {
      const f = nodes.get(p).callFrame;
      chain.push(`${f.functionName || '(anonymous)'}@${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`);
    }
    const key = chain.join(' < ');
    paths.set(key, (paths.get(key) ?? 0) + dt);
  }
  return [...paths.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([callers, us]) => ({ callers, selfMs: round1(us / 1000) }));
}
