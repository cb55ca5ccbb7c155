// The layerd command as users meet it: a real process, its exit codes, its one-line errors, its logs.
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeSet } from '../helpers/nodes.js';
import { freePort, layerdBin, removeDir, repoRoot, tempDir, waitForHttp } from '../helpers/processes.js';

const dirs: string[] = [];
const nodes = new NodeSet('layerd-cli-');
afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  for (const d of dirs) await removeDir(d);
});

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [layerdBin, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
}

describe('layerd CLI', () => {
  it('prints help and the version', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('layerd serve');
    const serveHelp = run(['serve', '--help']);
    expect(serveHelp.status).toBe(0);
    expect(serveHelp.stdout).toMatch(/--listen HOST:PORT .*default 127\.0\.0\.1:5000.*LAYERD_LISTEN/);
    expect(serveHelp.stdout).toMatch(/--data-dir DIR .*default \.\/data/);
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('is installed as the package bin, so `npx layerd --help` works', () => {
    const res = spawnSync('npx', ['--no-install', 'layerd', '--help'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('layerd serve');
  });

  it.each([
    [['serve', '--listen', 'nowhere'], 'listen'],
    [['serve', '--no-such-flag'], 'no-such-flag'],
    [['serve', '--config', '/nonexistent/layerd.yml'], 'config'],
    [['frobnicate'], 'unknown command'],
  ])('exits 2 with one clear line for %j', (args, mention) => {
    const res = run(args);
    expect(res.status).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^layerd: /);
    expect(lines[0]).toContain(mention);
    expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('names the bad key from a config file and from the environment', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const file = join(dir, 'layerd.yml');
    await writeFile(file, 'listen: 127.0.0.1:5000\ndata-dir: [1, 2]\n');
    const fromFile = run(['serve', '--config', file]);
    expect(fromFile.status).toBe(2);
    expect(fromFile.stderr.trim()).toMatch(/^layerd: data-dir: /);
    const fromEnv = run(['serve'], { LAYERD_LOG_LEVEL: 'chatty' });
    expect(fromEnv.status).toBe(2);
    expect(fromEnv.stderr.trim()).toMatch(/^layerd: log-level: must be one of/);
  });

  it('exits 2 with one line when the listen port is taken', async () => {
    const node = await nodes.start('port-holder');
    try {
      const res = run(['serve', '--listen', `127.0.0.1:${node.port}`, '--data-dir', node.dataDir]);
      expect(res.status).toBe(2);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toContain('EADDRINUSE');
    } finally {
      await node.stop();
    }
  });

  it('takes flags over environment over config file', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'layerd.yml');
    await writeFile(file, `listen: 127.0.0.1:${filePort}\ndata-dir: ${join(dir, 'data')}\n`);
    const child = spawn(process.execPath, [layerdBin, 'serve', '--config', file, '--listen', `127.0.0.1:${flagPort}`], {
      env: { ...process.env, LAYERD_LISTEN: `127.0.0.1:${envPort}` },
      stdio: 'ignore',
    });
    try {
      await waitForHttp(`http://127.0.0.1:${flagPort}/v2/`, 20_000, child);
      await expect(fetch(`http://127.0.0.1:${envPort}/v2/`)).rejects.toThrow();
    } finally {
      child.kill('SIGTERM');
    }
    const envChild = spawn(process.execPath, [layerdBin, 'serve', '--config', file], {
      env: { ...process.env, LAYERD_LISTEN: `127.0.0.1:${envPort}` },
      stdio: 'ignore',
    });
    try {
      await waitForHttp(`http://127.0.0.1:${envPort}/v2/`, 20_000, envChild);
    } finally {
      envChild.kill('SIGTERM');
    }
  });

  it('`npm start` serves a registry on the embedded defaults (here moved by environment to a free port), through the bin\'s #! line and its node flag', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const port = await freePort();
    const child = spawn('npm', ['start'], {
      cwd: repoRoot,
      env: { ...process.env, LAYERD_LISTEN: `127.0.0.1:${port}`, LAYERD_DATA_DIR: dir },
      stdio: 'ignore',
      detached: true, // its own process group, so stopping npm also stops the node it started
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v2/`, 30_000, child);
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      // The daemon in npm's process group is node with the flag from the bin's (dist/layerd.mjs's) first line (env -S).
      const group = spawnSync('pgrep', ['-a', '-g', String(child.pid)], { encoding: 'utf8' }).stdout;
      const daemon = group.split('\n').find((l) => /^\d+ node .*dist\/layerd\.mjs serve/.test(l));
      expect(daemon, group).toMatch(/\bnode --initial-heap-size=128 --max-semi-space-size=4 \S*dist\/layerd\.mjs serve\b/);
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
  });

  it('logs one JSON line per request without credentials, and stops cleanly on SIGTERM', async () => {
    const node = await nodes.start('logger');
    const res = await fetch(`${node.url}/v2/some/repo/manifests/latest`, { headers: { authorization: 'Basic c2VjcmV0OnNlY3JldA==' } });
    expect(res.status).toBe(404);
    await node.stop('SIGTERM');
    expect(node.child.exitCode).toBe(0);
    const lines = node
      .output()
      .split('\n')
      .filter((l) => l.includes('/v2/some/repo/manifests/latest'));
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ method: 'GET', status: 404, msg: 'request' });
    expect(node.output()).not.toContain('c2VjcmV0OnNlY3JldA==');
  });
});
