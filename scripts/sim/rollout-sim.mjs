#!/usr/bin/env node
// A simulated rollout (src/sim, built into dist/): layerd's own rollout policy over a simulated cluster.
//   node scripts/sim/rollout-sim.mjs --nodes 1000 --mb 1024 --layers 4 --rate 1gbit --latency 0.2 \
//     [--slow-frac 0.05 --slow-factor 10] [--crash-frac 0.01] [--seed 1] [--cpu host|pool --cores 2] \
//     [--design line|stripes --k 4] [--start-ms 570 --start-jitter-ms 100] [--crash-detect-ms 45000]
//     [--keeper-hearing direct|paced|at-once] [--bench .out/bench/rollout-*.json: predict that run, with --box]
//     [--box: this box's one CPU pool, no delay, and the rollout's messages' CPU, as the namespace benches ran;
//      --cores C: the pool the rollout bench's probe measured around the run to predict (its "pool probe"
//      line; 1.84 when not given), --idle-cores for another idle node]
// Prints makespan, makespan ÷ the link bound, seed egress ÷ image, max host upload ÷ image, p50/p99 host
// completion, events and wall time; writes the result as JSON under .out/sim/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BOX_CPU, SCENARIO_DEFAULTS, simulateRollout } from '../../dist/sim/index.js';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '8' },
    mb: { type: 'string', default: '200' },
    layers: { type: 'string', default: '4' },
    rate: { type: 'string', default: '100mbit' },
    latency: { type: 'string', default: String(SCENARIO_DEFAULTS.latencyMs) },
    'slow-frac': { type: 'string', default: '0' },
    'slow-factor': { type: 'string', default: '10' },
    'crash-frac': { type: 'string', default: '0' },
    'crash-detect-ms': { type: 'string', default: String(SCENARIO_DEFAULTS.crashDetectMs) },
    seed: { type: 'string', default: '1' },
    cpu: { type: 'string', default: 'host' },
    // Cores per host (--cpu host, default 2) or of the one pool (--box's fitted pool unless given).
    cores: { type: 'string' },
    design: { type: 'string', default: 'line' },
    k: { type: 'string', default: '4' },
    // Default: the scenario's (--box: this box's, which counts the spread's start).
    'start-ms': { type: 'string' },
    'start-jitter-ms': { type: 'string', default: String(SCENARIO_DEFAULTS.startJitterMs) },
    'relay-lag-kb': { type: 'string', default: String(SCENARIO_DEFAULTS.relayLagBytes / 1024) },
    'step-ms': { type: 'string' },
    'link-efficiency': { type: 'string', default: String(SCENARIO_DEFAULTS.linkEfficiency) },
    'peer-efficiency': { type: 'string', default: String(SCENARIO_DEFAULTS.peerEfficiency) },
    // This box, as the namespace benches ran: one pool of CPU for all hosts, no delay, the messages' CPU.
    box: { type: 'boolean', default: false },
    'idle-cores': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    // A rollout bench's result file (.out/bench/rollout-*.json) to predict: its nodes, image and rate, and
    // as the pool (unless --cores) the cores its probe measured around the run; prints the errors.
    bench: { type: 'string' },
    // How the stripe trees' keeper hears of failing parents: direct (the prototype's view), paced (the
    // daemon's paced reports: 125 s apart at 1,000 nodes), at-once (paced, but a suspect is reported at once).
    'keeper-hearing': { type: 'string', default: 'direct' },
    // Stop once the hosts on normal links are done (the slow hosts' own times are then not known).
    'stop-when-fast-done': { type: 'boolean', default: false },
  },
});

/** The run a bench file holds (its median round, as the bench reports it). */
function benchRun(file) {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const rolloutOf = (r) => r.results.find((x) => x.way === 'rollout');
  const sorted = [...j.rounds].sort((x, y) => rolloutOf(x).makespanMs - rolloutOf(y).makespanMs);
  const round = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!round.box?.poolProbe) throw new Error(`--bench: ${file} has no pool probe (a run of the bench before it measured one)`);
  const r = rolloutOf(round);
  return { opts: j.opts, pool: round.box.poolProbe, makespanMs: r.makespanMs, firstMs: r.firstMs, seedRatio: r.seedRatio, hostsCpuSeconds: round.hostsCpuSeconds };
}
const real = a.bench ? benchRun(a.bench) : undefined;
if (real) {
  Object.assign(a, { nodes: String(real.opts.nodes), mb: String(real.opts.mb), layers: String(real.opts.layers), rate: real.opts.rate });
  a.cores ??= String(real.pool);
}

