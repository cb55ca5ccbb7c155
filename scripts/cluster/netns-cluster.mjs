#!/usr/bin/env node
// A layerd cluster on one machine, each host in its own network namespace (see netns-cluster-lib.mjs for the
// topology). Run as root, after `npm run build`:
//
//   node scripts/cluster/netns-cluster.mjs up --nodes 4 [--rate 100mbit] [--seed distribution|layerd]
//        [--prefix lc] [--subnet 10.77.0.0/24] [--latency 50ms] [--burst BYTES] [--node-arg ARG]...
//        [--timeout 120s] [--json]
//   node scripts/cluster/netns-cluster.mjs down [--prefix lc]
//
// `up` prints the cluster (with --json: one JSON document on stdout; progress always goes to stderr), writes
// the same JSON to <run dir>/cluster.json, stays in the foreground and tears everything down on Ctrl-C or
// SIGTERM. `down` removes what a run that was SIGKILLed left behind: namespaces named <prefix>-<6 hex>-...
// (or one run's, with --prefix <run id>), the PIDs inside them, and their run dirs. Exit codes: 0 done,
// 1 a failure (set-up or teardown), 2 bad usage.
import { parseArgs } from 'node:util';
import { down, parseRate, parseSubnet, startCluster } from './netns-cluster-lib.mjs';

const USAGE = `usage: netns-cluster.mjs up --nodes N [--rate 100mbit] [--seed distribution|layerd] [--prefix lc]
                        [--subnet 10.77.0.0/24] [--latency 50ms] [--burst BYTES] [--node-arg ARG]...
                        [--timeout 120s] [--json]
       netns-cluster.mjs down [--prefix lc]`;

const say = (line) => process.stderr.write(`[cluster] ${line}\n`);

function usage(message) {
  if (message) process.stderr.write(`${message}\n`);
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

function seconds(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) usage(`bad duration ${text}: e.g. 90s, 2m`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's'];
}

function printTable(d) {
  const rows = [d.seed, ...d.nodes].map((h) => [h.name, h.ns, h.url, `pid ${h.pid}`, h.role === 'seed' ? h.kind : h.peerId]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const lines = [
    `cluster ${d.id} up in ${(d.setupMs / 1000).toFixed(1)} s: ${d.subnet}, every link ${d.link.rate} both ways; hub ${d.hub.ns}`,
    ...rows.map((r) => ('  ' + r.map((c, i) => String(c).padEnd(widths[i])).join('  ')).trimEnd()),
    `description: ${d.runDir}/cluster.json   logs: ${d.runDir}/<host>.log`,
    `try: ip netns exec ${d.nodes[0].ns} node scripts/cluster/ns-http.mjs request GET ${d.nodes[0].url}/api/status`,
    'Ctrl-C tears it down.',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

async function up(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        nodes: { type: 'string' },
        rate: { type: 'string', default: '100mbit' },
        seed: { type: 'string', default: 'distribution' },
        prefix: { type: 'string', default: 'lc' },
        subnet: { type: 'string', default: '10.77.0.0/24' },
        latency: { type: 'string', default: '50ms' },
        burst: { type: 'string' },
        'node-arg': { type: 'string', multiple: true, default: [] },
        timeout: { type: 'string', default: '120s' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  if (values.nodes === undefined || !/^\d+$/.test(values.nodes) || Number(values.nodes) < 1) usage('--nodes N (N >= 1) is required');
  if (values.burst !== undefined && !/^\d+$/.test(values.burst)) usage('--burst is a number of bytes');
  if (!['distribution', 'layerd'].includes(values.seed)) usage('--seed is distribution or layerd');
  if (!/^[a-z][a-z0-9]{0,11}$/.test(values.prefix)) usage('--prefix: 1-12 lower-case letters and digits, starting with a letter');
  try {
    parseRate(values.rate);
    parseSubnet(values.subnet);
  } catch (err) {
    usage(err.message);
  }

  const setup = new AbortController();
  let cluster;
  let signalled;
  let release;
  const released = new Promise((r) => (release = r));
  const onSignal = (sig) => {
    if (signalled) return say(`${sig}: already tearing down`);
    signalled = sig;
    say(`${sig}: tearing down`);
    if (cluster) release();
    else setup.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    cluster = await startCluster({
      nodes: Number(values.nodes),
      rate: values.rate,
      seed: values.seed,
      prefix: values.prefix,
      subnet: values.subnet,
      latency: values.latency,
      burst: values.burst === undefined ? undefined : Number(values.burst),
      nodeArgs: values['node-arg'],
      timeoutMs: seconds(values.timeout),
      log: say,
      signal: setup.signal,
      handleSignals: false, // this script's own handlers stop the cluster, and print that they do
      onExit: (host, code, sig) => say(`warning: ${host.name} (pid ${host.pid}) exited on its own (${sig ?? `code ${code}`}); see ${host.logFile}`),
    });
  } catch (err) {
    say(`failed: ${err.message}`);
    process.exitCode = 1;
    return;
  }
  if (values.json) process.stdout.write(JSON.stringify(cluster.describe(), null, 2) + '\n');
  else printTable(cluster.describe());
  if (signalled) release(); // a signal that came while the last step finished
  // The servers are children of this process, but a timer keeps it alive even if every one of them died.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await released;
  clearInterval(keepAlive);
  try {
    await cluster.stop(); // it says how long that took
  } catch (err) {
    say(`teardown: ${err.message}`);
    process.exitCode = 1;
  }
}

async function downCommand(argv) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { prefix: { type: 'string', default: 'lc' } } }));
  } catch (err) {
    usage(err.message);
  }
  if (process.getuid?.() !== 0) {
    say('down needs root (it deletes network namespaces)');
    process.exitCode = 1;
    return;
  }
  try {
    const removed = await down({ prefix: values.prefix });
    say(`removed ${removed.namespaces.length} namespace(s)${removed.namespaces.length ? ` (${removed.namespaces.join(' ')})` : ''}, ` +
      `stopped ${removed.pids.length} process(es), removed ${removed.dirs.length} run dir(s)`);
  } catch (err) {
    say(`failed: ${err.message}`);
    process.exitCode = 1;
  }
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'up') await up(rest);
else if (command === 'down') await downCommand(rest);
else if (command === '--help' || command === '-h') process.stdout.write(`${USAGE}\n`);
else usage(command ? `unknown command ${command}` : undefined);
