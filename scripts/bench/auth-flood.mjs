#!/usr/bin/env node
// A legitimate client's pulls while anonymous clients flood a node with random Basic credentials (issue 13
// item 6: each bogus password used to cost a bcrypt check on the event loop; 32 attackers took a pull's
// p50 from 5 ms to 9.9 s). One real `layerd serve --htpasswd` (bcrypt cost 10, as `htpasswd -B` writes):
//   1. alone: an authenticated pull of a small private blob (Basic, keep-alive, as a registry client) and
//      an anonymous pull of a small public blob, in turn, --requests of each;
//   2. the same while --attackers clients send random Basic credentials as fast as they are answered, each
//      from its own loopback address (127.0.1.x: a distributed attack, so the per-address limit alone does
//      not stop it; --attack-sources 1 sends them all from 127.0.0.2 instead);
//   3. under attack, --fresh first logins of users the node has not checked yet (they need bcrypt).
// The legitimate client is 127.0.0.1. Node CPU is read from /proc for each phase (all threads, and the
// main thread alone: the event loop).
//
//   node scripts/bench/auth-flood.mjs                          # 400 requests per kind and phase, 32 attackers
//   node scripts/bench/auth-flood.mjs --requests 100 --cost 8  # quick
//   node scripts/bench/auth-flood.mjs --bin /path/to/other/dist/cli.js   # another build, e.g. before the fix
//
// Prints one JSON line; details in .out/bench/auth-flood-<ts>.json.
import { randomBytes, createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable, layerdBin, log, mainThreadCpuSeconds, makeTempDir, procCpuSeconds, readBody, round1, round2, runBenchmark, startLayerd, writeResults } from './lib.mjs';

const bcrypt = createRequire(import.meta.url)('bcryptjs');
const { values: o } = parseArgs({
  options: {
    requests: { type: 'string', default: '400' },
    attackers: { type: 'string', default: '32' },
    'attack-sources': { type: 'string', default: '32' },
    fresh: { type: 'string', default: '10' },
    cost: { type: 'string', default: '10' },
    bin: { type: 'string', default: layerdBin },
  },
});
const REQUESTS = Number(o.requests);
const ATTACKERS = Number(o.attackers);
const SOURCES = Math.max(1, Number(o['attack-sources']));
const FRESH = Number(o.fresh);
const COST = Number(o.cost);
const PASSWORD = 'bench-password-0123';

const percentile = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** One GET over `agent`; its status and time in ms. */
function get(url, { headers = {}, agent, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { headers, agent, localAddress }, (res) => {
      readBody(res).then((body) => resolve({ status: res.statusCode, ms: performance.now() - t0, body }), reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function push(base, repo, data, authorization) {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const res = await new Promise((resolve, reject) => {
    const req = http.request(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { authorization, 'content-type': 'application/octet-stream', 'content-length': data.length } }, resolve);
    req.on('error', reject);
    req.end(data);
  });
  await readBody(res);
  if (res.statusCode !== 201) throw new Error(`push to ${repo}: ${res.statusCode}`);
  return digest;
}

/** The legitimate client: authenticated private pulls and anonymous public pulls, in turn. */
async function legitimate(base, blobs, auth) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times = { private: [], public: [] };
  const failures = {};
  for (let i = 0; i < REQUESTS; i++) {
    for (const kind of i % 2 ? ['public', 'private'] : ['private', 'public']) {
      const res = await get(`${base}/v2/${kind === 'private' ? 'secret/app' : 'team/app'}/blobs/${blobs[kind]}`, { agent, headers: kind === 'private' ? { authorization: auth } : {} });
      if (res.status !== 200) failures[`${kind} ${res.status}`] = (failures[`${kind} ${res.status}`] ?? 0) + 1;
      else times[kind].push(res.ms);
    }
  }
  agent.destroy();
  const sum = (xs) => ({ n: xs.length, p50Ms: round2(percentile(xs, 50)), p99Ms: round2(percentile(xs, 99)), maxMs: round2(Math.max(...xs)) });
  return { private: sum(times.private), public: sum(times.public), failures };
}

/** Attackers sending random Basic credentials until `stop` says so; counts of their answers by status. */
function attack(base, stop) {
  const statuses = {};
  let sent = 0;
  const one = async (i) => {
    const localAddress = SOURCES === 1 ? '127.0.0.2' : `127.0.1.${(i % SOURCES) + 1}`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress });
    while (!stop.done) {
      const auth = basic(`u${randomBytes(4).toString('hex')}`, randomBytes(12).toString('hex'));
      try {
        const res = await get(`${base}/v2/secret/app/tags/list`, { agent, headers: { authorization: auth } });
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      } catch (err) {
        statuses[err.code ?? 'error'] = (statuses[err.code ?? 'error'] ?? 0) + 1;
      }
      sent++;
    }
    agent.destroy();
  };
  const running = Promise.all(Array.from({ length: ATTACKERS }, (_, i) => one(i)));
  return { statuses, sent: () => sent, running };
}

