// Who fetches a blob from the seed when several nodes miss it at the same moment. A DHT lookup cannot
// tell: nodes that start together all find no provider, and each would go to the seed. So every digest
// has a coordinator, the node (of this one and the layerd peers it is connected to) whose id hashes
// closest to the digest, by XOR as in Kademlia; in a cluster whose nodes see each other, all agree on it
// without a word. A node that finds no provider asks the coordinator "who fetches this?": the first to
// ask is told "you" and goes to the seed; later askers are told who, and follow that node's download as
// its bytes arrive (they verify the whole blob themselves). A claim lasts `claimTtlMs`, by when the
// fetcher has announced the blob in the DHT, and passes to the next asker who reports its holder failed.
//
// Protocol /layerd/claim/1.0.0, one stream per question:
//   client → coordinator: a JSON line {"digest","failed"?: [peer ids the asker could not fetch from]}
//   coordinator → client: a JSON line {"fetcher": peer id, "addrs": [multiaddrs]}
// Anything that goes wrong (no coordinator, a timeout, a bad answer) means "fetch it yourself": claims
// save seed traffic, they never hold up a pull.
import { createHash } from 'node:crypto';
import type { Libp2p, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { parseDigest, type Digest } from '../oci/digest.js';
import { answer, ask, peersSpeaking } from './json-rpc.js';
import type { Provider } from './content-router.js';

export const CLAIM_PROTOCOL = '/layerd/claim/1.0.0';

export interface ClaimTableOptions {
  /** How long a claim holds without being handed on. */
  claimTtlMs?: number;
  /** Claims kept at most; the oldest go first. */
  maxClaims?: number;
  now?: () => number;
}

/** The coordinator's record of who fetches what: first asker wins; pure policy, no I/O. */
export class ClaimTable {
  private readonly claims = new Map<Digest, { holder: string; at: number }>();
  private readonly ttl: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: ClaimTableOptions = {}) {
    this.ttl = opts.claimTtlMs ?? 60_000;
    this.max = opts.maxClaims ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** The node that fetches `digest`: the live holder, unless the asker reports it failed; else the asker. */
  claim(digest: Digest, asker: string, failed: readonly string[] = []): string {
    const t = this.now();
    const current = this.claims.get(digest);
    if (current && t - current.at < this.ttl && !failed.includes(current.holder)) return current.holder;
    this.claims.delete(digest);
    if (this.claims.size >= this.max) this.prune(t);
    this.claims.set(digest, { holder: asker, at: t });
    return asker;
  }

  get size(): number {
    return this.claims.size;
  }

  private prune(t: number): void {
    for (const [digest, c] of this.claims) if (t - c.at >= this.ttl) this.claims.delete(digest);
    // Still full: drop the oldest (a Map iterates in insertion order).
    for (const digest of this.claims.keys()) {
      if (this.claims.size < this.max) break;
      this.claims.delete(digest);
    }
  }
}

function keyOf(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Of `candidates`, the one whose hashed id is closest (XOR) to the hashed digest. */
export function coordinatorOf(digest: Digest, candidates: readonly string[]): string | undefined {
  const target = keyOf(digest);
  let best: { id: string; key: Buffer } | undefined;
  for (const id of candidates) {
    const key = keyOf(id);
    for (let i = 0; i < key.length; i++) key[i] = key[i]! ^ target[i]!;
    if (!best || Buffer.compare(key, best.key) < 0) best = { id, key };
  }
  return best?.id;
}

export interface FetchClaimsOptions extends ClaimTableOptions {
  /** How long a question to the coordinator may take before this node fetches for itself. */
  askTimeoutMs?: number;
  log?: { debug(obj: object, msg: string): void };
}

/** Both sides of the claim protocol for one libp2p node. */
export class FetchClaims {
  private readonly table: ClaimTable;
  private readonly askTimeoutMs: number;

  constructor(
    private readonly libp2p: Libp2p,
    private readonly opts: FetchClaimsOptions = {},
  ) {
    this.table = new ClaimTable(opts);
    this.askTimeoutMs = opts.askTimeoutMs ?? 2_000;
  }

  async start(): Promise<void> {
    await answer(this.libp2p, CLAIM_PROTOCOL, (question, from) => this.answerClaim(question, from), this.askTimeoutMs);
  }

  private get self(): string {
    return this.libp2p.peerId.toString();
  }

  /**
   * The peer whose download of `digest` this node should follow, or undefined when this node is to
   * fetch it from the seed itself.
   */
  async whoFetches(digest: Digest, failed: readonly string[] = []): Promise<Provider | undefined> {
    const coordinator = coordinatorOf(digest, [this.self, ...(await peersSpeaking(this.libp2p, CLAIM_PROTOCOL))]);
    let fetcher: Provider;
    if (!coordinator || coordinator === this.self) {
      fetcher = await this.holderInfo(this.table.claim(digest, this.self, failed));
    } else {
      try {
        fetcher = await this.ask(coordinator, digest, failed);
      } catch (err) {
        this.opts.log?.debug({ digest, coordinator, reason: (err as Error).message }, 'claim: coordinator did not answer, fetching myself');
        return undefined;
      }
    }
    return fetcher.id === this.self ? undefined : fetcher;
  }

  private async holderInfo(id: string): Promise<Provider> {
    if (id === this.self) return { id, addrs: this.libp2p.getMultiaddrs().map((a) => a.toString()) };
    try {
      const peer = await this.libp2p.peerStore.get(peerIdFromString(id));
      return { id, addrs: peer.addresses.map((a) => a.multiaddr.toString()) };
    } catch {
      return { id, addrs: [] };
    }
  }

  private async ask(coordinator: string, digest: Digest, failed: readonly string[]): Promise<Provider> {
    const reply = await ask<{ fetcher?: unknown; addrs?: unknown }>(this.libp2p, { id: coordinator }, CLAIM_PROTOCOL, { digest, failed }, this.askTimeoutMs);
    if (typeof reply.fetcher !== 'string' || !Array.isArray(reply.addrs) || !reply.addrs.every((a) => typeof a === 'string')) throw new Error('bad claim answer');
    return { id: reply.fetcher, addrs: reply.addrs as string[] };
  }

  private async answerClaim(question: unknown, from: PeerId): Promise<object> {
    const doc = question as { digest?: unknown; failed?: unknown };
    const digest = parseDigest(String(doc.digest));
    const failed = Array.isArray(doc.failed) ? doc.failed.filter((f): f is string => typeof f === 'string').slice(0, 64) : [];
    const holder = await this.holderInfo(this.table.claim(digest, from.toString(), failed));
    return { fetcher: holder.id, addrs: holder.addrs };
  }
}
