import { describe, expect, it } from 'vitest';
import { OciError } from '../../../src/oci/errors.js';
import {
  formatImageReference,
  parseImageReference,
  parseManifestReference,
  parseRepositoryName,
  parseTag,
} from '../../../src/oci/reference.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof OciError ? err.code : 'NOT_OCI';
  }
  return undefined;
}

describe('repository names', () => {
  it.each(['a', 'library/alpine', 'a.b/c_d/e__f/g-h/i---j', 'test/img', '0/1/2'])('accepts %j', (name) => {
    expect(parseRepositoryName(name)).toBe(name);
  });

  it.each([
    '',
    'A',
    'Library/alpine',
    '-a',
    'a-',
    '_a',
    'a/_b',
    'a//b',
    '/a',
    'a/',
    '..',
    'a/../b',
    'a/./b',
    '%2e%2e/a',
    'a%2fb',
    'a___b',
    'a b',
    'a'.repeat(256),
  ])('rejects %j with NAME_INVALID', (name) => {
    expect(codeOf(() => parseRepositoryName(name))).toBe('NAME_INVALID');
  });
});

describe('tags and manifest references', () => {
  it('accepts tags up to 128 characters', () => {
    expect(parseTag('v1.0_rc-1')).toBe('v1.0_rc-1');
    expect(parseTag('_x')).toBe('_x');
    expect(parseTag('a'.repeat(128))).toHaveLength(128);
  });

  it.each(['', '.a', '-a', 'a'.repeat(129), 'a/b', 'a:b', 'a b', 'ä'])('rejects tag %j with TAG_INVALID', (tag) => {
    expect(codeOf(() => parseTag(tag))).toBe('TAG_INVALID');
  });

  it('tells tags from digests', () => {
    expect(parseManifestReference('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    const digest = 'sha256:' + 'a'.repeat(64);
    expect(parseManifestReference(digest)).toEqual({ kind: 'digest', digest });
    expect(codeOf(() => parseManifestReference('sha256:zz'))).toBe('DIGEST_INVALID');
  });
});

describe('image references', () => {
  it('normalizes Docker Hub names', () => {
    expect(parseImageReference('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: 'latest' });
    expect(parseImageReference('docker.io/alpine:3.20')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: '3.20' });
    expect(parseImageReference('index.docker.io/org/app:1').registry).toBe('docker.io');
  });

  it('recognizes a registry host by dot, port or localhost', () => {
    expect(parseImageReference('127.0.0.1:5000/test/img:v1')).toEqual({ registry: '127.0.0.1:5000', repository: 'test/img', tag: 'v1' });
    expect(parseImageReference('ghcr.io/org/app')).toEqual({ registry: 'ghcr.io', repository: 'org/app', tag: 'latest' });
    expect(parseImageReference('localhost/app:x').registry).toBe('localhost');
    expect(parseImageReference('org/app', 'seed:5000')).toEqual({ registry: 'seed:5000', repository: 'org/app', tag: 'latest' });
  });

  it('keeps a digest and a tag together', () => {
    const digest = 'sha256:' + 'b'.repeat(64);
    const ref = parseImageReference(`ghcr.io/org/app:v2@${digest}`);
    expect(ref).toEqual({ registry: 'ghcr.io', repository: 'org/app', tag: 'v2', digest });
    expect(formatImageReference(ref)).toBe(`ghcr.io/org/app:v2@${digest}`);
    expect(parseImageReference(`app@${digest}`).tag).toBeUndefined();
  });

  it.each([
    ['', 'NAME_INVALID'],
    ['UPPER/case', 'NAME_INVALID'],
    ['app:bad tag', 'TAG_INVALID'],
    ['app@sha256:short', 'DIGEST_INVALID'],
  ])('rejects %j with %s', (input, code) => {
    expect(codeOf(() => parseImageReference(input))).toBe(code);
  });
});
