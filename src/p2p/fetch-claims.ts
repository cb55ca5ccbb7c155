// Who fetches a blob from the seed when several nodes miss it at the same moment. A DHT lookup cannot
// tell: nodes that start together all find no provider, and each would go to the seed. So every digest
// has a coordinator, the node (of this one and the layerd peers it is connected to) whose id hashes
// closest to the digest, by XOR as in Kademlia; in a cluster whose nodes see each other, all agree on it
// without a word. A node that finds no provider asks the coordinator "whom do I follow?": the first to
// ask is told "yourself" and goes to the seed; each later asker is told to follow the asker before it,
// and fetches that node's download as its bytes land (verifying the whole blob itself). A chain lasts
// `claimTtlMs` after its last question, by when its nodes have announced the blob in the DHT.
//
// Protocol /layerd/claim/1.0.0, one stream per question:
//   client → coordinator: a JSON line {"digest","failed"?: [peer ids the asker could not fetch from]}
//   coordinator → client: a JSON line {"fetcher": peer id, "addrs": [multiaddrs]}
// or, from a chain's head once it holds the whole blob: {"digest","release":true} → {"ok":true}
// Anything that goes wrong (no coordinator, a timeout, a bad answer) means "fetch it yourself": claims
// save seed traffic, they never hold up a pull.
//
// A rollout places every chain at once instead (followOrder): its origin fixes one order of its nodes,
// and for each blob of the rollout a node in that order follows the node before it, the first fetching
// from the seed. Chains formed one per blob, in the order claims reached each blob's coordinator, put a
// node first in one chain deep in another, waiting on nodes behind it; with one order every node is at
// the same depth in every chain, so all finish about together. No coordinator is asked: a node knows its
// predecessor from the order alone. A predecessor that fails (dead, never answers, bad bytes) is passed
// over for the one before it; with none left the node fetches for itself. A node not in the order (joined
// late) follows one node of it; blobs outside any rollout use the claims above.
import type { Libp2p, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { parseDigest, type Digest } from '../oci/index.js';
import { FrameError } from './json-lines.js';
import { answer, ask, peersSpeaking } from './json-rpc.js';
import type { Provider } from './content-router.js';
import { compareDistance, kadKeyOf, type KadKey } from './keyspace.js';
import { multiaddrsField, objectField, peerIdField, stringsField } from './peer-fields.js';

export const CLAIM_PROTOCOL = '/layerd/claim/1.0.0';
/** Coordinators asked in turn before a node fetches for itself. */
const MAX_COORDINATORS_TRIED = 3;

export interface ClaimTableOptions {
  /** How long a claim holds without being handed on. */
  claimTtlMs?: number;
  /** Claims kept at most; the oldest go first. */
  maxClaims?: number;
  now?: () => number;
}

/**
 * The coordinator's record of who fetches what: a chain per digest. The first asker fetches from the
 * seed; each later asker follows the one before it, so every node uploads one copy as it downloads
 * (the way a pipeline broadcast fills a cluster in about the time one link takes for the blob, instead
 * of the first fetcher's uplink carrying a copy for everyone). A node reported failed leaves the chain
 * and the one after it follows the one before. Each asker's predecessor was in the chain before it, so
 * following never goes round in a circle. Pure policy, no I/O.
 */
export class ClaimTable {
  private readonly claims = new Map<Digest, { chain: string[]; at: number }>();
  private readonly ttl: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: ClaimTableOptions = {}) {
    this.ttl = opts.claimTtlMs ?? 60_000;
    this.max = opts.maxClaims ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Whom the asker follows for `digest`: its predecessor in the chain, or the asker itself (fetch it). */
  claim(digest: Digest, asker: string, failed: readonly string[] = []): string {
    const t = this.now();
    let entry = this.claims.get(digest);
    if (entry && t - entry.at >= this.ttl) {
      this.claims.delete(digest);
      entry = undefined;
    }
    if (!entry) {
      if (this.claims.size >= this.max) this.prune(t);
      entry = { chain: [], at: t };
    } else this.claims.delete(digest); // re-inserted below: the Map's order is the order of last use
    entry.at = t;
    entry.chain = entry.chain.filter((id) => id === asker || !failed.includes(id));
    let at = entry.chain.indexOf(asker);
    if (at < 0) at = entry.chain.push(asker) - 1;
    this.claims.set(digest, entry);
    return at === 0 ? asker : entry.chain[at - 1]!;
  }

  /**
   * The chain's head has the whole blob (and has announced it): the chain ends, and the next node to
   * miss the blob finds it in the DHT and takes ranges from every holder instead of joining a line.
   * Nodes already in the chain keep following whom they follow.
   */
  release(digest: Digest, who: string): void {
    if (this.claims.get(digest)?.chain[0] === who) this.claims.delete(digest);
  }

  get size(): number {
    return this.claims.size;
  }

  private prune(t: number): void {
    for (const [digest, c] of this.claims) if (t - c.at >= this.ttl) this.claims.delete(digest);
    // Still full: drop the least recently used (a Map iterates in insertion order).
    for (const digest of this.claims.keys()) {
      if (this.claims.size < this.max) break;
      this.claims.delete(digest);
    }
  }
}

/**
 * Rollouts' orders by blob (see the header): whom a node in an order follows. Pure policy, no I/O.
 * Kept only while the node's part of a rollout runs (place() returns the undo).
 */
export class RolloutOrders {
  private readonly orders = new Map<Digest, readonly string[]>();

  /** These blobs follow `order` until the returned undo. A blob in two running rollouts takes the later order. */
  place(digests: readonly Digest[], order: readonly string[]): () => void {
    for (const d of digests) this.orders.set(d, order);
    return () => {
      for (const d of digests) if (this.orders.get(d) === order) this.orders.delete(d);
    };
  }

  /**
   * For `self`, the nearest node before it in the blob's order that has not failed; `self` when none is
   * left (it heads the chain: it fetches for itself); undefined when the blob has no order (claims decide).
   * A node not in the order (it joined late, or the origin was not connected to it) follows a node of the
   * order picked by its own id (joinedAt), the same for every blob, or the nearest before that one that has
   * not failed: it adds a follower to one node of the line instead of starting a chain of its own through
   * claims, which nodes with other views of the cluster could put at another coordinator (a second seed
   * copy). With every node it could follow failed, claims decide.
   */
  predecessor(digest: Digest, self: string, failed: readonly string[] = []): string | undefined {
    const order = this.orders.get(digest);
    if (!order) return undefined;
    const place = order.indexOf(self);
    const from = place >= 0 ? place - 1 : joinedAt(self, order.length);
    for (let at = from; at >= 0; at--) if (!failed.includes(order[at]!)) return order[at];
    return place >= 0 ? self : undefined;
  }
}

/** Where in an order of `length` nodes one not in it follows: a place fixed by its id, so spread over the line. */
function joinedAt(self: string, length: number): number {
  return Buffer.from(keyOf(self)).readUInt32BE(0) % length;
}

export type ClaimQuestion = { kind: 'release'; digest: Digest } | { kind: 'claim'; digest: Digest; failed: string[] };

/** Failed peers a question may name: an asker may avoid more, the coordinator heeds this many. */
const MAX_FAILED_HEEDED = 64;
/** Failed peers a question may list at all: more than a question's 16 KiB can hold, so only the size bounds it. */
const MAX_FAILED = 1024;
/** Addresses a claim answer may give for the peer to follow. */
const MAX_ADDRS = 256;

/** A question a peer sent the coordinator; FrameError or OciError (DIGEST_INVALID) when malformed. */
export function parseClaimQuestion(question: unknown): ClaimQuestion {
  const doc = objectField(question, 'claim question');
  if (typeof doc.digest !== 'string') throw new FrameError('no digest');
  const digest = parseDigest(doc.digest);
  if (doc.release === true) return { kind: 'release', digest };
  // Ids are only compared with the chain's (authenticated) ids: any string is harmless, no parse needed.
  const failed = doc.failed === undefined ? [] : stringsField(doc.failed, 'failed', MAX_FAILED, 128).slice(0, MAX_FAILED_HEEDED);
  return { kind: 'claim', digest, failed };
}

/** The coordinator's answer to a claim: the peer to follow (maybe the asker itself) and where to dial it. */
export function parseClaimAnswer(reply: unknown): Provider {
  const doc = objectField(reply, 'claim answer');
  return { id: peerIdField(doc.fetcher, 'fetcher'), addrs: multiaddrsField(doc.addrs, 'addrs', MAX_ADDRS) };
}

/** The coordinator's answer to a release: {"ok":true}. */
export function parseReleaseAnswer(reply: unknown): void {
  if (objectField(reply, 'release answer').ok !== true) throw new FrameError('release answer: want {"ok":true}');
}

/** SHA-256 of the text's UTF-8 bytes: a digest's or a peer id's place in the claims' keyspace. */
function keyOf(text: string): KadKey {
  return kadKeyOf(Buffer.from(text));
}

/** Of `candidates`, the one whose hashed id is closest (XOR) to the hashed digest. */
export function coordinatorOf(digest: Digest, candidates: readonly string[]): string | undefined {
  const target = keyOf(digest);
  let best: { id: string; key: KadKey } | undefined;
  for (const id of candidates) {
    const key = keyOf(id);
    if (!best || compareDistance(target, key, best.key) < 0) best = { id, key };
  }
  return best?.id;
}

export interface FetchClaimsOptions extends ClaimTableOptions {
  /**
   * How long a question to the coordinator may take before this node asks the next one (default 30 s).
   * Asking the next starts a second chain, one more copy from the seed, so a coordinator that is only slow
   * must be waited for: on a 2-core box running 32 nodes a claim's answer took seconds. A coordinator that
   * died is not waited for: its connection closes, the question's stream with it, and the next is asked at
   * once. This deadline is for one that keeps its connection and never answers.
   */
  askTimeoutMs?: number;
  /** Claim streams one peer connection may have open at once. */
  maxInboundStreams?: number;
  log?: { debug(obj: object, msg: string): void; info?(obj: object, msg: string): void; warn?(obj: object, msg: string): void };
}

/** Both sides of the claim protocol for one libp2p node. */
export class FetchClaims {
  private readonly table: ClaimTable;
  private readonly askTimeoutMs: number;
  /** Blobs of running rollouts this node is placed in, with the rollout's order of nodes. */
  private readonly orders = new RolloutOrders();

  constructor(
    private readonly libp2p: Libp2p,
    private readonly opts: FetchClaimsOptions = {},
  ) {
    this.table = new ClaimTable(opts);
    this.askTimeoutMs = opts.askTimeoutMs ?? 30_000;
  }

  async start(): Promise<void> {
    await answer(this.libp2p, CLAIM_PROTOCOL, parseClaimQuestion, (question, from) => this.answerClaim(question, from), {
      timeoutMs: this.askTimeoutMs,
      maxInboundStreams: this.opts.maxInboundStreams,
      onFailure: (err, from) => this.opts.log?.debug({ peer: from.toString(), reason: err.message }, 'claim: a question failed, stream reset'),
    });
  }

  /** Questions already being answered run on; no new one is accepted. */
  stop(): Promise<void> {
    return this.libp2p.unhandle(CLAIM_PROTOCOL);
  }

  private get self(): string {
    return this.libp2p.peerId.toString();
  }

  /**
   * For these digests (one rollout's blobs), this node follows the node before it in `order` (checked
   * already: distinct peer ids), or, when it is not in the order, one node of it (RolloutOrders.predecessor).
   * Returns the undo, called when this node's part of the rollout ends. A digest in two running rollouts
   * takes the later order.
   */
  followOrder(digests: readonly Digest[], order: readonly string[], rollout?: string): () => void {
    if (order.length === 0) return () => undefined;
    const place = order.indexOf(this.self);
    this.opts.log?.debug({ rollout, place, of: order.length, blobs: digests.length }, place >= 0 ? 'rollout order: this node follows the one before it for every blob' : 'rollout order: this node, not in it, follows one node of it for every blob');
    return this.orders.place(digests, order);
  }

  /** Whether this node is first in the order of a running rollout that fetches `digest`. */
  headsOrder(digest: Digest): boolean {
    return this.orders.predecessor(digest, this.self) === this.self;
  }

  /**
   * The peer whose download of `digest` this node should follow, or undefined when this node is to
   * fetch it from the seed itself.
   */
  async whoFetches(digest: Digest, failed: readonly string[] = []): Promise<Provider | undefined> {
    const ordered = this.orders.predecessor(digest, this.self, failed);
    if (ordered !== undefined) {
      // Logged at info: which node each node followed for each blob is what a rollout's shape is.
      this.opts.log?.info?.({ digest, follow: ordered === this.self ? 'seed' : ordered, passedOver: failed.length }, 'rollout order: following');
      return ordered === this.self ? undefined : this.holderInfo(ordered);
    }
    // A peer connected a moment ago counts before identify says what it speaks: every node picks the coordinator
    // from the peers it sees, and a node that had not yet identified a new connection picked another one (a
    // second copy from the seed). Asked, a peer that does not speak claims fails fast and the next is asked.
    const peers = await peersSpeaking(this.libp2p, CLAIM_PROTOCOL, { unidentified: true });
    // A coordinator that does not answer (it died a moment ago, its connection not yet closed) is passed
    // over for the next closest, as every other node that asks will do: if each asker fetched for itself
    // instead, a dead coordinator would send all of them to the seed.
    const silent = new Set<string>();
    for (let tries = 0; tries < MAX_COORDINATORS_TRIED; tries++) {
      const coordinator = coordinatorOf(digest, [this.self, ...peers.filter((p) => !silent.has(p))]);
      if (!coordinator || coordinator === this.self) {
        const fetcher = await this.holderInfo(this.table.claim(digest, this.self, failed));
        return fetcher.id === this.self ? undefined : fetcher;
      }
      try {
        const fetcher = await this.ask(coordinator, digest, failed);
        return fetcher.id === this.self ? undefined : fetcher;
      } catch (err) {
        // Worth a warning: if the coordinator is alive (mute, or slower than askTimeoutMs), this node may head a second chain.
        this.opts.log?.warn?.({ digest, coordinator, reason: (err as Error).message }, 'claim: coordinator did not answer, asking the next');
        silent.add(coordinator);
      }
    }
    return undefined;
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

  /** Tells the digest's coordinator that this node, a chain's head, now holds the whole blob. */
  async release(digest: Digest): Promise<void> {
    const coordinator = coordinatorOf(digest, [this.self, ...(await peersSpeaking(this.libp2p, CLAIM_PROTOCOL))]);
    if (!coordinator || coordinator === this.self) return this.table.release(digest, this.self);
    await ask(this.libp2p, { id: coordinator }, CLAIM_PROTOCOL, { digest, release: true }, this.askTimeoutMs, parseReleaseAnswer);
  }

  private ask(coordinator: string, digest: Digest, failed: readonly string[]): Promise<Provider> {
    return ask(this.libp2p, { id: coordinator }, CLAIM_PROTOCOL, { digest, failed }, this.askTimeoutMs, parseClaimAnswer);
  }

  private async answerClaim(q: ClaimQuestion, from: PeerId): Promise<object> {
    if (q.kind === 'release') {
      this.table.release(q.digest, from.toString());
      return { ok: true };
    }
    const holder = await this.holderInfo(this.table.claim(q.digest, from.toString(), q.failed));
    return { fetcher: holder.id, addrs: holder.addrs };
  }
}
