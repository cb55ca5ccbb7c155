// `layerd configure`'s pure edits: each keeps every other setting (and comments, where the format has
// them), a second run changes nothing, undo gives back the original byte for byte, and a file it cannot
// read is refused. Also the diff --dry-run prints and containerd's config_path check.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigFileError,
  configureDocker,
  configureHostsToml,
  configurePodman,
  criConfigPath,
  unconfigureDocker,
  unconfigureHostsToml,
  unconfigurePodman,
  unifiedDiff,
} from '../../../src/cli/configure/index.js';
import { scanToml } from '../../../src/cli/configure/toml-lines.js';

const NODE = 'http://127.0.0.1:5000';

describe('configure docker (daemon.json)', () => {
  const files = [
    '{\n    "debug": true,\n    "log-opts": {"max-size": "10m", "max-file": "3"},\n    "bip": "10.1.0.1/24"\n}\n',
    '{"debug":true}',
    '{}\n',
    '{\n}',
    '{\n  "registry-mirrors": ["https://mirror.gcr.io"],\n  "n": 1.50e3\n}\n',
    '{\n  "insecure-registries": ["a:5000"],\n  "registry-mirrors": [\n    "https://a.example",\n    "https://b.example"\n  ]\n}\n',
  ];

  it.each(files)('adds the node first, keeps the rest, is idempotent and undone byte for byte: %j', (before) => {
    const after = configureDocker(before, NODE);
    const doc = JSON.parse(after) as Record<string, unknown>;
    const was = JSON.parse(before) as Record<string, unknown>;
    expect((doc['registry-mirrors'] as string[])[0]).toBe(NODE);
    expect(doc['registry-mirrors']).toEqual([NODE, ...((was['registry-mirrors'] as string[] | undefined) ?? [])]);
    for (const [k, v] of Object.entries(was)) if (k !== 'registry-mirrors') expect(doc[k]).toEqual(v);
    expect(configureDocker(after, NODE)).toBe(after);
    expect(unconfigureDocker(after, NODE)).toBe(before);
  });

  it('round-trips any JSON object, however it is formatted', () => {
    const settings = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== 'registry-mirrors' && k !== '__proto__'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 });
    const mirrors = fc.option(fc.array(fc.webUrl(), { maxLength: 3 }), { nil: undefined });
    fc.assert(
      fc.property(settings, mirrors, fc.constantFrom(undefined, 2, 4, '\t'), (obj, list, indent) => {
        const before = JSON.stringify(list === undefined ? obj : { ...obj, 'registry-mirrors': list }, null, indent);
        const after = configureDocker(before, NODE);
        expect(JSON.parse(after)).toEqual({ ...JSON.parse(before), 'registry-mirrors': [NODE, ...(list ?? [])] });
        expect(configureDocker(after, NODE)).toBe(after);
        if (list?.length !== 0) expect(unconfigureDocker(after, NODE)).toBe(before);
      }),
    );
  });

  it('keeps the indentation of the file for a new member', () => {
    expect(configureDocker('{\n    "debug": true\n}\n', NODE)).toBe(`{\n    "debug": true,\n    "registry-mirrors": ["${NODE}"]\n}\n`);
  });

  it('creates the file when there is none, and undo removes it', () => {
    const made = configureDocker(undefined, NODE);
    expect(JSON.parse(made)).toEqual({ 'registry-mirrors': [NODE] });
    expect(unconfigureDocker(made, NODE)).toBeUndefined();
  });

  it('changes nothing when the node is already listed (a trailing slash is the same URL)', () => {
    const text = `{"registry-mirrors": ["https://x.example", "${NODE}/"]}`;
    expect(configureDocker(text, NODE)).toBe(text);
  });

  it('undo removes the node wherever it is in the list, and only it', () => {
    expect(unconfigureDocker(`{"registry-mirrors": ["https://a", "${NODE}", "https://b"]}`, NODE)).toBe('{"registry-mirrors": ["https://a", "https://b"]}');
    expect(unconfigureDocker(`{"registry-mirrors": ["https://a", "${NODE}"]}`, NODE)).toBe('{"registry-mirrors": ["https://a"]}');
    expect(unconfigureDocker('{"debug": true}', NODE)).toBe('{"debug": true}');
  });

  it.each([
    ['{"debug": true,}', /not valid JSON/],
    ['// comment\n{}', /not valid JSON/],
    ['[1, 2]', /not a JSON object/],
    ['{"registry-mirrors": "http://x"}', /not a list/],
    ['{"registry-mirrors": [], "registry-mirrors": []}', /appears 2 times/],
  ])('refuses %j', (text, message) => {
    expect(() => configureDocker(text, NODE)).toThrow(ConfigFileError);
    expect(() => configureDocker(text, NODE)).toThrow(message);
  });
});

