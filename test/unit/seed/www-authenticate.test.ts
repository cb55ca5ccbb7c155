import { describe, expect, it } from 'vitest';
import { parseChallenge } from '../../../src/seed/www-authenticate.js';

describe('WWW-Authenticate', () => {
  it('parses a Docker Hub style bearer challenge', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
    });
  });

  it('parses basic challenges, unquoted values and escapes', () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseChallenge('Bearer realm=http://x/token, service=reg')?.params).toEqual({ realm: 'http://x/token', service: 'reg' });
    expect(parseChallenge('Bearer realm="a\\"b"')?.params.realm).toBe('a"b');
  });

  it('returns undefined for nothing', () => {
    expect(parseChallenge(undefined)).toBeUndefined();
    expect(parseChallenge('')).toBeUndefined();
  });
});
