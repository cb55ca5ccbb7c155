// A layerd cluster on one machine, one network namespace per host, for tests and benchmarks on machines with
// no Docker engine. Topology (every name carries the run's id, e.g. lc-3fa2c1):
//
//   <id>-hub    a bridge br0; one veth end per host (h-seed, h-n1, ...), each shaped with tbf
//   <id>-seed   eth0 = <subnet>.2     the seed registry on :5000 (CNCF distribution, or layerd)
//   <id>-nK     eth0 = <subnet>.10+K  `layerd serve` on :5000, libp2p on :5001
//
// Each host's link is capped both ways: tbf on its own eth0 caps what it sends, tbf on its hub-side veth end
// caps what it receives (a host's download is what a rollout is bound by, and the seed's upload is what
// peer-to-peer saves, so both directions matter). The subnet is private and exists only inside these
// namespaces: the veths are created inside the hub namespace, so the machine's own network never sees an
// interface or an address of the cluster. Only the machine's own tools are used (ip, tc, sh, node); nothing
// outside the namespaces is ever dialled. Needs root.
//
// Everything is torn down by stop(): the processes this module started (and only those) get SIGTERM, then
// SIGKILL; their exit is awaited before a namespace is deleted; then the namespaces and the run's temp dir go.
// A setup that fails half-way tears down what it made before it throws. If the process dies without stop(),
// an exit hook does the same synchronously; `down({prefix})` removes what a killed (SIGKILL) run left.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const defaultLayerdBin = join(repoRoot, 'dist', 'layerd.mjs');
// The compose network's public test user (compose/test-credentials): every layerd host here listens beyond
// loopback, so it takes pushes and /api writes (rollouts) only with credentials.
const TEST_HTPASSWD = join(repoRoot, 'compose', 'test-credentials', 'htpasswd');
const TEST_AUTHORIZATION = `Basic ${Buffer.from('layerd:layerd-test-only').toString('base64')}`;
const nsHttp = join(here, 'ns-http.mjs');

const RUN_DIR_PREFIX = 'layerd-cluster-';
const HTTP_PORT = 5000;
const P2P_PORT = 5001;
const BRIDGE = 'br0';
const STOP_GRACE_MS = 10_000; // a layerd node lets transfers run 5 s after SIGTERM before it exits

/**
 * The node flags layerd ships with: those on its bin's `#!/usr/bin/env -S node …` line, how the `layerd`
 * command and the image start it. The cluster runs its nodes with them, as a host would.
 */
export function shippedNodeFlags(layerdBin) {
  const first = readFileSync(layerdBin, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node\b(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

// ---------------------------------------------------------------- parsing options

/** `100mbit` → 100e6 bits/s. Only tc's bit-rate units: a bare number or `Xbps` means bytes in tc, a trap. */
export function parseRate(rate) {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)bit$/i.exec(String(rate).trim());
  if (!m) throw new Error(`bad rate ${JSON.stringify(rate)}: use tc's bit units, e.g. 50mbit, 1gbit, 800kbit`);
  const bits = Number(m[1]) * { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase()];
  if (!(bits >= 8_000)) throw new Error(`rate ${rate} is too low (at least 8kbit)`);
  return bits;
}

const ipToInt = (ip) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const intToIp = (n) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const PRIVATE_BLOCKS = [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
];

/** `10.77.0.0/24` → {network, length, size}; refuses anything outside RFC 1918's private blocks. */
export function parseSubnet(cidr) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(String(cidr).trim());
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255)) throw new Error(`bad subnet ${JSON.stringify(cidr)}: use a.b.c.d/len`);
  const length = Number(m[5]);
  if (length < 8 || length > 28) throw new Error(`subnet ${cidr}: the prefix length must be 8..28`);
  const size = 2 ** (32 - length);
  const network = ipToInt(m.slice(1, 5).join('.'));
  if (network % size !== 0) throw new Error(`subnet ${cidr}: host bits are set (network is ${intToIp(network - (network % size))}/${length})`);
  const inside = PRIVATE_BLOCKS.some(([block, len]) => length >= len && Math.floor(network / 2 ** (32 - len)) === Math.floor(ipToInt(block) / 2 ** (32 - len)));
  if (!inside) throw new Error(`subnet ${cidr} is not private (10/8, 172.16/12, 192.168/16): the cluster's addresses must never collide with a real network`);
  return { network, length, size };
}

