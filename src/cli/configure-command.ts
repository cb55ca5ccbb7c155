// `layerd configure docker|containerd|podman`: points a host's container runtime at the local node as its
// mirror, or (--undo) takes back exactly what an earlier run added. Every edit is computed before any file
// is touched, so a file it cannot read stops the run with nothing changed.
import { join } from 'node:path';
import { DEFAULT_NODE, UsageError, parseFlags, parseNodeUrl, type Command } from './command.js';
import { applyChanges, readIfExists, type Applied, type FileChange } from './configure-files.js';
import {
  ConfigFileError,
  configureDocker,
  configureHostsToml,
  configurePodman,
  criConfigPath,
  unconfigureDocker,
  unconfigureHostsToml,
  unconfigurePodman,
  unifiedDiff,
} from './configure/index.js';

const RUNTIMES = ['docker', 'containerd', 'podman'] as const;
type Runtime = (typeof RUNTIMES)[number];

export const DEFAULT_PATHS = {
  daemonJson: '/etc/docker/daemon.json',
  hostsDir: '/etc/containerd/certs.d',
  containerdConfig: '/etc/containerd/config.toml',
  registriesConf: '/etc/containers/registries.conf',
};

interface Options {
  runtime: Runtime;
  node: string;
  registries: string[];
  undo: boolean;
  paths: typeof DEFAULT_PATHS;
}

/** What a run would change, and what the user must still know or do. */
interface Plan {
  changes: FileChange[];
  notes: string[];
}

/** A registry as runtimes name it: host[:port], lower case (docker.io, registry.example.com:5000). */
const REGISTRY = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?$/;

/** An edit of one file; a file it cannot read becomes a usage error naming the file. */
function edit<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigFileError) throw new UsageError(`configure: refusing to edit ${path}: ${err.message} (the file is unchanged)`);
    throw err;
  }
}

async function dockerPlan(o: Options): Promise<Plan> {
  const path = o.paths.daemonJson;
  const before = await readIfExists(path);
  const after = o.undo ? (before === undefined ? undefined : edit(path, () => unconfigureDocker(before, o.node))) : edit(path, () => configureDocker(before, o.node));
  return {
    changes: [{ path, before, after, allOurs: true }],
    notes: [
      o.undo
        ? 'restart dockerd to apply it (`systemctl restart docker`): on a reload, dockerd keeps its mirrors when daemon.json no longer names any.'
        : 'dockerd reads registry-mirrors at start and on reload: run `systemctl reload docker` (or send dockerd SIGHUP) to apply it.',
      ...(o.undo ? [] : ["dockerd mirrors only docker.io images through registry-mirrors, and sends the node no registry name: the node's --default-registry must be docker.io (its default), with a docker.io seed (--upstream docker.io)."]),
    ],
  };
}

async function containerdPlan(o: Options): Promise<Plan> {
  const changes: FileChange[] = [];
  for (const registry of o.registries) {
    const path = join(o.paths.hostsDir, registry, 'hosts.toml');
    const before = await readIfExists(path);
    const after = o.undo ? (before === undefined ? undefined : edit(path, () => unconfigureHostsToml(before))) : edit(path, () => configureHostsToml(before, registry, o.node));
    changes.push({ path, before, after, pruneDir: true, allOurs: true });
  }
  const notes = o.undo ? [] : [await configPathNote(o.paths.containerdConfig, o.paths.hostsDir), `containerd sends the registry's name (?ns=): the node needs a seed for each of ${o.registries.join(', ')} (--upstream).`];
  return { changes, notes };
}

/** Whether containerd's CRI plugin will read the hosts dir: config.toml is read, never rewritten. */
async function configPathNote(configToml: string, hostsDir: string): Promise<string> {
  const text = await readIfExists(configToml);
  const how = `set it under [plugins."io.containerd.grpc.v1.cri".registry] as config_path = ${JSON.stringify(hostsDir)} and restart containerd`;
  const ctr = `ctr pulls read it with --hosts-dir ${hostsDir}`;
  if (text === undefined) return `no ${configToml}: containerd's CRI plugin (kubelet's pulls) does not read ${hostsDir} unless config_path names it: ${how}; ${ctr}.`;
  let configured: string | undefined;
  try {
    configured = criConfigPath(text);
  } catch (err) {
    return `cannot read ${configToml} (${(err as Error).message}): check that its CRI registry config_path is ${hostsDir}; ${ctr}.`;
  }
  if (configured === undefined) return `${configToml} sets no config_path for the CRI registry: containerd's CRI plugin (kubelet's pulls) will not read ${hostsDir}; ${how}. ${ctr}.`;
  if (!configured.split(':').includes(hostsDir)) return `${configToml} sets the CRI registry config_path to ${configured}, not ${hostsDir}: the CRI plugin reads hosts.toml files there; ${ctr}.`;
  return `containerd reads ${hostsDir} on every pull (config_path is set in ${configToml}): nothing to restart.`;
}

async function podmanPlan(o: Options): Promise<Plan> {
  const path = o.paths.registriesConf;
  const before = await readIfExists(path);
  const plan = { registries: o.registries, node: o.node };
  const after = o.undo ? (before === undefined ? undefined : edit(path, () => unconfigurePodman(before))) : edit(path, () => configurePodman(before, plan));
  return {
    // An undo that leaves nothing: configure had made the file, so it goes.
    changes: [{ path, before, after: o.undo && after === '' && before !== '' ? undefined : after, allOurs: true }],
    notes: [
      'podman, skopeo and buildah read registries.conf on every run (CRI-O: restart it).',
      ...(o.undo ? [] : [`podman sends the node no registry name: the node's --default-registry must be ${o.registries[0]}.`]),
    ],
  };
}

