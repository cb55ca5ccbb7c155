// What rollouts need of the node: the network they travel over, and a journal that outlives a restart.
import type { RolloutJournal, RolloutNetwork, RolloutSpec } from '../distribution/index.js';
import type { FetchClaims, RolloutTransport } from '../p2p/index.js';
import type { StripeRoutes } from './stripe-routes.js';
import { JsonRecords } from '../store/index.js';

/** Rollouts over libp2p, or, with P2P off, a cluster of one. */
export function rolloutNetwork(transport: RolloutTransport | undefined, claims: FetchClaims | undefined, stripes?: StripeRoutes): RolloutNetwork {
  if (!transport || !claims) return { self: 'this-node', selfAddrs: () => [], peers: async () => [], offer: async () => undefined, report: async () => undefined };
  return {
    self: transport.self,
    selfAddrs: () => transport.selfAddrs(),
    peers: () => transport.peers(),
    cluster: () => transport.cluster(),
    offer: (peer, spec) => transport.offer(peer, spec),
    report: (spec, progress) => transport.report({ id: spec.origin, addrs: spec.originAddrs }, progress),
    followOrder: (digests, order, rollout) => claims.followOrder(digests, order, rollout),
    ...(stripes
      ? {
          followStripes: (digests, route) => {
            // Connected before the first chunk is asked: a cold dial on a loaded host took over 5 s.
            for (const p of new Set([...Array.from({ length: route.k }, (_, s) => route.parent(s)), ...(route.fallback ? [route.fallback] : [])])) {
              void transport.connect(p).catch(() => undefined);
            }
            return stripes.place(digests, route);
          },
          repoint: (node, repoint) => transport.repoint(node, repoint),
        }
      : {}),
  };
}

/** Running rollouts, kept as JSON files so a restarted node resumes them. */
export class JsonRecordsJournal implements RolloutJournal {
  private readonly records: JsonRecords<unknown>;
  constructor(dir: string) {
    this.records = new JsonRecords(dir);
  }
  save(spec: RolloutSpec): Promise<void> {
    return this.records.save(spec.id, spec);
  }
  remove(id: string): Promise<void> {
    return this.records.remove(id);
  }
  load(): Promise<unknown[]> {
    return this.records.load();
  }
}
