#!/usr/bin/env node
// The DHT cost simulator (src/sim/dht, built into dist/): what keeping provider records costs each host,
// today's one provide per blob against layerd's ProvideSweep, and first-provider lookup latency.
//   node scripts/sim/dht-sim.mjs --nodes 1000 --blobs 5000 --interval 12h --seed 1 [--replication 20]
//        [--rate 20] [--baseline-sample 20] [--lookup-nodes 10,100,1000] [--churn 0,0.3,0.5] [--lookup-blobs 100 --lookups 1000] [--skip-cost]
// Results: .out/sim/dht-<nodes>x<blobs>-r<replication>-<interval>-s<seed>.json (and a summary on stdout).
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as sim from '../../dist/sim/index.js';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    blobs: { type: 'string', default: '5000' },
    interval: { type: 'string', default: '12h' },
    seed: { type: 'string', default: '1' },
    replication: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20' }, // DhtContentRouter's DEFAULT_PROVIDE_RATE
    'baseline-sample': { type: 'string', default: '20' },
    'lookup-nodes': { type: 'string', default: '10,100,1000' },
    churn: { type: 'string', default: '0' },
    'lookup-blobs': { type: 'string', default: '100' },
    lookups: { type: 'string', default: '1000' },
    'skip-cost': { type: 'boolean', default: false },
  },
});

function duration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new Error(`not a duration: ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'];
}

const nodes = Number(a.nodes);
const blobs = Number(a.blobs);
const seed = Number(a.seed);
const replication = Number(a.replication);
const intervalMs = duration(a.interval);
const out = { args: a };
const started = Date.now();
const f = (x) => (typeof x === 'number' ? Number(x.toFixed(3)) : x);
const line = (label, w) => `${label.padEnd(26)} mean ${f(w.meanPerSecond)}/s  worst second ${w.maxPerSecond}  (typical host's worst ${f(w.meanMaxPerSecond)})`;

if (!a['skip-cost']) {
  const cost = await sim.dht.runProvideCost({ nodes, blobs, intervalMs, seed, replication, maxRequestsPerSecond: Number(a.rate), baselineSample: Number(a['baseline-sample']), onProgress: (w) => process.stderr.write(`${w} (${Math.round((Date.now() - started) / 1000)} s)\n`) });
  out.cost = cost;
  console.log(`provide cost: ${nodes} hosts x ${blobs} blobs, re-provide every ${a.interval}, replication ${replication}, region bits ${cost.regionBits}`);
  console.log(`before (today, ${cost.before.hosts} sampled hosts): ${f(cost.before.requestsPerBlobPerCycle)} requests per blob per cycle`);
  console.log('  ' + line('cold start, sent', cost.before.cold.sent));
  console.log('  ' + line('steady cycle, sent', cost.before.steady.sent));
  console.log(`after (ProvideSweep, all hosts): ${f(cost.after.requestsPerBlobPerCycle)} requests per blob per cycle, ${f(cost.after.walksPerHostPerCycle)} walks per host per cycle`);
  console.log('  ' + line('cold start, sent', cost.after.cold.sent));
  console.log('  ' + line('steady cycle, sent', cost.after.steady.sent));
  console.log('  ' + line('steady cycle, received', cost.after.steady.received));
}

out.lookups = [];
for (const n of a['lookup-nodes'].split(',').filter(Boolean).map(Number)) {
  for (const churn of a.churn.split(',').map(Number)) {
    for (const placement of ['per-key', 'sweep']) {
      const r = await sim.dht.runLookups({ nodes: n, seed, placement, replication, intervalMs, churn, blobs: Number(a['lookup-blobs']), lookups: Number(a.lookups) });
      out.lookups.push(r);
      const placed = `records on the key's k closest ${f(r.recordsInClosestK)}, blobs with all ${placement === 'sweep' ? replication : 'k'} closest holding ${f(r.blobsExact)}`;
      console.log(`lookup ${String(n).padStart(5)} hosts, ${churn * 100}% gone, records by ${placement.padEnd(7)}: found ${r.found}/${r.lookups}  first provider p50 ${f(r.p50Ms)} ms  p99 ${f(r.p99Ms)} ms  ${f(r.meanRequests)} requests  (${placed})`);
    }
  }
}

out.wallSeconds = (Date.now() - started) / 1000;
mkdirSync('.out/sim', { recursive: true });
const file = `.out/sim/dht-${nodes}x${blobs}-r${replication}-${a.interval}-s${seed}.json`;
writeFileSync(file, JSON.stringify(out, null, 2));
console.log(`wrote ${file} (${out.wallSeconds} s)`);