const PREFIX_RE = /^[a-z][a-z0-9]{0,11}$/;
function checkPrefix(prefix) {
  if (!PREFIX_RE.test(prefix)) throw new Error(`bad prefix ${JSON.stringify(prefix)}: 1-12 lower-case letters and digits, starting with a letter`);
}

/**
 * What runs of `prefix` own (or one run, when `prefix` is a run id such as lc-3fa2c1): namespaces named
 * <id>-hub, <id>-seed, <id>-nK, and run dirs named layerd-cluster-<id>. Nothing else ever matches.
 */
function ownedBy(prefix) {
  const m = /^([a-z][a-z0-9]{0,11})(-[0-9a-f]{6})?$/.exec(prefix);
  if (!m) throw new Error(`bad prefix ${JSON.stringify(prefix)}: 1-12 lower-case letters and digits, or a run id such as lc-3fa2c1`);
  const runId = `${m[1]}${m[2] ?? '-[0-9a-f]{6}'}`;
  return { namespace: new RegExp(`^${runId}-(hub|seed|n\\d+)$`), runDir: new RegExp(`^${RUN_DIR_PREFIX}${runId}$`) };
}

// ---------------------------------------------------------------- running tools

/**
 * Runs a short-lived command; resolves {stdout, stderr}, rejects with both in the message. `track` sees the
 * child while it runs, so stop() can end it too.
 */
function run(cmd, args, { env, timeoutMs = 120_000, track } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    track?.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      track?.delete(child);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      track?.delete(child);
      if (code === 0) return resolvePromise({ stdout, stderr });
      const why = signal ? `signal ${signal}` : `exit ${code}`;
      reject(new Error(`${[cmd, ...args].join(' ')} failed (${why})\n${stderr.trim()}${stdout.trim() ? `\n${stdout.trim().slice(-2000)}` : ''}`));
    });
  });
}

const isAlive = (pid) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie has left its namespaces already; only its parent's wait() is missing.
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function listNamespaces() {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
}

async function namespacePids(ns) {
  const { stdout } = await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean).map(Number);
}

async function preflight({ seed, layerdBin }) {
  if (process.getuid?.() !== 0) {
    throw new Error('a netns cluster needs root: it creates network namespaces, veths and tc qdiscs (run as root, as CI does)');
  }
  const missing = [];
  const need = ['ip', 'tc', 'sh', 'mount', ...(seed === 'distribution' ? ['docker-registry'] : [])];
  for (const cmd of need) await run('sh', ['-c', `command -v ${cmd}`]).catch(() => missing.push(cmd));
  if (missing.length) throw new Error(`a netns cluster needs ${missing.join(', ')} (iproute2${missing.includes('docker-registry') ? ', docker-registry' : ''}) on PATH`);
  if (!existsSync(layerdBin)) throw new Error(`${layerdBin} missing: run \`npm run build\` first`);
}

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- signals

// The servers run in their own process group, so a Ctrl-C at the terminal reaches only the process that
// owns the cluster; and a signal's default action kills a process without running its 'exit' handlers.
// So while a cluster is up, SIGINT/SIGTERM/SIGHUP tear it down first. If nothing else in the process
// listens for the signal, it is then raised again with its default action (the process dies of it, as it
// would have); if something else does (a benchmark's own cleanup), that listener decides what happens next.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const liveStops = new Set();

function onSignal(sig) {
  const alone = process.listenerCount(sig) === 1; // counted now: stop() takes this listener away
  Promise.allSettled([...liveStops].map((stop) => stop())).then(() => {
    if (!alone) return;
    process.off(sig, onSignal);
    process.kill(process.pid, sig);
  });
}

