// End-to-end: skopeo against a layerd node listening on 0.0.0.0 with an htpasswd user and a token. It
// must fail to push without credentials, push with --dest-creds (a user, or a token as the password),
// pull a public repository back anonymously, and read a private one only with --creds.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyRegistriesConf, requireTool, runTool } from '../helpers/clients.js';
import { buildTestLayout, layoutRef, readReachableBlobs, type TestLayout } from '../helpers/oci-image.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, stablePort, tempDir } from '../helpers/processes.js';

const TEST_TIMEOUT = 120_000;
const USER = 'alice';
const PASSWORD = 'skopeo-Pa55-e2e';
const TOKEN = 'ci-token-7d1e5f0a9c2b4e68';

let work: string;
let layout: TestLayout;
const nodes = new NodeSet('layerd-e2e-auth-');
let node: TestNode;
let host: string;
let env: Record<string, string>;

const skopeo = (args: string[]) => runTool('skopeo', args, env);

beforeAll(async () => {
  await requireTool('skopeo');
  work = await tempDir('layerd-e2e-auth-');
  layout = await buildTestLayout(join(work, 'layout'));
  // No registries.conf and no stored logins of the machine's: only the credentials a test passes count.
  const authFile = join(work, 'auth.json');
  await writeFile(authFile, '{"auths":{}}');
  env = { CONTAINERS_REGISTRIES_CONF: await emptyRegistriesConf(work), REGISTRY_AUTH_FILE: authFile };
  await writeFile(join(work, 'htpasswd'), `${USER}:${bcrypt.hashSync(PASSWORD, 6).replace(/^\$2b\$/, '$2y$')}\n`);
  await writeFile(join(work, 'tokens'), `ci:${TOKEN}\n`);
  const port = await stablePort();
  node = await nodes.start('node', {
    port,
    args: ['--listen', `0.0.0.0:${port}`, '--htpasswd', join(work, 'htpasswd'), '--token-file', join(work, 'tokens'), '--private-repos', 'secret'],
  });
  host = `127.0.0.1:${port}`;
});

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  if (work) await removeDir(work);
});

async function expectSameImage(pulledDir: string): Promise<void> {
  expect((await layoutRef(pulledDir, 'v1')).digest).toBe((await layoutRef(layout.dir, 'v1')).digest);
  const pushed = await readReachableBlobs(layout.dir, 'v1');
  const pulled = await readReachableBlobs(pulledDir, 'v1');
  expect([...pulled.keys()].sort()).toEqual([...pushed.keys()].sort());
  for (const [digest, bytes] of pushed) expect(pulled.get(digest)!.equals(bytes), `blob ${digest} differs`).toBe(true);
}

describe('skopeo against an authenticated layerd', () => {
  it('cannot push without credentials, nor with a wrong password', { timeout: TEST_TIMEOUT }, async () => {
    const push = (extra: string[]) => skopeo(['copy', '--quiet', '--dest-tls-verify=false', ...extra, `oci:${layout.dir}:v1`, `docker://${host}/team/denied:v1`]);
    await expect(push([])).rejects.toThrow(/unauthorized|authentication required|401/i);
    await expect(push(['--dest-creds', `${USER}:wrong-password`])).rejects.toThrow(/unauthorized|authentication|401/i);
    expect(node.output()).not.toContain('wrong-password');
    // Nothing landed.
    const res = await fetch(`http://${host}/v2/team/denied/tags/list`);
    expect(res.status).toBe(404);
  });

  it('pushes with --dest-creds, and pulls the public image back anonymously, bit-identical', { timeout: TEST_TIMEOUT }, async () => {
    await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `oci:${layout.dir}:v1`, `docker://${host}/team/app:v1`]);
    const out = join(work, 'pulled-public');
    await skopeo(['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/team/app:v1`, `oci:${out}:v1`]);
    await expectSameImage(out);
  });

  it('pushes with a token as the password, to a private repository that only credentials can read', { timeout: TEST_TIMEOUT }, async () => {
    await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', `ci:${TOKEN}`, `oci:${layout.dir}:v1`, `docker://${host}/secret/app:v1`]);
    await expect(skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${host}/secret/app:v1`])).rejects.toThrow(/unauthorized|authentication required|401/i);
    const raw = Buffer.from(await skopeo(['inspect', '--tls-verify=false', '--raw', '--creds', `${USER}:${PASSWORD}`, `docker://${host}/secret/app:v1`]));
    expect(raw.equals(layout.image.manifest)).toBe(true);
    const out = join(work, 'pulled-private');
    await skopeo(['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', '--src-creds', `${USER}:${PASSWORD}`, `docker://${host}/secret/app:v1`, `oci:${out}:v1`]);
    await expectSameImage(out);
    expect(node.output()).not.toContain(TOKEN);
    expect(node.output()).not.toContain(PASSWORD);
  });
});