/** CPU of the node over a phase: cores used on average, all threads and the main thread alone. */
function cpuMeter(pid) {
  const t0 = performance.now();
  const all0 = procCpuSeconds(pid);
  const main0 = mainThreadCpuSeconds(pid);
  return () => {
    const wall = (performance.now() - t0) / 1000;
    return { wallS: round1(wall), cpuS: round2(procCpuSeconds(pid) - all0), cores: round2((procCpuSeconds(pid) - all0) / wall), mainThreadCores: round2((mainThreadCpuSeconds(pid) - main0) / wall) };
  };
}

await runBenchmark(async () => {
  const dir = await makeTempDir('layerd-bench-flood-');
  // The bench user, and users whose first login is measured under attack.
  const hash = bcrypt.hashSync(PASSWORD, COST).replace(/^\$2b\$/, '$2y$');
  const users = ['bench', ...Array.from({ length: FRESH }, (_, i) => `fresh${i}`)];
  await writeFile(join(dir, 'htpasswd'), users.map((u) => `${u}:${hash}\n`).join(''));
  const node = await startLayerd(dir, { name: 'layerd', bin: o.bin, args: ['--log-level', 'error', '--htpasswd', join(dir, 'htpasswd'), '--private-repos', 'secret'] });
  const base = node.url;
  const auth = basic('bench', PASSWORD);
  const blobs = { private: await push(base, 'secret/app', randomBytes(4096), auth), public: await push(base, 'team/app', randomBytes(4096), auth) };
  log(`node ${base} (${o.bin}), bcrypt cost ${COST}; ${REQUESTS} private and ${REQUESTS} public pulls per phase`);

  let meter = cpuMeter(node.child.pid);
  const alone = await legitimate(base, blobs, auth);
  const aloneCpu = meter();
  log(`alone: private p50 ${alone.private.p50Ms} ms, public p50 ${alone.public.p50Ms} ms`);

  const stop = { done: false };
  const attackers = attack(base, stop);
  await new Promise((r) => setTimeout(r, 2000)); // let the flood build up before measuring
  meter = cpuMeter(node.child.pid);
  const sentBefore = attackers.sent();
  const underAttack = await legitimate(base, blobs, auth);
  const fresh = [];
  for (const user of users.slice(1)) {
    const res = await get(`${base}/v2/secret/app/blobs/${blobs.private}`, { headers: { authorization: basic(user, PASSWORD) } });
    fresh.push({ status: res.status, ms: round1(res.ms) });
  }
  const attackCpu = meter();
  const attackRate = round1((attackers.sent() - sentBefore) / attackCpu.wallS);
  stop.done = true;
  await attackers.running;
  log(`under attack: private p50 ${underAttack.private.p50Ms} ms, public p50 ${underAttack.public.p50Ms} ms`);

  const ratio = (kind, p) => round1(underAttack[kind][p] / alone[kind][p]);
  const result = {
    benchmark: 'auth-flood',
    bin: o.bin,
    bcryptCost: COST,
    attackers: ATTACKERS,
    attackSources: SOURCES,
    alone: { ...alone, nodeCpu: aloneCpu },
    underAttack: { ...underAttack, nodeCpu: attackCpu, attackRequestsPerS: attackRate, attackAnswers: attackers.statuses },
    freshLoginsUnderAttack: { n: fresh.length, ok: fresh.filter((f) => f.status === 200).length, statuses: fresh.map((f) => f.status), p50Ms: round1(percentile(fresh.map((f) => f.ms), 50)), maxMs: round1(Math.max(...fresh.map((f) => f.ms))) },
    ratio: { privateP50: ratio('private', 'p50Ms'), privateP99: ratio('private', 'p99Ms'), publicP50: ratio('public', 'p50Ms'), publicP99: ratio('public', 'p99Ms') },
  };
  const file = await writeResults('auth-flood', result);
  process.stderr.write(
    `\n${formatTable(
      ['pull', 'alone p50 ms', 'alone p99 ms', 'attacked p50 ms', 'attacked p99 ms', 'p50 ratio'],
      ['private', 'public'].map((k) => [k === 'private' ? 'authenticated private' : 'anonymous public', alone[k].p50Ms, alone[k].p99Ms, underAttack[k].p50Ms, underAttack[k].p99Ms, result.ratio[`${k}P50`]]),
    )}\n` +
      `node CPU: alone ${aloneCpu.cores} cores (main thread ${aloneCpu.mainThreadCores}); attacked ${attackCpu.cores} cores (main thread ${attackCpu.mainThreadCores}); attack ${attackRate} req/s, answers ${JSON.stringify(attackers.statuses)}\n` +
      `fresh logins under attack: ${JSON.stringify(result.freshLoginsUnderAttack)}\n${file}\n`,
  );
  console.log(JSON.stringify(result));
});
