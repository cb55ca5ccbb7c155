// End-to-end: the docker engine against a layerd node listening on 0.0.0.0 with an htpasswd user, in a
// network namespace of the test's own (dockerd gets a private data root there, see helpers/dockerd.ts).
// docker push fails without a login and with a wrong password, `docker login` then push works, and the
// image pulls back; without a login docker pulls nothing from such a node, not even a public repository.
// docker treats 127.0.0.0/8 as an insecure registry, so plain HTTP is fine.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/clients.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { createNetns, type NetNamespace } from '../helpers/netns.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, tempDir } from '../helpers/processes.js';

const TEST_TIMEOUT = 180_000;
const USER = 'alice';
const PASSWORD = 'docker-Pa55-e2e';
const PORT = 5100;
const HOST = `127.0.0.1:${PORT}`;

let ns: NetNamespace;
let work: string;
const nodes = new NodeSet('layerd-data-ns-');
let node: TestNode;
let dockerd: Dockerd;
/** dockerd's own dir: short, as its socket path must be. */
let dockerDir: string;

beforeAll(async () => {
  work = await tempDir('layerd-e2e-docker-auth-');
  ns = await createNetns('lda');
  await writeFile(join(work, 'htpasswd'), `${USER}:${bcrypt.hashSync(PASSWORD, 6).replace(/^\$2b\$/, '$2y$')}\n`);
  node = await nodes.start('node', { netns: ns, port: PORT, args: ['--listen', `0.0.0.0:${PORT}`, '--htpasswd', join(work, 'htpasswd'), '--private-repos', 'secret'] });
  dockerDir = await tempDir('lda-');
  dockerd = await startDockerd(ns, dockerDir, { registryMirrors: [] });
  // A one-file image, imported: nothing is pulled from anywhere.
  await writeFile(join(work, 'hello.txt'), 'hello from layerd\n');
  await runTool('tar', ['-C', work, '-cf', join(work, 'rootfs.tar'), 'hello.txt']);
  await dockerd.docker('import', join(work, 'rootfs.tar'), `${HOST}/team/hello:v1`);
  await dockerd.docker('tag', `${HOST}/team/hello:v1`, `${HOST}/secret/hello:v1`);
}, TEST_TIMEOUT);

afterAll(async () => {
  await dockerd?.stop();
  await nodes.stopAll('SIGTERM');
  await ns?.remove();
  if (work) await removeDir(work);
  if (dockerDir) await removeDir(dockerDir);
});

describe('docker against an authenticated layerd', () => {
  it('docker push fails without a login, login fails with a wrong password', { timeout: TEST_TIMEOUT }, async () => {
    await expect(dockerd.docker('push', `${HOST}/team/hello:v1`)).rejects.toThrow(/unauthorized|authentication required|no basic auth credentials/i);
    await expect(dockerd.docker('login', '-u', USER, '-p', 'wrong-password', HOST)).rejects.toThrow(/unauthorized|401|authentication/i);
    expect(node.output()).not.toContain('wrong-password');
  });

  it('docker login then push works, to public and private repositories, and pulls back', { timeout: TEST_TIMEOUT }, async () => {
    expect(await dockerd.docker('login', '-u', USER, '-p', PASSWORD, HOST)).toContain('Login Succeeded');
    await dockerd.docker('push', `${HOST}/team/hello:v1`);
    await dockerd.docker('push', `${HOST}/secret/hello:v1`);
    await dockerd.docker('rmi', `${HOST}/team/hello:v1`, `${HOST}/secret/hello:v1`);
    await dockerd.docker('pull', `${HOST}/secret/hello:v1`);
    await dockerd.docker('pull', `${HOST}/team/hello:v1`);
    expect(node.output()).not.toContain(PASSWORD);
  });

  it('after logout, docker cannot pull even a public repository anonymously (the documented limit of Basic auth)', { timeout: TEST_TIMEOUT }, async () => {
    // dockerd takes the 401 Basic challenge of /v2/ as "credentials required" for every request: without a
    // login it sends nothing (skopeo, podman and containerd pull public repositories anonymously; see
    // auth-clients.test.ts). README: point docker's registry-mirrors at a node without credentials.
    await dockerd.docker('logout', HOST);
    await dockerd.docker('rmi', `${HOST}/team/hello:v1`);
    await expect(dockerd.docker('pull', `${HOST}/team/hello:v1`)).rejects.toThrow(/no basic auth credentials/);
  });
});
