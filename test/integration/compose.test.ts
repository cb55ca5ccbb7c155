// compose/: the docker-compose test network, the Dockerfile and the Kubernetes manifests. These machines
// have no Docker engine, no base image and no cluster, so nothing here builds or runs a container.
// What is checked instead, without skipping anything:
//  (a) Debian's docker-compose 1.29 accepts the compose file, and reads its anchors as this test does;
//  (b) every layerd service's command is a `layerd serve` that parses and loads, and the network is wired
//      consistently (bootstrap peer ids against the mounted identity keys, ports, health, dependencies);
//  (c) the Kubernetes manifests: the ConfigMap's configs load, probes, hostPorts, containerd's hosts.toml,
//      the bootstrap peer's identity;
//  (d) the same command lines and configs, run for real from dist/ on loopback (container names become
//      localhost, container ports free ports): the nodes start, answer /healthz, join through the
//      bootstrap peer, and serve an image pushed to the seed.
// Every static check also runs on broken copies of the files, to show that it catches what it claims to.
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { envName, OPTIONS } from '../../src/node/config.js';
import { runTool } from '../helpers/clients.js';
import {
  composeNodes,
  composeProblems,
  dependsOn,
  dockerfileHealthcheck,
  dockerfileProblems,
  bindMounts,
  identityKeyFile,
  kubernetesNodes,
  kubernetesProblems,
  parseHostsToml,
  peerIdOfKey,
  publishedPorts,
  readCompose,
  readDockerfile,
  readKubernetes,
  toArgs,
  toLoopback,
  type ComposeFile,
  type K8sManifests,
  type PortMap,
  type Settings,
} from '../helpers/compose-checks.js';
import { freePort, layerdBin, removeDir, repoRoot, stablePort, tempDir, track, until, waitForHttp, whenReady, type RunningProcess } from '../helpers/processes.js';
import { AuthClient, basic } from '../helpers/registry-client.js';

const composeDir = join(repoRoot, 'compose');
const composeFile = join(composeDir, 'docker-compose.yml');
const k8sDir = join(composeDir, 'kubernetes');
const BOOTSTRAP_ID = '12D3KooWKQJnP94efQ7mSbhiQ8r3JqftFUjBCgGQvUL7fNkzkfqj';
/** A valid peer id that is nobody's in these files. */
const STRANGER_ID = '12D3KooWPeuigMJXMh8hCPQxjaB5b9Gu6vBisyyeF6AbP9NkFqSX';

