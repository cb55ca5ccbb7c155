// Lines that `layerd configure` adds to a TOML file go between two marker comments, so that --undo can
// remove exactly them (and a second run can find and replace them) without understanding the rest.
// Inserting and removing work on whole lines: undo gives back the file byte for byte.

const BEGIN = '# >>> layerd configure: added lines; `layerd configure <runtime> --undo` removes them';
const END = '# <<< layerd configure';

/** The marked block holding `body` (lines without line ends). */
export function markedBlock(body: string[]): string[] {
  return [BEGIN, ...body, END];
}

/** Line ranges [first, last] of the marked blocks in `lines`; a begin without its end is refused by the caller. */
export function markedRanges(lines: string[]): { ranges: Array<[number, number]>; broken: boolean } {
  const ranges: Array<[number, number]> = [];
  let open = -1;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.trim();
    if (t === BEGIN) {
      if (open >= 0) return { ranges, broken: true };
      open = i;
    } else if (t === END) {
      if (open < 0) return { ranges, broken: true };
      ranges.push([open, i]);
      open = -1;
    }
  }
  return { ranges, broken: open >= 0 };
}

/** Splits text into lines, remembering whether it ended with a line end. */
export function splitLines(text: string): { lines: string[]; endsWithNewline: boolean } {
  const lines = text.split('\n');
  const endsWithNewline = lines[lines.length - 1] === '';
  if (endsWithNewline) lines.pop();
  return { lines, endsWithNewline: endsWithNewline || text === '' };
}

/**
 * Inserts lines before line `at` (lines.length: at the end). A file that did not end with a line end
 * gets one only for the insertion at its end, and keeps its missing one: `removeMarked` undoes it exactly.
 */
export function insertLines(text: string, at: number, added: string[]): string {
  const { lines, endsWithNewline } = splitLines(text);
  if (at >= lines.length && !endsWithNewline) return `${text}\n${added.join('\n')}`;
  const out = [...lines.slice(0, at), ...added, ...lines.slice(at)];
  return `${out.join('\n')}${endsWithNewline ? '\n' : ''}`;
}

/** Removes every marked block (and the line end an insertion at the end of a file added). */
export function removeMarked(text: string): string {
  const { lines, endsWithNewline } = splitLines(text);
  const { ranges } = markedRanges(lines);
  if (ranges.length === 0) return text;
  const drop = new Set(ranges.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i)));
  const kept = lines.filter((_, i) => !drop.has(i));
  const lastWasMarked = drop.has(lines.length - 1);
  // A block at the very end of a file without a final line end was appended after one we added.
  if (lastWasMarked && !endsWithNewline) return kept.join('\n');
  return kept.length === 0 ? '' : `${kept.join('\n')}${endsWithNewline ? '\n' : ''}`;
}
