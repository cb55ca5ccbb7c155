// The access options from every config source: flags, environment, YAML.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, optionsHelp } from '../../../src/node/config.js';

describe('access options', () => {
  it('default to nothing configured: no credentials, no private repositories, private blobs kept', () => {
    expect(loadConfig()).toMatchObject({ htpasswd: undefined, tokenFile: undefined, privateRepos: [], sharePrivateBlobs: false });
  });

  it('come from flags (repeatable), the environment (comma-separated) and YAML (a list)', async () => {
    const flags = { htpasswd: '/etc/layerd/htpasswd', 'token-file': '/etc/layerd/tokens', 'private-repos': ['team/secret', 'ops/*'], 'share-private-blobs': 'true' };
    expect(loadConfig({ flags })).toMatchObject({ htpasswd: '/etc/layerd/htpasswd', tokenFile: '/etc/layerd/tokens', privateRepos: ['team/secret', 'ops'], sharePrivateBlobs: true });
    expect(loadConfig({ env: { LAYERD_PRIVATE_REPOS: 'a/b, c/', LAYERD_HTPASSWD: '/h' } })).toMatchObject({ privateRepos: ['a/b', 'c'], htpasswd: '/h' });
    const dir = await mkdtemp(join(tmpdir(), 'layerd-config-auth-'));
    const file = join(dir, 'layerd.yml');
    await writeFile(file, 'htpasswd: /etc/htpasswd\ntoken-file: /etc/tokens\nprivate-repos: ["*"]\nshare-private-blobs: false\n');
    expect(loadConfig({ file })).toMatchObject({ htpasswd: '/etc/htpasswd', tokenFile: '/etc/tokens', privateRepos: ['*'], sharePrivateBlobs: false });
  });

  it('refuse a bad prefix or flag value, naming the key', () => {
    for (const [flags, key] of [
      [{ 'private-repos': ['Team/Upper'] }, 'private-repos'],
      [{ 'share-private-blobs': 'maybe' }, 'share-private-blobs'],
      [{ htpasswd: '  ' }, 'htpasswd'],
    ] as const) {
      let caught: unknown;
      try {
        loadConfig({ flags });
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(flags)).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).key).toBe(key);
    }
  });

  it('are in --help', () => {
    const help = optionsHelp();
    for (const flag of ['--htpasswd FILE', '--token-file FILE', '--private-repos PREFIX', '--share-private-blobs BOOL']) expect(help).toContain(flag);
  });
});

describe('browser and flood options', () => {
  it('default to 10 failed authentications a minute and no extra Host names', () => {
    expect(loadConfig()).toMatchObject({ maxAuthFailures: 10, allowHost: [] });
  });

  it('come from flags, the environment and YAML; Host names lower case, without a trailing dot', async () => {
    expect(loadConfig({ flags: { 'max-auth-failures': '0', 'allow-host': ['Registry.Local', 'layerd.'] } })).toMatchObject({ maxAuthFailures: 0, allowHost: ['registry.local', 'layerd'] });
    expect(loadConfig({ env: { LAYERD_ALLOW_HOST: 'a.local, b', LAYERD_MAX_AUTH_FAILURES: '30' } })).toMatchObject({ allowHost: ['a.local', 'b'], maxAuthFailures: 30 });
    const dir = await mkdtemp(join(tmpdir(), 'layerd-config-browser-'));
    const file = join(dir, 'layerd.yml');
    await writeFile(file, 'allow-host: [registry.local]\nmax-auth-failures: 5\n');
    expect(loadConfig({ file })).toMatchObject({ allowHost: ['registry.local'], maxAuthFailures: 5 });
  });

  it('refuse a Host name with a port, a scheme or a space, and a negative count', () => {
    for (const [flags, key] of [
      [{ 'allow-host': ['registry.local:5000'] }, 'allow-host'],
      [{ 'allow-host': ['http://x'] }, 'allow-host'],
      [{ 'allow-host': ['a b'] }, 'allow-host'],
      [{ 'max-auth-failures': '-1' }, 'max-auth-failures'],
    ] as const) {
      expect(() => loadConfig({ flags }), JSON.stringify(flags)).toThrow(ConfigError);
      try {
        loadConfig({ flags });
      } catch (err) {
        expect((err as ConfigError).key).toBe(key);
      }
    }
  });
});
