#!/usr/bin/env node
// What authentication costs a request: the same pushes and private reads against two layerd nodes in one
// run, one open (loopback, nothing configured) and one asking for credentials (--htpasswd with a bcrypt
// user, --token-file, --private-repos), measured alternately so machine load hits both alike.
//
//   node scripts/bench/auth-overhead.mjs                    # 300 pushes and 1000 reads per round, 3 rounds, cost 10
//   node scripts/bench/auth-overhead.mjs --pushes 50 --reads 200 --rounds 1 --cost 5    # quick
//
// Per request kind it reports requests/s open, with Basic auth (bcrypt once, then remembered) and with a
// bearer token, and their ratio to open; and the time of one uncached bcrypt check (what a first request,
// a wrong password, or a reload costs). Prints one JSON line; details in .out/bench/auth-overhead-<ts>.json.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable, log, makeTempDir, median, readBody, request, round1, round2, runBenchmark, startLayerd, writeResults } from './lib.mjs';

const bcrypt = createRequire(import.meta.url)('bcryptjs');
const { values: o } = parseArgs({
  options: {
    pushes: { type: 'string', default: '300' },
    reads: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    cost: { type: 'string', default: '10' },
  },
});
const PUSHES = Number(o.pushes);
const READS = Number(o.reads);
const ROUNDS = Number(o.rounds);
const COST = Number(o.cost);
const PASSWORD = 'bench-password-0123';
const TOKEN = 'bench-token-0123456789abcdef';

/** Sequential requests over one keep-alive connection, as a registry client sends them; requests/s. */
async function rate(n, one) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await one(i);
  return n / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function call(url, opts) {
  const res = await request(url, opts);
  await readBody(res);
  if (res.statusCode >= 400) throw new Error(`${opts.method ?? 'GET'} ${url}: ${res.statusCode}`);
}

await runBenchmark(async () => {
  const dir = await makeTempDir('layerd-bench-auth-');
  const hash = bcrypt.hashSync(PASSWORD, COST).replace(/^\$2b\$/, '$2y$');
  await writeFile(join(dir, 'htpasswd'), `bench:${hash}\n`);
  await writeFile(join(dir, 'tokens'), `ci:${TOKEN}\n`);
  const open = await startLayerd(dir, { name: 'open', args: ['--log-level', 'warn'] });
  const authed = await startLayerd(dir, {
    name: 'authed',
    args: ['--log-level', 'warn', '--htpasswd', join(dir, 'htpasswd'), '--token-file', join(dir, 'tokens'), '--private-repos', 'secret'],
  });
  const { Agent } = await import('node:http');
  const modes = [
    { name: 'open', server: open, headers: {} },
    { name: 'basic', server: authed, headers: { authorization: `Basic ${Buffer.from(`bench:${PASSWORD}`).toString('base64')}` } },
    { name: 'bearer', server: authed, headers: { authorization: `Bearer ${TOKEN}` } },
  ];
  const results = { push: {}, read: {} };
  for (const m of modes) {
    results.push[m.name] = [];
    results.read[m.name] = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const m of modes) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const blobs = Array.from({ length: PUSHES }, () => randomBytes(4096));
      const repo = `secret/r${round}${m.name}`;
      const pushRate = await rate(PUSHES, (i) => {
        const digest = `sha256:${createHash('sha256').update(blobs[i]).digest('hex')}`;
        return call(`${m.server.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
          method: 'POST',
          headers: { ...m.headers, 'content-type': 'application/octet-stream', 'content-length': String(blobs[i].length) },
          body: blobs[i],
          agent,
        });
      });
      const digest = `sha256:${createHash('sha256').update(blobs[0]).digest('hex')}`;
      const readRate = await rate(READS, () => call(`${m.server.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: m.headers, agent }));
      agent.destroy();
      results.push[m.name].push(pushRate);
      results.read[m.name].push(readRate);
      log(`round ${round + 1} ${m.name}: ${round1(pushRate)} pushes/s, ${round1(readRate)} private HEADs/s`);
    }
  }
  // One uncached bcrypt check at this cost, in this process (the node runs the same code).
  const checks = [];
  for (let i = 0; i < 10; i++) {
    const t = process.hrtime.bigint();
    await bcrypt.compare(PASSWORD, hash);
    checks.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const med = (kind, mode) => median(results[kind][mode]);
  const summary = {
    bench: 'auth-overhead',
    bcryptCost: COST,
    bcryptCheckMs: round1(median(checks)),
    pushesPerSec: { open: round1(med('push', 'open')), basic: round1(med('push', 'basic')), bearer: round1(med('push', 'bearer')) },
    privateReadsPerSec: { open: round1(med('read', 'open')), basic: round1(med('read', 'basic')), bearer: round1(med('read', 'bearer')) },
    ratioToOpen: {
      pushBasic: round2(med('push', 'basic') / med('push', 'open')),
      pushBearer: round2(med('push', 'bearer') / med('push', 'open')),
      readBasic: round2(med('read', 'basic') / med('read', 'open')),
      readBearer: round2(med('read', 'bearer') / med('read', 'open')),
    },
    pushes: PUSHES,
    reads: READS,
    rounds: ROUNDS,
  };
  process.stderr.write(
    formatTable(
      ['requests/s', 'open', 'basic', 'bearer'],
      [
        ['push (4 KiB POST ?digest=)', summary.pushesPerSec.open, summary.pushesPerSec.basic, summary.pushesPerSec.bearer],
        ['private blob HEAD', summary.privateReadsPerSec.open, summary.privateReadsPerSec.basic, summary.privateReadsPerSec.bearer],
      ],
    ) + '\n',
  );
  const file = await writeResults('auth-overhead', { summary, results, checks });
  log(`details in ${file}`);
  process.stdout.write(JSON.stringify(summary) + '\n');
});