describe('configure containerd (hosts.toml)', () => {
  it('writes a new file whole, marked; a rerun changes nothing; undo removes the file', () => {
    const made = configureHostsToml(undefined, 'docker.io', NODE);
    expect(made).toContain('server = "https://registry-1.docker.io"');
    expect(made).toContain(`[host."${NODE}"]\n  capabilities = ["pull", "resolve"]`);
    expect(configureHostsToml(made, 'docker.io', NODE)).toBe(made);
    expect(unconfigureHostsToml(made)).toBeUndefined();
    expect(configureHostsToml(undefined, 'registry.example:5000', NODE)).toContain('server = "https://registry.example:5000"');
  });

  it('rewrites its own file for a new node address', () => {
    const made = configureHostsToml(undefined, 'docker.io', NODE);
    const moved = configureHostsToml(made, 'docker.io', 'http://127.0.0.1:5100');
    expect(moved).toContain('[host."http://127.0.0.1:5100"]');
    expect(moved).not.toContain(NODE);
  });

  it('puts the node first in an existing file, keeping its comments and hosts; undo restores it byte for byte', () => {
    const before = '# our mirror setup\nserver = "https://registry.example"\n\n[host."https://cache.internal"]  # the old cache\n  capabilities = ["pull", "resolve"]\n  skip_verify = false\n';
    const after = configureHostsToml(before, 'registry.example', NODE);
    const lines = after.split('\n');
    expect(lines.findIndex((l) => l.includes(NODE))).toBeLessThan(lines.findIndex((l) => l.includes('cache.internal')));
    expect(after).toContain('# our mirror setup');
    expect(after).toContain('# the old cache');
    expect(configureHostsToml(after, 'registry.example', NODE)).toBe(after);
    expect(unconfigureHostsToml(after)).toBe(before);
  });

  it('leaves a file that already lists the node as it is', () => {
    const text = `server = "https://docker.io"\n[host."${NODE}"]\n  capabilities = ["pull"]\n`;
    expect(configureHostsToml(text, 'docker.io', NODE)).toBe(text);
  });

  it.each([
    ['server = """\nx\n"""\n', /multi-line/],
    ['server = "https://x"\n[host."http://a"\n', /table header/],
    ['this is not toml\n', /key = value/],
    ['[host."http://a"]\n  capabilities = ["pull",\n', /unterminated/],
  ])('refuses %j', (text, message) => {
    expect(() => configureHostsToml(text, 'docker.io', NODE)).toThrow(message);
  });

  it('finds the CRI registry config_path in a v2 or v3 config.toml, and says when there is none', () => {
    expect(criConfigPath('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n')).toBe('/etc/containerd/certs.d');
    expect(criConfigPath('version = 3\n[plugins]\n  [plugins."io.containerd.cri.v1.images".registry]\n    config_path = "/x"\n')).toBe('/x');
    expect(criConfigPath('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry.config_path = "/y"\n')).toBe('/y');
    // Debian's own config.toml: CRI on, no config_path.
    expect(criConfigPath('version = 2\n\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    [plugins."io.containerd.grpc.v1.cri".cni]\n      bin_dir = "/usr/lib/cni"\n')).toBeUndefined();
  });
});

