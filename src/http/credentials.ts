// Who may push (and read private repositories): users of an htpasswd file (bcrypt only, as
// `htpasswd -B` writes) and bearer tokens of a token file. A request proves itself with
// `Authorization: Basic` (a user's password, or a token as the password under the token's name) or
// `Authorization: Bearer <token>`. Secrets never leave this module: results name the user only.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { BcryptPool, FailureLimiter, RecentKeys } from './auth-guard.js';

/** A malformed credentials file: the message names the line, never its content (it may hold a secret). */
export class CredentialsFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CredentialsFileError';
  }
}

/** bcrypt in the modular crypt format: $2a$, $2b$ or $2y$, a two-digit cost, 53 characters of salt and hash. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
const USER = /^[^:\s]{1,255}$/;
const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,128}$/;
const TOKEN = /^[\x21-\x7e]{16,4096}$/;

export interface BearerToken {
  /** Who the token stands for in logs; `token-<line>` when the file gives no name. */
  name: string;
  /** Whether the file named it (then Basic auth must use that name as the user). */
  named: boolean;
  secret: string;
}

/** Meaningful lines of a credentials file, with their 1-based numbers: blank lines and # comments skipped. */
function lines(text: string): Array<{ n: number; text: string }> {
  return text
    .split(/\r?\n/)
    .map((t, i) => ({ n: i + 1, text: t.trim() }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
}

/** `user:bcrypt-hash` per line. Other hash formats (MD5 $apr1$, {SHA}, crypt) are refused: they are weak. */
export function parseHtpasswd(text: string, file = 'htpasswd'): Map<string, string> {
  const users = new Map<string, string>();
  for (const { n, text: l } of lines(text)) {
    const colon = l.indexOf(':');
    const user = colon > 0 ? l.slice(0, colon) : '';
    const hash = l.slice(colon + 1);
    if (!USER.test(user)) throw new CredentialsFileError(file, `line ${n}: want user:hash`);
    if (!BCRYPT.test(hash)) throw new CredentialsFileError(file, `line ${n}: user ${user} has no bcrypt hash ($2y$/$2a$/$2b$; create it with htpasswd -B)`);
    if (users.has(user)) throw new CredentialsFileError(file, `line ${n}: user ${user} is given twice`);
    users.set(user, hash);
  }
  return users;
}

/** A token per line, or `name:token`. Tokens are 16+ printable characters without spaces. */
export function parseTokens(text: string, file = 'token-file'): BearerToken[] {
  const tokens: BearerToken[] = [];
  for (const { n, text: l } of lines(text)) {
    const colon = l.indexOf(':');
    const named = colon >= 0;
    const name = named ? l.slice(0, colon) : `token-${n}`;
    const secret = named ? l.slice(colon + 1) : l;
    if (named && !TOKEN_NAME.test(name)) throw new CredentialsFileError(file, `line ${n}: a token's name is letters, digits and . _ @ -`);
    if (!TOKEN.test(secret)) throw new CredentialsFileError(file, `line ${n}: a token must be at least 16 printable characters, no spaces`);
    if (tokens.some((t) => t.secret === secret)) throw new CredentialsFileError(file, `line ${n}: the same token is given twice`);
    if (named && tokens.some((t) => t.named && t.name === name)) throw new CredentialsFileError(file, `line ${n}: the name ${name} is given twice`);
    tokens.push({ name, named, secret });
  }
  return tokens;
}

export interface CredentialFiles {
  htpasswd?: string;
  tokenFile?: string;
}

/** What the access policy needs of credentials: whether there are any, and a check of a header. */
export interface CredentialCheck {
  readonly configured: boolean;
  /** `client` is the caller's address: failures are limited per address. */
  check(header: string | undefined, client?: string): Promise<AuthResult>;
}

export type AuthResult =
  | { kind: 'anonymous' }
  | { kind: 'user'; user: string; scheme: 'basic' | 'bearer' }
  /** Credentials were sent and are wrong (or malformed): `reason` is safe to log. */
  | { kind: 'invalid'; reason: string }
  /**
   * Not checked: the address failed too often (or too many checks wait already). `retryAfter` is in
   * seconds; `firstRefusal` says this is the first refusal of the address since it was last allowed.
   */
  | { kind: 'limited'; retryAfter: number; reason: string; firstRefusal: boolean };

/** Successful bcrypt checks are remembered this long: clients send Basic auth on every request. */
const REMEMBER_MS = 5 * 60_000;
const REMEMBER_MAX = 10_000;
/** Failed ones this long: a client retrying the same wrong password costs no bcrypt either. */
const FORGET_BAD_MS = 60_000;
const BAD_MAX = 10_000;

/** What survives a reload of the files: the per-address limit and the bcrypt worker. */
export class AuthGuard {
  readonly limiter: FailureLimiter;
  readonly pool: BcryptPool;

  /** `maxFailuresPerMinute`: failed authentications one address may make a minute (0: no limit). */
  constructor(o: { maxFailuresPerMinute?: number; maxWaiting?: number } = {}) {
    this.limiter = new FailureLimiter({ perMinute: o.maxFailuresPerMinute ?? 0 });
    this.pool = new BcryptPool(o.maxWaiting);
  }
}

export class Credentials implements CredentialCheck {
  /** Fixed-size digests of the tokens, compared in constant time. */
  private readonly tokens: Array<BearerToken & { digest: Buffer }>;
  /**
   * Keyed by a salted hash of user and password, so no password is kept in memory. They belong to this
   * set of users: a reload makes a new Credentials, so a changed password is checked again.
   */
  private readonly remembered = new RecentKeys(REMEMBER_MS, REMEMBER_MAX);
  private readonly knownBad = new RecentKeys(FORGET_BAD_MS, BAD_MAX);
  private readonly salt = randomBytes(16);
  /** Compared against for unknown users, so their answer takes as long as a known user's. */
  private readonly decoy: string | undefined;

  constructor(
    private readonly users: ReadonlyMap<string, string> = new Map(),
    tokens: readonly BearerToken[] = [],
    private readonly guard: AuthGuard = new AuthGuard(),
  ) {
    this.tokens = tokens.map((t) => ({ ...t, digest: sha256(t.secret) }));
    this.decoy = users.values().next().value;
  }

  static async load(files: CredentialFiles, guard?: AuthGuard): Promise<Credentials> {
    const read = async (path: string) => {
      try {
        return await readFile(path, 'utf8');
      } catch (err) {
        throw new CredentialsFileError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    const users = files.htpasswd ? parseHtpasswd(await read(files.htpasswd), files.htpasswd) : new Map<string, string>();
    const tokens = files.tokenFile ? parseTokens(await read(files.tokenFile), files.tokenFile) : [];
    return new Credentials(users, tokens, guard);
  }

  /** Whether anyone at all can authenticate. */
  get configured(): boolean {
    return this.users.size > 0 || this.tokens.length > 0;
  }

  get counts(): { users: number; tokens: number } {
    return { users: this.users.size, tokens: this.tokens.length };
  }

  /**
   * Checks an Authorization header from `client`. An empty Basic pair (`:`), as some clients send by
   * default, is anonymous. Whatever fails counts against the address; an address past its limit gets
   * `limited` for anything that would need bcrypt or that fails, and its good remembered credentials
   * still pass (they cost nothing to check).
   */
  async check(header: string | undefined, client = ''): Promise<AuthResult> {
    if (header === undefined || header.trim() === '') return { kind: 'anonymous' };
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(header);
    const scheme = m?.[1]!.toLowerCase();
    if (!m || (scheme !== 'basic' && scheme !== 'bearer')) return { kind: 'invalid', reason: 'unsupported Authorization scheme' };
    if (scheme === 'bearer') {
      const token = this.matchToken(m[2]!);
      return token ? { kind: 'user', user: token.name, scheme: 'bearer' } : this.failed(client, 'unknown bearer token');
    }
    const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { kind: 'invalid', reason: 'malformed Basic credentials' };
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (user === '' && password === '') return { kind: 'anonymous' };
    const token = this.matchToken(password);
    if (token && (!token.named || token.name === user)) return { kind: 'user', user: token.name, scheme: 'basic' };
    const wrong = `wrong password or unknown user ${safeName(user)}`;
    const hash = this.users.get(user);
    const key = createHash('sha256').update(this.salt).update(user).update('\0').update(password).digest('base64');
    if (hash && this.remembered.has(key)) return { kind: 'user', user, scheme: 'basic' };
    if (this.knownBad.has(key)) return this.failed(client, wrong);
    const against = hash ?? this.decoy;
    if (!against) return this.failed(client, wrong); // no users at all: nobody to tell apart
    const limiter = this.guard.limiter;
    const urgent = limiter.clean(client); // before this attempt counts
    const turn = limiter.take(client);
    if (turn.retryAfter > 0) return { kind: 'limited', retryAfter: turn.retryAfter, reason: 'too many failed authentications from this address', firstRefusal: turn.firstRefusal };
    const ok = await this.guard.pool.compare(password, against, urgent);
    if (ok === undefined) {
      limiter.refund(client); // not this client's failure
      return { kind: 'limited', retryAfter: 1, reason: 'too many password checks waiting', firstRefusal: false };
    }
    if (!ok || !hash) {
      this.knownBad.add(key);
      return { kind: 'invalid', reason: wrong };
    }
    limiter.refund(client);
    this.remembered.add(key);
    return { kind: 'user', user, scheme: 'basic' };
  }

  /** A failure that cost no bcrypt: counted against the address all the same (it is guessing). */
  private failed(client: string, reason: string): AuthResult {
    const turn = this.guard.limiter.take(client);
    if (turn.retryAfter > 0) return { kind: 'limited', retryAfter: turn.retryAfter, reason: 'too many failed authentications from this address', firstRefusal: turn.firstRefusal };
    return { kind: 'invalid', reason };
  }

  /** Every token is compared, whichever matches, so the time taken says nothing about any of them. */
  private matchToken(candidate: string): BearerToken | undefined {
    const digest = sha256(candidate);
    let found: BearerToken | undefined;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, digest) && !found) found = t;
    return found;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A user name as sent, safe for a log line (it is not a secret, but it is untrusted input). */
function safeName(user: string): string {
  return JSON.stringify(user.slice(0, 64));
}

/** How often the files are looked at for changes, at most (on a request, never on a timer). */
const RELOAD_CHECK_MS = 2_000;

/**
 * Credentials kept in step with their files, as operators expect of an htpasswd file: a user added or a
 * token revoked takes effect within seconds, without a restart. A file that no longer parses is
 * reported and the last good credentials stay in force.
 */
export class ReloadingCredentials implements CredentialCheck {
  private checkedAt = Date.now();
  private reloading: Promise<void> | undefined;

  private constructor(
    private readonly files: CredentialFiles,
    private current: Credentials,
    private stamp: string,
    private readonly onReload: (event: { ok: boolean; detail: string; users: number; tokens: number }) => void,
    private readonly guard: AuthGuard,
  ) {}

  /** Loads the files; a missing or malformed one is a CredentialsFileError (the node does not start). */
  static async open(files: CredentialFiles, onReload: ReloadingCredentials['onReload'] = () => undefined, guard = new AuthGuard()): Promise<ReloadingCredentials> {
    const stamp = await stampOf(files);
    return new ReloadingCredentials(files, await Credentials.load(files, guard), stamp, onReload, guard);
  }

  get configured(): boolean {
    return this.current.configured;
  }

  get counts(): { users: number; tokens: number } {
    return this.current.counts;
  }

  async check(header: string | undefined, client?: string): Promise<AuthResult> {
    if (Date.now() - this.checkedAt >= RELOAD_CHECK_MS) {
      this.checkedAt = Date.now();
      this.reloading ??= this.reloadIfChanged().finally(() => (this.reloading = undefined));
    }
    if (this.reloading) await this.reloading;
    return this.current.check(header, client);
  }

  private async reloadIfChanged(): Promise<void> {
    const stamp = await stampOf(this.files).catch(() => this.stamp); // unreadable now: keep what works
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      this.current = await Credentials.load(this.files, this.guard);
      this.onReload({ ok: true, detail: 'credentials reloaded', ...this.current.counts });
    } catch (err) {
      this.onReload({ ok: false, detail: `${(err as Error).message}: keeping the credentials loaded before`, ...this.current.counts });
    }
  }
}

/** Size and modification time of each file: what changes when a file is edited or replaced. */
async function stampOf(files: CredentialFiles): Promise<string> {
  const parts: string[] = [];
  for (const path of [files.htpasswd, files.tokenFile]) {
    if (!path) continue;
    try {
      const s = await stat(path);
      parts.push(`${s.ino}:${s.size}:${s.mtimeMs}`);
    } catch (err) {
      parts.push(`missing:${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
  }
  return parts.join('|');
}