/** "100mbit", "1gbit", "25Mbit" → bits per second. */
function parseRate(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)bit$/i.exec(text);
  if (!m) throw new Error(`--rate: want e.g. 100mbit or 1gbit, not ${text}`);
  return Number(m[1]) * { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase()];
}

const num = (k) => {
  const v = Number(a[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k}: not a number: ${a[k]}`);
  return v;
};

const scenario = {
  ...SCENARIO_DEFAULTS,
  nodes: num('nodes'),
  imageBytes: Math.round(num('mb') * 1024 * 1024),
  layers: num('layers'),
  rateBits: parseRate(a.rate),
  latencyMs: num('latency'),
  slowFrac: num('slow-frac'),
  slowFactor: num('slow-factor'),
  crashFrac: num('crash-frac'),
  crashDetectMs: num('crash-detect-ms'),
  seed: num('seed'),
  cpu: a.cpu === 'pool' ? 'pool' : 'host',
  cores: 2,
  design: a.design === 'stripes' ? 'stripes' : 'line',
  k: num('k'),
  startJitterMs: num('start-jitter-ms'),
  relayLagBytes: num('relay-lag-kb') * 1024,
  linkEfficiency: num('link-efficiency'),
  peerEfficiency: num('peer-efficiency'),
  ...(a['step-ms'] ? { stepMs: num('step-ms') } : {}),
  ...(a['idle-cores'] ? { costs: { idleCores: num('idle-cores') } } : {}),
  ...(a.box ? BOX_CPU : {}),
  ...(a.cores ? { cores: num('cores') } : {}),
  ...(a['start-ms'] ? { startMs: num('start-ms') } : {}),
  stopWhenFastDone: a['stop-when-fast-done'],
  keeperHearing: ['direct', 'paced', 'at-once'].includes(a['keeper-hearing']) ? a['keeper-hearing'] : (() => { throw new Error(`--keeper-hearing: direct, paced or at-once, not ${a['keeper-hearing']}`); })(),
};

const r = await simulateRollout(scenario);
const s = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'never');
const line = [
  `${scenario.design}${scenario.design === 'stripes' ? ` k=${scenario.k}` : ''} N=${scenario.nodes} ${a.mb} MiB/${scenario.layers} layers ${a.rate} cpu=${scenario.cpu}×${scenario.cores}`,
  `slow ${r.slow} crash ${r.crashed}:`,
  `makespan ${s(r.makespanMs)} = ${r.makespanOverBound}× bound (${s(r.boundMs)});`,
  r.slow ? `fast hosts ${s(r.fastMakespanMs)} = ${r.fastOverBound}×;` : '',
  `first ${s(r.firstMs)}, p50 ${s(r.p50Ms)}, p99 ${s(r.p99Ms)};`,
  `seed ${r.seedOverImage}× (wire ${r.seedWireOverImage}×); max upload ${r.maxUploadOverImage}×;`,
  `hosts' CPU ${r.hostsCpuSeconds} s;`,
  r.demotions ? `demotions ${r.demotions};` : '',
  r.unfinished ? `UNFINISHED ${r.unfinished};` : '',
  `events ${r.events}, steps ${r.steps}, wall ${(r.wallMs / 1000).toFixed(1)} s`,
].filter(Boolean).join(' ');
console.log(line);
if (real) {
  const err = (sim, got) => `${sim > got ? '+' : ''}${(((sim - got) / got) * 100).toFixed(1)}%`;
  console.log(
    `against ${a.bench} (pool ${a.cores} cores): makespan ${s(real.makespanMs)} real, ${err(r.makespanMs, real.makespanMs)}; ` +
      `first host ${s(real.firstMs)}, ${err(r.firstMs, real.firstMs)}; hosts' CPU ${real.hostsCpuSeconds} s, ${err(r.hostsCpuSeconds, real.hostsCpuSeconds)}; ` +
      `seed ${real.seedRatio}× (tbf, headers in) against ${r.seedWireOverImage}×, ${err(r.seedWireOverImage, real.seedRatio)}`,
  );
}
const dir = join('.out', 'sim');
mkdirSync(dir, { recursive: true });
const file = join(dir, `rollout-${scenario.design}-n${scenario.nodes}-${a.rate}-slow${scenario.slowFrac}-crash${scenario.crashFrac}-seed${scenario.seed}-${Date.now()}.json`);
writeFileSync(file, JSON.stringify(r, null, 2));
if (!a.quiet) console.log(`→ ${file}`);
