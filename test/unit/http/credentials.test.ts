// Parsing of --htpasswd and --token-file, and checking Authorization headers against them.
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { Credentials, CredentialsFileError, ReloadingCredentials, parseHtpasswd, parseTokens } from '../../../src/http/credentials.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
/** What `htpasswd -B` writes ($2y$), from a bcrypt hash with another minor version. */
const asVersion = (hash: string, v: '2a' | '2b' | '2y') => `$${v}$${hash.slice(4)}`;
const HASH = bcrypt.hashSync('correct horse', 4);
const TOKEN = 'tok_0123456789abcdef';

function fileError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CredentialsFileError) return err.message;
    throw err;
  }
  return 'NO_ERROR';
}

describe('htpasswd files', () => {
  it('reads bcrypt users of every minor version, skipping blank lines and comments', () => {
    const text = ['# team', '', `alice:${asVersion(HASH, '2y')}`, `  bob:${asVersion(HASH, '2a')}  `, `carol:${asVersion(HASH, '2b')}`, ''].join('\n');
    const users = parseHtpasswd(text);
    expect([...users.keys()]).toEqual(['alice', 'bob', 'carol']);
    expect(users.get('alice')).toMatch(/^\$2y\$04\$/);
  });

  it.each([
    ['an MD5 hash', 'alice:$apr1$abc$0123456789abcdefghijkl', 'line 1: user alice has no bcrypt hash'],
    ['a SHA1 hash', 'alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'line 1: user alice has no bcrypt hash'],
    ['a plain password', 'alice:hunter2', 'line 1: user alice has no bcrypt hash'],
    ['a truncated hash', `alice:${HASH.slice(0, 40)}`, 'line 1: user alice has no bcrypt hash'],
    ['no user', `:${HASH}`, 'line 1: want user:hash'],
    ['no colon', 'alice', 'line 1: want user:hash'],
    ['a user twice', `alice:${HASH}\n\nalice:${HASH}`, 'line 3: user alice is given twice'],
  ])('refuses %s, naming the line and never the secret', (_what, text, message) => {
    const err = fileError(() => parseHtpasswd(text, '/etc/layerd/htpasswd'));
    expect(err).toBe(`/etc/layerd/htpasswd: ${message}${message.includes('bcrypt') ? ' ($2y$/$2a$/$2b$; create it with htpasswd -B)' : ''}`);
    expect(err).not.toContain('hunter2');
    expect(err).not.toContain('$apr1$');
  });
});

describe('token files', () => {
  it('reads bare and named tokens', () => {
    const tokens = parseTokens(`# CI\n${TOKEN}\nci-bot:${TOKEN}-two\n`);
    expect(tokens).toEqual([
      { name: 'token-2', named: false, secret: TOKEN },
      { name: 'ci-bot', named: true, secret: `${TOKEN}-two` },
    ]);
  });

  it.each([
    ['a short token', 'short', 'line 1: a token must be at least 16 printable characters'],
    ['a token with a space', 'name:abc def ghi jkl mno', 'line 1: a token must be at least 16 printable characters'],
    ['a bad name', `bad name:${TOKEN}`, "line 1: a token's name is letters"],
    ['a token twice', `${TOKEN}\na:${TOKEN}`, 'line 2: the same token is given twice'],
    ['a name twice', `a:${TOKEN}\na:${TOKEN}x`, 'line 2: the name a is given twice'],
  ])('refuses %s', (_what, text, message) => {
    const err = fileError(() => parseTokens(text, 'tokens'));
    expect(err).toContain(`tokens: ${message}`);
    expect(err).not.toContain(TOKEN);
  });
});

describe('checking Authorization headers', () => {
  const creds = new Credentials(parseHtpasswd(`alice:${asVersion(HASH, '2y')}`), parseTokens(`${TOKEN}\nci:${TOKEN}-named`));

  it('accepts a user with the right password, and remembers it', async () => {
    expect(await creds.check(basic('alice', 'correct horse'))).toEqual({ kind: 'user', user: 'alice', scheme: 'basic' });
    expect(await creds.check(basic('alice', 'correct horse'))).toEqual({ kind: 'user', user: 'alice', scheme: 'basic' });
  });

  it('refuses a wrong password or an unknown user, without the secret in the reason', async () => {
    for (const [user, password] of [['alice', 'wrong horse'], ['mallory', 'correct horse'], ['alice', '']]) {
      const result = await creds.check(basic(user!, password!));
      expect(result.kind).toBe('invalid');
      expect(JSON.stringify(result)).not.toContain('horse');
    }
  });

  it('accepts bearer tokens, and tokens as a Basic password (under their name when they have one)', async () => {
    expect(await creds.check(`Bearer ${TOKEN}`)).toEqual({ kind: 'user', user: 'token-1', scheme: 'bearer' });
    expect(await creds.check(`bearer ${TOKEN}-named`)).toEqual({ kind: 'user', user: 'ci', scheme: 'bearer' });
    expect(await creds.check(basic('anyone', TOKEN))).toEqual({ kind: 'user', user: 'token-1', scheme: 'basic' });
    expect(await creds.check(basic('ci', `${TOKEN}-named`))).toEqual({ kind: 'user', user: 'ci', scheme: 'basic' });
    expect((await creds.check(basic('someone-else', `${TOKEN}-named`))).kind).toBe('invalid');
  });

  it('refuses unknown or near-miss tokens', async () => {
    for (const t of [`${TOKEN}x`, TOKEN.slice(0, -1), TOKEN.toUpperCase(), '']) {
      expect((await creds.check(`Bearer ${t}`)).kind, t).toBe('invalid');
    }
  });

  it('treats no header, and the empty pair some clients send by default, as anonymous', async () => {
    expect(await creds.check(undefined)).toEqual({ kind: 'anonymous' });
    expect(await creds.check('')).toEqual({ kind: 'anonymous' });
    expect(await creds.check(basic('', ''))).toEqual({ kind: 'anonymous' });
  });

  it('refuses malformed headers and other schemes', async () => {
    for (const header of ['Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, 'Digest username="a"', 'Negotiate abc', 'Basic a b']) {
      expect((await creds.check(header)).kind, header).toBe('invalid');
    }
  });

  it('counts as configured only with a user or a token', () => {
    expect(new Credentials().configured).toBe(false);
    expect(new Credentials(new Map(), parseTokens(TOKEN)).configured).toBe(true);
    expect(creds.counts).toEqual({ users: 1, tokens: 2 });
  });
});

describe('credentials files that change', () => {
  it('are reloaded within seconds; a broken edit is reported and the last good set kept', async () => {
    const { mkdtemp, writeFile, rename } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'layerd-creds-'));
    const file = join(dir, 'tokens');
    await writeFile(file, `first:${TOKEN}-first\n`);
    const events: Array<{ ok: boolean; detail: string }> = [];
    const creds = await ReloadingCredentials.open({ tokenFile: file }, (e) => events.push(e));
    expect((await creds.check(`Bearer ${TOKEN}-first`)).kind).toBe('user');

    // Replaced as editors and config managers do: a new file renamed over the old one.
    await writeFile(`${file}.new`, `second:${TOKEN}-second-token\n`);
    await rename(`${file}.new`, file);
    await until(async () => (await creds.check(`Bearer ${TOKEN}-second-token`)).kind === 'user');
    expect((await creds.check(`Bearer ${TOKEN}-first`)).kind).toBe('invalid'); // revoked
    expect(events).toEqual([expect.objectContaining({ ok: true, detail: 'credentials reloaded' })]);

    await writeFile(`${file}.new`, 'broken line with spaces\n');
    await rename(`${file}.new`, file);
    await until(async () => (await creds.check(`Bearer ${TOKEN}-second-token`), events.length === 2));
    expect(events[1]).toMatchObject({ ok: false });
    expect(events[1]!.detail).toContain('line 1');
    expect(events[1]!.detail).not.toContain('broken line');
    expect((await creds.check(`Bearer ${TOKEN}-second-token`)).kind).toBe('user');
  });
});

/** Polls `ok` (each call may reload) until it holds, or fails after 15 s. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
