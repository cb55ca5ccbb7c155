// The contract every ContentRouter passes: the DHT router over real libp2p nodes on loopback
// (test/integration/p2p-routing.test.ts) and the in-memory twin (test/unit/p2p/content-router.test.ts).
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import type { ContentRouter, Provider } from '../../../src/p2p/content-router.js';

export interface RouterCluster {
  /** At least three routers that can reach one another, each with its own peer id. */
  routers: Array<{ id: string; router: ContentRouter }>;
  /**
   * How long after a withdraw a lookup elsewhere may still name the withdrawer (ContentRouter.withdraw):
   * 0 for a router that forgets at once, the provider-record lifetime plus one cleanup for a DHT.
   */
  withdrawnWithinMs: number;
  close(): Promise<void>;
}

async function find(router: ContentRouter, digest: Digest, opts: { limit?: number; timeoutMs?: number } = {}): Promise<Provider[]> {
  const out: Provider[] = [];
  for await (const p of router.findProviders(digest, { signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000), limit: opts.limit })) out.push(p);
  return out;
}

/**
 * Lookups are eventually consistent (a DHT's ADD_PROVIDER is fire-and-forget, so a lookup issued the
 * instant a provide returns can miss it): ask again until `done` accepts the answer or the deadline.
 */
async function findUntil(router: ContentRouter, digest: Digest, done: (found: Provider[]) => boolean, deadlineMs = 5_000): Promise<Provider[]> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const found = await find(router, digest, { timeoutMs: 2_000 });
    if (done(found) || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const findEventually = (router: ContentRouter, digest: Digest, want: number) => findUntil(router, digest, (found) => found.length >= want);
const ids = (found: Provider[]) => found.map((p) => p.id).sort();

/**
 * Iterates a search until `abortAfter` providers were yielded (0: the signal is aborted before the
 * search starts), then aborts it and lets it run out: what it yielded, how it ended, and how long the
 * end took after the abort.
 */
async function abortedSearch(router: ContentRouter, digest: Digest, abortAfter: number): Promise<{ found: Provider[]; error?: unknown; msAfterAbort: number; reason: unknown }> {
  const controller = new AbortController();
  let abortedAt = Date.now();
  const abort = () => {
    abortedAt = Date.now();
    controller.abort();
  };
  if (abortAfter === 0) abort();
  const found: Provider[] = [];
  let error: unknown;
  try {
    for await (const p of router.findProviders(digest, { signal: controller.signal })) {
      found.push(p);
      if (found.length === abortAfter) abort();
    }
  } catch (err) {
    error = err;
  }
  return { found, error, msAfterAbort: Date.now() - abortedAt, reason: controller.signal.reason };
}

/** An aborted search ends by returning, or by throwing the signal's reason or an AbortError: nothing else. */
function expectAbortEnding(r: { error?: unknown; reason: unknown }): void {
  if (r.error !== undefined && r.error !== r.reason) expect((r.error as Error).name).toBe('AbortError');
}

let n = 0;
const fresh = () => digestOf(Buffer.from(`conformance blob ${n++} ${Math.random()}`));

type Member = RouterCluster['routers'][number];

export function describeContentRouter(name: string, create: () => Promise<RouterCluster>): void {
  /** Runs a test body on a fresh cluster whose routers are all ready, and closes the cluster whatever the body did. */
  async function withCluster(body: (routers: Member[], cluster: RouterCluster) => Promise<void>): Promise<void> {
    const cluster = await create();
    await Promise.all(cluster.routers.map((r) => r.router.ready()));
    try {
      await body(cluster.routers, cluster);
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

    it('yields nothing once its signal has aborted, and ends at once', () =>
      withCluster(async (routers) => {
        const [a, b, c] = routers as [Member, Member, Member];
        const digest = fresh();
        await a.router.provide(digest);
        await b.router.provide(digest);
        expect(ids(await findEventually(c.router, digest, 2))).toEqual([a.id, b.id].sort());
        // Aborted before it starts: the providers just found are not named.
        const before = await abortedSearch(c.router, digest, 0);
        expect(before.found).toEqual([]);
        expectAbortEnding(before);
        expect(before.msAfterAbort).toBeLessThan(1_000);
        // Aborted after the first provider: the second, though known, is not named.
        const during = await abortedSearch(c.router, digest, 1);
        expect(during.found).toHaveLength(1);
        expectAbortEnding(during);
        expect(during.msAfterAbort).toBeLessThan(1_000);
      }));

    it('stops naming a withdrawn provider within the time the records already handed out may live', () =>
      withCluster(async (routers, cluster) => {
        const [a, b, c] = routers as [Member, Member, Member];
        const digest = fresh();
        await a.router.provide(digest);
        await b.router.provide(digest);
        expect(ids(await findEventually(c.router, digest, 2))).toEqual([a.id, b.id].sort());
        await a.router.withdraw(digest);
        // b, still providing, is still found: a's absence is the withdraw, not a lookup that failed.
        const after = await findUntil(c.router, digest, (found) => !found.some((p) => p.id === a.id), cluster.withdrawnWithinMs + 2_000);
        expect(ids(after)).toEqual([b.id]);
      }));

    it('accepts a provide again after a withdraw', () =>
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
