// A flood of bogus credentials (issue 13 item 6) on a real `layerd serve` with --htpasswd: every wrong
// Basic password costs the node a bcrypt check, so an address that keeps failing is cut off with 429
// (and no more bcrypt), while others, and credentials the node has already checked, go on working.
// The flood comes from 127.0.0.2, the legitimate client from 127.0.0.1 (both reach a loopback listener).
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, tempDir } from '../helpers/processes.js';
import { AuthClient, basic, digestOf } from '../helpers/registry-client.js';

interface Answer {
  status: number;
  retryAfter?: string;
  body: string;
}

function get(port: number, path: string, authorization: string | undefined, from: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = authorization ? { authorization } : {};
    const r = httpRequest({ host: '127.0.0.1', port, path, headers, localAddress: from, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
    });
    r.setTimeout(60_000, () => r.destroy(new Error(`GET ${path} timed out`)));
    r.on('error', reject);
    r.end();
  });
}

const USER = 'alice';
const PASSWORD = 'correct-horse-battery';
const ATTACKER = '127.0.0.2';
const dirs: string[] = [];
const nodes = new NodeSet('layerd-flood-node-');
let node: TestNode;

beforeAll(async () => {
  const dir = await tempDir('layerd-flood-');
  dirs.push(dir);
  await writeFile(join(dir, 'htpasswd'), `${USER}:${bcrypt.hashSync(PASSWORD, 8)}\n`);
  node = await nodes.start('node', { args: ['--htpasswd', join(dir, 'htpasswd'), '--private-repos', 'secret'] });
});

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  for (const d of dirs) await removeDir(d);
});

describe('a flood of bogus Basic credentials from one address', () => {
  it('gets 429 TOOMANYREQUESTS with Retry-After once the address has failed too often; others still get in', async () => {
    const alice = new AuthClient(node.url, basic(USER, PASSWORD));
    // alice from the attacker's address too, before the flood (a neighbour behind the same NAT).
    expect((await get(node.port, '/v2/', basic(USER, PASSWORD), ATTACKER)).status).toBe(200);
    const image = await alice.pushImage('secret/app', 'v1');
    const layer = digestOf(image.layers[0]!);

    const answers: Answer[] = [];
    // In waves of 8 at once, as an attacker would: 96 wrong passwords, each different.
    for (let wave = 0; wave < 12; wave++) {
      const bogus = Array.from({ length: 8 }, () => basic(randomBytes(6).toString('hex'), randomBytes(12).toString('hex')));
      answers.push(...(await Promise.all(bogus.map((auth) => get(node.port, '/v2/secret/app/tags/list', auth, ATTACKER)))));
    }
    const statuses = answers.map((a) => a.status);
    expect(new Set(statuses)).toEqual(new Set([401, 429]));
    const limited = answers.filter((a) => a.status === 429);
    // After at most the default burst of failures, everything else from that address is 429.
    expect(statuses.indexOf(429)).toBeLessThanOrEqual(20);
    expect(limited.length).toBeGreaterThanOrEqual(answers.length - 20);
    for (const a of limited) {
      expect(Number(a.retryAfter)).toBeGreaterThan(0);
      expect(JSON.parse(a.body).errors[0].code).toBe('TOOMANYREQUESTS');
    }
    // The same wrong password again, and a right user with a wrong one: still 429 from there.
    expect((await get(node.port, '/v2/', basic(USER, 'wrong'), ATTACKER)).status).toBe(429);

    // A legitimate client elsewhere is not held up: its credentials are checked and it reads and pushes.
    const read = await alice.req('GET', `/v2/secret/app/blobs/${layer}`);
    expect(read.status).toBe(200);
    expect(read.body.equals(image.layers[0]!)).toBe(true);
    await alice.pushImage('team/app', 'v1');
    // One whose credentials are fresh (another user's first request) is checked too.
    expect((await get(node.port, '/v2/secret/app/tags/list', basic(USER, PASSWORD), '127.0.0.3')).status).toBe(200);
    // From the flooding address: anonymous public reads are never limited, and credentials the node checked
    // a moment ago still pass (no bcrypt is needed for them); the wrong ones do not.
    expect((await get(node.port, '/v2/team/app/tags/list', undefined, ATTACKER)).status).toBe(200);
    expect((await get(node.port, '/v2/secret/app/tags/list', basic(USER, PASSWORD), ATTACKER)).status).toBe(200);
    expect((await get(node.port, '/v2/secret/app/tags/list', undefined, ATTACKER)).status).toBe(401);
    // The log says the address was limited, without any of the passwords.
    expect(node.output()).toContain('too many failed authentications');
  });
});