describe('configure podman (registries.conf)', () => {
  const plan = { registries: ['docker.io'], node: NODE };
  const shipped = '# An example registries.conf\n# unqualified-search-registries = ["example.com"]\n\nunqualified-search-registries = ["docker.io", "quay.io"]\n\n[aliases]\n  "fedora" = "registry.fedoraproject.org/fedora"\n';

  it('adds a marked [[registry]] with the node as its mirror at the end; rerun is a no-op; undo is byte-identical', () => {
    const after = configurePodman(shipped, plan);
    expect(after.startsWith(shipped)).toBe(true);
    expect(after.slice(shipped.length)).toContain('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n');
    expect(configurePodman(after, plan)).toBe(after);
    expect(unconfigurePodman(after)).toBe(shipped);
  });

  it('adds the mirror first inside an existing [[registry]] for the registry, keeping its settings and mirrors', () => {
    const before = '[[registry]]\n# the registry\nprefix = "docker.io"\nlocation = "docker.io"\nblocked = false\n[[registry.mirror]]\nlocation = "mirror.example"\n\n[[registry]]\nlocation = "quay.io"\n';
    const after = configurePodman(before, plan);
    expect(after.split('\n').filter((l) => l === '[[registry]]')).toHaveLength(2);
    expect(after.indexOf('127.0.0.1:5000')).toBeLessThan(after.indexOf('mirror.example'));
    expect(after.indexOf('127.0.0.1:5000')).toBeGreaterThan(after.indexOf('blocked = false'));
    expect(configurePodman(after, plan)).toBe(after);
    expect(unconfigurePodman(after)).toBe(before);
  });

  it('adds the mirror at the end of a [[registry]] that has none, before the next table', () => {
    const before = '[[registry]]\nlocation = "127.0.0.1:5999"\ninsecure = true\n\n[aliases]\n  "x" = "y/x"\n';
    const after = configurePodman(before, { registries: ['127.0.0.1:5999'], node: 'http://127.0.0.1:5100' });
    expect(after.indexOf('127.0.0.1:5100')).toBeLessThan(after.indexOf('[aliases]'));
    expect(unconfigurePodman(after)).toBe(before);
  });

  it('handles a file without a final line end, an empty file and no file', () => {
    const noEol = 'unqualified-search-registries = ["docker.io"]';
    expect(unconfigurePodman(configurePodman(noEol, plan))).toBe(noEol);
    expect(unconfigurePodman(configurePodman('', plan))).toBe('');
    expect(unconfigurePodman(configurePodman(undefined, plan))).toBe('');
  });

  it('uses a secure mirror for an https node', () => {
    const after = configurePodman('', { registries: ['docker.io'], node: 'https://node.example:5000' });
    expect(after).toContain('location = "node.example:5000"');
    expect(after).not.toContain('insecure');
  });

  it.each([
    ['[registries.search]\nregistries = ["docker.io"]\n', /v1/],
    ['[[registry]]\nlocation = "docker.io"\n[[registry]]\nprefix = "docker.io"\nlocation = "x"\n', /second \[\[registry\]\] for docker.io/],
    ['[[registry]]\ninsecure = true\n', /without a prefix or location/],
    ['# >>> layerd configure: added lines; `layerd configure <runtime> --undo` removes them\n[[registry]]\n', /marker without its pair/],
    ['x = \'\'\'\nmulti\n\'\'\'\n', /multi-line/],
  ])('refuses %j', (text, message) => {
    expect(() => configurePodman(text, plan)).toThrow(message);
  });
});

describe('the TOML scanner', () => {
  it('reads headers, dotted and quoted keys, and arrays over several lines with comments and brackets in strings', () => {
    const scan = scanToml('a.b = 1\n[x."y.z"]\nlist = [\n  "]", # a comment ]\n  \'[\',\n]\nt = { k = "v" } # c\n');
    expect(scan.statements.map((s) => (s.kind === 'header' ? `[${s.path.join('|')}]` : `${s.key.join('|')}@${s.first}-${s.last}`))).toEqual(['a|b@0-0', '[x|y.z]', 'list@2-5', 't@6-6']);
  });
});

describe('the unified diff', () => {
  it('shows an insertion with three lines of context, and nothing for equal texts', () => {
    const before = 'a\nb\nc\nd\ne\nf\n';
    const after = 'a\nb\nc\nd\nX\ne\nf\n';
    expect(unifiedDiff(before, after, 'f', 'f')).toBe('--- f\n+++ f\n@@ -2,5 +2,6 @@\n b\n c\n d\n+X\n e\n f\n');
    expect(unifiedDiff(before, before, 'f', 'f')).toBe('');
  });

  it('shows a new file against /dev/null, and a missing final line end', () => {
    expect(unifiedDiff('', 'x\n', '/dev/null', 'f')).toBe('--- /dev/null\n+++ f\n@@ -0,0 +1,1 @@\n+x\n');
    expect(unifiedDiff('x', 'x\ny', 'f', 'f')).toBe('--- f\n+++ f\n@@ -1,1 +1,2 @@\n-x\n\\ No newline at end of file\n+x\n+y\n\\ No newline at end of file\n');
  });

  it('makes two hunks of changes far apart', () => {
    const before = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n') + '\n';
    const after = before.replace('l1\n', 'L1\n').replace('l18\n', 'L18\n');
    expect(unifiedDiff(before, after, 'f', 'f').match(/^@@/gm)).toHaveLength(2);
  });
});
