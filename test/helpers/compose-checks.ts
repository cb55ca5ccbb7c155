// Checks of compose/ that need no Docker engine and no cluster: the docker-compose test network, the
// Dockerfile and the Kubernetes manifests, read the way docker-compose, docker and the kubelet read
// them, and held against what `layerd serve` accepts (src/node/config.ts). Every check returns its findings
// as sentences, so a test can also show that a broken copy of a file is caught.
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { envName, flagSpecs, loadConfig, OPTIONS, type Config } from '../../src/node/config.js';

// ---------------------------------------------------------------------------------------------------
// Shared: option values as written (flags, file keys, LAYERD_* variables), by option name.

/** Raw option values by flag name, e.g. { listen: '0.0.0.0:5000', bootstrap: ['/dns4/…'] }. */
export type Settings = Record<string, unknown>;

const OPTION_BY_ENV = new Map<string, string>([
  ['LAYERD_CONFIG', 'config'],
  ...Object.values(OPTIONS).map((o) => [envName(o.name), o.name] as [string, string]),
]);

/** `serve`'s arguments as parsed by the CLI itself (strict: an unknown flag throws). */
export function parseServeArgs(args: string[]): Settings {
  const { values } = parseArgs({ args, options: flagSpecs(), strict: true, allowPositionals: false });
  return { ...values };
}

function errorText(err: unknown): string {
  return (err as Error).message.split('\n')[0]!;
}

/** The peer id a layerd identity key file (libp2p protobuf) stands for. */
export function peerIdOfKey(key: Uint8Array): string {
  return peerIdFromPrivateKey(privateKeyFromProtobuf(key)).toString();
}

/** Loads a config the way `layerd serve` does: flags, then LAYERD_* variables, then an optional file. */
function tryLoad(where: string, problems: string[], sources: { flags?: Settings; env?: Record<string, string>; fileText?: string }): Config | undefined {
  let dir: string | undefined;
  try {
    let file: string | undefined;
    if (sources.fileText !== undefined) {
      dir = mkdtempSync(join(tmpdir(), 'layerd-compose-check-'));
      file = join(dir, 'layerd.yml');
      writeFileSync(file, sources.fileText);
    }
    return loadConfig({ flags: sources.flags, env: sources.env, file });
  } catch (err) {
    problems.push(`${where}: layerd would not start: ${errorText(err)}`);
    return undefined;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

function checkEnvNames(where: string, env: Record<string, string>, problems: string[]): void {
  for (const name of Object.keys(env)) {
    if (name.startsWith('LAYERD_') && name !== 'LAYERD_NODE' && !OPTION_BY_ENV.has(name)) problems.push(`${where}: ${name} is no layerd option's variable`);
  }
}

function tcpPort(addr: string): number | undefined {
  const m = /\/tcp\/(\d+)/.exec(addr);
  return m ? Number(m[1]) : undefined;
}

// ---------------------------------------------------------------------------------------------------
// docker-compose.yml

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  ports?: Array<string | number | { target?: number; published?: number | string; host_ip?: string }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  environment?: Record<string, string | number | boolean | null> | string[];
  profiles?: string[];
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** docker-compose reads YAML 1.1, where `<<` merges mappings (the anchors); the yaml package must be told. */
export function readCompose(path: string): ComposeFile {
  return parseYaml(readFileSync(path, 'utf8'), { merge: true }) as ComposeFile;
}

export interface Volume {
  kind: 'bind' | 'named' | 'anonymous';
  source?: string;
  target: string;
}

export function volumesOf(svc: ComposeService): Volume[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v === 'object') {
      return { kind: v.type === 'bind' ? 'bind' : v.source ? 'named' : 'anonymous', source: v.source, target: v.target ?? '' };
    }
    const parts = v.split(':');
    if (parts.length === 1) return { kind: 'anonymous', target: parts[0]! };
    const source = parts[0]!;
    return { kind: /^[./~]/.test(source) ? 'bind' : 'named', source, target: parts[1]! };
  });
}

interface Published {
  hostIp?: string;
  target: number;
  raw: string;
}

export function publishedPorts(svc: ComposeService): Published[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p === 'object') return { hostIp: p.host_ip, target: Number(p.target), raw: JSON.stringify(p) };
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    return { hostIp: parts.length === 3 ? parts[0] : undefined, target: Number(parts[parts.length - 1]), raw: String(p) };
  });
}

export function dependsOn(svc: ComposeService): Record<string, string> {
  const d = svc.depends_on ?? [];
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v?.condition ?? 'service_started']));
}

function environmentOf(svc: ComposeService): Record<string, string> {
  const e = svc.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function words(v: string[] | string | undefined): string[] | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v.map(String) : v.trim().split(/\s+/);
}

function usesLayerdImage(svc: ComposeService): boolean {
  const dockerfile = typeof svc.build === 'object' ? svc.build.dockerfile : undefined;
  return dockerfile === 'compose/Dockerfile' || svc.image === 'layerd:dev';
}

