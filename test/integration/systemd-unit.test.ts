// compose/systemd/layerd.service: `systemd-analyze verify` passes it clean (no warning at all), it keeps
// the hardening it promises, systemd's own exposure score rates it OK or better, and the variables its
// example env file sets are ones `layerd serve` reads. verify needs the ExecStart binary to exist: the
// test checks a copy whose ExecStart is this checkout's dist/cli.js (the file the installed bin links to).
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/clients.js';
import { layerdBin, removeDir, repoRoot, runCli, tempDir } from '../helpers/processes.js';

const UNIT = join(repoRoot, 'compose', 'systemd', 'layerd.service');
const ENV_EXAMPLE = join(repoRoot, 'compose', 'systemd', 'layerd.env');
const INSTALLED_BIN = '/usr/local/bin/layerd';

let dir: string;
let unitCopy: string;
let unit: string;

beforeAll(async () => {
  await requireTool('systemd-analyze');
  dir = await tempDir('layerd-systemd-');
  unit = await readFile(UNIT, 'utf8');
  // The same file name: verify names the unit after it.
  unitCopy = join(dir, 'layerd.service');
  await writeFile(unitCopy, unit.replaceAll(INSTALLED_BIN, layerdBin));
});

afterAll(async () => {
  if (dir) await removeDir(dir);
});

/** The unit's settings as key → values (a key may repeat), comments left out. */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('the systemd unit', () => {
  it('runs the installed bin, which the test copy replaces by this checkout\'s', () => {
    expect(settings(unit).get('ExecStart')).toEqual([`${INSTALLED_BIN} serve`]);
  });

  it('passes systemd-analyze verify with no output at all', () => {
    const res = spawnSync('systemd-analyze', ['verify', unitCopy], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: res.status, stdout: res.stdout, stderr: res.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it('is hardened: its own user and state dir, a read-only system, no home, private /tmp, no new privileges, restarts on failure', () => {
    const s = settings(unit);
    const one = (key: string) => s.get(key)?.[0];
    expect(one('DynamicUser')).toBe('yes');
    expect(one('StateDirectory')).toBe('layerd');
    expect(s.get('Environment')).toContain('LAYERD_DATA_DIR=%S/layerd');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('Restart')).toBe('on-failure');
  });

  it("rates OK or better on systemd's own exposure score", () => {
    const res = spawnSync('systemd-analyze', ['security', '--offline=yes', unitCopy], { encoding: 'utf8', timeout: 60_000 });
    const level = /Overall exposure level for layerd\.service: ([\d.]+) (\w+)/.exec(res.stdout);
    expect(level, res.stdout + res.stderr).not.toBeNull();
    expect(['SAFE', 'OK']).toContain(level![2]);
  });

  it('documents only variables layerd serve reads', async () => {
    const help = await runCli(['serve', '--help']);
    const known = new Set(help.stdout.match(/LAYERD_[A-Z0-9_]+/g));
    const used = [...(await readFile(ENV_EXAMPLE, 'utf8')).matchAll(/^#?(LAYERD_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(3);
    expect(used.filter((v) => !known.has(v))).toEqual([]);
    const fromUnit = (settings(unit).get('Environment') ?? []).map((e) => e.split('=')[0]!);
    expect(fromUnit.filter((v) => !known.has(v))).toEqual([]);
  });
});
