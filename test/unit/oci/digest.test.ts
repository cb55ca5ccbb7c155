import { describe, expect, it } from 'vitest';
import { algorithmOf, digestOf, hexOf, isDigest, parseDigest } from '../../../src/oci/digest.js';
import { OciError } from '../../../src/oci/errors.js';

const SHA256_EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('digest', () => {
  it('parses sha256 and sha512 digests and splits them', () => {
    const d = parseDigest(SHA256_EMPTY);
    expect(algorithmOf(d)).toBe('sha256');
    expect(hexOf(d)).toHaveLength(64);
    const d512 = digestOf(Buffer.alloc(0), 'sha512');
    expect(parseDigest(d512)).toBe(d512);
    expect(hexOf(d512)).toHaveLength(128);
  });

  it('computes the digest of bytes', () => {
    expect(digestOf(Buffer.alloc(0))).toBe(SHA256_EMPTY);
    expect(digestOf(Buffer.from('hello world'))).toBe('sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
  });

  it.each([
    ['', 'empty'],
    ['sha256', 'no colon'],
    ['sha256:', 'no hex'],
    ['sha256:abc', 'short hex'],
    [SHA256_EMPTY.toUpperCase(), 'upper-case'],
    [`${SHA256_EMPTY}0`, 'long hex'],
    ['sha256:' + 'g'.repeat(64), 'not hex'],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', 'unsupported algorithm'],
    ['sha384:' + 'a'.repeat(96), 'unsupported algorithm'],
    ['../../etc/passwd', 'path'],
    ['sha256:' + 'a'.repeat(63) + '/', 'slash'],
  ])('rejects %j (%s) with DIGEST_INVALID', (input) => {
    expect(isDigest(input)).toBe(false);
    try {
      parseDigest(input);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(OciError);
      expect((err as OciError).code).toBe('DIGEST_INVALID');
      expect((err as OciError).status).toBe(400);
    }
  });

  it('names the unsupported algorithm in the message', () => {
    expect(() => parseDigest('md5:d41d8cd98f00b204e9800998ecf8427e')).toThrow(/unsupported digest algorithm: md5/);
  });
});
