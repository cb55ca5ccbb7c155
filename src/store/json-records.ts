// A folder of small JSON records, one file per id, written atomically: how a node keeps what it must
// resume after a restart (running rollouts).
import { join } from 'node:path';
import { readOrUndefined, readdirOrEmpty, removeFile, writeAtomic } from './fs-util.js';

const ID = /^[0-9a-zA-Z-]{1,64}$/;

export class JsonRecords<T> {
  constructor(private readonly dir: string) {}

  async save(id: string, record: T): Promise<void> {
    if (!ID.test(id)) throw new Error(`bad record id ${JSON.stringify(id)}`);
    await writeAtomic(join(this.dir, `${id}.json`), JSON.stringify(record));
  }

  async remove(id: string): Promise<void> {
    if (ID.test(id)) await removeFile(join(this.dir, `${id}.json`));
  }

  /** Every record that parses; a damaged one (a crash mid-write cannot make one) is skipped. */
  async load(): Promise<T[]> {
    const out: T[] = [];
    for (const name of await readdirOrEmpty(this.dir)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue; // a temp file is a write in progress
      const text = await readOrUndefined(join(this.dir, name));
      try {
        if (text) out.push(JSON.parse(text) as T);
      } catch {
        // skipped
      }
    }
    return out;
  }
}
