import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig, optionsHelp, parseHostPort } from '../../../src/node/config.js';

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'layerd-config-'));
  const path = join(dir, 'layerd.yml');
  await writeFile(path, text);
  return path;
}

function keyOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ConfigError ? err.key : 'NOT_CONFIG_ERROR';
  }
  return undefined;
}

describe('config', () => {
  it('has usable defaults', () => {
    const config = loadConfig();
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(config.dataDir).toBe('./data');
    expect(config.logLevel).toBe('info');
  });

  it('layers flags over environment over file over defaults', async () => {
    const file = await configFile('listen: 127.0.0.1:6000\ndata-dir: /from/file\nlog-level: warn\n');
    expect(loadConfig({ file })).toMatchObject({ listen: { port: 6000 }, dataDir: '/from/file', logLevel: 'warn' });
    const env = { LAYERD_DATA_DIR: '/from/env', LAYERD_LISTEN: '127.0.0.1:7000' };
    expect(loadConfig({ file, env })).toMatchObject({ listen: { port: 7000 }, dataDir: '/from/env', logLevel: 'warn' });
    const flags = { listen: '0.0.0.0:8000' };
    expect(loadConfig({ file, env, flags })).toMatchObject({ listen: { host: '0.0.0.0', port: 8000 }, dataDir: '/from/env' });
  });

  it('derives environment names from option names', () => {
    expect(envName('data-dir')).toBe('LAYERD_DATA_DIR');
    expect(optionsHelp()).toContain('--data-dir DIR');
    expect(optionsHelp()).toContain('LAYERD_DATA_DIR');
  });

  it('parses host:port including IPv6', () => {
    expect(parseHostPort('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(parseHostPort('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(() => parseHostPort('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseHostPort('a:70000')).toThrow(/HOST:PORT/);
  });

  it('names the bad key in every error', async () => {
    expect(keyOf(() => loadConfig({ flags: { listen: 'nope' } }))).toBe('listen');
    expect(keyOf(() => loadConfig({ env: { LAYERD_LOG_LEVEL: 'loud' } }))).toBe('log-level');
    expect(keyOf(() => loadConfig({ file: '/nonexistent/layerd.yml' }))).toBe('config');
    expect(keyOf(() => loadConfig({ file: 'x' }))).toBe('config');
  });

  it('rejects unknown keys, non-mappings and broken YAML in the file', async () => {
    expect(keyOf(() => loadConfig({ file: 'x' }))).toBe('config');
    const unknown = await configFile('listen: 127.0.0.1:1\nlisten-addr: x\n');
    expect(keyOf(() => loadConfig({ file: unknown }))).toBe('listen-addr');
    const list = await configFile('- a\n- b\n');
    expect(keyOf(() => loadConfig({ file: list }))).toBe('config');
    const broken = await configFile('listen: [unclosed\n');
    expect(keyOf(() => loadConfig({ file: broken }))).toBe('config');
    const emptyDir = await configFile('data-dir: ""\n');
    expect(keyOf(() => loadConfig({ file: emptyDir }))).toBe('data-dir');
  });

  it('treats an empty file as no settings', async () => {
    expect(loadConfig({ file: await configFile('') }).dataDir).toBe('./data');
  });
});

describe('upstream options', () => {
  it('parses NAME=URL from flags (repeated), the environment (comma-separated) and file lists', () => {
    expect(loadConfig({ flags: { upstream: ['seed:5000=http://127.0.0.1:5000/', 'ghcr.io=https://ghcr.io'] } }).upstream).toEqual([
      { name: 'seed:5000', url: 'http://127.0.0.1:5000' },
      { name: 'ghcr.io', url: 'https://ghcr.io' },
    ]);
    expect(loadConfig({ env: { LAYERD_UPSTREAM: 'a.io=http://a,b.io=http://b' } }).upstream.map((u) => u.name)).toEqual(['a.io', 'b.io']);
  });

  it('maps docker.io and its aliases to Docker Hub', () => {
    expect(loadConfig({ flags: { upstream: ['docker.io'] } }).upstream).toEqual([{ name: 'docker.io', url: 'https://registry-1.docker.io' }]);
    expect(loadConfig({ flags: { upstream: ['index.docker.io=http://127.0.0.1:1'] } }).upstream[0]?.name).toBe('docker.io');
    expect(loadConfig({ flags: { 'default-registry': 'registry-1.docker.io' } }).defaultRegistry).toBe('docker.io');
  });

  it('takes credentials from the file mapping only', async () => {
    const file = await configFile('upstream:\n  "seed:5000": { url: "http://127.0.0.1:5000", username: u, password: p }\n  docker.io: https://registry-1.docker.io\n');
    expect(loadConfig({ file }).upstream).toEqual([
      { name: 'seed:5000', url: 'http://127.0.0.1:5000', username: 'u', password: 'p' },
      { name: 'docker.io', url: 'https://registry-1.docker.io' },
    ]);
    expect(keyOf(() => loadConfig({ flags: { upstream: ['a.io=http://u:p@a.io'] } }))).toBe('upstream');
  });

  it.each([['not a host'], ['=http://x'], ['a.io=ftp://x'], ['a.io=http://x,a.io=http://y'], ['UPPER_case!=http://x']])('rejects %j naming the key', (value) => {
    expect(keyOf(() => loadConfig({ env: { LAYERD_UPSTREAM: value } }))).toBe('upstream');
  });

  it('parses durations, booleans and counts', () => {
    const c = loadConfig({ flags: { 'tag-ttl': '1.5s', 'serve-stale': 'false', 'upstream-timeout': '250ms', 'upstream-retries': '0' } });
    expect(c).toMatchObject({ tagTtl: 1500, serveStale: false, upstreamTimeout: 250, upstreamRetries: 0 });
    expect(loadConfig().tagTtl).toBe(30_000);
    expect(keyOf(() => loadConfig({ flags: { 'tag-ttl': 'soon' } }))).toBe('tag-ttl');
    expect(keyOf(() => loadConfig({ flags: { 'serve-stale': 'maybe' } }))).toBe('serve-stale');
    expect(keyOf(() => loadConfig({ flags: { 'upstream-retries': '-1' } }))).toBe('upstream-retries');
  });
});

describe('disk options', () => {
  it('parses sizes in bytes, SI and binary units', () => {
    expect(loadConfig({ flags: { 'max-disk-bytes': '1048576' } }).maxDiskBytes).toBe(1_048_576);
    expect(loadConfig({ flags: { 'max-disk-bytes': '500MB' } }).maxDiskBytes).toBe(500_000_000);
    expect(loadConfig({ env: { LAYERD_MAX_DISK_BYTES: '10GiB' } }).maxDiskBytes).toBe(10 * 2 ** 30);
    expect(loadConfig({ flags: { 'max-disk-bytes': '1.5 gb' } }).maxDiskBytes).toBe(1_500_000_000);
    expect(loadConfig().maxDiskBytes).toBeUndefined();
  });

  it.each([['0'], ['-5GB'], ['ten gigs'], ['5XB']])('rejects the size %j naming the key', (value) => {
    expect(keyOf(() => loadConfig({ flags: { 'max-disk-bytes': value } }))).toBe('max-disk-bytes');
  });

  it('takes watermarks as fractions, and refuses a low one above the high one', () => {
    expect(loadConfig()).toMatchObject({ diskHighWatermark: 0.9, diskLowWatermark: 0.8, evictPushed: false });
    expect(loadConfig({ flags: { 'disk-high-watermark': '0.95', 'disk-low-watermark': '0.5' } })).toMatchObject({ diskHighWatermark: 0.95, diskLowWatermark: 0.5 });
    expect(keyOf(() => loadConfig({ flags: { 'disk-high-watermark': '1.5' } }))).toBe('disk-high-watermark');
    expect(keyOf(() => loadConfig({ flags: { 'disk-low-watermark': '0' } }))).toBe('disk-low-watermark');
    expect(keyOf(() => loadConfig({ flags: { 'disk-high-watermark': '0.5', 'disk-low-watermark': '0.6' } }))).toBe('disk-low-watermark');
  });
});
