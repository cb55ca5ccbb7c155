// An offline stand-in for node:24-slim, the default base of compose/Dockerfile: no image can be pulled
// on these machines. A minimal Debian 12 tree made of this machine's own files (helpers/host-rootfs.ts:
// sh, a few coreutils and their libraries; the machine is Debian 12, as node:24-slim is) plus the Node the
// tests run on (node_modules/node, the `node` dev dependency) and this machine's npm, laid out as the
// official node images are: /usr/local/bin/node, npm under /usr/local/lib/node_modules, a `node` user and
// group with id 1000, and this machine's CA bundle (see HOST_CA_BUNDLE). Imported with `docker import` as
// one layer. It takes seconds and no network (debootstrap, used before, took over 3 minutes on a clean machine).
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { appendFile, chmod, chown, cp, mkdir, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { addProgramLibraries, hostRootfs } from './host-rootfs.js';
import { removeDir, repoRoot, tempDir } from './processes.js';

/** The Node of the `node` dev dependency (the one `npm test` runs on), not whatever runs this file. */
export const NODE_BIN = join(repoRoot, 'node_modules', 'node', 'bin', 'node');
/**
 * This machine's trust store. Where the way out goes through a TLS-inspecting proxy (these machines: its CA
 * is in this bundle, and the machine's own npm is set to trust it), `npm ci` in the build must trust it
 * too: the base carries the bundle and NODE_EXTRA_CA_CERTS naming it. The Dockerfile is left as it is;
 * node:24-slim needs nothing of the kind on an ordinary network.
 */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The npm package of the npm on PATH (the one running `npm test`): its bin/npm-cli.js, two folders up.
 * Not `npm root -g`: under npm's scripts that answers for the Node first on PATH (node_modules/node).
 */
function npmPackageDir(): string {
  const onPath = (process.env.PATH ?? '').split(':').map((d) => join(d, 'npm')).find((f) => existsSync(f));
  const cli = process.env.npm_execpath ?? (onPath ? realpathSync(onPath) : undefined);
  if (!cli || !existsSync(join(dirname(dirname(cli)), 'package.json'))) throw new Error(`no npm found (npm_execpath ${process.env.npm_execpath}, PATH ${onPath})`);
  return dirname(dirname(cli));
}

/** Adds Node (and its libraries), npm and the `node` user to the tree, as the official node images have them. */
async function addNode(root: string): Promise<void> {
  if (!existsSync(NODE_BIN)) throw new Error(`${NODE_BIN} is missing: run npm ci (the \`node\` dev dependency is the image's Node)`);
  await cp(NODE_BIN, join(root, 'usr/local/bin/node'));
  await chmod(join(root, 'usr/local/bin/node'), 0o755);
  await addProgramLibraries(root, NODE_BIN);
  const npmDir = npmPackageDir();
  await mkdir(join(root, 'usr/local/lib/node_modules'), { recursive: true });
  await cp(npmDir, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
  if (existsSync(HOST_CA_BUNDLE)) {
    await mkdir(join(root, 'etc/ssl/certs'), { recursive: true });
    await cp(HOST_CA_BUNDLE, join(root, 'etc/ssl/certs/ca-certificates.crt'));
  }
  await appendFile(join(root, 'etc/group'), 'node:x:1000:\n');
  await appendFile(join(root, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/sh\n');
  await mkdir(join(root, 'home/node'));
  await chown(join(root, 'home/node'), 1000, 1000);
}

/** Runs `sh -c script` (a pipeline), failing with its output. */
function shell(script: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${script} failed (exit ${code})\n${out.slice(-4000)}`));
    });
  });
}

/**
 * Imports the base as `tag` into the dockerd behind `docker` (its CLI and -H args): the tree made of this
 * machine's files, Node and npm added, then `tar | docker import` (one layer, PATH as in node images).
 */
export async function importNodeBase(dockerArgv: string[], tag: string): Promise<void> {
  const dir = await tempDir('layerd-base-');
  try {
    const root = join(dir, 'root');
    await mkdir(root);
    await hostRootfs(root);
    await addNode(root);
    const docker = dockerArgv.map((a) => `'${a}'`).join(' ');
    const changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["node"]'];
    if (existsSync(HOST_CA_BUNDLE)) changes.push('ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt');
    const changeArgs = changes.map((c) => `--change '${c}'`).join(' ');
    await shell(`tar --numeric-owner -C '${root}' -c . | ${docker} import ${changeArgs} - ${tag}`, 600_000);
  } finally {
    await removeDir(dir);
  }
}
