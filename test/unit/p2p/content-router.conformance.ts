// The contract every ContentRouter passes: the DHT router over real libp2p nodes on loopback
// (test/integration/p2p-routing.test.ts) and the in-memory twin (test/unit/p2p/content-router.test.ts).
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import type { ContentRouter, Provider } from '../../../src/p2p/content-router.js';

export interface RouterCluster {
  /** At least three routers that can reach one another, each with its own peer id. */
  routers: Array<{ id: string; router: ContentRouter }>;
  close(): Promise<void>;
}

async function find(router: ContentRouter, digest: Digest, opts: { limit?: number; timeoutMs?: number } = {}): Promise<Provider[]> {
  const out: Provider[] = [];
  for await (const p of router.findProviders(digest, { signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000), limit: opts.limit })) out.push(p);
  return out;
}

/**
 * Lookups are eventually consistent (a DHT's ADD_PROVIDER is fire-and-forget, so a lookup issued the
 * instant a provide returns can miss it): ask again until `want` providers are found or the deadline.
 */
async function findEventually(router: ContentRouter, digest: Digest, want: number, deadlineMs = 5_000): Promise<Provider[]> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const found = await find(router, digest, { timeoutMs: 2_000 });
    if (found.length >= want || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

let n = 0;
const fresh = () => digestOf(Buffer.from(`conformance blob ${n++} ${Math.random()}`));

type Member = RouterCluster['routers'][number];

export function describeContentRouter(name: string, create: () => Promise<RouterCluster>): void {
  /** Runs a test body on a fresh cluster whose routers are all ready, and closes the cluster whatever the body did. */
  async function withCluster(body: (routers: Member[]) => Promise<void>): Promise<void> {
    const cluster = await create();
    await Promise.all(cluster.routers.map((r) => r.router.ready()));
    try {
      await body(cluster.routers);
    } finally {
      await cluster.close();
    }
  }

  describe(`ContentRouter conformance: ${name}`, () => {
    it('finds the provider of a blob from every other node, never itself', () =>
      withCluster(async (routers) => {
        const [a, b, c] = routers as [Member, Member, Member];
        const digest = fresh();
        await a.router.provide(digest);
        for (const other of [b, c]) expect((await findEventually(other.router, digest, 1)).map((p) => p.id)).toEqual([a.id]);
        expect((await find(a.router, digest, { timeoutMs: 1_000 })).map((p) => p.id)).not.toContain(a.id);
      }));

    it('lists several providers, honours limit, and answers nothing for an unknown blob', () =>
      withCluster(async (routers) => {
        const [a, b, c] = routers as [Member, Member, Member];
        const digest = fresh();
        await a.router.provide(digest);
        await b.router.provide(digest);
        const both = await findEventually(c.router, digest, 2);
        expect(both.map((p) => p.id).sort()).toEqual([a.id, b.id].sort());
        expect(await find(c.router, digest, { limit: 1 })).toHaveLength(1);
        expect(await find(c.router, fresh(), { timeoutMs: 2_000 })).toEqual([]);
      }));

    it('stops a search when its signal aborts', () =>
      withCluster(async (routers) => {
        const c = routers[2]!;
        const controller = new AbortController();
        controller.abort();
        const found: Provider[] = [];
        try {
          for await (const p of c.router.findProviders(fresh(), { signal: controller.signal })) found.push(p);
        } catch {
          // an aborted search may end by throwing; either way it must end, with nothing
        }
        expect(found).toEqual([]);
      }));

    it('accepts a withdraw and a provide again', () =>
      withCluster(async (routers) => {
        const [a, b] = routers as [Member, Member];
        const digest = fresh();
        await a.router.provide(digest);
        await a.router.withdraw(digest);
        await a.router.provide(digest);
        expect((await findEventually(b.router, digest, 1)).map((p) => p.id)).toEqual([a.id]);
      }));
  });
}
