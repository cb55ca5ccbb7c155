// A full garbage collection on demand, without `--expose-gc` on the command line (which would leave gc() on the
// global object for any code to call): gc() is exposed to one new context, once, and kept here.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** Runs one full (mark-compact) collection now, on this thread. */
export function collectFully(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    setFlagsFromString('--no-expose-gc');
  }
  gc();
}
