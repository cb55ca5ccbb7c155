// containerd: `<config_path>/<registry>/hosts.toml` naming the node as a host to try before the registry
// itself. containerd sends `?ns=<registry>`, so one node can mirror every registry it has a seed for.
// A new file is written whole (and is all marked); an existing one gets the node's [host] table, marked,
// before its first table: hosts are tried in the order they appear.
import { ConfigFileError } from './errors.js';
import { insertLines, markedBlock, markedRanges, removeMarked, splitLines } from './marked-block.js';
import { scanToml, tables } from './toml-lines.js';

/** Where a registry's own endpoint is, for `server` (tried after the hosts): Docker Hub's is not docker.io. */
export function registryServer(registry: string): string {
  return registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
}

function hostLines(node: string): string[] {
  return [`[host.${JSON.stringify(node)}]`, '  capabilities = ["pull", "resolve"]'];
}

function checkMarkers(text: string): void {
  if (markedRanges(splitLines(text).lines).broken) throw new ConfigFileError('a layerd configure marker without its pair: fix or remove the marked lines by hand');
}

/** hosts.toml for `registry` with the node as its first host; `text` is the file as it is, if it exists. */
export function configureHostsToml(text: string | undefined, registry: string, node: string): string {
  if (text === undefined) return `${markedBlock([`server = ${JSON.stringify(registryServer(registry))}`, '', ...hostLines(node)]).join('\n')}\n`;
  checkMarkers(text);
  const base = removeMarked(text);
  // The whole file was ours: write it again (the node address may have changed).
  if (base.trim() === '') return configureHostsToml(undefined, registry, node);
  const scan = scanToml(base);
  const all = tables(scan);
  // The owner already lists the node: nothing to add.
  if (all.some((t) => t.header?.path.length === 2 && t.header.path[0] === 'host' && t.header.path[1]?.replace(/\/+$/, '') === node)) return base;
  const firstHeader = all.find((t) => t.header)?.header?.first ?? scan.lines.length;
  const out = insertLines(base, firstHeader, markedBlock(hostLines(node)));
  scanToml(out);
  return out;
}

/** hosts.toml without what configure added; undefined when configure wrote the whole file (remove it). */
export function unconfigureHostsToml(text: string): string | undefined {
  checkMarkers(text);
  scanToml(text);
  const base = removeMarked(text);
  return base === '' && text !== '' ? undefined : base;
}

/** The table paths where containerd's CRI plugin reads `config_path`, by config version. */
const CRI_REGISTRY_TABLES = ['plugins."io.containerd.grpc.v1.cri".registry', 'plugins."io.containerd.cri.v1.images".registry', 'plugins.cri.registry'];

/**
 * The CRI registry `config_path` that containerd's config.toml sets, if any (the CRI plugin, kubelet's
 * pulls, reads certs.d only when it is set; `ctr` takes --hosts-dir instead). Read, never rewritten.
 */
export function criConfigPath(configToml: string): string | undefined {
  const wanted = CRI_REGISTRY_TABLES.map((p) => p.replace(/"/g, ''));
  for (const t of tables(scanToml(configToml))) {
    const path = t.header?.path ?? [];
    for (const p of t.pairs) {
      // [plugins."…cri".registry] config_path = …, or a dotted key from a table above it.
      const full = [...path, ...p.key];
      if (full[full.length - 1] !== 'config_path' || p.value.kind !== 'string') continue;
      if (wanted.includes(full.slice(0, -1).join('.'))) return p.value.text;
    }
  }
  return undefined;
}
