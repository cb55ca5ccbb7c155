// Property test for the configuration parsers: any value for any option, from a flag, the environment
// or the YAML file, gives a Config or a ConfigError naming that option (the CLI prints it on one line
// and exits 2), never another exception.
import fc from 'fast-check';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig, OPTIONS, parseBytes, parseHostPort } from '../../../src/node/config.js';

const names = Object.values(OPTIONS).map((o) => o.name);
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('0', '-1', '1e400', 'NaN', '127.0.0.1:99999', '[::1]:0', '10GiB', '0.5', 'true', '/ip4/1.2.3.4/tcp/1', 'a=b', 'docker.io=ftp://x', 'x=http://u:p@h'));
const yamlValue = fc.oneof(text, fc.jsonValue(), fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.dictionary(fc.constantFrom('url', 'username', 'password', 'x'), fc.jsonValue()))));

function configOrError(load: () => unknown, name?: string): void {
  try {
    load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    if (name) expect([name, 'disk-low-watermark']).toContain(err.key);
  }
}

describe('config parsers', () => {
  it('a flag or environment value of any option loads or is a ConfigError naming the option', () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), text, (name, value) => {
        configOrError(() => loadConfig({ flags: { [name]: value } }), name);
        configOrError(() => loadConfig({ env: { [envName(name)]: value } }), name);
      }),
      { numRuns: 2_000 },
    );
  });

  it('a YAML file of any shape loads or is a ConfigError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'layerd-config-prop-'));
    const file = join(dir, 'layerd.yml');
    fc.assert(
      fc.property(fc.oneof(fc.dictionary(fc.constantFrom(...names, 'nope'), yamlValue), yamlValue, fc.constantFrom('a: [', ': :', '- 1\n- 2', 'listen: {a: 1}', '\t\t')), (doc) => {
        writeFileSync(file, stringify(doc));
        configOrError(() => loadConfig({ file }));
      }),
      { numRuns: 200 },
    );
  });

  it('addresses and sizes round-trip', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.domain(), fc.ipV6().map((ip) => `[${ip}]`)), fc.integer({ min: 0, max: 65535 }), (host, port) => {
        expect(parseHostPort(`${host}:${port}`)).toEqual({ host: host.replace(/^\[|\]$/g, ''), port });
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(parseBytes(String(n))).toBe(n);
      }),
    );
  });
});
