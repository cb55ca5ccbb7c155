// The architecture, checked: which folder may import which, that a folder is entered only through its
// index.ts, and that no function grows past what a reader holds in their head without saying why.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', '..', 'src');

/** What each folder may import (besides itself and the files of the folders that hold it). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  oci: [],
  io: [],
  store: ['oci', 'io'],
  seed: ['oci'],
  p2p: ['oci', 'io', 'store'],
  'distribution/registry': ['oci', 'store'],
  'distribution/download': ['oci', 'io', 'store'],
  'distribution/peers': ['oci', 'store', 'p2p', 'distribution/download'],
  'distribution/sharing': ['oci', 'store', 'p2p'],
  'distribution/pull': ['oci', 'io', 'store', 'p2p', 'seed', 'distribution/registry', 'distribution/download', 'distribution/peers'],
  'distribution/rollout': ['oci', 'distribution/pull', 'distribution/peers'],
  'distribution/ops': ['oci', 'store'],
  distribution: ['oci', 'io', 'store', 'p2p', 'seed'],
  http: ['oci', 'io', 'distribution', 'p2p'],
  node: ['oci', 'io', 'store', 'seed', 'p2p', 'distribution', 'http'],
  cli: ['oci', 'p2p', 'http', 'node'],
  // Pure text edits of runtime config files: nothing of the daemon.
  'cli/configure': [],
  'sim/dht': ['p2p'],
  // The simulator runs the distribution policy; nothing in the daemon imports it.
  sim: ['oci', 'p2p', 'distribution'],
  '.': ['cli', 'node'],
};

/** A function longer than this must say why in its leading comment, with the words "Long because". */
const MAX_FUNCTION_LINES = 80;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const files = sourceFiles(SRC).map((path) => ({ path, source: ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true) }));
const folderOf = (path: string): string => relative(SRC, dirname(path)).split(sep).join('/') || '.';

interface Edge { from: string; to: string; spec: string; folderFrom: string; folderTo: string }

const edges: Edge[] = files.flatMap(({ path, source }) =>
  source.statements.flatMap((st): Edge[] => {
    if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) || st.moduleSpecifier === undefined) return [];
    const spec = (st.moduleSpecifier as ts.StringLiteral).text;
    if (!spec.startsWith('.')) return [];
    const to = resolve(dirname(path), spec).replace(/\.js$/, '.ts');
    return [{ from: path, to, spec, folderFrom: folderOf(path), folderTo: folderOf(to) }];
  }),
);

/** The folders that hold `folder`, nearest first: distribution/pull → distribution. */
const holders = (folder: string): string[] => {
  if (folder === '.') return [];
  const parts = folder.split('/');
  return [...parts.slice(0, -1).map((_, i) => parts.slice(0, parts.length - 1 - i).join('/')), '.'];
};
/** An import a folder may always make: into the folders that hold it (their loose files), or down into its own parts. */
const inward = (e: Edge): boolean => e.folderFrom === e.folderTo || holders(e.folderFrom).includes(e.folderTo) || e.folderTo.startsWith(`${e.folderFrom === '.' ? '' : e.folderFrom}/`);

describe('architecture', () => {
  it('knows every folder under src/', () => {
    const folders = new Set(files.map(({ path }) => folderOf(path)));
    const unknown = [...folders].filter((f) => !(f in MAY_IMPORT) && !f.startsWith('http/dashboard'));
    expect(unknown).toEqual([]);
  });

  it('every folder has an index.ts that opens by saying what it does and what it must never import', () => {
    for (const folder of Object.keys(MAY_IMPORT).filter((f) => f !== '.')) {
      const text = readFileSync(join(SRC, folder, 'index.ts'), 'utf8');
      expect(text.startsWith(`// ${folder.split('/').pop()}: `), folder).toBe(true);
      expect(text.replace(/\n\/\/ +/g, ' '), folder).toMatch(/must never import/);
    }
  });

  it('imports only go down: each folder imports what its row allows', () => {
    const wrong = edges
      .filter((e) => !inward(e))
      .filter((e) => {
        const allowed = [e.folderFrom, ...holders(e.folderFrom)].flatMap((f) => MAY_IMPORT[f] ?? []);
        return !allowed.some((a) => e.folderTo === a || e.folderTo.startsWith(`${a}/`));
      })
      .map((e) => `${relative(SRC, e.from)} imports ${e.spec}`);
    expect(wrong).toEqual([]);
  });

  it('a folder is entered only through its index.ts', () => {
    const wrong = edges
      .filter((e) => e.folderFrom !== e.folderTo && !holders(e.folderFrom).includes(e.folderTo))
      .filter((e) => !e.to.endsWith(`${sep}index.ts`))
      .map((e) => `${relative(SRC, e.from)} imports ${e.spec}`);
    expect(wrong).toEqual([]);
  });

  it(`no function is longer than ${MAX_FUNCTION_LINES} lines without saying why`, () => {
    const long: string[] = [];
    for (const { path, source } of files) {
      const visit = (node: ts.Node): void => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
          const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
          const last = source.getLineAndCharacterOfPosition(node.end).line;
          // The comment above a declaration, or above the statement a function expression sits in.
          const anchor = ts.isVariableDeclaration(node.parent) ? node.parent.parent.parent : node;
          const comments = source.text.slice(anchor.getFullStart(), anchor.getStart());
          if (last - first + 1 > MAX_FUNCTION_LINES && !comments.includes('Long because')) {
            long.push(`${relative(SRC, path)}:${first + 1} (${last - first + 1} lines)`);
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(long).toEqual([]);
  });
});