/** A service running `layerd serve`, with its settings as written and as layerd loads them. */
export interface ComposeNode {
  name: string;
  svc: ComposeService;
  /** From the command's flags, with LAYERD_* variables of `environment` filled in below them. */
  settings: Settings;
  flags: Settings;
  env: Record<string, string>;
  config: Config;
}

/** The services of the file that run `layerd serve` (the layerd image with its entrypoint and `serve`). */
export function composeNodes(file: ComposeFile, problems: string[] = []): ComposeNode[] {
  const nodes: ComposeNode[] = [];
  for (const [name, svc] of Object.entries(file.services ?? {})) {
    if (!usesLayerdImage(svc) || svc.entrypoint !== undefined) continue;
    const command = words(svc.command) ?? ['serve']; // the image's CMD
    if (command[0] !== 'serve') {
      problems.push(`${name}: runs the layerd image with "${command[0]}", not serve`);
      continue;
    }
    let flags: Settings;
    try {
      flags = parseServeArgs(command.slice(1));
    } catch (err) {
      problems.push(`${name}: layerd serve would refuse its command: ${errorText(err)}`);
      continue;
    }
    if (flags.config !== undefined) problems.push(`${name}: --config: the test network passes its settings as flags`);
    const env = environmentOf(svc);
    checkEnvNames(name, env, problems);
    const config = tryLoad(name, problems, { flags, env });
    if (!config) continue;
    const fromEnv = Object.fromEntries(Object.entries(env).filter(([k]) => OPTION_BY_ENV.has(k)).map(([k, v]) => [OPTION_BY_ENV.get(k)!, v]));
    nodes.push({ name, svc, settings: { ...fromEnv, ...flags }, flags, env, config });
  }
  return nodes;
}

/** Host path of the identity key a service will find at <data-dir>/p2p/identity.key, if one is mounted. */
export function identityKeyFile(node: ComposeNode, composeDir: string): string | undefined {
  const target = posix.join(node.config.dataDir, 'p2p', 'identity.key');
  const mount = volumesOf(node.svc).find((v) => v.kind === 'bind' && posix.normalize(v.target) === target);
  return mount?.source ? join(composeDir, mount.source) : undefined;
}