function watchSignals(stop) {
  if (liveStops.size === 0) for (const sig of SIGNALS) process.on(sig, onSignal);
  liveStops.add(stop);
}

function unwatchSignals(stop) {
  if (!liveStops.delete(stop) || liveStops.size > 0) return;
  for (const sig of SIGNALS) process.off(sig, onSignal);
}

// ---------------------------------------------------------------- the cluster

/**
 * Starts a seed and `nodes` layerd nodes, each in its own namespace; resolves once every node answers /readyz
 * and (with waitForPeers) is connected to at least one peer. See netns-cluster-lib.d.mts for the options and
 * the returned object.
 */
export async function startCluster(opts = {}) {
  const o = {
    nodes: 3,
    rate: '100mbit',
    seed: 'distribution',
    prefix: 'lc',
    subnet: '10.77.0.0/24',
    latency: '50ms',
    burst: undefined,
    nodeArgs: [],
    seedArgs: [],
    waitForPeers: true,
    timeoutMs: 120_000,
    layerdBin: defaultLayerdBin,
    log: () => {},
    signal: undefined,
    onExit: undefined,
    handleSignals: true,
    ...opts,
  };
  checkPrefix(o.prefix);
  if (!Number.isInteger(o.nodes) || o.nodes < 1) throw new Error(`--nodes must be a whole number >= 1, not ${o.nodes}`);
  if (o.seed !== 'distribution' && o.seed !== 'layerd') throw new Error(`--seed must be distribution or layerd, not ${o.seed}`);
  const rateBits = parseRate(o.rate);
  const subnet = parseSubnet(o.subnet);
  if (10 + o.nodes >= subnet.size - 1) throw new Error(`subnet ${o.subnet} is too small for ${o.nodes} nodes (they take .11 to .${10 + o.nodes})`);
  // tbf needs a bucket of at least one timer tick's worth of bytes at the rate; 20 ms worth (256 KiB at
  // 100mbit, what was seen working) and never less than a few full-size packets.
  const burstBytes = o.burst ?? Math.max(32 * 1024, Math.ceil(rateBits / 8 / 50));
  await preflight(o);
  // Every layerd host runs with the node flags on the bin's #! line (read once, not per host).
  const nodeFlags = shippedNodeFlags(o.layerdBin);

  const id = `${o.prefix}-${randomBytes(3).toString('hex')}`;
  const runDir = join(tmpdir(), `${RUN_DIR_PREFIX}${id}`);
  const hubNs = `${id}-hub`;
  const t0 = performance.now();

  const created = []; // namespaces, in creation order
  const daemons = new Map(); // pid → {name, child, exited}
  const execs = new Set(); // short-lived children (tools, probes) still running
  const hosts = [];
  let stopping;
  let stopped = false;

  const abortIfAsked = () => {
    if (o.signal?.aborted) throw new Error('cluster set-up interrupted');
  };
  const ip = (args) => run('ip', args, { track: execs });
  const tc = (args) => run('tc', args, { track: execs });
  const hostOf = (nameOrNs) => {
    const h = hosts.find((x) => x.name === nameOrNs || x.ns === nameOrNs);
    if (!h) throw new Error(`no host ${nameOrNs} in cluster ${id}`);
    return h;
  };

  /**
   * Runs a command inside a namespace. `bindMounts` ([source, target] pairs) are private to that one command:
   * `ip netns exec` gives it its own mount namespace. `isolateContainersCache` puts a per-namespace folder over
   * /var/lib/containers/cache, where skopeo/podman as root keep a blob-info cache that would otherwise tell a
   * client in one namespace that a blob "exists" at a registry only another namespace pushed it to.
   */
  async function runIn(ns, cmd, args = [], { env, timeoutMs, bindMounts = [], isolateContainersCache = false } = {}) {
    const mounts = [...bindMounts];
    if (isolateContainersCache) {
      const cache = join(runDir, 'containers-cache', ns);
      await mkdir(cache, { recursive: true });
      await mkdir('/var/lib/containers/cache', { recursive: true }); // the mount point: skopeo's own folder
      mounts.push([cache, '/var/lib/containers/cache']);
    }
    const argv = mounts.length
      ? ['netns', 'exec', ns, 'sh', '-c', 'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 125; shift 2; done; shift; exec "$@"', 'sh', ...mounts.flat(), '--', cmd, ...args]
      : ['netns', 'exec', ns, cmd, ...args];
    return run('ip', argv, { env, timeoutMs, track: execs });
  }

  /** One HTTP request from inside `ns` (see ns-http.mjs): {status, headers, size, sha256, body?}. */
  async function http(ns, url, { method = 'GET', headers = {}, bodyFile, outFile, timeoutMs } = {}) {
    const args = [nsHttp, 'request', method, url];
    for (const [k, v] of Object.entries(headers)) args.push('--header', `${k}: ${v}`);
    if (bodyFile) args.push('--body-file', bodyFile);
    if (outFile) args.push('--out', outFile);
    const { stdout } = await runIn(ns, process.execPath, args, { timeoutMs });
    return JSON.parse(stdout);
  }

  /** tbf's "Sent N bytes" on a host's eth0 (what it sent) or on its hub-side end (what it received). */
  async function qdiscSent(ns, dev) {
    const { stdout } = await tc(['-n', ns, '-s', 'qdisc', 'show', 'dev', dev]);
    const m = /^qdisc tbf [\s\S]*?Sent (\d+) bytes/m.exec(stdout);
    if (!m) throw new Error(`no tbf statistics on ${dev} in ${ns}:\n${stdout}`);
    return Number(m[1]);
  }
  const bytesSent = (nameOrNs) => qdiscSent(hostOf(nameOrNs).ns, 'eth0');
  const bytesReceived = (nameOrNs) => qdiscSent(hubNs, hostOf(nameOrNs).hubVeth);

  /** Starts a long-running process inside a host's namespace, its output appended to the host's log file. */
  function spawnDaemon(host, cmd, args) {
    const fd = openSync(host.logFile, 'a');
    // Own process group: a Ctrl-C at the terminal reaches only the controlling script, which stops the
    // cluster in order. `ip netns exec` execs the command, so the PID is the server's own.
    const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    child.once('error', () => {}); // 'exit' follows, or the readiness wait fails on the process being gone
    const entry = { name: host.name, child, exited };
    daemons.set(child.pid, entry);
    exited.then(({ code, signal }) => {
      if (!stopping) o.onExit?.(host, code, signal);
    });
    host.pid = child.pid;
    return entry;
  }

  /**
   * Polls `path` of each host (after `ready` answers 200, if given) until it answers as asked, from one process
   * in the hub namespace (ns-http.mjs wait); resolves with each host's last body (parsed when JSON), in order.
   * Fails at once if one of the servers exits.
   */
  async function waitForAll(list, path, { ready, status, minPeers } = {}) {
    const remaining = Math.max(1_000, o.timeoutMs - (performance.now() - t0));
    const args = [nsHttp, 'wait', String(Math.round(remaining)), ...list.map(({ host }) => (ready ? `${host.url}${ready},` : '') + `${host.url}${path}`)];
    if (status !== undefined) args.push('--status', String(status));
    if (minPeers !== undefined) args.push('--min-peers', String(minPeers));
    const probe = runIn(hubNs, process.execPath, args, { timeoutMs: remaining + 10_000 });
    const died = list.map(({ host, daemon }) =>
      daemon.exited.then(({ code, signal }) => {
        throw new Error(`${host.name} exited (${signal ?? `code ${code}`}) before ${path} was ready\n--- ${host.logFile} (end) ---\n${tail(host.logFile)}`);
      }),
    );
    const aborted = new Promise((_, reject) => {
      const interrupted = () => reject(new Error('cluster set-up interrupted'));
      if (o.signal?.aborted) interrupted();
      else o.signal?.addEventListener('abort', interrupted, { once: true });
    });
    try {
      const { stdout } = await Promise.race([probe, ...died, aborted]);
      return JSON.parse(stdout).map((body) => {
        try {
          return JSON.parse(body);
        } catch {
          return body;
        }
      });
    } catch (err) {
      probe.catch(() => {}); // stop() ends it
      if (o.signal?.aborted) throw err;
      const late = list.find(({ host }) => err.message.includes(`${host.url}${path}`) || (ready && err.message.includes(`${host.url}${ready}`)));
      if (!late) throw err;
      const { host } = late;
      throw new Error(`${host.name} (${host.ns}, ${host.url}): ${err.message}\n--- ${host.logFile} (end) ---\n${tail(host.logFile)}`);
    }
  }

  /** waitForAll for one host. */
  const waitFor = async (host, daemon, path, opts) => (await waitForAll([{ host, daemon }], path, opts))[0];

  async function makeHost(name, role, addr) {
    const ns = `${id}-${name}`;
    const dataDir = join(runDir, name);
    await mkdir(dataDir, { recursive: true });
    const host = {
      name,
      role,
      kind: role === 'seed' ? o.seed : 'layerd',
      ns,
      addr,
      url: `http://${addr}:${HTTP_PORT}`,
      hubVeth: `h-${name}`,
      pid: undefined,
      dataDir,
      logFile: join(runDir, `${name}.log`),
      output: () => (existsSync(host.logFile) ? readFileSync(host.logFile, 'utf8') : ''),
      exec: (cmd, args, runOpts) => runIn(ns, cmd, args, runOpts),
      // A layerd host is asked as its test user (a docker-registry seed takes no credentials).
      http: (path, reqOpts = {}) => http(ns, `${host.url}${path}`, host.kind === 'layerd' ? { ...reqOpts, headers: { authorization: TEST_AUTHORIZATION, ...reqOpts.headers } } : reqOpts),
    };
    hosts.push(host);
    await ip(['netns', 'add', ns]);
    created.push(ns);
    await plumb(ns, host.hubVeth, `${addr}/${subnet.length}`);
    return host;
  }

  // IPv6 off: its router solicitations and MLD reports would be counted as bytes sent and received.
  const noIpv6 = (ns) => runIn(ns, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);

  async function plumb(ns, hubVeth, cidr) {
    const tbf = ['root', 'tbf', 'rate', o.rate, 'burst', String(burstBytes), 'latency', o.latency];
    await noIpv6(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    // Created inside the hub with its peer straight in the host's namespace: no interface of the cluster
    // ever appears in the machine's own namespace, and names cannot clash with another run's.
    await ip(['-n', hubNs, 'link', 'add', hubVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ip(['-n', hubNs, 'link', 'set', hubVeth, 'master', BRIDGE, 'up']);
    await ip(['-n', ns, 'addr', 'add', cidr, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    await tc(['-n', ns, 'qdisc', 'add', 'dev', 'eth0', ...tbf]);
    await tc(['-n', hubNs, 'qdisc', 'add', 'dev', hubVeth, ...tbf]);
  }

  async function startSeed(host) {
    if (host.kind === 'distribution') {
      const config = join(host.dataDir, 'config.yml');
      await writeFile(
        config,
        [
          'version: 0.1',
          'log: {level: info, accesslog: {disabled: false}}',
          `storage: {filesystem: {rootdirectory: ${join(host.dataDir, 'data')}}, delete: {enabled: true}}`,
          `http: {addr: "${host.addr}:${HTTP_PORT}", secret: ${randomBytes(8).toString('hex')}}`,
          'health: {storagedriver: {enabled: false}}',
          '',
        ].join('\n'),
      );
      host.config = config;
      return spawnDaemon(host, 'docker-registry', ['serve', config, ...o.seedArgs]);
    }
    const args = [...nodeFlags, o.layerdBin, 'serve', '--listen', `${host.addr}:${HTTP_PORT}`, '--data-dir', join(host.dataDir, 'data'), '--htpasswd', TEST_HTPASSWD, ...o.seedArgs];
    return spawnDaemon(host, process.execPath, args);
  }

  function startNode(host, seedHost, bootstrap) {
    const args = [
      // Node's own flags for every layerd node (e.g. --cpu-prof to see where a rollout's CPU goes).
      ...nodeFlags,
      ...(process.env.LAYERD_NODE_FLAGS ?? '').split(' ').filter(Boolean).map((f) => f.replaceAll('{host}', host.name)),
      o.layerdBin, 'serve',
      '--listen', `${host.addr}:${HTTP_PORT}`,
      '--data-dir', join(host.dataDir, 'data'),
      '--p2p-listen', `/ip4/${host.addr}/tcp/${P2P_PORT}`,
      '--upstream', `seed=${seedHost.url}`,
      '--default-registry', 'seed',
      '--htpasswd', TEST_HTPASSWD,
      ...(bootstrap ? ['--bootstrap', bootstrap] : []),
      ...o.nodeArgs,
      // Extra `layerd serve` arguments for every node from the environment (e.g. --log-level debug for a timeline).
      ...(process.env.LAYERD_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ];
    return spawnDaemon(host, process.execPath, args);
  }

  function readIdentity(host, status) {
    host.peerId = status.peerId;
    host.multiaddr = status.multiaddrs?.find((a) => a.startsWith(`/ip4/${host.addr}/tcp/${P2P_PORT}/`)) ?? status.multiaddrs?.[0];
    if (!host.peerId || !host.multiaddr) throw new Error(`${host.name}: /api/status has no peer id or multiaddr: ${JSON.stringify(status)}`);
  }

  async function setUp() {
    await mkdir(runDir, { recursive: true });
    o.log(`cluster ${id}: namespaces, bridge, veths, tbf ${o.rate} (run dir ${runDir})`);
    await ip(['netns', 'add', hubNs]);
    created.push(hubNs);
    await noIpv6(hubNs);
    await ip(['-n', hubNs, 'link', 'set', 'lo', 'up']);
    await ip(['-n', hubNs, 'link', 'add', BRIDGE, 'type', 'bridge']);
    await ip(['-n', hubNs, 'link', 'set', BRIDGE, 'up']);
    // The hub's own address on the bridge: the probes run there and reach every host (waitForAll).
    await ip(['-n', hubNs, 'addr', 'add', `${intToIp(subnet.network + 1)}/${subnet.length}`, 'dev', BRIDGE]);
    abortIfAsked();
    const seedHost = await makeHost('seed', 'seed', intToIp(subnet.network + 2));
    const nodeHosts = [];
    // Namespaces one host at a time: each is a handful of ~5 ms commands; in parallel they only contend.
    for (let k = 1; k <= o.nodes; k++) {
      nodeHosts.push(await makeHost(`n${k}`, 'node', intToIp(subnet.network + 10 + k)));
      abortIfAsked();
    }
    const networkMs = performance.now() - t0;

    const at = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`; // since set-up began: where a slow start goes
    o.log(`starting the seed (${o.seed}) and ${nodeHosts[0].name} (at ${at()})`);
    const seedDaemon = await startSeed(seedHost);
    const first = nodeHosts[0];
    const firstDaemon = startNode(first, seedHost);
    // Node 1 needs no seed to start; both come up at once.
    const [, firstStatus] = await Promise.all([waitFor(seedHost, seedDaemon, '/v2/'), waitFor(first, firstDaemon, '/api/status', { ready: '/readyz', status: 200 })]);
    await readIdentity(first, firstStatus);
    abortIfAsked();

    if (nodeHosts.length > 1) o.log(`starting ${nodeHosts.length - 1} more node(s), bootstrapped to ${first.multiaddr} (at ${at()})`);
    const rest = nodeHosts.slice(1).map((h) => ({ host: h, daemon: startNode(h, seedHost, first.multiaddr) }));
    // A node with bootstrap peers answers /readyz 200 only once it is connected to one of them.
    const peers = o.waitForPeers ? 1 : undefined;
    const statuses = rest.length > 0 ? await waitForAll(rest, '/api/status', { ready: '/readyz', status: 200, minPeers: peers }) : [];
    await Promise.all(rest.map(({ host }, i) => readIdentity(host, statuses[i])));
    if (nodeHosts.length > 1) o.log(`${nodeHosts.length - 1} more node(s) ready (at ${at()})`);
    if (o.waitForPeers && nodeHosts.length > 1) {
      // Node 1 has no bootstrap peer: /readyz did not wait for one.
      await waitFor(first, firstDaemon, '/api/status', { status: 200, minPeers: 1 });
    }
    const setupMs = Math.round(performance.now() - t0);
    o.log(`cluster ${id} up in ${(setupMs / 1000).toFixed(1)} s (network ${Math.round(networkMs)} ms)`);
    return { seedHost, nodeHosts, setupMs, networkMs: Math.round(networkMs) };
  }

  function describe() {
    const show = (h) => ({
      name: h.name,
      role: h.role,
      kind: h.kind,
      ns: h.ns,
      addr: h.addr,
      url: h.url,
      ...(h.role === 'node' ? { p2p: h.multiaddr, peerId: h.peerId } : {}),
      pid: h.pid,
      dataDir: h.dataDir,
      log: h.logFile,
      hubVeth: h.hubVeth,
    });
    return {
      id,
      prefix: o.prefix,
      subnet: o.subnet,
      link: { rate: o.rate, burstBytes, latency: o.latency, shaped: 'both ways: tbf on each host eth0 (egress) and on its hub-side veth (ingress)' },
      hub: { ns: hubNs, bridge: BRIDGE },
      runDir,
      seed: show(hosts.find((h) => h.role === 'seed')),
      nodes: hosts.filter((h) => h.role === 'node').map(show),
      setupMs: cluster.setupMs,
    };
  }

  /** Ends what this run started (and only that), waits for it, then deletes the namespaces and the run dir. */
  function stop() {
    stopping ??= (async () => {
      const t = performance.now();
      const problems = [];
      const children = [...[...daemons.values()].map((d) => d.child), ...execs];
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const exitedAll = Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
      let timer;
      const graceOver = new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS, 'timeout')));
      if ((await Promise.race([exitedAll, graceOver])) === 'timeout') {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        let killTimer;
        await Promise.race([exitedAll, new Promise((r) => (killTimer = setTimeout(r, 5_000)))]);
        clearTimeout(killTimer);
      }
      clearTimeout(timer);
      const stuck = children.filter((c) => c.pid && isAlive(c.pid)).map((c) => c.pid);
      if (stuck.length) problems.push(`PIDs ${stuck.join(' ')} did not exit after SIGKILL`);
      // Hosts first, the hub last: deleting a host's namespace takes its veth pair with it.
      for (const ns of [...created].reverse()) {
        const others = (await namespacePids(ns)).filter(isAlive);
        // Not started by this run (someone entered the namespace): left alone, but named.
        if (others.length) problems.push(`namespace ${ns} still holds PIDs ${others.join(' ')} that this run did not start`);
        await run('ip', ['netns', 'del', ns]).then(
          () => created.splice(created.indexOf(ns), 1),
          (err) => problems.push(err.message),
        );
      }
      // LAYERD_KEEP_LOGS=DIR keeps the hosts' logs of a run (the run dir goes) for a look afterwards.
      if (process.env.LAYERD_KEEP_LOGS) {
        await mkdir(process.env.LAYERD_KEEP_LOGS, { recursive: true });
        for (const h of hosts) await copyFile(h.logFile, join(process.env.LAYERD_KEEP_LOGS, `${id}-${h.name}.log`)).catch(() => undefined);
      }
      await rm(runDir, { recursive: true, force: true }).catch((err) => problems.push(`removing ${runDir}: ${err.message}`));
      stopped = true;
      process.off('exit', onProcessExit);
      unwatchSignals(stop);
      cluster.teardownMs = Math.round(performance.now() - t);
      o.log(`cluster ${id} torn down in ${cluster.teardownMs} ms`);
      if (problems.length) throw new Error(`cluster ${id} teardown: ${problems.join('; ')}`);
    })();
    return stopping;
  }

  // Last resort when the process exits without stop() (an uncaught error, process.exit()): synchronous,
  // because nothing asynchronous runs in an 'exit' handler.
  function onProcessExit() {
    if (stopped) return;
    const pids = [...[...daemons.values()].map((d) => d.child.pid), ...[...execs].map((c) => c.pid)].filter((p) => p && isAlive(p));
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    const deadline = Date.now() + 5_000;
    while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // a synchronous sleep
    for (const ns of [...created].reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {}
    }
    rmSync(runDir, { recursive: true, force: true });
  }
  process.on('exit', onProcessExit);
  if (o.handleSignals) watchSignals(stop);

  const cluster = {
    id,
    prefix: o.prefix,
    runDir,
    subnet: o.subnet,
    rate: o.rate,
    hub: { ns: hubNs, bridge: BRIDGE },
    seed: undefined,
    nodes: [],
    setupMs: undefined,
    teardownMs: undefined,
    /** Every PID this run started that is still tracked: servers, and tools still running. */
    pids: () => [...[...daemons.keys()], ...[...execs].map((c) => c.pid)],
    host: hostOf,
    runIn,
    http,
    bytesSent,
    bytesReceived,
    describe,
    stop,
  };

  try {
    const { seedHost, nodeHosts, setupMs, networkMs } = await setUp();
    Object.assign(cluster, { seed: seedHost, nodes: nodeHosts, setupMs, networkMs });
    await writeFile(join(runDir, 'cluster.json'), JSON.stringify(describe(), null, 2) + '\n');
    return cluster;
  } catch (err) {
    // Keep the cause in front; a failed teardown is added to it, never hides it.
    await stop().catch((e) => {
      err.message += `\n(and tearing down: ${e.message})`;
    });
    throw err;
  }
}

/**
 * Removes what runs of `prefix` left behind (their processes were killed with the run, or the run itself was
 * SIGKILLed): the PIDs still inside their namespaces (only processes those runs started can be there, unless
 * someone entered one by hand), the namespaces, and the run dirs. `prefix` may also be one run's id.
 */
export async function down({ prefix = 'lc', log = () => {} } = {}) {
  const owned = ownedBy(prefix);
  const namespaces = (await listNamespaces()).filter((n) => owned.namespace.test(n));
  const pids = [];
  for (const ns of namespaces) pids.push(...(await namespacePids(ns)));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  let deadline = Date.now() + STOP_GRACE_MS;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of pids.filter(isAlive)) process.kill(pid, 'SIGKILL');
  deadline = Date.now() + 5_000;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const stuck = pids.filter(isAlive);
  if (stuck.length) throw new Error(`PIDs ${stuck.join(' ')} did not exit; namespaces left in place`);
  // Hub namespaces last, as at teardown.
  const ordered = [...namespaces.filter((n) => !n.endsWith('-hub')), ...namespaces.filter((n) => n.endsWith('-hub'))];
  for (const ns of ordered) await run('ip', ['netns', 'del', ns]);
  const dirs = (await readdir(tmpdir())).filter((d) => owned.runDir.test(d));
  for (const d of dirs) await rm(join(tmpdir(), d), { recursive: true, force: true });
  log(`removed ${namespaces.length} namespace(s), ${pids.length} process(es), ${dirs.length} run dir(s)`);
  return { namespaces, pids, dirs: dirs.map((d) => join(tmpdir(), d)) };
}

// The helpers below let a test check what this module promises, without re-deriving names.

/** Namespaces whose names belong to runs of `prefix` (or to the one run whose id it is). */
export async function namespacesOf(prefix) {
  const owned = ownedBy(prefix);
  return (await listNamespaces()).filter((n) => owned.namespace.test(n));
}
