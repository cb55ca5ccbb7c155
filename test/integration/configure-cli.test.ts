// `layerd configure` as a user runs it, on files in a temp dir: what it writes and prints, its backups,
// --dry-run changing nothing, --undo giving the files back, and exit 2 with one line (file untouched) for
// a file it cannot read or a bad flag. The real runtimes reading its output: test/e2e/configure-clients.test.ts.
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, runCli, tempDir } from '../helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('layerd-configure-cli-');
});
afterAll(async () => {
  if (dir) await removeDir(dir);
});

/** A fresh folder of this test's own under the temp dir. */
async function sub(name: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

const backupsOf = async (folder: string, base: string) => (await readdir(folder)).filter((f) => f.startsWith(`${base}.layerd-backup-`)).sort();

function expectUsageError(res: { status: number | null; stderr: string; stdout: string }, mention: RegExp): void {
  expect(res.status).toBe(2);
  const lines = res.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^layerd: /);
  expect(lines[0]).toMatch(mention);
}

describe('layerd configure', () => {
  it('docker: dry-run shows a diff and changes nothing; configure backs up and merges; rerun is a no-op; undo restores', async () => {
    const d = await sub('docker');
    const file = join(d, 'daemon.json');
    const original = '{\n  "log-driver": "journald",\n  "storage-driver": "overlay2"\n}\n';
    await writeFile(file, original, { mode: 0o640 });
    const args = ['configure', 'docker', '--daemon-json', file, '--node', 'http://127.0.0.1:5100'];

    const dry = await runCli([...args, '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain(`--- ${file}\n+++ ${file}\n`);
    expect(dry.stdout).toContain('+  "registry-mirrors": ["http://127.0.0.1:5100"]');
    expect(await readFile(file, 'utf8')).toBe(original);
    expect(await backupsOf(d, 'daemon.json')).toEqual([]);

    const first = await runCli(args);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^changed .*daemon\.json \(backup: .*daemon\.json\.layerd-backup-\d{8}T\d{6}Z\)$/m);
    expect(first.stdout).toMatch(/reload/);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ 'log-driver': 'journald', 'storage-driver': 'overlay2', 'registry-mirrors': ['http://127.0.0.1:5100'] });
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    const [backup] = await backupsOf(d, 'daemon.json');
    expect(await readFile(join(d, backup!), 'utf8')).toBe(original);

    const configured = await readFile(file, 'utf8');
    const second = await runCli(args);
    expect(second.stdout).toMatch(/^unchanged /m);
    expect(await readFile(file, 'utf8')).toBe(configured);
    expect(await backupsOf(d, 'daemon.json')).toHaveLength(1);
    expect((await runCli([...args, '--dry-run'])).stdout).toBe('');

    expect((await runCli([...args, '--undo'])).status).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(original);
  });

  it('containerd: writes hosts.toml per registry, says config_path is missing, undo removes the files', async () => {
    const d = await sub('containerd');
    const hostsDir = join(d, 'certs.d');
    const config = join(d, 'config.toml');
    await writeFile(config, 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n');
    const args = ['configure', 'containerd', '--hosts-dir', hostsDir, '--containerd-config', config, '--registry', 'docker.io', '--registry', 'registry.example:5000'];
    const res = await runCli(args);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/sets no config_path/);
    expect(await readFile(join(hostsDir, 'docker.io', 'hosts.toml'), 'utf8')).toContain('server = "https://registry-1.docker.io"');
    expect(await readFile(join(hostsDir, 'registry.example:5000', 'hosts.toml'), 'utf8')).toContain('[host."http://127.0.0.1:5000"]');

    await writeFile(config, `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${hostsDir}"\n`);
    expect((await runCli(args)).stdout).toMatch(/nothing to restart/);

    expect((await runCli([...args, '--undo'])).status).toBe(0);
    expect(await readdir(hostsDir)).toEqual([]);
  });

  it('podman: adds the mirror to registries.conf keeping its comments; undo gives back the same bytes', async () => {
    const d = await sub('podman');
    const file = join(d, 'registries.conf');
    const original = '# site settings\nunqualified-search-registries = ["docker.io"]\n\n[aliases]\n  "alpine" = "docker.io/library/alpine"\n';
    await writeFile(file, original);
    const args = ['configure', 'podman', '--registries-conf', file];
    expect((await runCli(args)).status).toBe(0);
    const text = await readFile(file, 'utf8');
    expect(text.startsWith(original)).toBe(true);
    expect(text).toContain('[[registry.mirror]]\nlocation = "127.0.0.1:5000"\ninsecure = true');
    expect((await runCli([...args, '--undo'])).status).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(original);
  });

  it('refuses a file it cannot read: exit 2, one line, the file untouched and no backup', async () => {
    const d = await sub('refuse');
    const json = join(d, 'daemon.json');
    await writeFile(json, '{ "debug": true, }\n');
    expectUsageError(await runCli(['configure', 'docker', '--daemon-json', json]), /refusing to edit .*daemon\.json: not valid JSON/);
    expect(await readFile(json, 'utf8')).toBe('{ "debug": true, }\n');
    const conf = join(d, 'registries.conf');
    await writeFile(conf, '[registries.search]\nregistries = ["docker.io"]\n');
    expectUsageError(await runCli(['configure', 'podman', '--registries-conf', conf]), /refusing to edit .*registries\.conf: line 1: a v1/);
    expect(await readdir(d)).toEqual(['daemon.json', 'registries.conf']);
  });

  it.each([
    [['configure'], /missing the runtime/],
    [['configure', 'cri-o'], /unknown runtime "cri-o"/],
    [['configure', 'docker', '--registry', 'quay.io'], /docker mirrors docker\.io only/],
    [['configure', 'podman', '--registry', 'docker.io', '--registry', 'quay.io'], /one node mirrors one registry/],
    [['configure', 'containerd', '--registry', 'Not A Host'], /not a registry host name/],
    [['configure', 'docker', '--node', 'ftp://x'], /http or https/],
    [['configure', 'docker', '--node', 'http://127.0.0.1:5000/v2'], /must not have a path/],
  ])('exits 2 with one line for %j', async (args, mention) => {
    expectUsageError(await runCli(args), mention);
  });
});
