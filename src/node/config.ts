// layerd's configuration: every option is declared once below, and from that one line comes its
// command-line flag (--data-dir), its environment variable (LAYERD_DATA_DIR), its key in the YAML
// config file (data-dir:) and its line in --help. Flags win over the environment, the environment over
// the file, the file over the defaults. Any bad value is a ConfigError naming the key.
import { readFileSync } from 'node:fs';
import { multiaddr } from '@multiformats/multiaddr';
import { parse as parseYaml } from 'yaml';
import { DOCKER_HUB, DOCKER_HUB_URL, parseRegistryName } from '../oci/index.js';
import { canonicalPeerId, readSwarmKeyFile, type SwarmKeyFile } from '../p2p/index.js';
import { parseRepositoryPrefix } from '../distribution/index.js';

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface HostPort {
  host: string;
  port: number;
}

interface OptionDef<T> {
  /** Flag name and YAML key, kebab-case. */
  name: string;
  value: string;
  description: string;
  default: T;
  parse(raw: unknown): T;
  /** Repeatable on the command line (--upstream a=.. --upstream b=..); comma-separated in the environment. */
  multiple?: boolean;
  /** How --help shows the default, when String() would not do. */
  show?: (value: T) => string;
}

function option<T>(def: OptionDef<T>): OptionDef<T> {
  return def;
}

// ---- value parsers: each throws a plain Error whose message explains what is wanted ----

export function parseHostPort(raw: unknown): HostPort {
  const text = String(raw).trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`invalid address ${JSON.stringify(text)}: want HOST:PORT, e.g. 127.0.0.1:5000`);
  return { host: m[1] ?? m[2]!, port };
}

function nonEmptyString(raw: unknown): string {
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new Error('must be a string');
  const text = String(raw).trim();
  if (text === '') throw new Error('must not be empty');
  return text;
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: unknown): T => {
    const text = String(raw).trim();
    if (!(choices as readonly string[]).includes(text)) throw new Error(`must be one of ${choices.join(', ')}, not ${JSON.stringify(text)}`);
    return text as T;
  };
}

