// `layerd rollout IMAGE`: asks a node to have every node of the cluster pre-fetch an image (POST
// /api/rollouts), and with --wait follows it (GET /api/rollouts/ID) until every node is done, failed or
// dead: a line per node as its state changes (redrawn in place on a terminal), then a summary.
import type { RolloutAnswer } from '../http/index.js';
import { RuntimeError } from './command.js';
import { humanBytes, percent, seconds, table } from './format.js';
import type { NodeClient } from './node-client.js';

/** The CLI reads a rollout as the node declares it: it is only ever asked of nodes that have rollouts. */
export type RolloutDoc = RolloutAnswer;

const POLL_MS = 1_000;

function shortNode(id: string): string {
  return id.length > 16 ? `…${id.slice(-12)}` : id;
}

export function nodeTable(doc: RolloutDoc): string {
  return table(
    ['NODE', 'STATE', 'BLOBS', 'BYTES', 'LOCAL', 'PEER', 'SEED', 'TIME'],
    doc.nodes.map((n) => [
      shortNode(n.node),
      n.status + (n.error ? ` (${n.error.slice(0, 60)})` : ''),
      `${n.blobsDone ?? 0}/${n.blobsTotal ?? '?'}`,
      `${humanBytes(n.bytesDone ?? 0)} ${percent(n.bytesDone, n.bytesTotal)}`,
      humanBytes(n.bySource?.local ?? 0),
      humanBytes(n.bySource?.peer ?? 0),
      humanBytes(n.bySource?.upstream ?? 0),
      n.finishedAt && n.startedAt ? seconds((n.finishedAt - doc.createdAt) / 1000) : '-',
    ]),
  );
}

export function summaryOf(doc: RolloutDoc): string {
  const s = doc.summary;
  const makespan = s.makespanMs !== undefined ? seconds(s.makespanMs / 1000) : 'unfinished';
  return `rollout ${doc.id} of ${doc.image}: ${s.done}/${s.nodes} nodes done, ${s.failed} failed, ${s.dead} dead; makespan ${makespan}; seed sent ${humanBytes(s.seedBytes)} for an image of ${humanBytes(s.imageBytes)} (${s.seedRatio.toFixed(2)}x)`;
}

/** Polls until the rollout is no longer running; shows progress on `out` unless quiet. */
export async function waitForRollout(client: NodeClient, id: string, out: NodeJS.WriteStream | undefined): Promise<RolloutDoc> {
  let shownLines = 0;
  let last = '';
  for (;;) {
    const doc = await client.json<RolloutDoc>('GET', `/api/rollouts/${encodeURIComponent(id)}`);
    if (out) {
      const text = nodeTable(doc);
      if (out.isTTY) {
        if (shownLines > 0) out.write(`\x1b[${shownLines}A\x1b[J`);
        out.write(`${text}\n`);
        shownLines = text.split('\n').length;
      } else {
        // One line per node whose line changed, so a log shows the story without repeats.
        const lines = text.split('\n').slice(1);
        const before = new Set(last.split('\n'));
        for (const l of lines) if (!before.has(l)) out.write(`${l}\n`);
        last = text;
      }
    }
    if (doc.state !== 'running') return doc;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export function failedNodes(doc: RolloutDoc): RuntimeError | undefined {
  const bad = doc.nodes.filter((n) => n.status !== 'done');
  if (bad.length === 0) return undefined;
  return new RuntimeError(`rollout ${doc.id}: ${bad.map((n) => `${shortNode(n.node)} ${n.status}${n.error ? ` (${n.error})` : ''}`).join('; ')}`);
}
