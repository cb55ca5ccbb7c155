#!/usr/bin/env node
// What authentication costs a request: the same pushes and private reads against three layerd nodes in one
// run, one open (loopback, nothing configured) and two asking for credentials (--htpasswd with a bcrypt
// user, --token-file, --private-repos; one asked with Basic, one with a bearer token), measured in turn so
// machine load hits all alike.
//
//   node scripts/bench/auth-overhead.mjs                    # 300 pushes and 1000 HEADs per mode and round, 3 rounds, cost 10
//   node scripts/bench/auth-overhead.mjs --pushes 50 --reads 200 --rounds 1 --cost 5    # quick
//
// Per request kind it reports the median time open, with Basic auth (bcrypt once, then remembered) and
// with a bearer token, and their ratio to open (requests over one keep-alive connection per mode, as a
// registry client sends them); and the time of one uncached bcrypt check (what a first request,
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
  // One node per mode, so each process serves the same share of requests (a busier process stays warmer).
  const authedArgs = ['--log-level', 'warn', '--htpasswd', join(dir, 'htpasswd'), '--token-file', join(dir, 'tokens'), '--private-repos', 'secret'];
  const authed = await startLayerd(dir, { name: 'basic', args: authedArgs });
  const authedToo = await startLayerd(dir, { name: 'bearer', args: authedArgs });
  const { Agent } = await import('node:http');
  const modes = [
    { name: 'open', server: open, headers: {} },
    { name: 'basic', server: authed, headers: { authorization: `Basic ${Buffer.from(`bench:${PASSWORD}`).toString('base64')}` } },
    { name: 'bearer', server: authedToo, headers: { authorization: `Bearer ${TOKEN}` } },
  ];
  // Request by request in turn, the order rotated each time (open, basic, bearer; basic, bearer, open; ...),
  // each timed alone: load from other processes and whatever the first of a turn pays fall on all three
  // modes alike, and medians of per-request times shrug off the spikes.
  const turn = (i) => modes.map((_, k) => modes[(i + k) % modes.length]);
  const results = { push: {}, read: {} };
  for (const m of modes) {
    results.push[m.name] = [];
    results.read[m.name] = [];
    m.agent = new Agent({ keepAlive: true, maxSockets: 1 });
  }
  const timed = async (one) => {
    const t = process.hrtime.bigint();
    await one();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  for (let round = 0; round < ROUNDS; round++) {
    const blobs = new Map(modes.map((m) => [m.name, Array.from({ length: PUSHES }, () => randomBytes(4096))]));
    for (let i = 0; i < PUSHES; i++) {
      for (const m of turn(i)) {
        const blob = blobs.get(m.name)[i];
        const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
        results.push[m.name].push(
          await timed(() =>
            call(`${m.server.url}/v2/secret/r${round}/blobs/uploads/?digest=${digest}`, {
              method: 'POST',
              headers: { ...m.headers, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
              body: blob,
              agent: m.agent,
            }),
          ),
        );
      }
    }
    for (let i = 0; i < READS; i++) {
      for (const m of turn(i)) {
        const digest = `sha256:${createHash('sha256').update(blobs.get(m.name)[i % PUSHES]).digest('hex')}`;
        results.read[m.name].push(await timed(() => call(`${m.server.url}/v2/secret/r${round}/blobs/${digest}`, { method: 'HEAD', headers: m.headers, agent: m.agent })));
      }
    }
    log(`round ${round + 1} of ${ROUNDS} done`);
  }
  for (const m of modes) m.agent.destroy();
  // One uncached bcrypt check at this cost, in this process (the node runs the same code).
  const checks = [];
  for (let i = 0; i < 10; i++) {
    const t = process.hrtime.bigint();
    await bcrypt.compare(PASSWORD, hash);
    checks.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const med = (kind, mode) => median(results[kind][mode]);
  const ms = (kind) => Object.fromEntries(modes.map((m) => [m.name, round2(med(kind, m.name))]));
  const summary = {
    bench: 'auth-overhead',
    bcryptCost: COST,
    bcryptCheckMs: round1(median(checks)),
    medianMs: { push: ms('push'), privateHead: ms('read') },
    ratioToOpen: {
      pushBasic: round2(med('push', 'basic') / med('push', 'open')),
      pushBearer: round2(med('push', 'bearer') / med('push', 'open')),
      headBasic: round2(med('read', 'basic') / med('read', 'open')),
      headBearer: round2(med('read', 'bearer') / med('read', 'open')),
    },
    pushes: PUSHES * ROUNDS,
    heads: READS * ROUNDS,
  };
  process.stderr.write(
    formatTable(
      ['median ms', 'open', 'basic', 'bearer'],
      [
        ['push (4 KiB POST ?digest=)', summary.medianMs.push.open, summary.medianMs.push.basic, summary.medianMs.push.bearer],
        ['private blob HEAD', summary.medianMs.privateHead.open, summary.medianMs.privateHead.basic, summary.medianMs.privateHead.bearer],
      ],
    ) + '\n',
  );
  const file = await writeResults('auth-overhead', { summary, results, checks });
  log(`details in ${file}`);
  process.stdout.write(JSON.stringify(summary) + '\n');
});
