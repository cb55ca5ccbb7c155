// The CLI's pure parts: sizes and tables, error bodies, platforms, image arguments, node URLs.
import { describe, expect, it } from 'vitest';
import { UsageError, parseNodeUrl } from '../../../src/cli/command.js';
import { humanBytes, percent, shortDigest, table } from '../../../src/cli/format.js';
import { formatImages } from '../../../src/cli/images.js';
import { fetchFailureReason, parseErrorBody } from '../../../src/cli/node-client.js';
import { parseImageArg, parsePlatform } from '../../../src/cli/pull.js';
import { formatStatus } from '../../../src/cli/status.js';

describe('format', () => {
  it('shows sizes in binary units with three significant digits', () => {
    expect(humanBytes(0)).toBe('0 B');
    expect(humanBytes(1023)).toBe('1023 B');
    expect(humanBytes(1536)).toBe('1.50 KiB');
    expect(humanBytes(15 * 1024 * 1024)).toBe('15.0 MiB');
    expect(humanBytes(150 * 1024 ** 3)).toBe('150 GiB');
    expect(humanBytes(undefined)).toBe('-');
  });

  it('shows percentages, short digests and aligned tables', () => {
    expect(percent(1, 4)).toBe('25%');
    expect(percent(1, 0)).toBe('-');
    expect(shortDigest(`sha256:${'ab'.repeat(32)}`)).toBe('sha256:abababababab');
    expect(table(['A', 'LONGER'], [['xyz', '1']])).toBe('A    LONGER\nxyz  1');
  });

  it('lists images with "local" ones under their repository alone', () => {
    const text = formatImages([
      { registry: 'seed:5000', repository: 'team/app', tags: ['v1', 'latest'], digest: `sha256:${'0'.repeat(64)}`, size: 2048, heldBytes: 1024 },
      { registry: 'local', repository: 'mine', tags: [], digest: `sha256:${'1'.repeat(64)}`, size: 10, heldBytes: 10 },
    ]).split('\n');
    expect(text[1]).toMatch(/^seed:5000\/team\/app\s+v1,latest\s+sha256:000000000000\s+2.00 KiB\s+50%$/);
    expect(text[2]).toMatch(/^mine\s+<none>\s+sha256:111111111111\s+10 B\s+100%$/);
  });

  it('shows a status without P2P, store or stats without failing', () => {
    const text = formatStatus({ version: '1.2.3', url: 'http://127.0.0.1:5000' });
    expect(text).toContain('layerd 1.2.3');
    expect(text).toMatch(/peer id\s+none \(peer-to-peer off\)/);
    expect(text).toMatch(/hit ratio\s+-/);
  });
});

describe('node client errors', () => {
  it('takes the first OCI error, or what a non-OCI body says', () => {
    expect(parseErrorBody('Not Found', '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')).toEqual({ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' });
    expect(parseErrorBody('Not Found', '{"message":"Route GET:/api/x not found","error":"Not Found","statusCode":404}')).toEqual({ code: 'Not Found', message: 'Route GET:/api/x not found' });
    expect(parseErrorBody('Bad Gateway', '<html>\n bad\n</html>')).toEqual({ code: 'Bad Gateway', message: '<html> bad </html>' });
  });

  it("names a failed connection's cause", () => {
    const err = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' } });
    expect(fetchFailureReason(err)).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(fetchFailureReason(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe('timed out');
  });
});

describe('arguments', () => {
  it('parses image references once, with docker.io as the default registry', () => {
    expect(parseImageArg('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: 'latest' });
    expect(parseImageArg('registry.example:5000/team/app:v1')).toMatchObject({ registry: 'registry.example:5000', repository: 'team/app', tag: 'v1' });
    expect(() => parseImageArg('Bad Name')).toThrow(UsageError);
    expect(() => parseImageArg('app@sha256:12')).toThrow(UsageError);
  });

  it('parses platforms as os/arch[/variant]', () => {
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/amd 64']) expect(() => parsePlatform(bad)).toThrow(UsageError);
  });

  it('takes node URLs with or without a scheme, and nothing but http(s)', () => {
    expect(parseNodeUrl('http://127.0.0.1:5000/')).toBe('http://127.0.0.1:5000');
    expect(parseNodeUrl('localhost:5000')).toBe('http://localhost:5000');
    expect(() => parseNodeUrl('ftp://x')).toThrow(UsageError);
    expect(() => parseNodeUrl('http://x/?a=1')).toThrow(UsageError);
  });
});
