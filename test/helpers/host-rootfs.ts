// A minimal root filesystem made of this machine's own files (Debian 12, as node:24-slim is): a handful
// of programs, each with the shared libraries `ldd` lists for it, in a merged-/usr layout. It takes a
// second and needs no network, where debootstrap took minutes on a clean machine (CI). Only what the
// images built on it run is there: see PROGRAMS.
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * What compose/Dockerfile and docker-compose.yml run besides node: /bin/sh (RUN lines, npm scripts),
 * chmod (`npm run build`), ln, mkdir, chown (the runtime stage), env (dist/cli.js's #! line), sleep (the
 * compose client). A few more for a usable `docker exec … sh`.
 */
const PROGRAMS = ['/bin/sh', '/usr/bin/env', '/usr/bin/chmod', '/usr/bin/chown', '/usr/bin/ln', '/usr/bin/mkdir', '/usr/bin/sleep', '/usr/bin/rm', '/usr/bin/cat', '/usr/bin/ls', '/usr/bin/cp', '/usr/bin/mv', '/usr/bin/id', '/usr/bin/true'];

/** The shared libraries and loader `ldd` names for a program (absolute paths as the loader finds them). */
export function sharedLibraries(program: string): string[] {
  const out = execFileSync('ldd', [program], { encoding: 'utf8' });
  return [...out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/** Copies host file `path` (through its symlinks) to the same path under `root`, keeping its mode bits. */
async function copyHostFile(root: string, path: string, mode: number): Promise<void> {
  const target = join(root, realpathSync(dirname(path)), basename(path));
  await mkdir(dirname(target), { recursive: true });
  await copyFile(realpathSync(path), target);
  await chmod(target, mode);
}

/** Copies each program and, once each, every library they load; /bin/sh keeps its symlink to dash. */
async function copyPrograms(root: string, programs: string[]): Promise<void> {
  const libs = new Set<string>();
  for (const p of programs) {
    const real = realpathSync(p);
    await copyHostFile(root, real, 0o755);
    if (real !== p) await symlink(basename(real), join(root, realpathSync(dirname(p)), basename(p)));
    for (const l of sharedLibraries(real)) libs.add(l);
  }
  for (const l of libs) await copyHostFile(root, l, 0o755);
}

/** Users, groups and name lookup from files only (glibc has `files` and `dns` built in). */
async function writeEtc(root: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n');
  if (existsSync('/etc/os-release')) await copyFile('/etc/os-release', join(root, 'etc/os-release'));
}

/**
 * Lays out the tree in `root` (an empty dir): merged /usr (/bin, /lib, /lib64, /sbin link into /usr as on
 * Debian 12), `programs` and their libraries, /etc basics, /tmp and /root. Extra programs (node) are added
 * with `addProgramLibraries`.
 */
export async function hostRootfs(root: string, programs: string[] = PROGRAMS): Promise<void> {
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'usr/local/bin', 'tmp', 'root', 'var/tmp', 'home']) await mkdir(join(root, d), { recursive: true });
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) await symlink(`usr/${d}`, join(root, d));
  await chmod(join(root, 'tmp'), 0o1777);
  await chmod(join(root, 'var/tmp'), 0o1777);
  await chmod(join(root, 'root'), 0o700);
  await copyPrograms(root, programs);
  await writeEtc(root);
}

/** Copies the libraries a program already placed in the tree needs (from this machine). */
export async function addProgramLibraries(root: string, hostProgram: string): Promise<void> {
  for (const l of sharedLibraries(hostProgram)) await copyHostFile(root, l, 0o755);
}
