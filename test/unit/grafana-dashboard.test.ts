// The Grafana dashboard in compose/ must only chart metrics a node exports: a renamed metric would
// leave a panel silently empty.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeStats } from '../../src/distribution/ops/stats.js';
import { NodeMetrics } from '../../src/node/node-metrics.js';

const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'compose', 'grafana', 'layerd-dashboard.json'), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
};

describe('compose/grafana/layerd-dashboard.json', () => {
  it('charts only layerd_* metrics that /metrics exports, and each of the issue\'s subjects', async () => {
    const metrics = new NodeMetrics(new NodeStats());
    metrics.collectFrom({
      store: () => ({ bytes: 0, blobs: 0 }),
      evictions: () => ({ count: 0, bytes: 0 }),
      connectedPeers: () => 0,
      provides: () => ({ provides: 0, failures: 0 }),
      liveness: () => ({ probes: 0, closed: 0, timedOut: 0 }),
    });
    const exported = new Set<string>();
    for (const line of (await metrics.render()).body.split('\n')) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (!m) continue;
      exported.add(m[1]!);
      if (m[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(m[1]! + suffix);
    }
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/layerd_[a-z_]+/g) ?? []));
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(exported, `${name} is exported`).toContain(name);
    for (const subject of ['hit ratio', 'by source', 'Peers', 'lookup', 'quota', 'Evictions', 'HTTP requests', 'provides']) {
      expect(dashboard.panels.some((p) => p.title.toLowerCase().includes(subject.toLowerCase())), `a panel about ${subject}`).toBe(true);
    }
  });
});