function dockerCompose(args: string[]) {
  const res = spawnSync('docker-compose', ['-f', composeFile, ...args], { encoding: 'utf8', timeout: 120_000 });
  if ((res.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error('docker-compose is not installed: run `sudo bash scripts/install-test-tools.sh` (Debian package docker-compose 1.29)');
  }
  return res;
}

function command(file: ComposeFile, service: string): string[] {
  return file.services[service]!.command as string[];
}

describe('compose/docker-compose.yml', () => {
  const file = readCompose(composeFile);

  it('(a) is accepted by docker-compose 1.29 with every profile, which reads its anchors as this test does', () => {
    for (const profiles of [[], ['monitoring', 'tools']]) {
      const res = dockerCompose([...profiles.flatMap((p) => ['--profile', p]), 'config', '-q']);
      expect(res.status, `docker-compose config -q ${profiles.join(' ')}: ${res.stderr}`).toBe(0);
    }
    const res = dockerCompose(['--profile', 'monitoring', '--profile', 'tools', 'config']);
    expect(res.status, res.stderr).toBe(0);
    const normalized = parseYaml(res.stdout) as ComposeFile;
    expect(Object.keys(normalized.services).sort()).toEqual(Object.keys(file.services).sort());
    for (const [name, svc] of Object.entries(file.services)) {
      const theirs = normalized.services[name]!;
      expect(theirs.command, `${name} command`).toEqual(svc.command);
      expect(theirs.image, `${name} image`).toEqual(svc.image);
      expect(publishedPorts(theirs).map((p) => [p.hostIp, p.target]), `${name} ports`).toEqual(publishedPorts(svc).map((p) => [p.hostIp, p.target]));
      expect(dependsOn(theirs), `${name} depends_on`).toEqual(dependsOn(svc));
      expect(theirs.healthcheck?.test, `${name} healthcheck`).toEqual(svc.healthcheck?.disable ? ['NONE'] : svc.healthcheck?.test);
    }
  });

  it('(a) docker-compose refuses a broken copy (so the check above can fail)', async () => {
    const dir = await tempDir('compose-broken-');
    try {
      const broken = join(dir, 'docker-compose.yml');
      await writeFile(broken, readFileSync(composeFile, 'utf8').replace('condition: service_healthy', 'condition: service_wealthy'));
      const res = spawnSync('docker-compose', ['-f', broken, 'config', '-q'], { encoding: 'utf8', timeout: 120_000 });
      expect(res.status).not.toBe(0);
      expect(res.stderr).toContain('service_wealthy');
    } finally {
      await removeDir(dir);
    }
  });

  it('(b) runs layerd serve with valid flags in seed and node1..3, wired consistently', () => {
    expect(composeProblems(file, composeDir)).toEqual([]);
    const nodes = composeNodes(file);
    expect(nodes.map((n) => n.name)).toEqual(['seed', 'node1', 'node2', 'node3']);
    const [seed, node1, ...joiners] = nodes;
    expect(seed!.config.p2pListen).toEqual([]);
    for (const n of [node1!, ...joiners]) {
      expect(n.config.upstream).toEqual([{ name: 'seed:5000', url: 'http://seed:5000' }]);
      expect(n.config.defaultRegistry).toBe('seed:5000');
      expect(n.config.p2pListen).toEqual(['/ip4/0.0.0.0/tcp/5001']);
      expect(n.config.announce).toEqual([`/dns4/${n.name}/tcp/5001`]);
    }
    for (const n of joiners) expect(n.config.bootstrap).toEqual([`/dns4/node1/tcp/5001/p2p/${BOOTSTRAP_ID}`]);
    expect(peerIdOfKey(readFileSync(identityKeyFile(node1!, composeDir)!))).toBe(BOOTSTRAP_ID);
    // The client talks to a node by default, and waits for all of them.
    expect(file.services.client!.environment).toMatchObject({ LAYERD_NODE: 'http://node1:5000' });
    expect(Object.keys(dependsOn(file.services.client!)).sort()).toEqual(['node1', 'node2', 'node3']);
    expect(file.services.prometheus!.profiles).toEqual(['monitoring']);
    expect(file.services.grafana!.profiles).toEqual(['monitoring']);
  });

  const breakages: Array<[string, (f: ComposeFile) => void, string]> = [
    ['a flag layerd serve does not have', (f) => command(f, 'node2').push('--no-such-flag=1'), "Unknown option '--no-such-flag'"],
    ['a bad duration', (f) => command(f, 'node3').push('--tag-ttl=soon'), 'node3: layerd would not start: tag-ttl: invalid duration'],
    ['a bad multiaddr', (f) => command(f, 'node2').push('--p2p-listen=/ip4/0.0.0.0/tcp/none'), 'node2: layerd would not start: p2p-listen: invalid multiaddr'],
    ['a bootstrap peer id that is not node1\'s', (f) => (f.services.node2!.command = command(f, 'node2').map((a) => a.replace(BOOTSTRAP_ID, STRANGER_ID))), `but node1's identity key is peer ${BOOTSTRAP_ID}`],
    ['a bootstrap peer with a random identity', (f) => (f.services.node3!.command = command(f, 'node3').map((a) => a.replace('/dns4/node1/', '/dns4/node2/'))), "node2, whose identity is random"],
    ['a bootstrap name that is no service', (f) => (f.services.node3!.command = command(f, 'node3').map((a) => a.replace('/dns4/node1/', '/dns4/node9/'))), 'names no layerd service of the file'],
    ['an announce address that is not the node\'s own', (f) => (f.services.node3!.command = command(f, 'node3').map((a) => a.replace('--announce=/dns4/node3/', '--announce=/dns4/node2/'))), 'node3: --announce /dns4/node2/tcp/5001 is not its own'],
    ['a port published on every interface', (f) => (f.services.seed!.ports = ['5000:5000']), 'seed: port 5000:5000 is published on every interface'],
    ['a joining node that does not wait for node1', (f) => (f.services.node2!.depends_on = { seed: { condition: 'service_healthy' } }), 'node2: bootstraps through node1 but does not depend_on it being healthy'],
    ['a healthcheck on another port', (f) => (f.services.node1!.healthcheck = { test: ['CMD', 'node', '-e', "fetch('http://127.0.0.1:5999/healthz')"] }), 'node1: its healthcheck does not ask 127.0.0.1:5000/healthz'],
    ['waiting for a service without a healthcheck', (f) => (f.services.seed!.healthcheck = { disable: true }), 'node1: waits for seed to be healthy, which has no healthcheck'],
    ['a dependency on a service of a profile', (f) => (f.services.client!.depends_on = ['prometheus']), 'client: depends on prometheus, which only runs in profile monitoring'],
    ['a dependency on no service', (f) => (f.services.client!.depends_on = ['node4']), 'client: depends_on node4, which is no service'],
    ['a mirror URL on the wrong port', (f) => (f.services.node1!.command = command(f, 'node1').map((a) => a.replace('=http://seed:5000', '=http://seed:5001'))), 'node1: upstream http://seed:5001: seed listens on port 5000'],
    ['an unknown LAYERD_ variable', (f) => (f.services.node1!.environment = { LAYERD_TAG_TIME: '10s' }), 'node1: LAYERD_TAG_TIME is no layerd option'],
    ['a data dir on no volume', (f) => (f.services.node3!.volumes = []), 'node3: its data dir /var/lib/layerd is on no named volume'],
  ];
  it.each(breakages)('(b) catches %s', (_what, breakIt, expected) => {
    const copy = structuredClone(file);
    breakIt(copy);
    expect(composeProblems(copy, composeDir).join('\n')).toContain(expected);
  });
});

describe('compose/Dockerfile', () => {
  it('is a multi-stage build on ARG BASE (node:24-slim by default) whose inputs exist, running serve as a non-root user, exposing the ports the network uses', () => {
    const df = readDockerfile(join(composeDir, 'Dockerfile'));
    expect(dockerfileProblems(df, repoRoot, composeNodes(readCompose(composeFile)))).toEqual([]);
    // A broken copy is caught.
    const broken = { instructions: df.instructions.map((i) => (i.op === 'USER' ? { op: 'USER', args: 'root' } : i.op === 'EXPOSE' ? { op: 'EXPOSE', args: '5000' } : i)) };
    const problems = dockerfileProblems(broken, repoRoot, composeNodes(readCompose(composeFile)));
    expect(problems).toContain('the runtime stage runs as root');
    expect(problems).toContain('EXPOSE lacks 5001, on which node1 listens');
    const oldBase = { instructions: df.instructions.map((i) => (i.op === 'ARG' && i.args.startsWith('BASE=') ? { op: 'ARG', args: 'BASE=node:20-slim' } : i)) };
    expect(dockerfileProblems(oldBase, repoRoot, composeNodes(readCompose(composeFile)))).toContain('want ARG BASE=node:24-slim (the Node 24 LTS image), found node:20-slim');
  });
});

describe('compose/kubernetes', () => {
  const m = readKubernetes(k8sDir);

  it('(c) parses, loads both layerd configs, and is consistent: probes, hostPorts, hosts.toml, the bootstrap identity', () => {
    expect(kubernetesProblems(m, k8sDir)).toEqual([]);
    const nodes = kubernetesNodes(m);
    expect(nodes.map((n) => n.workload).sort()).toEqual(['DaemonSet/layerd', 'StatefulSet/layerd-bootstrap']);
    const ds = nodes.find((n) => n.kind === 'DaemonSet')!;
    expect(ds.config.listen).toEqual({ host: '0.0.0.0', port: 5000 });
    expect(ds.config.dataDir).toBe('/var/lib/layerd');
    expect(ds.config.maxDiskBytes).toBe(20 * 2 ** 30);
    expect(ds.config.upstream.map((u) => u.name)).toEqual(['docker.io']);
    expect(ds.config.announce).toEqual(['/ip4/10.0.0.7/tcp/5001']); // $(HOST_IP) from the downward API
    expect(ds.container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(ds.container.livenessProbe.httpGet.path).toBe('/healthz');
    const hosts = m.objects.find((o) => o.metadata?.name === 'layerd-containerd-hosts')!.data!;
    expect(parseHostsToml(hosts['docker.io']!)).toEqual({
      top: { server: 'https://registry-1.docker.io' },
      hosts: { 'http://127.0.0.1:5000': { capabilities: ['pull', 'resolve'] } },
    });
  });

  const find = (x: K8sManifests, kind: string, name: string) => x.objects.find((o) => o.kind === kind && o.metadata?.name === name)!;
  const dsContainer = (x: K8sManifests) => (find(x, 'DaemonSet', 'layerd').spec as any).template.spec.containers[0];
  const breakages: Array<[string, (x: K8sManifests) => void, string]> = [
    ['a bad size in the ConfigMap', (x) => (find(x, 'ConfigMap', 'layerd-config').data!['layerd.yml'] = find(x, 'ConfigMap', 'layerd-config').data!['layerd.yml']!.replace('max-disk-bytes: 20GiB', 'max-disk-bytes: lots')), 'layerd would not start: max-disk-bytes: invalid size'],
    ['an unknown key in the ConfigMap', (x) => (find(x, 'ConfigMap', 'layerd-config').data!['bootstrap.yml'] += 'listen-port: 5000\n'), 'layerd would not start: listen-port: unknown key'],
    ['readiness on /healthz', (x) => (dsContainer(x).readinessProbe.httpGet.path = '/healthz'), 'readinessProbe asks /healthz, want /readyz'],
    ['a probe on the p2p port', (x) => (dsContainer(x).livenessProbe.httpGet.port = 'p2p'), 'livenessProbe asks port p2p, but layerd listens on 5000'],
    ['a /v2 hostPort open to the network', (x) => delete dsContainer(x).ports[0].hostIP, 'the /v2 port needs a hostPort bound to 127.0.0.1'],
    ['hosts.toml pointing at another port', (x) => (find(x, 'ConfigMap', 'layerd-containerd-hosts').data!['docker.io'] = 'server = "https://registry-1.docker.io"\n[host."http://127.0.0.1:5999"]\n  capabilities = ["pull", "resolve"]\n'), 'no [host."http://127.0.0.1:5000"] with capabilities pull and resolve'],
    ['hosts.toml without resolve', (x) => (find(x, 'ConfigMap', 'layerd-containerd-hosts').data!['docker.io'] = 'server = "https://registry-1.docker.io"\n[host."http://127.0.0.1:5000"]\n  capabilities = ["pull"]\n'), 'with capabilities pull and resolve'],
    ['a hosts.toml for a registry the node does not mirror', (x) => (find(x, 'ConfigMap', 'layerd-containerd-hosts').data!['ghcr.io'] = 'server = "https://ghcr.io"\n[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n'), 'containerd would send ghcr.io pulls to a node that does not mirror it'],
    ['a bootstrap identity that is not the named peer', (x) => (find(x, 'Secret', 'layerd-bootstrap-identity').data!['identity.key'] = readFileSync(join(composeDir, 'test-identity', 'node1.key')).toString('base64')), `but StatefulSet/layerd-bootstrap's identity key is peer ${BOOTSTRAP_ID}`],
    ['an announce env var referring to nothing', (x) => (dsContainer(x).env = dsContainer(x).env.filter((e: { name: string }) => e.name !== 'HOST_IP')), 'refers to $(HOST_IP), which is not defined before it'],
    ['a manifest left out of the kustomization', (x) => (x.kustomization!.resources = x.kustomization!.resources!.filter((r) => r !== 'bootstrap.yaml')), 'bootstrap.yaml is not listed'],
  ];
  it.each(breakages)('(c) catches %s', (_what, breakIt, expected) => {
    const copy = structuredClone(m);
    // structuredClone keeps the objects shared between `files` and `objects` shared in the copy too.
    breakIt(copy);
    expect(kubernetesProblems(copy, k8sDir).join('\n')).toContain(expected);
  });
});

// ---------------------------------------------------------------------------------------------------
// (d) The command lines, run.

interface Running extends RunningProcess {
  name: string;
  dataDir: string;
}

/** Starts `layerd serve` from dist/ with `args`; resolves once /healthz answers 200. */
async function serve(name: string, args: string[], port: number, dataDir: string): Promise<Running> {
  const child = spawn(process.execPath, [layerdBin, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = track(child, port, `http://127.0.0.1:${port}`);
  await whenReady(proc, name, () => waitForHttp(`${proc.url}/healthz`, 30_000, child));
  return { ...proc, name, dataDir };
}

async function status(node: Running): Promise<{ peerId: string; peers: Array<{ id: string }> }> {
  return (await fetch(`${node.url}/api/status`)).json() as Promise<{ peerId: string; peers: Array<{ id: string }> }>;
}

async function readyz(node: Running): Promise<number> {
  const res = await fetch(`${node.url}/readyz`);
  await res.arrayBuffer();
  return res.status;
}

/** Runs a healthcheck's node command line (argv after the runtime) with this Node binary. */
function runHealthcheck(argv: string[], env: Record<string, string> = {}): number | null {
  expect(argv[0]).toBe('node');
  return spawnSync(process.execPath, argv.slice(1), { env: { ...process.env, ...env }, timeout: 30_000 }).status;
}

describe('(d) the compose nodes\' command lines, run on loopback', () => {
  const file = readCompose(composeFile);
  const nodes = composeNodes(file);
  const running = new Map<string, Running>();

  beforeAll(async () => {
    // Every name:port a container is reached by gets a free loopback port.
    const ports: PortMap = new Map();
    for (const n of nodes) {
      for (const p of [n.config.listen.port, ...n.config.p2pListen.map((a) => Number(/\/tcp\/(\d+)/.exec(a)![1]))]) ports.set(`${n.name}:${p}`, await stablePort());
    }
    // Start in depends_on order, as docker-compose would.
    const pending = [...nodes];
    while (pending.length > 0) {
      const i = pending.findIndex((n) => Object.keys(dependsOn(n.svc)).every((d) => running.has(d) || !nodes.some((x) => x.name === d)));
      expect(i, 'a depends_on cycle').toBeGreaterThanOrEqual(0);
      const [n] = pending.splice(i, 1);
      const dataDir = await tempDir(`compose-${n!.name}-`);
      const key = identityKeyFile(n!, composeDir);
      if (key) {
        // What the bind mount does: the key file at <data-dir>/p2p/identity.key.
        await mkdir(join(dataDir, 'p2p'));
        await copyFile(key, join(dataDir, 'p2p', 'identity.key'));
      }
      const args = toArgs(toLoopback(n!.settings, n!.name, ports, dataDir, bindMounts(n!.svc, composeDir)));
      running.set(n!.name, await serve(n!.name, args, ports.get(`${n!.name}:${n!.config.listen.port}`)!, dataDir));
    }
  }, 180_000);

  afterAll(async () => {
    for (const r of [...running.values()].reverse()) {
      await r.stop();
      await removeDir(r.dataDir);
    }
  });

  it('starts every node, and both the compose healthcheck and the image\'s HEALTHCHECK say healthy (and not for a dead port)', async () => {
    expect([...running.keys()]).toEqual(['seed', 'node1', 'node2', 'node3']);
    const dead = await freePort();
    const imageCheck = dockerfileHealthcheck(readDockerfile(join(composeDir, 'Dockerfile')))!;
    for (const n of nodes) {
      const r = running.get(n.name)!;
      const res = await fetch(`${r.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok' });
      const test = n.svc.healthcheck!.test as string[];
      expect(test[0]).toBe('CMD');
      const onPort = (port: number) => test.slice(1).map((a) => a.replace(`127.0.0.1:${n.config.listen.port}`, `127.0.0.1:${port}`));
      expect(runHealthcheck(onPort(r.port)), `${n.name} compose healthcheck`).toBe(0);
      expect(runHealthcheck(onPort(dead)), `${n.name} compose healthcheck on a dead port`).toBe(1);
      expect(runHealthcheck(imageCheck, { LAYERD_LISTEN: `127.0.0.1:${r.port}` }), `${n.name} image HEALTHCHECK`).toBe(0);
      expect(runHealthcheck(imageCheck, { LAYERD_LISTEN: `127.0.0.1:${dead}` }), 'image HEALTHCHECK on a dead port').toBe(1);
    }
  }, 120_000);

  it('node1 has the fixed peer id, and node2 and node3 join through it (/readyz turns 200)', async () => {
    const node1 = running.get('node1')!;
    expect((await status(node1)).peerId).toBe(BOOTSTRAP_ID);
    for (const name of ['node2', 'node3']) {
      const r = running.get(name)!;
      await until(`${name} ready`, async () => ((await readyz(r)) === 200 ? true : undefined), 60_000);
      expect((await status(r)).peers.map((p) => p.id)).toContain(BOOTSTRAP_ID);
    }
    expect(await readyz(running.get('seed')!)).toBe(200); // no peers expected, so ready at once
  }, 120_000);

  it('serves an image pushed to the seed through every node as seed:5000/team/app:v1 (`layerd pull`, as from the client container)', async () => {
    const seed = running.get('seed')!;
    // The seed takes pushes with the compose network's public test user (compose/test-credentials).
    const pushed = await new AuthClient(seed.url, basic('layerd', 'layerd-test-only')).pushImage('team/app', 'v1', { layers: 2, layerSize: 300_000 });
    const size = pushed.config.length + pushed.layers.reduce((s, l) => s + l.length, 0);
    for (const name of ['node1', 'node2', 'node3']) {
      const out = await runTool(process.execPath, [layerdBin, 'pull', 'seed:5000/team/app:v1', '--node', running.get(name)!.url, '--json'], {}, 120_000);
      const pull = JSON.parse(out) as { digest: string; blobs: Array<{ size: number }>; bytesBySource: Record<string, number> };
      expect(pull.digest, name).toBe(pushed.digest);
      expect(pull.blobs).toHaveLength(3);
      expect(pull.blobs.reduce((s, b) => s + b.size, 0)).toBe(size);
      // Nothing was on the node before: every byte came from the seed or from a peer.
      expect((pull.bytesBySource.peer ?? 0) + (pull.bytesBySource.upstream ?? 0), name).toBe(size);
    }
  }, 180_000);

  it('takes the README\'s rollout on node1 with the test user (--user), and refuses it without', async () => {
    const node1 = running.get('node1')!.url;
    const args = [layerdBin, 'rollout', 'seed:5000/team/app:v1', '--node', node1, '--json'];
    await expect(runTool(process.execPath, args)).rejects.toThrow(/401 UNAUTHORIZED/);
    const started = JSON.parse(await runTool(process.execPath, [...args, '--user', 'layerd:layerd-test-only'])) as { id?: string; image?: string };
    expect(started.image).toBe('seed:5000/team/app:v1');
    expect(started.id).toMatch(/^[0-9a-f-]{36}$/);
  }, 60_000);
});

describe('(d) the Kubernetes configs, run on loopback', () => {
  const m = readKubernetes(k8sDir);
  const nodes = kubernetesNodes(m);
  const running: Running[] = [];

  /** The settings a pod's layerd ends up with: its ConfigMap file, its LAYERD_* variables over it, its flags over both. */
  function settingsOf(n: (typeof nodes)[number]): Settings {
    const fromEnv = Object.fromEntries(
      Object.values(OPTIONS)
        .filter((o) => n.env[envName(o.name)] !== undefined)
        .map((o) => [o.name, n.env[envName(o.name)]]),
    );
    return { ...(parseYaml(n.fileText) as Settings), ...fromEnv, ...n.flags };
  }

  afterAll(async () => {
    for (const r of running.reverse()) {
      await r.stop();
      await removeDir(r.dataDir);
    }
  });

  it('the DaemonSet\'s config joins the cluster through the bootstrap StatefulSet, whose Secret gives it the named peer id', async () => {
    const bootstrap = nodes.find((n) => n.kind === 'StatefulSet')!;
    const hosts = nodes.filter((n) => n.kind === 'DaemonSet');
    const ports: PortMap = new Map();
    for (const n of nodes) {
      for (const p of [n.config.listen.port, ...n.config.p2pListen.map((a) => Number(/\/tcp\/(\d+)/.exec(a)![1]))]) {
        const free = await freePort();
        for (const name of [n.workload, ...n.dnsNames]) ports.set(`${name}:${p}`, free);
      }
    }
    for (const n of [bootstrap, ...hosts]) {
      const dataDir = await tempDir('k8s-layerd-');
      if (n.identityKey) {
        // What the Secret's subPath mount does: the key at <data-dir>/p2p/identity.key.
        await mkdir(join(dataDir, 'data', 'p2p'), { recursive: true });
        await writeFile(join(dataDir, 'data', 'p2p', 'identity.key'), n.identityKey);
      }
      const configFile = join(dataDir, 'layerd.yml');
      await writeFile(configFile, stringifyYaml(toLoopback(settingsOf(n), n.workload, ports, join(dataDir, 'data'))));
      running.push(await serve(n.workload, [`--config=${configFile}`], ports.get(`${n.workload}:${n.config.listen.port}`)!, dataDir));
    }
    const [boot, host] = running;
    const named = /\/p2p\/([^/]+)$/.exec(hosts[0]!.config.bootstrap[0]!)![1];
    expect((await status(boot!)).peerId).toBe(named);
    await until('the DaemonSet node ready', async () => ((await readyz(host!)) === 200 ? true : undefined), 60_000);
    expect((await status(host!)).peers.map((p) => p.id)).toContain(named);
  }, 180_000);
});