export function composeProblems(file: ComposeFile, composeDir: string): string[] {
  const problems: string[] = [];
  const services = file.services ?? {};
  const nodes = composeNodes(file, problems);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  if (nodes.length < 4) problems.push(`want a seed and at least three nodes running layerd serve, found ${nodes.length}`);

  for (const [name, svc] of Object.entries(services)) {
    // Published ports: loopback of the host only.
    for (const p of publishedPorts(svc)) {
      if (p.hostIp !== '127.0.0.1') problems.push(`${name}: port ${p.raw} is published on every interface of the host, not 127.0.0.1`);
    }
    // Dependencies name services, wait for health only where there is a check, and never reach into a
    // profile the dependent service is not in (docker-compose up would refuse).
    for (const [dep, condition] of Object.entries(dependsOn(svc))) {
      const target = services[dep];
      if (!target) {
        problems.push(`${name}: depends_on ${dep}, which is no service`);
        continue;
      }
      if (condition === 'service_healthy' && (!target.healthcheck || target.healthcheck.disable)) problems.push(`${name}: waits for ${dep} to be healthy, which has no healthcheck`);
      const mine = svc.profiles ?? [];
      if ((target.profiles ?? []).length > 0 && !(target.profiles ?? []).some((p) => mine.includes(p))) problems.push(`${name}: depends on ${dep}, which only runs in profile ${target.profiles!.join(', ')}`);
    }
    for (const v of volumesOf(svc)) {
      if (v.kind === 'named' && !(file.volumes && v.source! in file.volumes)) problems.push(`${name}: volume ${v.source} is not declared under volumes:`);
      if (v.kind === 'bind' && !existsSync(join(composeDir, v.source!))) problems.push(`${name}: bind mount source ${v.source} does not exist`);
    }
  }

  for (const node of nodes) {
    const { name, svc, config } = node;
    const deps = dependsOn(svc);
    const p2pPorts = config.p2pListen.map(tcpPort);
    if (!['0.0.0.0', '::'].includes(config.listen.host)) problems.push(`${name}: --listen ${config.listen.host} cannot be reached from the other containers`);
    if (!volumesOf(svc).some((v) => v.kind === 'named' && v.target === config.dataDir)) problems.push(`${name}: its data dir ${config.dataDir} is on no named volume: the cache would not survive a restart`);
    const hc = svc.healthcheck;
    const test = Array.isArray(hc?.test) ? hc.test.join(' ') : (hc?.test ?? '');
    if (!hc || hc.disable || !test.includes(`127.0.0.1:${config.listen.port}/healthz`)) problems.push(`${name}: its healthcheck does not ask 127.0.0.1:${config.listen.port}/healthz`);
    for (const p of publishedPorts(svc)) {
      if (p.target !== config.listen.port && !p2pPorts.includes(p.target)) problems.push(`${name}: publishes container port ${p.target}, on which layerd does not listen`);
    }
    for (const addr of config.announce) {
      const m = /^\/dns4\/([^/]+)\/tcp\/(\d+)$/.exec(addr);
      if (!m || m[1] !== name || !p2pPorts.includes(Number(m[2]))) problems.push(`${name}: --announce ${addr} is not its own name and p2p port (/dns4/${name}/tcp/<p2p port>)`);
    }
    if (config.bootstrap.length > 0 && config.p2pListen.length === 0) problems.push(`${name}: --bootstrap without --p2p-listen`);
    for (const addr of config.bootstrap) {
      const m = /^\/dns4\/([^/]+)\/tcp\/(\d+)\/p2p\/([^/]+)$/.exec(addr);
      const peer = m ? byName.get(m[1]!) : undefined;
      if (!m || !peer) {
        problems.push(`${name}: --bootstrap ${addr} names no layerd service of the file as /dns4/<service>/tcp/<port>/p2p/<id>`);
        continue;
      }
      if (!peer.config.p2pListen.map(tcpPort).includes(Number(m[2]))) problems.push(`${name}: --bootstrap ${addr}: ${peer.name} has no p2p listener on port ${m[2]}`);
      if (deps[peer.name] !== 'service_healthy') problems.push(`${name}: bootstraps through ${peer.name} but does not depend_on it being healthy`);
      const keyFile = identityKeyFile(peer, composeDir);
      if (!keyFile || !existsSync(keyFile)) {
        problems.push(`${name}: bootstraps through ${peer.name}, whose identity is random: no key file is mounted at ${posix.join(peer.config.dataDir, 'p2p', 'identity.key')}`);
        continue;
      }
      const id = peerIdOfKey(readFileSync(keyFile));
      if (id !== m[3]) problems.push(`${name}: --bootstrap names peer id ${m[3]}, but ${peer.name}'s identity key is peer ${id}`);
    }
    for (const up of config.upstream) {
      const url = new URL(up.url);
      const seed = byName.get(url.hostname);
      if (!seed) continue; // a registry outside the network
      if (Number(url.port || 80) !== seed.config.listen.port) problems.push(`${name}: upstream ${up.url}: ${seed.name} listens on port ${seed.config.listen.port}`);
      if (!(seed.name in deps)) problems.push(`${name}: mirrors ${seed.name} but does not depend_on it`);
    }
    if (config.upstream.length > 0 && !config.upstream.some((u) => u.name === config.defaultRegistry)) {
      problems.push(`${name}: --default-registry ${config.defaultRegistry} is none of its upstreams (${config.upstream.map((u) => u.name).join(', ')})`);
    }
  }

  // Prometheus scrapes exactly the layerd nodes, each on its listen port.
  for (const [name, svc] of Object.entries(services)) {
    if (!svc.image?.startsWith('prom/prometheus')) continue;
    const mount = volumesOf(svc).find((v) => v.kind === 'bind' && v.target.endsWith('prometheus.yml'));
    if (!mount || !existsSync(join(composeDir, mount.source!))) {
      problems.push(`${name}: no prometheus.yml is mounted`);
      continue;
    }
    const prom = parseYaml(readFileSync(join(composeDir, mount.source!), 'utf8')) as { scrape_configs?: Array<{ static_configs?: Array<{ targets?: string[] }> }> };
    const targets = new Set((prom.scrape_configs ?? []).flatMap((s) => (s.static_configs ?? []).flatMap((c) => c.targets ?? [])));
    const wanted = new Set(nodes.map((n) => `${n.name}:${n.config.listen.port}`));
    for (const t of targets) if (!wanted.has(t)) problems.push(`${name}: scrapes ${t}, which is no layerd node's listen address`);
    for (const t of wanted) if (!targets.has(t)) problems.push(`${name}: does not scrape ${t}`);
  }
  // Grafana's data source is the Prometheus service, and its dashboard provider reads where the dashboard is mounted.
  for (const [name, svc] of Object.entries(services)) {
    if (!svc.image?.startsWith('grafana/grafana')) continue;
    const mounts = volumesOf(svc).filter((v) => v.kind === 'bind');
    const provisioning = mounts.find((v) => v.target === '/etc/grafana/provisioning');
    const dashboard = mounts.find((v) => v.source!.endsWith('layerd-dashboard.json'));
    if (!provisioning || !dashboard) {
      problems.push(`${name}: mounts no provisioning directory or no layerd-dashboard.json`);
      continue;
    }
    const dsDir = join(composeDir, provisioning.source!, 'datasources');
    const dbDir = join(composeDir, provisioning.source!, 'dashboards');
    const datasources = existsSync(dsDir) ? readdirSync(dsDir).flatMap((f) => (parseYaml(readFileSync(join(dsDir, f), 'utf8')) as { datasources?: Array<{ type: string; url: string }> }).datasources ?? []) : [];
    const prom = datasources.find((d) => d.type === 'prometheus');
    const promHost = prom ? new URL(prom.url).hostname : undefined;
    if (!prom || !services[promHost!]?.image?.startsWith('prom/prometheus')) problems.push(`${name}: its Prometheus data source (${prom?.url}) is not the Prometheus service`);
    const providers = existsSync(dbDir) ? readdirSync(dbDir).flatMap((f) => (parseYaml(readFileSync(join(dbDir, f), 'utf8')) as { providers?: Array<{ options?: { path?: string } }> }).providers ?? []) : [];
    if (!providers.some((p) => p.options?.path === posix.dirname(dashboard.target))) problems.push(`${name}: no dashboard provider reads ${posix.dirname(dashboard.target)}, where the dashboard is mounted`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Dockerfile

export interface Dockerfile {
  instructions: Array<{ op: string; args: string }>;
}

export function readDockerfile(path: string): Dockerfile {
  const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ');
  const instructions = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    });
  return { instructions };
}

/** The HEALTHCHECK's command, as the argv docker would run. */
export function dockerfileHealthcheck(df: Dockerfile): string[] | undefined {
  const hc = df.instructions.findLast((i) => i.op === 'HEALTHCHECK');
  const m = hc ? /\bCMD\s+(\[.*\])\s*$/.exec(hc.args) : null;
  return m ? (JSON.parse(m[1]!) as string[]) : undefined;
}

/** The default of the global `ARG BASE=…` (before the first FROM), which every stage is built on. */
export function dockerfileBase(df: Dockerfile): string | undefined {
  const first = df.instructions.findIndex((i) => i.op === 'FROM');
  const arg = df.instructions.slice(0, first).find((i) => i.op === 'ARG' && i.args.startsWith('BASE='));
  return arg?.args.slice('BASE='.length);
}

export function dockerfileProblems(df: Dockerfile, contextDir: string, nodes: ComposeNode[]): string[] {
  const problems: string[] = [];
  const stages = df.instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]!);
  const base = dockerfileBase(df);
  if (stages.length < 2 || stages.some((s) => s !== '${BASE}')) problems.push(`want every stage FROM \${BASE}, found ${stages.join(', ')}`);
  if (base !== 'node:24-slim') problems.push(`want ARG BASE=node:24-slim (the Node 24 LTS image), found ${base}`);
  const ignored = existsSync(join(contextDir, '.dockerignore'))
    ? readFileSync(join(contextDir, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    : [];
  for (const i of df.instructions.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from'))) {
    const sources = i.args.split(/\s+/).slice(0, -1);
    for (const s of sources) {
      if (!existsSync(join(contextDir, s))) problems.push(`COPY ${s}: no such file in the build context`);
      if (ignored.includes(s.replace(/\/$/, ''))) problems.push(`COPY ${s}: excluded by .dockerignore`);
    }
  }
  const last = df.instructions.slice(df.instructions.findLastIndex((i) => i.op === 'FROM'));
  const user = last.findLast((i) => i.op === 'USER')?.args;
  if (!user || user === 'root' || user === '0') problems.push('the runtime stage runs as root');
  const entrypoint = last.findLast((i) => i.op === 'ENTRYPOINT')?.args;
  // The entry is the `layerd` link to dist/layerd.mjs (the bundle), run through its #! line (the node flags layerd ships with).
  if (entrypoint?.replace(/\s/g, '') !== '["layerd"]') problems.push(`ENTRYPOINT is ${entrypoint}, not ["layerd"]`);
  if (!last.some((i) => i.op === 'RUN' && /\bln -s \/app\/dist\/layerd\.mjs \/usr\/local\/bin\/layerd\b/.test(i.args))) problems.push('no /usr/local/bin/layerd link to /app/dist/layerd.mjs');
  if (last.findLast((i) => i.op === 'CMD')?.args !== '["serve"]') problems.push('CMD is not ["serve"]');
  const exposed = new Set(last.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, '')))));
  for (const n of nodes) {
    for (const port of [n.config.listen.port, ...n.config.p2pListen.map(tcpPort)]) if (port !== undefined && !exposed.has(port)) problems.push(`EXPOSE lacks ${port}, on which ${n.name} listens`);
  }
  const hc = dockerfileHealthcheck(df);
  if (!hc || hc[0] !== 'node' || !hc.join(' ').includes('/healthz')) problems.push('no HEALTHCHECK asking /healthz with node');
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Kubernetes manifests

interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  // Pod specs are deep and loosely shaped; the checks below read them field by field.
  spec?: Record<string, any>;
  [key: string]: unknown;
}

type Container = any;
type PodSpec = any;

export interface K8sNode {
  /** e.g. DaemonSet/layerd */
  workload: string;
  kind: string;
  pod: PodSpec;
  podLabels: Record<string, string>;
  container: Container;
  flags: Settings;
  /** The ConfigMap's config file text. */
  fileText: string;
  /** LAYERD_* (and other) variables with $(VAR) references filled with sample values. */
  env: Record<string, string>;
  config: Config;
  /** The identity key mounted at <data-dir>/p2p/identity.key, if any. */
  identityKey?: Buffer;
  /** Names the pods are reachable by: <service>.<namespace>.svc of each Service selecting them. */
  dnsNames: string[];
}

export interface K8sManifests {
  files: Map<string, K8sObject[]>;
  objects: K8sObject[];
  kustomization?: { namespace?: string; resources?: string[] };
  problems: string[];
}

/** Sample values for the downward API, so `$(HOST_IP)` in an env value becomes an address. */
const FIELD_SAMPLES: Record<string, string> = { 'status.hostIP': '10.0.0.7', 'status.podIP': '10.244.0.7', 'metadata.name': 'layerd-x7k2p', 'spec.nodeName': 'worker-1' };