function durationMs(raw: unknown): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(raw));
  if (!m) throw new Error(`invalid duration ${JSON.stringify(String(raw))}: want e.g. 500ms, 30s, 5m, 1h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function showMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function bool(raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const text = String(raw).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  throw new Error(`must be true or false, not ${JSON.stringify(String(raw))}`);
}

function count(raw: unknown): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`must be a whole number >= 0, not ${JSON.stringify(String(raw))}`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** A byte count: 1073741824, 500MB, 10GiB, 1.5TB. */
export function parseBytes(raw: unknown): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(raw));
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`invalid size ${JSON.stringify(String(raw))}: want bytes or e.g. 500MB, 10GiB`);
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`size must be above 0, not ${JSON.stringify(String(raw))}`);
  return n;
}

/** A rate in bytes per second: 100MB/s, 50Mbit/s, 1GiB/s, 2500000 (bytes/s); bits are divided by 8. */
export function parseRate(raw: unknown): number {
  const text = String(raw).trim();
  const m = /^(\d+(?:\.\d+)?\s*[a-zA-Z]*?)(bit|bps)?(?:\/s|ps)?$/i.exec(text);
  if (!m) throw new Error(`invalid rate ${JSON.stringify(text)}: want e.g. 100MB/s, 50Mbit/s`);
  const isBits = m[2] !== undefined;
  let n: number;
  try {
    n = parseBytes(m[1]);
  } catch {
    throw new Error(`invalid rate ${JSON.stringify(text)}: want e.g. 100MB/s, 50Mbit/s`);
  }
  return isBits ? Math.max(1, Math.floor(n / 8)) : n;
}

function stripeCount(raw: unknown): number {
  const n = count(raw);
  if (n < 2 || n > 16) throw new Error('want 2 to 16');
  return n;
}

function positiveCount(raw: unknown): number {
  const n = count(raw);
  if (n === 0) throw new Error('must be at least 1');
  return n;
}

function fraction(raw: unknown): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new Error(`must be a fraction in (0, 1], e.g. 0.9, not ${JSON.stringify(String(raw))}`);
  return n;
}

export interface UpstreamConfig {
  /** The registry host name clients mean (docker.io, ghcr.io, seed:5000). */
  name: string;
  url: string;
  username?: string;
  password?: string;
}

function upstreamUrl(name: string, raw: unknown): string {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    throw new Error(`${name}: invalid URL ${JSON.stringify(String(raw))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${name}: URL must be http or https`);
  if (url.username || url.password) throw new Error(`${name}: put credentials in the config file's username/password, not in the URL`);
  return url.toString().replace(/\/+$/, '');
}

function registryName(raw: string): string {
  try {
    return parseRegistryName(raw);
  } catch (err) {
    throw new Error((err as Error).message);
  }
}

/**
 * Upstreams come as NAME=URL strings (flags, environment, a YAML list) or, in the file, as a mapping of
 * name to URL or to {url, username, password}; only the file can carry credentials.
 */
export function parseUpstreams(raw: unknown): UpstreamConfig[] {
  const out: UpstreamConfig[] = [];
  const add = (u: UpstreamConfig) => {
    if (out.some((o) => o.name === u.name)) throw new Error(`${u.name} is given twice`);
    out.push(u);
  };
  const fromString = (text: string) => {
    const eq = text.indexOf('=');
    if (eq < 0) {
      // A bare name means the registry at its own well-known address.
      const name = registryName(text);
      add({ name, url: name === DOCKER_HUB ? DOCKER_HUB_URL : `https://${name}` });
      return;
    }
    if (eq === 0) throw new Error(`invalid upstream ${JSON.stringify(text)}: want NAME=URL, e.g. docker.io=https://registry-1.docker.io`);
    const name = registryName(text.slice(0, eq));
    add({ name, url: upstreamUrl(name, text.slice(eq + 1).trim()) });
  };
  if (typeof raw === 'string') {
    for (const part of raw.split(',')) if (part.trim() !== '') fromString(part.trim());
  } else if (Array.isArray(raw)) {
    for (const item of raw) {
      if (typeof item !== 'string') throw new Error('list entries must be NAME=URL strings');
      fromString(item);
    }
  } else if (typeof raw === 'object' && raw !== null) {
    for (const [key, value] of Object.entries(raw)) {
      const name = registryName(key);
      if (typeof value === 'string') {
        add({ name, url: upstreamUrl(name, value) });
        continue;
      }
      if (typeof value !== 'object' || value === null) throw new Error(`${name}: want a URL or {url, username, password}`);
      const v = value as Record<string, unknown>;
      for (const k of Object.keys(v)) if (!['url', 'username', 'password'].includes(k)) throw new Error(`${name}: unknown field ${k}`);
      const u: UpstreamConfig = { name, url: upstreamUrl(name, v.url) };
      if (v.username !== undefined || v.password !== undefined) {
        if (typeof v.username !== 'string' || typeof v.password !== 'string') throw new Error(`${name}: username and password must both be strings`);
        u.username = v.username;
        u.password = v.password;
      }
      add(u);
    }
  } else {
    throw new Error('want NAME=URL');
  }
  return out;
}

/** A list of multiaddrs (repeated flags, comma-separated env, YAML list); `needPeerId` for bootstrap peers. */
function multiaddrs(needPeerId: boolean) {
  return (raw: unknown): string[] => {
    const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [raw];
    return items
      .map((item) => String(item).trim())
      .filter((item) => item !== '')
      .map((item) => {
        try {
          multiaddr(item);
        } catch {
          throw new Error(`invalid multiaddr ${JSON.stringify(item)}: want e.g. /ip4/10.0.0.1/tcp/5001`);
        }
        if (needPeerId && !/\/p2p\/[1-9A-HJ-NP-Za-km-z]{20,}$/.test(item)) throw new Error(`${item}: a bootstrap address must end with /p2p/<peer id>`);
        return item;
      });
  };
}

/** Peer ids (repeated flags, comma-separated env, YAML list), each checked and put in libp2p's printed form. */
function peerIds(raw: unknown): string[] {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [raw];
  const ids = items.map((item) => String(item).trim()).filter((item) => item !== '');
  return [
    ...new Set(
      ids.map((id) => {
        const canonical = canonicalPeerId(id);
        if (canonical === undefined) throw new Error(`invalid peer id ${JSON.stringify(id.slice(0, 100))}: want e.g. 12D3KooW... (layerd status shows a node's)`);
        return canonical;
      }),
    ),
  ];
}

/** Host names (repeated flags, comma-separated env, YAML list), lower case, without a port. */
function hostNames(raw: unknown): string[] {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [raw];
  return items
    .map((item) => String(item).trim().toLowerCase())
    .filter((item) => item !== '')
    .map((name) => {
      if (!/^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/.test(name) || name.length > 253) {
        throw new Error(`invalid host name ${JSON.stringify(name.slice(0, 100))}: want a DNS name without a port, e.g. registry.local`);
      }
      return name.replace(/\.$/, '');
    });
}

/** Repository prefixes (repeated flags, comma-separated env, YAML list). */
function repositoryPrefixes(raw: unknown): string[] {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [raw];
  return items.map((item) => String(item).trim()).filter((item) => item !== '').map(parseRepositoryPrefix);
}

// ---- the options: add one line here for each new option ----

export const OPTIONS = {
  listen: option({ name: 'listen', value: 'HOST:PORT', description: 'address of the /v2 HTTP endpoint', default: { host: '127.0.0.1', port: 5000 }, parse: parseHostPort }),
  dataDir: option({ name: 'data-dir', value: 'DIR', description: 'where blobs, manifests and state are kept', default: './data', parse: nonEmptyString }),
  logLevel: option({
    name: 'log-level',
    value: 'LEVEL',
    description: 'log verbosity: fatal, error, warn, info, debug, trace or silent',
    default: 'info' as const,
    parse: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  }),
  upstream: option({ name: 'upstream', value: 'NAME=URL', description: 'a seed registry: host name clients use = base URL (repeatable)', default: [] as UpstreamConfig[], parse: parseUpstreams, multiple: true }),
  defaultRegistry: option({ name: 'default-registry', value: 'NAME', description: 'the registry a request means when it names none (no ?ns=)', default: 'docker.io', parse: (raw) => registryName(String(raw)) }),
  tagTtl: option({ name: 'tag-ttl', value: 'DURATION', description: 'how long a tag resolved at the seed is trusted before asking again', default: 30_000, parse: durationMs, show: showMs }),
  serveStale: option({ name: 'serve-stale', value: 'BOOL', description: 'serve a cached tag, marked stale, when its seed cannot be reached', default: true, parse: bool }),
  upstreamTimeout: option({ name: 'upstream-timeout', value: 'DURATION', description: 'how long a seed may stay silent (connect, headers, or between bytes)', default: 30_000, parse: durationMs, show: showMs }),
  p2pListen: option({ name: 'p2p-listen', value: 'MULTIADDR', description: 'libp2p listen address; peer-to-peer is on when one is given (repeatable)', default: [] as string[], parse: multiaddrs(false), multiple: true }),
  announce: option({ name: 'announce', value: 'MULTIADDR', description: 'address peers should dial instead of the listen addresses (repeatable)', default: [] as string[], parse: multiaddrs(false), multiple: true }),
  bootstrap: option({ name: 'bootstrap', value: 'MULTIADDR', description: 'a peer to join the cluster through, ending in /p2p/<id> (repeatable)', default: [] as string[], parse: multiaddrs(true), multiple: true }),
  libp2pMetrics: option({ name: 'libp2p-metrics', value: 'BOOL', description: "add libp2p's own metrics (libp2p_*: connections, streams, DHT) to /metrics; they cost CPU on every connection and stream", default: false, parse: bool }),
  reprovideInterval: option({ name: 'reprovide-interval', value: 'DURATION', description: 'how often held blobs are announced again (records live twice as long)', default: 16 * 3_600_000, parse: durationMs, show: showMs }),
  peerLookupTimeout: option({ name: 'peer-lookup-timeout', value: 'DURATION', description: 'how long to look for peers holding a blob before asking the seed', default: 2_000, parse: durationMs, show: showMs }),
  maxUploadsPerPeer: option({ name: 'max-uploads-per-peer', value: 'N', description: 'blob transfers one peer may draw from this node at once', default: 8, parse: count }),
  maxDiskBytes: option({ name: 'max-disk-bytes', value: 'SIZE', description: 'quota for blobs on disk (e.g. 50GiB); least recently used cached blobs are evicted above it', default: undefined as number | undefined, parse: parseBytes, show: () => 'none' }),
  diskHighWatermark: option({ name: 'disk-high-watermark', value: 'FRACTION', description: 'eviction starts when blobs pass this fraction of --max-disk-bytes', default: 0.9, parse: fraction }),
  diskLowWatermark: option({ name: 'disk-low-watermark', value: 'FRACTION', description: 'eviction stops at this fraction of --max-disk-bytes', default: 0.8, parse: fraction }),
  evictPushed: option({ name: 'evict-pushed', value: 'BOOL', description: 'let eviction remove content pushed to this node too (it may be its only copy)', default: false, parse: bool }),
  gcInterval: option({ name: 'gc-interval', value: 'DURATION', description: 'how often stale uploads and unlinked blobs are collected (0: only at start and on request)', default: 3_600_000, parse: durationMs, show: showMs }),
  uploadTtl: option({ name: 'upload-ttl', value: 'DURATION', description: 'how long an unfinished push may stay idle before its bytes are collected', default: 24 * 3_600_000, parse: durationMs, show: showMs }),
  upstreamRetries: option({ name: 'upstream-retries', value: 'N', description: 'retries of a seed request after a connection error or 5xx', default: 2, parse: count }),
  pskFile: option({ name: 'psk-file', value: 'FILE', description: 'swarm key of a private peer network (make one: layerd keygen); only nodes with the same key connect', default: undefined as SwarmKeyFile | undefined, parse: (raw) => readSwarmKeyFile(nonEmptyString(raw)), show: () => 'none' }),
  allowPeer: option({ name: 'allow-peer', value: 'PEERID', description: 'connect only to these peers, both ways (repeatable; default: any peer)', default: [] as string[], parse: peerIds, multiple: true }),
  maxUploadBytes: option({ name: 'max-upload-bytes', value: 'SIZE', description: 'largest blob a push may create (e.g. 10GiB); a larger one is refused with 413 and its bytes dropped', default: undefined as number | undefined, parse: parseBytes, show: () => 'none' }),
  maxUploadSessions: option({ name: 'max-upload-sessions', value: 'N', description: 'push sessions open at once (idle ones count until --upload-ttl); past it 429 (0: no limit)', default: 100, parse: count }),
  httpIdleTimeout: option({ name: 'http-idle-timeout', value: 'DURATION', description: 'cut an HTTP client that sends no byte of its request, or reads none of the answer, for this long; also the time allowed for its headers (0: off)', default: 60_000, parse: durationMs, show: showMs }),
  rolloutStripesFrom: option({ name: 'rollout-stripes-from', value: 'N', description: 'a rollout this node starts over at least N nodes goes down stripe trees instead of a line (0: never; off until a 32-host bench beats the line)', default: 0, parse: count }),
  rolloutStripes: option({ name: 'rollout-stripes', value: 'K', description: 'stripes of a striped rollout this node starts (2 to 16)', default: 4, parse: stripeCount }),
  peerIdleTimeout: option({ name: 'peer-idle-timeout', value: 'DURATION', description: 'reset a peer stream that sends no request, or reads none of a blob, or (when fetching) sends none of its answer, for this long (0: off)', default: 45_000, parse: durationMs, show: showMs }),
  maxStreamsPerPeer: option({ name: 'max-streams-per-peer', value: 'N', description: 'streams one peer connection may have open at once on each layerd protocol; more are refused', default: 64, parse: positiveCount }),
  maxUploadRate: option({ name: 'max-upload-rate', value: 'RATE', description: 'bytes per second this node sends to all peers together (e.g. 100MB/s, 800Mbit/s)', default: undefined as number | undefined, parse: parseRate, show: () => 'none' }),
  maxUploadRatePerPeer: option({ name: 'max-upload-rate-per-peer', value: 'RATE', description: 'bytes per second this node sends to any one peer', default: undefined as number | undefined, parse: parseRate, show: () => 'none' }),
  htpasswd: option({ name: 'htpasswd', value: 'FILE', description: 'users who may push and read private repositories: user:bcrypt-hash lines, as htpasswd -B writes', default: undefined as string | undefined, parse: nonEmptyString, show: () => 'none' }),
  tokenFile: option({ name: 'token-file', value: 'FILE', description: 'bearer tokens that may push and read private repositories: one per line, or name:token', default: undefined as string | undefined, parse: nonEmptyString, show: () => 'none' }),
  maxAuthFailures: option({ name: 'max-auth-failures', value: 'N', description: 'failed authentications one client address may make per minute; past them it gets 429 and no password is checked (0: no limit)', default: 10, parse: count }),
  allowHost: option({ name: 'allow-host', value: 'NAME', description: 'a Host name a loopback listener answers to besides localhost, 127.x and [::1] (repeatable; others get 403, against DNS rebinding)', default: [] as string[], parse: hostNames, multiple: true }),
  privateRepos: option({ name: 'private-repos', value: 'PREFIX', description: 'repositories whose reads need credentials and whose blobs peers do not get, e.g. team/secret, or * (repeatable)', default: [] as string[], parse: repositoryPrefixes, multiple: true }),
  sharePrivateBlobs: option({ name: 'share-private-blobs', value: 'BOOL', description: 'offer peers blobs held only for private repositories too', default: false, parse: bool }),
};

type Options = typeof OPTIONS;
export type Config = { [K in keyof Options]: ReturnType<Options[K]['parse']> };
type OptionKey = keyof Options;

export function envName(name: string): string {
  return `LAYERD_${name.toUpperCase().replace(/-/g, '_')}`;
}

const BY_NAME = new Map<string, OptionKey>(Object.entries(OPTIONS).map(([key, def]) => [def.name, key as OptionKey]));

export interface ConfigSources {
  /** Flag values by option name (kebab-case), as given on the command line. */
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Path of the YAML config file (from --config or LAYERD_CONFIG). */
  file?: string;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const raw = new Map<OptionKey, unknown>();
  if (sources.file) for (const [k, v] of Object.entries(readConfigFile(sources.file))) raw.set(k as OptionKey, v);
  const env = sources.env ?? {};
  for (const [key, def] of Object.entries(OPTIONS) as [OptionKey, OptionDef<unknown>][]) {
    const value = env[envName(def.name)];
    if (value !== undefined && value !== '') raw.set(key, value);
  }
  for (const [name, value] of Object.entries(sources.flags ?? {})) {
    const key = BY_NAME.get(name);
    if (key && value !== undefined) raw.set(key, value);
  }
  const config = {} as Record<OptionKey, unknown>;
  for (const [key, def] of Object.entries(OPTIONS) as [OptionKey, OptionDef<unknown>][]) {
    if (!raw.has(key)) {
      config[key] = def.default;
      continue;
    }
    try {
      config[key] = def.parse(raw.get(key));
    } catch (err) {
      throw new ConfigError(def.name, (err as Error).message);
    }
  }
  if ((config.diskLowWatermark as number) > (config.diskHighWatermark as number)) {
    throw new ConfigError('disk-low-watermark', `must not exceed disk-high-watermark (${config.diskHighWatermark})`);
  }
  return config as Config;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError('config', `${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('config', `${path} must be a YAML mapping of option: value`);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(doc)) {
    const key = BY_NAME.get(name);
    if (!key) throw new ConfigError(name, `unknown key in ${path} (known: ${[...BY_NAME.keys()].join(', ')})`);
    out[key] = value;
  }
  return out;
}

/** The options as node:util parseArgs wants them, plus --config. */
export function flagSpecs(): Record<string, { type: 'string'; multiple?: boolean }> {
  const specs: Record<string, { type: 'string'; multiple?: boolean }> = { config: { type: 'string' } };
  for (const def of Object.values(OPTIONS) as OptionDef<unknown>[]) specs[def.name] = def.multiple ? { type: 'string', multiple: true } : { type: 'string' };
  return specs;
}

export function optionsHelp(): string {
  const rows: [string, string][] = [['--config FILE', `YAML file of option: value (env ${envName('config')})`]];
  for (const def of Object.values(OPTIONS) as OptionDef<unknown>[]) {
    const shown = def.show ? def.show(def.default) : formatDefault(def.default);
    rows.push([`--${def.name} ${def.value}`, `${def.description} (default ${shown}; env ${envName(def.name)})`]);
  }
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n');
}

function formatDefault(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'host' in value) return `${(value as HostPort).host}:${(value as HostPort).port}`;
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(',');
  return String(value);
}
