// `layerd status`: GET /api/status, as a short human summary. Every field is optional here: a node with
// P2P off has no peer id, and older nodes lack the store and ratio fields.
import type { Loose, StatusAnswer } from '../http/index.js';
import { humanBytes, percent } from './format.js';

/** What an /api/status answer holds, as read from a node of any version. */
export type StatusDoc = Loose<StatusAnswer>;
type Counter = Loose<StatusAnswer['stats']['fetches']['peer']>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function networkLine(s: StatusDoc): string {
  const kind = s.privateNetwork ? 'private (swarm key)' : 'open (no swarm key)';
  const allowed = num(s.allowList) ?? 0;
  if (allowed === 0) return `${kind}, any peer`;
  return `${kind}, allow-list of ${allowed} peer${allowed === 1 ? '' : 's'}, ${num(s.refusedPeers) ?? 0} refused`;
}

export function formatStatus(s: StatusDoc): string {
  const rows: [string, string][] = [];
  rows.push(['node', `${s.url ?? '?'} (layerd ${s.version ?? '?'})`]);
  rows.push(['peer id', s.peerId ?? 'none (peer-to-peer off)']);
  const addrs = Array.isArray(s.multiaddrs) ? s.multiaddrs : [];
  if (addrs.length > 0) addrs.forEach((a, i) => rows.push([i === 0 ? 'addresses' : '', a]));
  else if (s.peerId) rows.push(['addresses', 'none']);
  rows.push(['peers', `${num(s.connectedPeers) ?? 0} connected`]);
  if (s.peerId && typeof s.privateNetwork === 'boolean') rows.push(['network', networkLine(s)]);
  const upstreams = Array.isArray(s.upstreams) && s.upstreams.length > 0 ? s.upstreams.join(', ') : 'none';
  rows.push(['upstreams', `${upstreams}${s.defaultRegistry ? ` (default registry ${s.defaultRegistry})` : ''}`]);
  if (s.store) {
    const max = num(s.store.maxBytes);
    const quota = max === undefined ? 'no quota' : `quota ${humanBytes(max)} (${percent(num(s.store.bytes), max)} used)`;
    const evictions = num(s.store.evictions) ? `, ${s.store.evictions} evicted` : '';
    rows.push(['store', `${humanBytes(num(s.store.bytes) ?? 0)} in ${num(s.store.blobs) ?? 0} blobs, ${quota}${evictions}`]);
  }
  const st = s.stats ?? {};
  const ratio = num(st.hitRatio);
  rows.push(['hit ratio', ratio === undefined ? '-' : percent(ratio, 1)]);
  const saved = num(st.bytesSavedVsSeed);
  rows.push(['saved', saved === undefined ? '-' : `${humanBytes(saved)} not fetched from seeds`]);
  const fetch = (c: Counter | undefined) => `${num(c?.count) ?? 0} (${humanBytes(num(c?.bytes) ?? 0)})`;
  rows.push(['fetched', `from peers ${fetch(st.fetches?.peer)}, from seeds ${fetch(st.fetches?.upstream)}`]);
  if (st.served) {
    const bytes = st.servedBytes;
    const part = (k: 'local' | 'peer' | 'upstream') => `${k} ${num(st.served?.[k]) ?? 0}${bytes ? ` (${humanBytes(num(bytes[k]) ?? 0)})` : ''}`;
    rows.push(['served', `${part('local')}, ${part('peer')}, ${part('upstream')}`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`.trimEnd()).join('\n');
}