export function readKubernetes(dir: string): K8sManifests {
  const problems: string[] = [];
  const files = new Map<string, K8sObject[]>();
  let kustomization: K8sManifests['kustomization'];
  for (const f of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const docs = parseAllDocuments(readFileSync(join(dir, f), 'utf8'));
    const objects: K8sObject[] = [];
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      if (doc.errors.length > 0) problems.push(`${f}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
      const obj = doc.toJS() as K8sObject | null;
      if (obj) objects.push(obj);
    }
    if (f.startsWith('kustomization.')) {
      kustomization = objects[0] as K8sManifests['kustomization'];
      continue;
    }
    for (const o of objects) if (!o.apiVersion || !o.kind || !o.metadata?.name) problems.push(`${f}: an object without apiVersion, kind or metadata.name`);
    files.set(f, objects);
  }
  return { files, objects: [...files.values()].flat(), kustomization, problems };
}

function find(m: K8sManifests, kind: string, name: string | undefined): K8sObject | undefined {
  return m.objects.find((o) => o.kind === kind && o.metadata?.name === name);
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function containerEnv(container: Container, problems: string[], where: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>) {
    let value: string;
    if (e.value !== undefined) value = e.value;
    else if (e.valueFrom?.fieldRef && FIELD_SAMPLES[e.valueFrom.fieldRef.fieldPath]) value = FIELD_SAMPLES[e.valueFrom.fieldRef.fieldPath]!;
    else {
      problems.push(`${where}: env ${e.name} has a source this check does not know`);
      continue;
    }
    // The kubelet expands $(NAME) from variables defined earlier in the list.
    env[e.name] = value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, n: string) => {
      if (env[n] === undefined) problems.push(`${where}: env ${e.name} refers to $(${n}), which is not defined before it`);
      return env[n] ?? whole;
    });
  }
  return env;
}

/** The port a probe asks, by number or by the container port's name. */
function probePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports ?? []).find((p: { name?: string }) => p.name === port)?.containerPort;
}

/** Every container of the manifests that runs `layerd serve`, with its config loaded. */
export function kubernetesNodes(m: K8sManifests, problems: string[] = []): K8sNode[] {
  const nodes: K8sNode[] = [];
  for (const w of m.objects.filter((o) => ['DaemonSet', 'StatefulSet', 'Deployment'].includes(o.kind ?? ''))) {
    const pod = w.spec?.template?.spec as PodSpec;
    const podLabels = (w.spec?.template?.metadata?.labels ?? {}) as Record<string, string>;
    const workload = `${w.kind}/${w.metadata?.name}`;
    if (!selects(w.spec?.selector?.matchLabels, podLabels)) problems.push(`${workload}: its selector does not match its pod labels`);
    for (const c of (pod?.containers ?? []) as Container[]) {
      const args = [...(c.command ?? []), ...(c.args ?? [])] as string[];
      if (args[0] !== 'serve') continue;
      const where = `${workload} ${c.name}`;
      let flags: Settings;
      try {
        flags = parseServeArgs(args.slice(1));
      } catch (err) {
        problems.push(`${where}: layerd serve would refuse its args: ${errorText(err)}`);
        continue;
      }
      const env = containerEnv(c, problems, where);
      checkEnvNames(where, env, problems);
      // --config points into a mounted ConfigMap: find the text the container will read.
      const configPath = (flags.config as string | undefined) ?? env.LAYERD_CONFIG;
      let fileText: string | undefined;
      if (configPath) {
        const mount = (c.volumeMounts ?? []).find((vm: { mountPath: string }) => vm.mountPath === posix.dirname(configPath));
        const volume = mount && (pod.volumes ?? []).find((v: { name: string }) => v.name === mount.name);
        const item = volume?.configMap?.items?.find((i: { path: string }) => i.path === posix.basename(configPath));
        const key = item?.key ?? (volume?.configMap && !volume.configMap.items ? posix.basename(configPath) : undefined);
        fileText = key ? find(m, 'ConfigMap', volume.configMap.name)?.data?.[key] : undefined;
        if (fileText === undefined) {
          problems.push(`${where}: --config ${configPath} is no key of a mounted ConfigMap`);
          continue;
        }
      }
      const { config: _unused, ...cliFlags } = flags;
      const config = tryLoad(where, problems, { flags: cliFlags, env, fileText });
      if (!config) continue;
      let identityKey: Buffer | undefined;
      const keyMount = (c.volumeMounts ?? []).find((vm: { mountPath: string }) => vm.mountPath === posix.join(config.dataDir, 'p2p', 'identity.key'));
      if (keyMount) {
        const volume = (pod.volumes ?? []).find((v: { name: string }) => v.name === keyMount.name);
        const b64 = volume?.secret && keyMount.subPath ? find(m, 'Secret', volume.secret.secretName)?.data?.[keyMount.subPath] : undefined;
        if (b64 === undefined) problems.push(`${where}: the identity key mount is no key of a Secret of the manifests`);
        else identityKey = Buffer.from(b64, 'base64');
      }
      const dnsNames = m.objects
        .filter((o) => o.kind === 'Service' && selects(o.spec?.selector, podLabels))
        .map((s) => `${s.metadata!.name}.${s.metadata!.namespace ?? m.kustomization?.namespace}.svc`);
      nodes.push({ workload, kind: w.kind!, pod, podLabels, container: c, flags: cliFlags, fileText: fileText ?? '', env, config, identityKey, dnsNames });
    }
  }
  return nodes;
}

/** A tiny reader for containerd's hosts.toml: top-level keys and [host."URL"] tables of string, string-list or boolean values. */
export function parseHostsToml(text: string): { top: Record<string, unknown>; hosts: Record<string, Record<string, unknown>> } {
  const top: Record<string, unknown> = {};
  const hosts: Record<string, Record<string, unknown>> = {};
  let table = top;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[host\."([^"]+)"\]$/.exec(line);
    if (header) {
      table = hosts[header[1]!] = {};
      continue;
    }
    const kv = /^([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(.+)$/.exec(line);
    if (!kv) throw new Error(`line ${i + 1}: cannot read ${JSON.stringify(line)}`);
    const value = kv[2]!.trim();
    if (/^"[^"]*"$/.test(value)) table[kv[1]!] = value.slice(1, -1);
    else if (/^\[\s*("[^"]*"\s*(,\s*"[^"]*"\s*)*)?\]$/.test(value)) table[kv[1]!] = [...value.matchAll(/"([^"]*)"/g)].map((x) => x[1]);
    else if (value === 'true' || value === 'false') table[kv[1]!] = value === 'true';
    else throw new Error(`line ${i + 1}: cannot read the value ${value}`);
  }
  return { top, hosts };
}

export function kubernetesProblems(m: K8sManifests, dir: string): string[] {
  const problems = [...m.problems];
  const k = m.kustomization;
  if (!k) problems.push('no kustomization.yaml');
  const listed = new Set(k?.resources ?? []);
  for (const r of listed) if (!existsSync(join(dir, r))) problems.push(`kustomization.yaml lists ${r}, which does not exist`);
  for (const f of m.files.keys()) if (!listed.has(f)) problems.push(`${f} is not listed in kustomization.yaml's resources`);
  for (const o of m.objects) {
    if (k?.namespace && o.kind !== 'Namespace' && o.metadata?.namespace && o.metadata.namespace !== k.namespace) problems.push(`${o.kind}/${o.metadata.name} is in namespace ${o.metadata.namespace}, the kustomization puts everything in ${k.namespace}`);
  }

  const nodes = kubernetesNodes(m, problems);
  const daemonSets = nodes.filter((n) => n.kind === 'DaemonSet');
  if (daemonSets.length !== 1) problems.push(`want one DaemonSet running layerd serve, found ${daemonSets.length}`);
  for (const n of nodes) {
    const where = `${n.workload} ${n.container.name}`;
    const { config, container, pod } = n;
    const ports = (container.ports ?? []) as Array<{ name?: string; containerPort: number; hostPort?: number; hostIP?: string }>;
    if (!['0.0.0.0', '::'].includes(config.listen.host)) problems.push(`${where}: listen ${config.listen.host}: the kubelet's probes and the hostPort reach the pod's address, not its loopback`);
    const probes: Array<[string, string]> = [
      ['readinessProbe', '/readyz'],
      ['livenessProbe', '/healthz'],
      ['startupProbe', '/healthz'],
    ];
    for (const [probe, path] of probes) {
      const p = container[probe]?.httpGet;
      if (!p) {
        if (probe !== 'startupProbe') problems.push(`${where}: no ${probe}`);
        continue;
      }
      if (p.path !== path) problems.push(`${where}: ${probe} asks ${p.path}, want ${path}`);
      if (probePort(container, p.port) !== config.listen.port) problems.push(`${where}: ${probe} asks port ${p.port}, but layerd listens on ${config.listen.port}`);
    }
    if (!container.resources?.requests || !container.resources?.limits?.memory) problems.push(`${where}: no resource requests or memory limit`);
    for (const p2p of config.p2pListen.map(tcpPort)) if (!ports.some((p) => p.containerPort === p2p)) problems.push(`${where}: p2p port ${p2p} is not a container port`);
    const mounts = (container.volumeMounts ?? []) as Array<{ name: string; mountPath: string }>;
    if (!mounts.some((vm) => vm.mountPath === config.dataDir)) problems.push(`${where}: its data dir ${config.dataDir} is no volume`);
    for (const c of [...(pod.initContainers ?? []), ...pod.containers] as Container[]) {
      for (const vm of (c.volumeMounts ?? []) as Array<{ name: string }>) {
        const v = (pod.volumes ?? []).find((x: { name: string }) => x.name === vm.name);
        if (!v) problems.push(`${n.workload} ${c.name}: mounts ${vm.name}, which is no volume of the pod`);
        else if (v.configMap && !find(m, 'ConfigMap', v.configMap.name)) problems.push(`${n.workload}: volume ${v.name} names ConfigMap ${v.configMap.name}, which does not exist`);
        else if (v.secret && !find(m, 'Secret', v.secret.secretName)) problems.push(`${n.workload}: volume ${v.name} names Secret ${v.secret.secretName}, which does not exist`);
      }
    }

    if (n.kind === 'DaemonSet') {
      const http = ports.find((p) => p.containerPort === config.listen.port);
      if (!http?.hostPort || http.hostIP !== '127.0.0.1') problems.push(`${where}: the /v2 port needs a hostPort bound to 127.0.0.1 (containerd asks there; nobody else may push)`);
      const p2p = ports.find((p) => p.containerPort === tcpPort(config.p2pListen[0] ?? ''));
      for (const a of config.announce) {
        if (!a.startsWith(`/ip4/${FIELD_SAMPLES['status.hostIP']}/`) || tcpPort(a) !== p2p?.hostPort) problems.push(`${where}: announces ${a}, not the host's address and the p2p hostPort`);
      }
      if (config.announce.length === 0) problems.push(`${where}: announces nothing: peers would dial the pod's listen address 0.0.0.0`);
      if (config.bootstrap.length === 0) problems.push(`${where}: no bootstrap peer`);
      hostsTomlProblems(m, n, http?.hostPort, problems);
    }
    for (const a of config.announce.filter((x) => x.startsWith('/dns4/'))) {
      const host = a.split('/')[2]!;
      if (!n.dnsNames.includes(host)) problems.push(`${where}: announces ${a}, but no Service gives its pods the name ${host}`);
    }
    for (const addr of config.bootstrap) {
      const mm = /^\/dns4\/([^/]+)\/tcp\/(\d+)\/p2p\/([^/]+)$/.exec(addr);
      const peer = mm ? nodes.find((x) => x.dnsNames.includes(mm[1]!)) : undefined;
      if (!mm || !peer) {
        problems.push(`${where}: bootstrap ${addr} names no Service selecting a layerd workload (/dns4/<service>.<namespace>.svc/tcp/<port>/p2p/<id>)`);
        continue;
      }
      const svc = m.objects.find((o) => o.kind === 'Service' && `${o.metadata!.name}.${o.metadata!.namespace ?? k?.namespace}.svc` === mm[1]);
      if (svc?.spec?.clusterIP !== 'None') problems.push(`${where}: bootstrap Service ${svc?.metadata?.name} is not headless`);
      const sp = (svc?.spec?.ports ?? []).find((p: { port: number }) => p.port === Number(mm[2]));
      const target = sp ? probePort(peer.container, sp.targetPort ?? sp.port) : undefined;
      if (target === undefined || !peer.config.p2pListen.map(tcpPort).includes(target)) problems.push(`${where}: bootstrap port ${mm[2]} does not lead to ${peer.workload}'s p2p listener`);
      const replicas = m.objects.find((o) => `${o.kind}/${o.metadata?.name}` === peer.workload)?.spec?.replicas ?? 1;
      if (peer.kind !== 'StatefulSet' || replicas !== 1) {
        problems.push(`${where}: bootstrap peer ${peer.workload} must be one pod (one identity)`);
      }
      if (!peer.identityKey) {
        problems.push(`${where}: bootstrap peer ${peer.workload} has no fixed identity key`);
        continue;
      }
      const id = peerIdOfKey(peer.identityKey);
      if (id !== mm[3]) problems.push(`${where}: bootstrap names peer id ${mm[3]}, but ${peer.workload}'s identity key is peer ${id}`);
    }
  }
  return problems;
}

function hostsTomlProblems(m: K8sManifests, n: K8sNode, hostPort: number | undefined, problems: string[]): void {
  // The hosts.toml files are the ConfigMaps an init container of the DaemonSet copies to the host.
  const init = ((n.pod.initContainers ?? []) as Container[]).find((c) => (c.volumeMounts ?? []).some((vm: { name: string }) => (n.pod.volumes ?? []).find((v: { name: string; hostPath?: { path: string } }) => v.name === vm.name)?.hostPath?.path === '/etc/containerd/certs.d'));
  if (!init) {
    problems.push(`${n.workload}: no init container writes /etc/containerd/certs.d on the host`);
    return;
  }
  const maps = ((init.volumeMounts ?? []) as Array<{ name: string }>)
    .map((vm) => (n.pod.volumes ?? []).find((v: { name: string }) => v.name === vm.name)?.configMap?.name)
    .filter(Boolean)
    .map((name: string) => find(m, 'ConfigMap', name)!);
  const registries = new Set<string>();
  for (const cm of maps) {
    for (const [key, text] of Object.entries(cm.data ?? {})) {
      const registry = key.replace(/_/g, ':');
      registries.add(registry);
      const where = `ConfigMap ${cm.metadata!.name} ${key}`;
      let toml: ReturnType<typeof parseHostsToml>;
      try {
        toml = parseHostsToml(text);
      } catch (err) {
        problems.push(`${where}: not hosts.toml: ${errorText(err)}`);
        continue;
      }
      if (typeof toml.top.server !== 'string' || !/^https?:\/\/[^/]+/.test(toml.top.server)) problems.push(`${where}: no server = "URL"`);
      const node = toml.hosts[`http://127.0.0.1:${hostPort}`];
      const caps = node?.capabilities;
      if (!node || !Array.isArray(caps) || !caps.includes('pull') || !caps.includes('resolve')) {
        problems.push(`${where}: no [host."http://127.0.0.1:${hostPort}"] with capabilities pull and resolve`);
      }
      if (!n.config.upstream.some((u) => u.name === registry)) problems.push(`${where}: containerd would send ${registry} pulls to a node that does not mirror it`);
    }
  }
  for (const u of n.config.upstream) if (!registries.has(u.name)) problems.push(`${n.workload}: mirrors ${u.name}, but containerd has no hosts.toml sending its pulls to the node`);
}

// ---------------------------------------------------------------------------------------------------
// Running a service's settings on loopback: container addresses become 127.0.0.1 and free ports.

/** Loopback port by "<host>:<container port>", for every name a node is reached by. */
export type PortMap = Map<string, number>;

function loopbackPort(ports: PortMap, host: string, port: string | number): number {
  const p = ports.get(`${host}:${port}`);
  if (p === undefined) throw new Error(`no loopback port stands for ${host}:${port}`);
  return p;
}

/**
 * The same settings with every container address replaced: the node's own listeners by 127.0.0.1 and its
 * own loopback ports, other services' names by localhost (still a /dns4 name to resolve) and theirs.
 */
export function toLoopback(settings: Settings, own: string, ports: PortMap, dataDir: string, mounts: Map<string, string> = new Map()): Settings {
  const each = (v: unknown, f: (s: string) => string): unknown => (Array.isArray(v) ? v.map((x) => f(String(x))) : typeof v === 'string' ? v.split(',').map((x) => f(x.trim())).join(',') : v);
  const url = (s: string) => s.replace(/\bhttps?:\/\/([^/:]+):(\d+)/, (whole, h: string, p: string) => (ports.has(`${h}:${p}`) ? `http://127.0.0.1:${loopbackPort(ports, h, p)}` : whole));
  const out: Settings = {};
  for (const [key, value] of Object.entries(settings)) {
    if (key === 'listen') out[key] = `127.0.0.1:${loopbackPort(ports, own, String(value).split(':').pop()!)}`;
    else if (key === 'data-dir') out[key] = dataDir;
    else if (key === 'p2p-listen' || key === 'announce') out[key] = each(value, (a) => a.replace(/^\/(ip4|dns4)\/[^/]+\/tcp\/(\d+)/, (_w, _p, port: string) => `/ip4/127.0.0.1/tcp/${loopbackPort(ports, own, port)}`));
    else if (key === 'bootstrap') out[key] = each(value, (a) => a.replace(/^\/dns4\/([^/]+)\/tcp\/(\d+)/, (_w, h: string, p: string) => `/dns4/localhost/tcp/${loopbackPort(ports, h, p)}`));
    else if (key === 'upstream' && value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, u]) => [name, typeof u === 'string' ? url(u) : { ...(u as object), url: url(String((u as { url: string }).url)) }]));
    } else if (key === 'upstream') out[key] = each(value, url);
    // A file a bind mount puts in the container (e.g. --htpasswd) is the mount's source on the host.
    else if (typeof value === 'string' && mounts.has(posix.normalize(value))) out[key] = mounts.get(posix.normalize(value));
    else out[key] = value;
  }
  return out;
}

/** Host path by container path, for every file or folder bind-mounted into a service. */
export function bindMounts(svc: ComposeService, composeDir: string): Map<string, string> {
  return new Map(volumesOf(svc).flatMap((v) => (v.kind === 'bind' && v.source ? [[posix.normalize(v.target), join(composeDir, v.source)] as [string, string]] : [])));
}

/** Settings as `serve` arguments, a repeatable option once per value. */
export function toArgs(settings: Settings): string[] {
  return Object.entries(settings).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `--${k}=${String(x)}`) : [`--${k}=${String(v)}`]));
}
