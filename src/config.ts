// layerd's configuration: every option is declared once below, and from that one line comes its
// command-line flag (--data-dir), its environment variable (LAYERD_DATA_DIR), its key in the YAML
// config file (data-dir:) and its line in --help. Flags win over the environment, the environment over
// the file, the file over the defaults. Any bad value is a ConfigError naming the key.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

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
export function flagSpecs(): Record<string, { type: 'string' }> {
  const specs: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const def of Object.values(OPTIONS)) specs[def.name] = { type: 'string' };
  return specs;
}

export function optionsHelp(): string {
  const rows: [string, string][] = [['--config FILE', `YAML file of option: value (env ${envName('config')})`]];
  for (const def of Object.values(OPTIONS) as OptionDef<unknown>[]) {
    rows.push([`--${def.name} ${def.value}`, `${def.description} (default ${formatDefault(def.default)}; env ${envName(def.name)})`]);
  }
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n');
}

function formatDefault(value: unknown): string {
  if (typeof value === 'object' && value !== null && 'host' in value) return `${(value as HostPort).host}:${(value as HostPort).port}`;
  return String(value);
}