const PLANS: Record<Runtime, (o: Options) => Promise<Plan>> = { docker: dockerPlan, containerd: containerdPlan, podman: podmanPlan };

function describe(a: Applied): string {
  const saved = a.backup ? ` (backup: ${a.backup})` : '';
  if (a.action === 'unchanged') return `unchanged ${a.path}: nothing to do`;
  return `${a.action} ${a.path}${saved}`;
}

export const configure: Command = {
  summary: "point a container runtime at the local node as its mirror",
  help: () => `Usage: layerd configure docker|containerd|podman [--node URL] [--registry NAME]... [--dry-run] [--undo] [file options]

Writes the host's mirror configuration so that the runtime pulls through the local layerd node:
  docker      adds the node to "registry-mirrors" in daemon.json (docker mirrors docker.io only)
  containerd  writes <hosts dir>/<registry>/hosts.toml for each registry, the node as the first host
  podman      adds a [[registry.mirror]] for the registry to registries.conf (also skopeo, buildah, CRI-O)
Other settings, and comments where the format has them, are kept. The lines it adds to a TOML file are
marked, so --undo removes exactly them (and a file it wrote whole); from daemon.json --undo removes the
node's URL. A second run changes nothing. Every file it changes is first copied to
FILE.layerd-backup-<time>. A file it cannot read is left alone (exit 2). It never contacts the node.

Options:
  --node URL               the node's HTTP endpoint (default ${DEFAULT_NODE}, the default --listen; env LAYERD_NODE)
  --registry NAME          a registry to mirror (repeatable; default docker.io). docker: docker.io only;
                           podman: one, the node's --default-registry (podman names no registry to a mirror)
  --dry-run                print the changes as a unified diff; change nothing
  --undo                   remove what configure added
  --daemon-json FILE       docker's config (default ${DEFAULT_PATHS.daemonJson})
  --hosts-dir DIR          containerd's hosts dir, its CRI config_path (default ${DEFAULT_PATHS.hostsDir})
  --containerd-config FILE containerd's config, read to check config_path (default ${DEFAULT_PATHS.containerdConfig})
  --registries-conf FILE   podman's registries.conf (default ${DEFAULT_PATHS.registriesConf})`,
  async run(args) {
    const { options, dryRun } = parseOptions(args);
    const plan = await PLANS[options.runtime](options);
    if (dryRun) {
      const diff = plan.changes.map((c) => unifiedDiff(c.before ?? '', c.after ?? '', c.before === undefined ? '/dev/null' : c.path, c.after === undefined ? '/dev/null' : c.path)).join('');
      process.stdout.write(diff);
      if (diff === '') process.stderr.write('layerd: configure: nothing to change\n');
      return;
    }
    const applied = await applyChanges(plan.changes);
    const changed = applied.some((a) => a.action !== 'unchanged');
    process.stdout.write([...applied.map(describe), ...(changed || !options.undo ? plan.notes : [])].join('\n') + '\n');
  },
};

function parseOptions(args: string[]): { options: Options; dryRun: boolean } {
  const { values, positionals } = parseFlags(
    args,
    {
      node: { type: 'string' },
      registry: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      undo: { type: 'boolean' },
      'daemon-json': { type: 'string' },
      'hosts-dir': { type: 'string' },
      'containerd-config': { type: 'string' },
      'registries-conf': { type: 'string' },
    },
    true,
  );
  const runtime = positionals[0];
  if (runtime === undefined) throw new UsageError('configure: missing the runtime: docker, containerd or podman (try: layerd configure --help)');
  if (!(RUNTIMES as readonly string[]).includes(runtime)) throw new UsageError(`configure: unknown runtime ${JSON.stringify(runtime)}: want docker, containerd or podman`);
  if (positionals.length > 1) throw new UsageError(`configure: unexpected argument ${JSON.stringify(positionals[1])}`);
  const node = parseNodeUrl((values.node as string | undefined) ?? process.env.LAYERD_NODE ?? DEFAULT_NODE);
  if (new URL(node).pathname !== '/') throw new UsageError(`--node: ${JSON.stringify(node)} must not have a path: a mirror serves /v2 at its root`);
  const registries = [...new Set((values.registry as string[] | undefined) ?? ['docker.io'])];
  for (const r of registries) if (!REGISTRY.test(r)) throw new UsageError(`--registry: ${JSON.stringify(r)} is not a registry host name, e.g. docker.io or registry.example.com:5000`);
  if (runtime === 'docker' && registries.some((r) => r !== 'docker.io')) throw new UsageError('--registry: docker mirrors docker.io only (registry-mirrors); use containerd or podman for other registries');
  if (runtime === 'podman' && registries.length > 1) throw new UsageError("--registry: podman names no registry to its mirror, so one node mirrors one registry for it (the node's --default-registry); run a node per registry");
  const paths = {
    daemonJson: nonEmpty(values['daemon-json'], '--daemon-json') ?? DEFAULT_PATHS.daemonJson,
    hostsDir: nonEmpty(values['hosts-dir'], '--hosts-dir') ?? DEFAULT_PATHS.hostsDir,
    containerdConfig: nonEmpty(values['containerd-config'], '--containerd-config') ?? DEFAULT_PATHS.containerdConfig,
    registriesConf: nonEmpty(values['registries-conf'], '--registries-conf') ?? DEFAULT_PATHS.registriesConf,
  };
  return { options: { runtime: runtime as Runtime, node, registries, undo: values.undo === true, paths }, dryRun: values['dry-run'] === true };
}

function nonEmpty(v: unknown, flag: string): string | undefined {
  if (v === '') throw new UsageError(`${flag} needs a path`);
  return v as string | undefined;
}
