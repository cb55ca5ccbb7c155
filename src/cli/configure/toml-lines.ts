// A conservative reader of the TOML subset that runtime config files use: comments, table headers, and
// `key = value` lines whose values are strings, numbers, booleans, arrays (over several lines too) and
// one-line inline tables. It does not build a document: it says which lines hold what, so an editor can
// insert or remove whole lines and leave every other byte alone. Anything else (multi-line strings, a
// line it cannot read) is refused, naming the line: editing text we do not understand could break it.
import { ConfigFileError } from './errors.js';

export type TomlStatement =
  | { kind: 'header'; array: boolean; path: string[]; first: number; last: number }
  | { kind: 'pair'; key: string[]; value: TomlValue; first: number; last: number };

/** A value as written: a string's decoded text, or the raw text of anything else. */
export type TomlValue = { kind: 'string'; text: string } | { kind: 'other'; raw: string };

/** The file's lines, each without its line end, and what the statements on them are. */
export interface TomlLines {
  lines: string[];
  statements: TomlStatement[];
}

const BARE_KEY = /^[A-Za-z0-9_-]+/;

/** Reads a dotted key (`a."b.c".d`) from the start of `s`; returns its parts and the rest. */
function readKey(s: string, where: string): { parts: string[]; rest: string } {
  const parts: string[] = [];
  let rest = s.trimStart();
  for (;;) {
    if (rest.startsWith('"') || rest.startsWith("'")) {
      const str = readString(rest, where);
      parts.push(str.text);
      rest = str.rest;
    } else {
      const m = BARE_KEY.exec(rest);
      if (!m) throw new ConfigFileError(`${where}: cannot read a key in ${JSON.stringify(s.trim().slice(0, 60))}`);
      parts.push(m[0]);
      rest = rest.slice(m[0].length);
    }
    rest = rest.trimStart();
    if (!rest.startsWith('.')) return { parts, rest };
    rest = rest.slice(1).trimStart();
  }
}

/** Reads one single-line basic ("…") or literal ('…') string from the start of `s`. */
function readString(s: string, where: string): { text: string; rest: string } {
  if (s.startsWith('"""') || s.startsWith("'''")) throw new ConfigFileError(`${where}: multi-line strings are not supported here`);
  const quote = s[0];
  if (quote === "'") {
    const end = s.indexOf("'", 1);
    if (end < 0) throw new ConfigFileError(`${where}: unterminated string`);
    return { text: s.slice(1, end), rest: s.slice(end + 1) };
  }
  let i = 1;
  while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
  if (i >= s.length) throw new ConfigFileError(`${where}: unterminated string`);
  let text: string;
  try {
    // A TOML basic string's escapes are JSON's plus \UXXXXXXXX and \e; those two are refused by JSON.parse.
    text = JSON.parse(s.slice(0, i + 1)) as string;
  } catch {
    throw new ConfigFileError(`${where}: cannot read the string ${s.slice(0, i + 1).slice(0, 60)}`);
  }
  return { text, rest: s.slice(i + 1) };
}

/** What may follow a statement on its line: nothing but spaces and a comment. */
function expectEnd(rest: string, where: string): void {
  const r = rest.trim();
  if (r !== '' && !r.startsWith('#')) throw new ConfigFileError(`${where}: unexpected ${JSON.stringify(r.slice(0, 40))}`);
}

/**
 * Scans a value that opens with [ or { up to its matching close, through as many lines as it takes;
 * strings and comments inside are skipped. Returns the index of the line it ends on and the text after it.
 */
function scanBracketed(lines: string[], first: number, start: string, where: string): { last: number; rest: string; raw: string } {
  let depth = 0;
  let line = first;
  let s = start;
  let raw = '';
  for (;;) {
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c === '"' || c === "'") {
        const str = readString(s.slice(i), where);
        i = s.length - str.rest.length - 1;
      } else if (c === '#') {
        if (depth === 0) break;
        i = s.length;
      } else if (c === '[' || c === '{') depth++;
      else if (c === ']' || c === '}') {
        depth--;
        if (depth === 0) return { last: line, rest: s.slice(i + 1), raw: raw + s.slice(0, i + 1) };
      }
    }
    raw += `${s}\n`;
    line++;
    if (line >= lines.length) throw new ConfigFileError(`${where}: unterminated array or inline table`);
    s = lines[line]!;
  }
}

/** Reads the value of a `key = value` line; the statement may span lines (arrays). */
function readValue(lines: string[], first: number, text: string, where: string): { value: TomlValue; last: number } {
  const s = text.trimStart();
  if (s.startsWith('"') || s.startsWith("'")) {
    const str = readString(s, where);
    expectEnd(str.rest, where);
    return { value: { kind: 'string', text: str.text }, last: first };
  }
  if (s.startsWith('[') || s.startsWith('{')) {
    const b = scanBracketed(lines, first, s, where);
    expectEnd(b.rest, `line ${b.last + 1}`);
    return { value: { kind: 'other', raw: b.raw }, last: b.last };
  }
  const m = /^[A-Za-z0-9_.:+-]+/.exec(s);
  if (!m) throw new ConfigFileError(`${where}: cannot read the value ${JSON.stringify(s.slice(0, 40))}`);
  expectEnd(s.slice(m[0].length), where);
  return { value: { kind: 'other', raw: m[0] }, last: first };
}

/** Splits `text` into lines and statements; throws ConfigFileError at the first line it cannot read. */
export function scanToml(text: string): TomlLines {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const statements: TomlStatement[] = [];
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/\r$/, '');
    const where = `line ${n + 1}`;
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    if (t.startsWith('[')) {
      const array = t.startsWith('[[');
      const { parts, rest } = readKey(t.slice(array ? 2 : 1), where);
      const close = array ? ']]' : ']';
      if (!rest.startsWith(close)) throw new ConfigFileError(`${where}: cannot read the table header ${JSON.stringify(t.slice(0, 60))}`);
      expectEnd(rest.slice(close.length), where);
      statements.push({ kind: 'header', array, path: parts, first: n, last: n });
      continue;
    }
    const { parts, rest } = readKey(line, where);
    if (!rest.startsWith('=')) throw new ConfigFileError(`${where}: want key = value, got ${JSON.stringify(t.slice(0, 60))}`);
    const { value, last } = readValue(lines, n, rest.slice(1), where);
    statements.push({ kind: 'pair', key: parts, value, first: n, last });
    n = last;
  }
  return { lines, statements };
}

/** One table of the file: its header (none for the top-level keys) and the pairs under it. */
export interface TomlTable {
  header?: Extract<TomlStatement, { kind: 'header' }>;
  pairs: Array<Extract<TomlStatement, { kind: 'pair' }>>;
}

/** The statements grouped by table, in file order; the first group holds the top-level pairs. */
export function tables(scan: TomlLines): TomlTable[] {
  const out: TomlTable[] = [{ pairs: [] }];
  for (const st of scan.statements) {
    if (st.kind === 'header') out.push({ header: st, pairs: [] });
    else out[out.length - 1]!.pairs.push(st);
  }
  return out;
}

/** The decoded string value of `key` in a table, if it is set to a string. */
export function stringValue(table: TomlTable, key: string): string | undefined {
  const pair = table.pairs.find((p) => p.key.length === 1 && p.key[0] === key);
  return pair?.value.kind === 'string' ? pair.value.text : undefined;
}
