// Pull progress on stderr. On a terminal: a live block of one bar per blob being transferred and a total
// line, redrawn in place at most 10 times a second; each finished blob leaves one permanent line above
// the block, so the block never grows past the number of parallel transfers. Elsewhere (a log, a pipe):
// only the permanent line per finished blob.
import { humanBytes, percent } from './format.js';

export interface Progress {
  /** A transfer began; `total` is the size the manifest gives. */
  start(id: string, label: string, total: number): void;
  advance(id: string, bytes: number): void;
  /** The transfer ended well; `line` is what is left on screen for it. */
  done(id: string, line: string): void;
  /** The transfer failed (the caller reports why). */
  fail(id: string): void;
  /** Removes the live block. */
  close(): void;
}

interface Bar {
  label: string;
  total: number;
  bytes: number;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 24;

export function createProgress(stream: NodeJS.WriteStream, opts: { quiet?: boolean; blobs: number }): Progress {
  if (stream.isTTY) return new TerminalProgress(stream, opts.blobs);
  if (opts.quiet) return { start() {}, advance() {}, done() {}, fail() {}, close() {} };
  return {
    start() {},
    advance() {},
    done: (_id, line) => void stream.write(`${line}\n`),
    fail() {},
    close() {},
  };
}

class TerminalProgress implements Progress {
  private readonly bars = new Map<string, Bar>();
  /** Lines of the live block now on screen, to move back over them. */
  private drawn = 0;
  private lastDraw = 0;
  private finished = 0;
  private doneBytes = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly blobs: number,
  ) {}

  start(id: string, label: string, total: number): void {
    this.bars.set(id, { label, total, bytes: 0 });
    this.draw(true);
  }

  advance(id: string, bytes: number): void {
    const bar = this.bars.get(id);
    if (!bar) return;
    bar.bytes += bytes;
    this.draw(false);
  }

  done(id: string, line: string): void {
    const bar = this.bars.get(id);
    this.bars.delete(id);
    this.finished++;
    this.doneBytes += bar?.bytes ?? 0;
    this.draw(true, line);
  }

  fail(id: string): void {
    this.bars.delete(id);
    this.finished++;
    this.draw(true);
  }

  close(): void {
    this.clear();
  }

  /** Redraws the block, first printing `permanent` where the block was (so it scrolls up and stays). */
  private draw(force: boolean, permanent?: string): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    // columns is 0 on a terminal that never said its size (e.g. under script(1)).
    const width = Math.max(20, (this.out.columns || 80) - 1);
    // Lines are cut to the terminal's width: a wrapped line would break the count of lines to move up.
    const lines = [...this.bars.values()].map((b) => renderBar(b).slice(0, width));
    const moving = [...this.bars.values()].reduce((n, b) => n + b.bytes, 0);
    lines.push(`${this.finished}/${this.blobs} blobs, ${humanBytes(this.doneBytes + moving)}`.slice(0, width));
    let text = this.moveUp();
    if (permanent !== undefined) text += `\x1b[2K${permanent}\n`;
    for (const l of lines) text += `\x1b[2K${l}\n`;
    // A shorter block than before: blank what is left of the old one and come back up.
    const printed = lines.length + (permanent === undefined ? 0 : 1);
    if (this.drawn > printed) text += `${'\x1b[2K\n'.repeat(this.drawn - printed)}\x1b[${this.drawn - printed}A\r`;
    this.out.write(text);
    this.drawn = lines.length;
  }

  private moveUp(): string {
    return this.drawn > 0 ? `\x1b[${this.drawn}A\r` : '';
  }

  private clear(): void {
    if (this.drawn === 0) return;
    let text = this.moveUp();
    for (let i = 0; i < this.drawn; i++) text += '\x1b[2K\n';
    this.out.write(`${text}${this.moveUp()}`);
    this.drawn = 0;
  }
}

function renderBar(b: Bar): string {
  const fraction = b.total > 0 ? Math.min(1, b.bytes / b.total) : 0;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === BAR_WIDTH ? '=' : '>') : ''}${' '.repeat(BAR_WIDTH - filled)}]`;
  return `${b.label}  ${bar}  ${humanBytes(b.bytes)} / ${humanBytes(b.total)}  ${percent(b.bytes, b.total)}`;
}
