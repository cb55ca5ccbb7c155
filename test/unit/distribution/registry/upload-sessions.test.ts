import { describe, expect, it } from 'vitest';
import { OciError } from '../../../../src/oci/errors.js';
import { UploadSessions } from '../../../../src/distribution/registry/upload-sessions.js';

describe('UploadSessions', () => {
  it('refuses a session past the limit with TOOMANYREQUESTS and Retry-After, and admits again once one closes', () => {
    const sessions = new UploadSessions({ max: 2, idleMs: 60_000, retryAfterSeconds: 7 });
    sessions.admit('a');
    sessions.admit('b');
    let refused: unknown;
    try {
      sessions.admit('c');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(OciError);
    expect(refused).toMatchObject({ code: 'TOOMANYREQUESTS', status: 429, retryAfter: 7 });
    sessions.admit('a'); // a session already open is never refused
    sessions.close('b');
    sessions.admit('c');
    expect(sessions.size).toBe(2);
  });

  it('stops counting a session left idle past the TTL', () => {
    let now = 0;
    const sessions = new UploadSessions({ max: 1, idleMs: 1000, now: () => now });
    sessions.admit('a');
    now = 999;
    expect(() => sessions.admit('b')).toThrow(OciError);
    sessions.touch('a');
    now = 1998;
    expect(() => sessions.admit('b')).toThrow(OciError);
    now = 1999;
    sessions.admit('b');
    expect(sessions.size).toBe(1);
  });

  it('has no limit at 0', () => {
    const sessions = new UploadSessions({ max: 0, idleMs: 1000 });
    for (let i = 0; i < 1000; i++) sessions.admit(String(i));
    expect(sessions.size).toBe(1000);
  });
});
