// dockerd: the node's URL in daemon.json's `registry-mirrors`. Edited as text, not parsed and printed
// again, so every other setting keeps its bytes (order, indentation, number formats): the URL goes first
// in the list (mirrors are tried in order), or a new `registry-mirrors` member goes after the last one.
// JSON has no comments to mark lines with; undo removes the URL, and the member if it holds only it.
import { ConfigFileError } from './errors.js';

const KEY = 'registry-mirrors';

interface Span {
  start: number;
  end: number;
}
interface Member {
  key: string;
  keySpan: Span;
  value: Span;
}

const WS = /[ \t\n\r]*/y;
function skipWs(text: string, i: number): number {
  WS.lastIndex = i;
  WS.exec(text);
  return WS.lastIndex;
}

/** The end of the JSON value starting at `i` (the text is known to be valid JSON). */
function valueEnd(text: string, i: number): number {
  const c = text[i];
  if (c === '"') {
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; ; j++) {
      const d = text[j];
      if (d === '"') j = valueEnd(text, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') if (--depth === 0) return j + 1;
    }
  }
  const m = /[-+0-9.eEa-z]+/y;
  m.lastIndex = i;
  m.exec(text);
  return m.lastIndex;
}

/** The members of the object or elements of the array opening at `open`: their spans. */
function items(text: string, open: number): { spans: Span[]; keys: Span[]; close: number } {
  const spans: Span[] = [];
  const keys: Span[] = [];
  let i = skipWs(text, open + 1);
  const object = text[open] === '{';
  while (text[i] !== (object ? '}' : ']')) {
    if (object) {
      const keyEnd = valueEnd(text, i);
      keys.push({ start: i, end: keyEnd });
      i = skipWs(text, skipWs(text, keyEnd) + 1);
    }
    const end = valueEnd(text, i);
    spans.push({ start: i, end });
    i = skipWs(text, end);
    if (text[i] === ',') i = skipWs(text, i + 1);
  }
  return { spans, keys, close: i };
}

/** Reads daemon.json: a JSON object; refuses anything else, and a duplicate or malformed registry-mirrors. */
function readDaemonJson(text: string): { open: number; close: number; members: Member[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigFileError(`not valid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigFileError('not a JSON object');
  const open = skipWs(text, 0);
  const { spans, keys, close } = items(text, open);
  const members = spans.map((value, n) => ({ key: JSON.parse(text.slice(keys[n]!.start, keys[n]!.end)) as string, keySpan: keys[n]!, value }));
  const mirrors = members.filter((m) => m.key === KEY);
  // JSON.parse keeps the last of duplicate keys; dockerd's reader may not agree: refuse rather than guess.
  if (mirrors.length > 1) throw new ConfigFileError(`"${KEY}" appears ${mirrors.length} times`);
  const list = (doc as Record<string, unknown>)[KEY];
  if (list !== undefined && !(Array.isArray(list) && list.every((u) => typeof u === 'string'))) throw new ConfigFileError(`"${KEY}" is not a list of URLs`);
  return { open, close, members };
}

const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/** daemon.json with the node's URL first in registry-mirrors; unchanged when it is already listed. */
export function configureDocker(text: string | undefined, node: string): string {
  if (text === undefined || text.trim() === '') return `{\n  "${KEY}": [${JSON.stringify(node)}]\n}\n`;
  const { open, members } = readDaemonJson(text);
  const mirrors = members.find((m) => m.key === KEY);
  const url = JSON.stringify(node);
  if (mirrors) {
    const { spans, close: end } = items(text, mirrors.value.start);
    if (spans.some((s) => sameUrl(JSON.parse(text.slice(s.start, s.end)) as string, node))) return text;
    const at = spans[0]?.start ?? end;
    return `${text.slice(0, at)}${url}${spans.length > 0 ? ', ' : ''}${text.slice(at)}`;
  }
  const member = `"${KEY}": [${url}]`;
  const last = members[members.length - 1];
  if (!last) return `${text.slice(0, open + 1)}${member}${text.slice(open + 1)}`;
  // Indented like the first member: the whitespace between `{` and it.
  const indent = text.slice(open + 1, members[0]!.keySpan.start);
  return `${text.slice(0, last.value.end)},${indent}${member}${text.slice(last.value.end)}`;
}

/** daemon.json without the node's URL in registry-mirrors; the member goes too if it held only that URL. */
export function unconfigureDocker(text: string, node: string): string | undefined {
  if (text === configureDocker(undefined, node)) return undefined;
  const { members } = readDaemonJson(text);
  const n = members.findIndex((m) => m.key === KEY);
  if (n < 0) return text;
  const mirrors = members[n]!;
  const { spans } = items(text, mirrors.value.start);
  const k = spans.findIndex((s) => sameUrl(JSON.parse(text.slice(s.start, s.end)) as string, node));
  if (k < 0) return text;
  if (spans.length === 1) {
    // The member as configure adds it: cut it with the comma and space that joined it to its neighbour.
    if (n > 0) return `${text.slice(0, members[n - 1]!.value.end)}${text.slice(mirrors.value.end)}`;
    const next = members[n + 1];
    return `${text.slice(0, mirrors.keySpan.start)}${text.slice(next ? next.keySpan.start : mirrors.value.end)}`;
  }
  if (k === 0) return `${text.slice(0, spans[0]!.start)}${text.slice(spans[1]!.start)}`;
  return `${text.slice(0, spans[k - 1]!.end)}${text.slice(spans[k]!.end)}`;
}
