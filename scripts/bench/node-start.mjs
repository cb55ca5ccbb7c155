#!/usr/bin/env node
// One node's start-up and idle memory, for ways of running the same daemon: another build, another node binary,
// node flags (V8's heap sizes, --lite-mode), environment (NODE_COMPILE_CACHE). Each variant's `layerd serve`
// (with libp2p on 127.0.0.1, no peers) is started alone, one after another, and measured at the moment /v2/ first
// answers: wall seconds from spawn, CPU seconds (all threads), RSS. It is left running idle, and after --idle
// seconds its RSS, its peak (VmHWM) and its CPU since it was ready are read (the daemon runs one full GC 30 s
// after start: --idle 45 sees the memory it settles at).
//
//   node scripts/bench/node-start.mjs --variant 'base;bin=/work/main/dist/cli.js' --variant 'new'
//        --variant 'lite;flags=--lite-mode' --variant 'n24;node=/path/to/node24' [--rounds 3] [--idle 45]
//
// A variant is `label[;bin=PATH][;node=PATH][;flags=FLAGS][;env=K=V[,K=V]]`; the bin defaults to this checkout's,
// the node to the one running this script, and the bin's own #! flags always come first. Rounds interleave the
// variants. Loopback only: no lock needed, but other load on the box shows in the wall seconds (less in CPU).
// Results: a table on stdout, .out/bench/node-start-<time>.json.
import { parseArgs } from 'node:util';
import { shippedNodeFlags } from '../cluster/netns-cluster-lib.mjs';
import { formatTable, freePort, layerdBin, log, makeTempDir, median, procCpuSeconds, procStatusKiB, round1, round2, runBenchmark, startProcess, stopServer, writeResults } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '3' },
    idle: { type: 'string', default: '45' },
  },
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function parseVariant(spec) {
  const [label, ...parts] = spec.split(';');
  const v = { label, bin: layerdBin, node: process.execPath, flags: [], env: {} };
  for (const part of parts) {
    const [key, value] = part.split(/=(.*)/s);
    if (key === 'bin') v.bin = value;
    else if (key === 'node') v.node = value;
    else if (key === 'flags') v.flags = value.split(' ').filter(Boolean);
    else if (key === 'env') for (const kv of value.split(',')) v.env[kv.split('=')[0]] = kv.split(/=(.*)/s)[1];
    else throw new Error(`variant ${label}: unknown part ${part}`);
  }
  return v;
}
const variants = (opt.variant ?? ['this']).map(parseVariant);

async function until(check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('not ready in time');
    await sleep(20);
  }
}

/** Starts one variant's node and measures it when /v2/ first answers. */
async function start(v, dir, k) {
  const port = await freePort();
  const argv = [...shippedNodeFlags(v.bin), ...v.flags, v.bin, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', `${dir}/d${k}`, '--p2p-listen', '/ip4/127.0.0.1/tcp/0'];
  const t0 = performance.now();
  const proc = await startProcess(`${v.label}-${k}`, v.node, argv, { env: v.env, timeoutMs: 120_000, ready: (line) => line.includes('"layerd listening"') || undefined });
  const url = `http://127.0.0.1:${port}/v2/`;
  await until(async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status === 200, 60_000);
  const readyS = (performance.now() - t0) / 1000;
  const at = { cpu: procCpuSeconds(proc.pid), t: performance.now() };
  return { v, proc, readyS, cpuS: at.cpu, rssMiB: procStatusKiB(proc.pid, 'VmRSS') / 1024, at };
}

await runBenchmark(async () => {
  const dir = await makeTempDir('layerd-node-start-');
  const idleMs = Number(opt.idle) * 1000;
  const rows = [];
  for (let r = 0; r < Number(opt.rounds); r++) {
    const running = [];
    for (const v of variants) running.push(await start(v, dir, `${r}-${v.label}`));
    for (const s of running) {
      await sleep(Math.max(0, s.at.t + idleMs - performance.now()));
      const idleCpu = procCpuSeconds(s.proc.pid) - s.at.cpu;
      rows.push({ label: s.v.label, readyS: s.readyS, cpuS: s.cpuS, rssReadyMiB: s.rssMiB, rssIdleMiB: procStatusKiB(s.proc.pid, 'VmRSS') / 1024, hwmMiB: procStatusKiB(s.proc.pid, 'VmHWM') / 1024, idlePct: (idleCpu / ((performance.now() - s.at.t) / 1000)) * 100 });
      await stopServer(s.proc);
    }
    log(`round ${r + 1} done`);
  }
  const summary = variants.map((v) => {
    const mine = rows.filter((x) => x.label === v.label);
    const med = (k) => median(mine.map((x) => x[k]));
    return { label: v.label, readyS: round2(med('readyS')), cpuS: round2(med('cpuS')), rssReadyMiB: round1(med('rssReadyMiB')), rssIdleMiB: round1(med('rssIdleMiB')), hwmMiB: round1(med('hwmMiB')), idlePct: round2(med('idlePct')) };
  });
  console.log(formatTable(['variant', 'ready s', 'CPU s to ready', 'RSS at ready MiB', `RSS after ${opt.idle} s`, 'VmHWM', '% core idle (alone)'], summary.map((s) => [s.label, s.readyS, s.cpuS, s.rssReadyMiB, s.rssIdleMiB, s.hwmMiB, s.idlePct])));
  log(`results: ${await writeResults('node-start', { variants, rows, summary })}`);
});
