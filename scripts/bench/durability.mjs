#!/usr/bin/env node
// What durable writes cost a push: the same pushes against two layerd nodes in one run, one as shipped
// (every acknowledged write fsynced: blob bytes, the blob's directory after its rename, each tag, link and
// manifest record through temp + fsync + rename + directory fsync) and one with LAYERD_UNSAFE_NO_FSYNC=1
// (no fsync at all: the unsafe switch that exists for this benchmark only). Rounds alternate the order of
// the nodes, so machine load hits all alike.
//
//   node scripts/bench/durability.mjs                               # 200 small images and 4 × 32 MiB blobs per node and round, 2 rounds
//   node scripts/bench/durability.mjs --images 50 --large 2 --large-mib 8 --rounds 1      # quick
//   node scripts/bench/durability.mjs --baseline-bin /tmp/old/dist/cli.js   # and a third node: another build, as is
//
// Small images: a config, one 4 KiB layer and a manifest with a tag, each in a repository of its own, 8
// pushes at a time over keep-alive connections (monolithic blob uploads, then the manifest PUT): pushes/s.
// Large blobs: one at a time, POST then one PUT streaming the bytes: MiB/s. For each, the node's CPU seconds
// (user+sys, /proc) and the ratios fsync-on / fsync-off. Prints one JSON line; details in
// .out/bench/durability-<ts>.json.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { formatTable, log, makeTempDir, median, MiB, procCpuSeconds, readBody, request, round1, round2, runBenchmark, startLayerd, writeResults } from './lib.mjs';

const { values: o } = parseArgs({
  options: {
    images: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    large: { type: 'string', default: '4' },
    'large-mib': { type: 'string', default: '32' },
    rounds: { type: 'string', default: '2' },
    // Another build's dist/cli.js (e.g. from before fsync was added), run as a third node as it is.
    'baseline-bin': { type: 'string' },
  },
});
const IMAGES = Number(o.images);
const CONCURRENCY = Number(o.concurrency);
const LARGE = Number(o.large);
const LARGE_MIB = Number(o['large-mib']);
const ROUNDS = Number(o.rounds);

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function call(url, opts, want) {
  const res = await request(url, opts);
  const body = await readBody(res);
  if (res.statusCode !== want) throw new Error(`${opts.method ?? 'GET'} ${url}: ${res.statusCode} ${body.toString().slice(0, 200)}`);
  return res;
}

