// podman, skopeo, buildah and CRI-O: a [[registry.mirror]] naming the node, in registries.conf (v2 format).
// A registry the file already has a [[registry]] for gets the mirror inside that table, first among its
// mirrors (mirrors are tried in order, then the registry itself), so its other settings stay in force;
// one it lacks gets a new [[registry]] table at the end. Either way the added lines are marked.
import { ConfigFileError } from './errors.js';
import { insertLines, markedBlock, markedRanges, removeMarked, splitLines } from './marked-block.js';
import { scanToml, stringValue, tables, type TomlTable } from './toml-lines.js';

export interface MirrorPlan {
  /** Registries to mirror, e.g. docker.io. */
  registries: string[];
  /** The node's base URL, e.g. http://127.0.0.1:5000. */
  node: string;
}

/** A registries.conf mirror location is host[:port][/path], without a scheme; plain http is `insecure`. */
function mirrorLocation(node: string): string {
  const url = new URL(node);
  return `${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

function mirrorLines(node: string): string[] {
  const insecure = new URL(node).protocol === 'http:';
  return ['[[registry.mirror]]', `location = ${JSON.stringify(mirrorLocation(node))}`, ...(insecure ? ['insecure = true'] : [])];
}

const isHeader = (t: TomlTable, path: string) => t.header?.path.join('.') === path;

/** The [[registry]] tables of a file, each with the mirror tables that follow it, by prefix. */
function registryTables(all: TomlTable[]): Map<string, { registry: TomlTable; mirrors: TomlTable[]; end: number }> {
  const out = new Map<string, { registry: TomlTable; mirrors: TomlTable[]; end: number }>();
  let current: { registry: TomlTable; mirrors: TomlTable[]; end: number } | undefined;
  for (const t of all) {
    if (!t.header) continue;
    if (isHeader(t, 'registry') && t.header.array) {
      const prefix = stringValue(t, 'prefix') ?? stringValue(t, 'location');
      if (prefix === undefined) throw new ConfigFileError(`line ${t.header.first + 1}: a [[registry]] without a prefix or location`);
      if (out.has(prefix)) throw new ConfigFileError(`line ${t.header.first + 1}: a second [[registry]] for ${prefix}`);
      current = { registry: t, mirrors: [], end: t.header.first + 1 };
      out.set(prefix, current);
    } else if (isHeader(t, 'registry.mirror') && current) current.mirrors.push(t);
    else current = undefined;
    if (current) current.end = Math.max(current.end, ...[t.header.last, ...t.pairs.map((p) => p.last)].map((l) => l + 1));
  }
  return out;
}

/** Checks the file is a v2 registries.conf we can read; returns its registry tables. */
function readRegistries(text: string): ReturnType<typeof registryTables> {
  const all = tables(scanToml(text));
  const v1 = all.find((t) => t.header && t.header.path[0] === 'registries');
  if (v1) throw new ConfigFileError(`line ${v1.header!.first + 1}: a v1 [registries.*] table: layerd configure writes the v2 [[registry]] format, which podman refuses to mix with v1; convert the file first`);
  return registryTables(all);
}

/** registries.conf with the node as the first mirror of every planned registry; marked lines only. */
export function configurePodman(text: string | undefined, plan: MirrorPlan): string {
  const original = text ?? '';
  if (markedRanges(splitLines(original).lines).broken) throw new ConfigFileError('a layerd configure marker without its pair: fix or remove the marked lines by hand');
  // Earlier runs' lines go first, so that a changed node address replaces them and a rerun is a no-op.
  let out = removeMarked(original);
  const location = mirrorLocation(plan.node);
  for (const registry of plan.registries) {
    const found = readRegistries(out).get(registry);
    // The owner's own mirror entry for the node: nothing to add.
    if (found?.mirrors.some((m) => stringValue(m, 'location') === location)) continue;
    if (found) {
      // Before its first mirror, or after its last line: inside its table either way.
      const at = found.mirrors[0]?.header?.first ?? found.end;
      out = insertLines(out, at, markedBlock(mirrorLines(plan.node)));
    } else {
      const table = ['[[registry]]', `prefix = ${JSON.stringify(registry)}`, `location = ${JSON.stringify(registry)}`, ...mirrorLines(plan.node)];
      out = insertLines(out, splitLines(out).lines.length, markedBlock(table));
    }
  }
  readRegistries(out);
  return out;
}

/** registries.conf without what configure added. */
export function unconfigurePodman(text: string): string {
  if (markedRanges(splitLines(text).lines).broken) throw new ConfigFileError('a layerd configure marker without its pair: fix or remove the marked lines by hand');
  readRegistries(text);
  return removeMarked(text);
}
