// The pieces that keep a bcrypt flood cheap: per-address failure buckets, bounded recent-key memory, the
// bcrypt worker, and Credentials using them (no bcrypt for a known-bad password or a limited address).
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { BcryptPool, clientKey, FailureLimiter, RecentKeys } from '../../../src/http/auth-guard.js';
import { AuthGuard, Credentials } from '../../../src/http/credentials.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('clientKey', () => {
  it('keys IPv4 (also v4-mapped) by address and IPv6 by its /64', () => {
    expect(clientKey('10.0.0.7')).toBe('10.0.0.7');
    expect(clientKey('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
  });
});

describe('FailureLimiter', () => {
  it('lets perMinute attempts through, then answers how long to wait, and refills over time', () => {
    let now = 0;
    const l = new FailureLimiter({ perMinute: 3, now: () => now });
    for (let i = 0; i < 3; i++) expect(l.take('1.2.3.4').retryAfter).toBe(0);
    const refused = l.take('1.2.3.4');
    expect(refused).toEqual({ retryAfter: 20, firstRefusal: true });
    expect(l.take('1.2.3.4').firstRefusal).toBe(false); // logged once per episode
    expect(l.take('5.6.7.8').retryAfter).toBe(0); // another address is not affected
    now += 20_000;
    expect(l.take('1.2.3.4').retryAfter).toBe(0);
    expect(l.take('1.2.3.4').retryAfter).toBeGreaterThan(0);
  });

  it('gives back the attempts of right credentials', () => {
    const l = new FailureLimiter({ perMinute: 2, now: () => 0 });
    for (let i = 0; i < 10; i++) {
      expect(l.take('a').retryAfter).toBe(0);
      l.refund('a');
    }
  });

  it('keeps at most maxAddresses buckets', () => {
    const l = new FailureLimiter({ perMinute: 1, maxAddresses: 100, now: () => 0 });
    for (let i = 0; i < 1000; i++) l.take(`10.0.${i >> 8}.${i & 255}`);
    expect((l as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(100);
  });

  it('does nothing at 0', () => {
    const l = new FailureLimiter({ perMinute: 0 });
    for (let i = 0; i < 100; i++) expect(l.take('a').retryAfter).toBe(0);
  });
});

describe('RecentKeys', () => {
  it('forgets after the ttl and drops the oldest past max', () => {
    let now = 0;
    const r = new RecentKeys(1000, 3, () => now);
    for (const k of ['a', 'b', 'c', 'd']) r.add(k);
    expect(['a', 'b', 'c', 'd'].map((k) => r.has(k))).toEqual([false, true, true, true]);
    now = 1000;
    expect(r.has('b')).toBe(false);
  });
});

describe('BcryptPool', () => {
  it('compares on its worker, and answers undefined at once when too many wait', async () => {
    const hash = bcrypt.hashSync('pw', 4);
    const pool = new BcryptPool(2);
    try {
      expect(await pool.compare('pw', hash)).toBe(true);
      expect(await pool.compare('nope', hash)).toBe(false);
      const many = await Promise.all(Array.from({ length: 6 }, () => pool.compare('pw', hash)));
      expect(many.filter((x) => x === true).length).toBeGreaterThanOrEqual(2);
      expect(many).toContain(undefined);
    } finally {
      await pool.close();
    }
  });
});

describe('BcryptPool lines', () => {
  it('runs a clean address\'s compare before those of addresses that keep failing', async () => {
    const hash = bcrypt.hashSync('pw', 4);
    const pool = new BcryptPool(16);
    const order: string[] = [];
    try {
      const all = [
        ...Array.from({ length: 6 }, (_, i) => pool.compare('bad', hash).then(() => order.push(`flood${i}`))),
        pool.compare('pw', hash, true).then(() => order.push('fresh')),
      ];
      await Promise.all(all);
      // The first flood compare was already running; the fresh one came next.
      expect(order.indexOf('fresh')).toBeLessThanOrEqual(1);
    } finally {
      await pool.close();
    }
  });

  it('says an address is clean until it fails, and again once its bucket refills', () => {
    let now = 0;
    const l = new FailureLimiter({ perMinute: 6, now: () => now });
    expect(l.clean('a')).toBe(true);
    l.take('a');
    expect(l.clean('a')).toBe(false);
    now += 10_000;
    expect(l.clean('a')).toBe(true);
  });
});

describe('Credentials with a limit', () => {
  it('refuses a limited address without checking, still takes its remembered good password, and not a bad one', async () => {
    const hash = bcrypt.hashSync('right', 4);
    const guard = new AuthGuard({ maxFailuresPerMinute: 2 });
    const creds = new Credentials(new Map([['alice', hash]]), [], guard);
    let compares = 0;
    const compare = guard.pool.compare.bind(guard.pool);
    guard.pool.compare = (p, h) => {
      compares++;
      return compare(p, h);
    };
    try {
      expect((await creds.check(basic('alice', 'right'), '10.0.0.1')).kind).toBe('user');
      expect((await creds.check(basic('alice', 'x1'), '10.0.0.1')).kind).toBe('invalid');
      expect((await creds.check(basic('alice', 'x1'), '10.0.0.1')).kind).toBe('invalid'); // known bad: no bcrypt
      expect(compares).toBe(2);
      const limited = await creds.check(basic('alice', 'x2'), '10.0.0.1');
      expect(limited).toMatchObject({ kind: 'limited' });
      expect(compares).toBe(2);
      expect((await creds.check(basic('alice', 'right'), '10.0.0.1')).kind).toBe('user'); // remembered
      expect((await creds.check(basic('alice', 'x3'), '10.0.0.2')).kind).toBe('invalid'); // another address
    } finally {
      await guard.pool.close();
    }
  });
});