/** One small image in a repository of its own: two monolithic blob uploads and a tagged manifest PUT. */
async function pushImage(base, agent, repo) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layer = randomBytes(4096);
  for (const blob of [config, layer]) {
    await call(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': blob.length }, body: blob }, 201);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  await call(`${base}/v2/${repo}/manifests/v1`, { method: 'PUT', agent, headers: { 'content-type': OCI_MANIFEST, 'content-length': manifest.length }, body: manifest }, 201);
}

async function smallImages(node, round) {
  const agents = Array.from({ length: CONCURRENCY }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  let next = 0;
  const cpu0 = procCpuSeconds(node.pid);
  const t0 = performance.now();
  await Promise.all(
    agents.map(async (agent) => {
      for (let i = next++; i < IMAGES; i = next++) await pushImage(node.url, agent, `bench/r${round}/img${i}`);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = procCpuSeconds(node.pid) - cpu0;
  for (const a of agents) a.destroy();
  return { pushesPerSec: IMAGES / seconds, seconds, cpuSeconds: cpu, cpuMsPerPush: (cpu * 1000) / IMAGES };
}

async function largeBlobs(node, round) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const size = LARGE_MIB * MiB;
  let ms = 0;
  let cpu = 0;
  for (let i = 0; i < LARGE; i++) {
    const blob = randomBytes(size); // made before the clock starts
    const digest = sha256(blob);
    const repo = `bench/r${round}/large${i}`;
    const cpu0 = procCpuSeconds(node.pid);
    const t0 = performance.now();
    const post = await call(`${node.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', agent, headers: { 'content-length': 0 } }, 202);
    const location = new URL(post.headers.location, node.url);
    location.searchParams.set('digest', digest);
    await call(location.href, { method: 'PUT', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': size }, body: blob }, 201);
    ms += performance.now() - t0;
    cpu += procCpuSeconds(node.pid) - cpu0;
  }
  agent.destroy();
  return { mibPerSec: (LARGE * LARGE_MIB) / (ms / 1000), seconds: ms / 1000, cpuSeconds: cpu };
}

await runBenchmark(async () => {
  const dir = await makeTempDir('layerd-bench-durability-');
  const nodes = {
    fsync: await startLayerd(dir, { name: 'fsync' }),
    noFsync: await startLayerd(dir, { name: 'no-fsync', env: { LAYERD_UNSAFE_NO_FSYNC: '1' } }),
  };
  if (o['baseline-bin']) nodes.baseline = await startLayerd(dir, { name: 'baseline', bin: o['baseline-bin'] });
  const modes = Object.keys(nodes);
  const runs = Object.fromEntries(modes.map((m) => [m, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      const small = await smallImages(nodes[mode], round);
      const large = await largeBlobs(nodes[mode], round);
      runs[mode].push({ round, small, large });
      log(`round ${round + 1}/${ROUNDS} ${mode}: ${round1(small.pushesPerSec)} pushes/s, ${round1(large.mibPerSec)} MiB/s`);
    }
  }
  const pick = (mode, f) => median(runs[mode].map(f));
  const row = (mode) => ({
    pushesPerSec: round1(pick(mode, (r) => r.small.pushesPerSec)),
    cpuMsPerPush: round2(pick(mode, (r) => r.small.cpuMsPerPush)),
    largeMiBPerSec: round1(pick(mode, (r) => r.large.mibPerSec)),
    largeCpuSeconds: round2(pick(mode, (r) => r.large.cpuSeconds)),
  });
  const on = row('fsync');
  const off = row('noFsync');
  const base = nodes.baseline ? row('baseline') : undefined;
  const summary = {
    images: IMAGES,
    concurrency: CONCURRENCY,
    largeBlobs: `${LARGE} x ${LARGE_MIB} MiB`,
    rounds: ROUNDS,
    fsync: on,
    noFsync: off,
    ...(base ? { baseline: { bin: o['baseline-bin'], ...base } } : {}),
    // Durable over unsafe: below 1 for throughput means fsync costs that much.
    ratio: {
      pushesPerSec: round2(on.pushesPerSec / off.pushesPerSec),
      cpuMsPerPush: round2(on.cpuMsPerPush / off.cpuMsPerPush),
      largeMiBPerSec: round2(on.largeMiBPerSec / off.largeMiBPerSec),
      largeCpuSeconds: round2(on.largeCpuSeconds / off.largeCpuSeconds),
    },
    ...(base
      ? {
          ratioToBaseline: {
            pushesPerSec: round2(on.pushesPerSec / base.pushesPerSec),
            cpuMsPerPush: round2(on.cpuMsPerPush / base.cpuMsPerPush),
            largeMiBPerSec: round2(on.largeMiBPerSec / base.largeMiBPerSec),
            largeCpuSeconds: round2(on.largeCpuSeconds / base.largeCpuSeconds),
          },
        }
      : {}),
  };
  process.stderr.write(
    formatTable(
      ['node', 'small pushes/s', 'CPU ms/push', `large MiB/s`, 'large CPU s'],
      [
        ['fsync (shipped)', on.pushesPerSec, on.cpuMsPerPush, on.largeMiBPerSec, on.largeCpuSeconds],
        ['LAYERD_UNSAFE_NO_FSYNC=1', off.pushesPerSec, off.cpuMsPerPush, off.largeMiBPerSec, off.largeCpuSeconds],
        ['ratio fsync / no fsync', summary.ratio.pushesPerSec, summary.ratio.cpuMsPerPush, summary.ratio.largeMiBPerSec, summary.ratio.largeCpuSeconds],
        ...(base
          ? [
              ['baseline build', base.pushesPerSec, base.cpuMsPerPush, base.largeMiBPerSec, base.largeCpuSeconds],
              ['ratio fsync / baseline', summary.ratioToBaseline.pushesPerSec, summary.ratioToBaseline.cpuMsPerPush, summary.ratioToBaseline.largeMiBPerSec, summary.ratioToBaseline.largeCpuSeconds],
            ]
          : []),
      ],
    ) + '\n',
  );
  const file = await writeResults('durability', { summary, runs });
  log(`details: ${file}`);
  console.log(JSON.stringify(summary));
});
