// What the node observes reaches its counters through one bus: NodeStats and the metrics subscribe.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeStats, Observations } from '../../../src/distribution/index.js';
import { NodeMetrics } from '../../../src/node/node-metrics.js';
import type { Digest } from '../../../src/oci/index.js';

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;

describe('observations', () => {
  it('are counted by every subscriber: the stats, and the metrics /metrics renders', async () => {
    const observed = new Observations();
    const stats = new NodeStats();
    stats.countFrom(observed);
    const metrics = new NodeMetrics(stats);
    metrics.countFrom(observed);

    observed.emit('lookup', { ms: 30, found: 2 });
    observed.emit('peer-download', { peer: 'p1', bytes: 100 });
    observed.emit('peer-upload', { peer: 'p1', bytes: 40, digest: DIGEST });
    observed.emit('single-flight-join', {});
    observed.emit('fetched', { digest: DIGEST, size: 100, source: 'peer' });
    observed.emit('blob-served', { source: 'peer', bytes: 100 });
    observed.emit('pulled', { kind: 'blob', registry: 'local', repository: 'app', reference: DIGEST, digest: DIGEST, size: 100, source: 'peer' });
    observed.emit('request', { method: 'GET', url: `/v2/app/blobs/${DIGEST}`, status: 200 });

    expect(stats.lookups.count).toBe(1);
    expect(stats.peers.get('p1')).toEqual({ uploaded: 40, downloaded: 100 });
    expect(stats.singleFlightJoins).toBe(1);
    expect(stats.fetches.peer).toEqual({ count: 1, bytes: 100 });
    expect(stats.served.peer).toBe(1);
    expect(stats.recentPulls().map((p) => p.repository)).toEqual(['app']);
    const body = (await metrics.render()).body;
    expect(body).toContain('layerd_dht_lookup_seconds_count 1');
    expect(body).toContain('layerd_http_requests_total{method="GET",route="blob",status="200"} 1');
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('a listener that throws fails neither the emit nor the listeners after it; its error is reported afterwards', () => {
    const reported: Array<() => void> = [];
    vi.stubGlobal('queueMicrotask', (task: () => void) => reported.push(task));
    const observed = new Observations();
    const seen: string[] = [];
    observed.on('lookup', () => {
      throw new Error('counter bug');
    });
    const unsubscribe = observed.on('lookup', (e) => seen.push(`second ${e.found}`));
    expect(() => observed.emit('lookup', { ms: 1, found: 3 })).not.toThrow();
    expect(seen).toEqual(['second 3']);
    expect(reported).toHaveLength(1);
    expect(() => reported[0]!()).toThrow('counter bug');
    unsubscribe();
    observed.emit('lookup', { ms: 1, found: 4 });
    expect(seen).toEqual(['second 3']);
  });
});
