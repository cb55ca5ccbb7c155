// One Kademlia walk in the simulated network, the way kad-dht runs it: α requests in flight, each
// answered after its own latency with the answerer's k closest known peers; it goes on until the k
// closest peers seen have all answered. A provider lookup ends at the first answer from a node that
// holds a record for the key. Every request is reported (who sent it, to whom, when).
import type { Rng } from '../rng.js';
import type { SimDhtNetwork } from './network.js';

export interface WalkOptions {
  alpha: number;
  /** Per-request round trip, uniform in [min, max] ms. */
  latencyMs: [number, number];
  /** Virtual time the walk starts at (for the request reports). */
  startMs: number;
  /** Called for every request sent. */
  onRequest?: (from: number, to: number, atMs: number) => void;
  /** A provider lookup: stop at the first node holding a record for this key. */
  providersOf?: string;
  /** Nodes gone (churn): a request to one goes unanswered until `deadTimeoutMs`, and it is no candidate. */
  dead?: Uint8Array;
  deadTimeoutMs?: number;
}

export interface WalkResult {
  /** The k closest peers that answered, nearest first. */
  closest: number[];
  /** Every peer the walk heard of. */
  seen: number[];
  requests: number;
  /** How long the walk took. */
  ms: number;
  /** When the first provider record came back (a provider lookup that found one). */
  firstProviderMs?: number;
}

export function simWalk(net: SimDhtNetwork, from: number, th: number, tl: number, rng: Rng, o: WalkOptions): WalkResult {
  const k = net.k;
  const holders = o.providersOf === undefined ? undefined : net.records.get(o.providersOf);
  if (holders?.has(from)) return { closest: [], seen: [], requests: 0, ms: 0, firstProviderMs: 0 };
  const state = new Map<number, 'known' | 'asked' | 'answered' | 'failed'>([[from, 'answered']]);
  let candidates = net.closestKnown(from, th, tl, k);
  for (const c of candidates) state.set(c, 'known');
  const inflight: Array<{ to: number; at: number }> = [];
  let t = 0;
  let requests = 0;
  const [lmin, lmax] = o.latencyMs;
  for (;;) {
    for (const c of candidates.slice(0, k)) {
      if (inflight.length >= o.alpha) break;
      if (state.get(c) !== 'known') continue;
      state.set(c, 'asked');
      requests++;
      o.onRequest?.(from, c, o.startMs + t);
      const rtt = lmin + (lmax - lmin) * rng.next();
      inflight.push({ to: c, at: t + (o.dead?.[c] ? (o.deadTimeoutMs ?? 1_000) : rtt) });
    }
    if (inflight.length === 0) break;
    inflight.sort((a, b) => a.at - b.at);
    const done = inflight.shift()!;
    t = done.at;
    if (o.dead?.[done.to]) {
      state.set(done.to, 'failed');
      continue;
    }
    state.set(done.to, 'answered');
    if (holders?.has(done.to)) return { closest: [], seen: [...state.keys()], requests, ms: t, firstProviderMs: t };
    const answer = net.closestKnown(done.to, th, tl, k);
    let grew = false;
    for (const p of answer) {
      if (state.has(p)) continue;
      state.set(p, 'known');
      grew = true;
    }
    if (grew) candidates = mergeByDistance(net, candidates, answer, state, th, tl);
  }
  const closest = candidates.filter((c) => state.get(c) === 'answered').slice(0, k);
  return { closest, seen: [...state.keys()].filter((p) => p !== from), requests, ms: t };
}

/** The candidate list with the answer's new peers in place, nearest first. */
function mergeByDistance(net: SimDhtNetwork, list: number[], add: number[], state: Map<number, string>, th: number, tl: number): number[] {
  const all = [...new Set([...list, ...add])].filter((p) => state.has(p));
  const d = (p: number) => [(net.hi[p]! ^ th) >>> 0, (net.lo[p]! ^ tl) >>> 0] as const;
  return all
    .map((p) => ({ p, d: d(p) }))
    .sort((a, b) => a.d[0] - b.d[0] || a.d[1] - b.d[1])
    .map((x) => x.p);
}
