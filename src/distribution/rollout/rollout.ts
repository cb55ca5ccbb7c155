// Cluster-wide rollout: every node pre-fetches an image so containers start from local disk. The node
// asked (the origin) hands the rollout to its peers, each passes it on to its own, and every node that
// gets it pulls the image through the normal path: manifests from its seed, blobs local → peers → seed.
// Nodes that miss a blob at the same moment are coordinated by fetch claims (one fetches from the seed,
// the others follow its download), so the seed sends the image about once.
//
// Every node reports its progress to the origin while it works; the origin's view is what
// GET /api/rollouts/ID and `layerd rollout --wait` show. A node that stops reporting is reported dead
// rather than waited for; a node that restarts resumes its rollouts (they are kept on disk) and
// reports again; a node that joins while a rollout runs is offered it by the peers it meets. A rollout
// asked for twice is the same rollout.
import { randomUUID } from 'node:crypto';
import {
  failureOf,
  formatImageReference,
  parseImageReference,
  parseManifest,
  parseManifestReference,
  parseRepositoryName,
  platformMatches,
  referenceString,
  type Descriptor,
  type Digest,
  type ImageReference,
  type ManifestReference,
  type RepositoryName,
} from '../../oci/index.js';
import type { Source } from '../answers.js';
import type { Distribution } from '../pull/index.js';
import { viewOf, type NodeProgress, type NodeView, type Repoint, type RolloutSpec, type RolloutView } from './view.js';
import { StripeKeeper, type Addressed } from './stripe-keeper.js';
import { NodeStripes, type StripeRoute } from './stripe-route.js';
import type { HeldShare } from './stripe-trees.js';
import { blobLanes } from './blob-lanes.js';
import { reportPace, type ReportPace } from './report-pace.js';
import { looksLikePeerId, specFrom } from './wire.js';

/** What rollouts need from the peer-to-peer layer (a seam: tests use an in-memory twin). */
export interface RolloutNetwork {
  readonly self: string;
  selfAddrs(): string[];
  /** Layerd peers this node is connected to. */
  peers(): Promise<string[]>;
  /**
   * Every layerd node reachable through the peers, found by asking them and connected to (a cluster is not a
   * full mesh: p2p/cluster-gather.ts). Absent: the peers this node is connected to are the cluster.
   */
  cluster?(): Promise<string[]>;
  /** Hands a rollout to a peer; resolves when it accepted it. */
  offer(peer: string, spec: RolloutSpec): Promise<void>;
  /** Sends this node's progress to the rollout's origin. */
  report(spec: RolloutSpec, progress: NodeProgress): Promise<void>;
  /**
   * From now until the returned undo: for these blobs this node follows the node before it in `order`
   * (absent: blobs are chained by claims, one chain per blob).
   */
  followOrder?(digests: Digest[], order: string[], rollout: string): () => void;
  /** From now until the returned undo: these blobs come as stripes, each from the parent `route` names. */
  followStripes?(digests: Digest[], route: StripeRoute): () => void;
  /** Sends a node of a striped rollout the origin's repoint; resolves when it took it. */
  repoint?(node: string, repoint: Repoint): Promise<void>;
}

/** Where running rollouts are kept so a restarted node resumes them. */
export interface RolloutJournal {
  save(spec: RolloutSpec): Promise<void>;
  remove(id: string): Promise<void>;
  /** What was saved, unchecked (a file may come from another version): resume checks each. */
  load(): Promise<unknown[]>;
}

/** Nodes before this one in a rollout's order that it tries to hand the rollout to (see handBack). */
const MAX_HANDED_BACK = 3;

/** A blob fetched and verified by a rollout: its bytes, their source, and `kept`, once it is stored. */
/** Where a rollout's image is pulled from: its repository, under the registry it was asked for. */
interface Image {
  repository: RepositoryName;
  ns: string | null;
}

interface Fetched {
  got: number;
  source: Source;
  kept: Promise<void>;
}

export interface RolloutOptions {
  defaultRegistry: string;
  /** A node not finished and silent this long is dead. */
  deadAfterMs?: number;
  reportEveryMs?: number;
  /** Blobs fetched at once by one node. */
  parallel?: number;
  /** Blobs fetched at once by a node in a rollout's order (the same sequence on every node). */
  orderedParallel?: number;
  /**
   * Retries of a manifest or blob whose fetch failed for a reason another try may fix (the seed down
   * or cut off, a peer gone), with backoff doubling from retryBaseMs: a rollout rides out a flapping
   * seed instead of failing at its first refused connection. A 4xx (unknown image, denied) is final.
   */
  retries?: number;
  retryBaseMs?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
  /** What a node id in a rollout's order must look like (default: a libp2p peer id). */
  isPeerId?: (id: string) => boolean;
  /**
   * A rollout of at least this many nodes (the origin too) goes down stripe trees, not a line (0: never,
   * the default). Off for now: the 32-host bench (20 Mbit/s, 2 cores) ran the striped warm-up in 287 s against
   * the line's 174 s, and its 100 MiB rollout had no host done after 5 min (the line: 234 s), with chunks
   * waiting on cold dials and stalled parents. 16 would keep 8-host rollouts on the line.
   */
  stripesFrom?: number;
  /** Stripes of a striped rollout (each node relays one of them to up to this many children). */
  stripes?: number;
  stripeChunkBytes?: number;
}

/** A node of a striped rollout silent this long (a few reports) counts as holding nothing new. */
const SILENT_REPORTS = 3;

const MAX_ROLLOUTS_KEPT = 100;

export class Rollouts {
  private readonly specs = new Map<string, RolloutSpec>();
  private readonly mine = new Map<string, NodeProgress>();
  /** At the origin: every node's last report, by rollout. */
  private readonly reports = new Map<string, Map<string, { progress: NodeProgress; at: number }>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** This node's running rollouts: the blobs each has yet to fetch, or 'manifests' before it knows them. */
  private readonly pending = new Map<string, Set<Digest> | 'manifests'>();
  /** This node's stripes, by striped rollout it runs; at the origin, the trees it keeps. */
  private readonly routes = new Map<string, NodeStripes>();
  private readonly keepers = new Map<string, StripeKeeper>();
  /** Rollouts being created (finding the cluster), by image and platform. */
  private readonly creating = new Map<string, Promise<RolloutSpec>>();
  private readonly o: Required<Omit<RolloutOptions, 'log'>> & Pick<RolloutOptions, 'log'>;

  constructor(
    private readonly distribution: Distribution,
    private readonly net: RolloutNetwork,
    private readonly journal: RolloutJournal,
    opts: RolloutOptions,
  ) {
    this.o = { deadAfterMs: 15_000, reportEveryMs: 1_000, parallel: 6, orderedParallel: 1, retries: 5, retryBaseMs: 500, now: Date.now, isPeerId: looksLikePeerId, stripesFrom: 0, stripes: 4, stripeChunkBytes: 1024 * 1024, ...opts };
  }

  /** Resumes the rollouts a previous run of this node had not finished. */
  async resume(): Promise<number> {
    let resumed = 0;
    for (const raw of await this.journal.load()) {
      try {
        if (this.accept(specFrom(raw, this.o.isPeerId))) resumed++;
      } catch (err) {
        this.o.log?.warn({ reason: (err as Error).message }, 'a kept rollout could not be read: skipped');
      }
    }
    return resumed;
  }

  /** A new rollout with this node as its origin (or the running one for the same image and platform). */
  async create(image: string, platform?: string): Promise<RolloutSpec> {
    const ref = parseImageReference(image, this.o.defaultRegistry);
    const normalized = formatImageReference(ref);
    for (const spec of this.specs.values()) {
      if (spec.origin === this.net.self && spec.image === normalized && spec.platform === platform && this.view(spec.id)?.state === 'running') return spec;
    }
    // Asked again while the first is still finding the cluster: the same rollout.
    const key = JSON.stringify([normalized, platform ?? null]);
    const creating = this.creating.get(key);
    if (creating) return creating;
    const made = this.make(ref, normalized, platform).finally(() => this.creating.delete(key));
    this.creating.set(key, made);
    return made;
  }

  private async make(ref: ImageReference, normalized: string, platform: string | undefined): Promise<RolloutSpec> {
    // The origin hands the rollout to every node and hears every report: it meets them all first.
    const expected = await (this.net.cluster?.() ?? this.net.peers());
    const nodes = new Set([this.net.self, ...expected]).size;
    const striped = this.o.stripesFrom > 0 && nodes >= this.o.stripesFrom && this.o.stripes >= 2;
    const spec: RolloutSpec = {
      id: randomUUID(),
      image: normalized,
      registry: ref.registry,
      repository: ref.repository,
      reference: ref.digest ?? ref.tag!,
      ...(platform ? { platform } : {}),
      origin: this.net.self,
      originAddrs: this.net.selfAddrs(),
      createdAt: this.o.now(),
      expected,
      // The origin has the request first and starts first: it heads every chain.
      order: [this.net.self, ...expected.filter((p) => p !== this.net.self)],
      ...(striped ? { stripes: { k: this.o.stripes, chunkBytes: this.o.stripeChunkBytes } } : {}),
    };
    this.accept(spec);
    return spec;
  }

  /** A rollout offered by a peer (or resumed): taken once, passed on, and run. False if already known. */
  accept(spec: RolloutSpec, from?: string): boolean {
    if (this.specs.has(spec.id)) return false;
    this.specs.set(spec.id, spec);
    // From the moment it is accepted (not once the journal is written): a follower that made sure this node
    // knows the rollout (handBack) then finds its questions held for this node's download, not answered not-found.
    this.pending.set(spec.id, 'manifests');
    this.trim();
    // Kept on disk before anything else, so a node that has reported the rollout running resumes it if
    // it is killed: a report sent before the record was written could leave nothing to resume.
    void this.journal
      .save(spec)
      .catch((err: Error) => this.o.log?.warn({ rollout: spec.id, reason: err.message }, 'rollout not kept on disk: it will not resume after a restart'))
      .then(() => {
        void this.spread(spec, from).catch(() => undefined);
        return this.run(spec);
      })
      .catch((err: Error) => this.o.log?.warn({ rollout: spec.id, reason: err.message }, 'rollout stopped'));
    return true;
  }

  private async spread(spec: RolloutSpec, from?: string): Promise<void> {
    for (const peer of await this.net.peers()) {
      if (peer === from || peer === spec.origin) continue;
      // A peer that cannot be reached now hears of it from another, or is reported dead by the origin.
      void this.net.offer(peer, spec).catch(() => undefined);
    }
  }

  /** A node that joined while rollouts run gets them too (it ignores those it already has). */
  offerRunning(peer: string): void {
    for (const [id, progress] of this.mine) {
      const spec = this.specs.get(id);
      if (progress.state === 'running' && spec && peer !== spec.origin) void this.net.offer(peer, spec).catch(() => undefined);
    }
  }

  /** At the origin: a node's progress. */
  onReport(progress: NodeProgress): void {
    const spec = this.specs.get(progress.rollout);
    if (!spec || spec.origin !== this.net.self) return;
    let byNode = this.reports.get(spec.id);
    if (!byNode) this.reports.set(spec.id, (byNode = new Map()));
    byNode.set(progress.node, { progress, at: this.o.now() });
    if (spec.stripes) this.keepTrees(spec, progress);
  }

  /** At the origin of a striped rollout: a report's suspects demoted, silent nodes removed, and the moved told. */
  private keepTrees(spec: RolloutSpec, progress: NodeProgress): void {
    let keeper = this.keepers.get(spec.id);
    if (!keeper) this.keepers.set(spec.id, (keeper = new StripeKeeper(spec.id, spec.origin, spec.order ?? [], spec.stripes!)));
    const reports = this.reports.get(spec.id)!;
    const now = this.o.now();
    const pace = this.paceOf(spec);
    const held = (stripe: number): HeldShare => (id) => {
      const r = reports.get(id);
      if (!r || (r.progress.state === 'running' && now - r.at > SILENT_REPORTS * pace.everyMs)) return undefined;
      if (r.progress.state === 'done') return 1;
      const per = r.progress.bytesTotal / keeper.shape.k;
      return per > 0 ? Math.min(1, (r.progress.stripes?.have[stripe] ?? 0) / per) : 0;
    };
    const moves = keeper.heard(progress, held);
    for (const [node, r] of reports) {
      if (r.progress.state === 'running' && now - r.at > pace.deadAfterMs) moves.push(...keeper.lost(node, held));
    }
    for (const m of moves) this.sendRepoint(m);
  }

  private sendRepoint({ node, repoint }: Addressed): void {
    this.o.log?.info({ rollout: repoint.rollout, node, stripe: repoint.stripe, parent: repoint.parent }, 'stripe trees: a node repointed');
    if (node === this.net.self) return void this.onRepoint(repoint, this.net.self);
    void this.net.repoint?.(node, repoint).catch((err: Error) => this.o.log?.warn({ node, reason: err.message }, 'a repoint was not taken: the node falls back on its own'));
  }

  /** The origin's word: this node takes a stripe from another parent from its next chunk on. */
  onRepoint(repoint: Repoint, from: string): void {
    const spec = this.specs.get(repoint.rollout);
    if (!spec || spec.origin !== from) throw new Error('a repoint from a node that is not the rollout\'s origin');
    const route = this.routes.get(spec.id);
    if (route?.repoint(repoint)) this.o.log?.info({ rollout: spec.id, stripe: repoint.stripe, parent: repoint.parent }, 'stripe trees: repointed');
  }

  private async run(spec: RolloutSpec): Promise<void> {
    const progress: NodeProgress = {
      rollout: spec.id,
      node: this.net.self,
      state: 'running',
      blobsTotal: 0,
      blobsDone: 0,
      bytesTotal: 0,
      bytesDone: 0,
      bySource: { local: 0, peer: 0, upstream: 0 },
      startedAt: this.o.now(),
    };
    this.mine.set(spec.id, progress);
    const route = this.stripesOf(spec);
    if (route) this.routes.set(spec.id, route);
    // A report that does not arrive is not an error here: the next one may, and the origin calls a
    // node it has not heard from for a while dead. (Unhandled, the rejection would end the process.)
    const report = () => void this.send(spec, progress).catch(() => undefined);
    // A parent named as failing is news the keeper acts on: it goes at once, not with the next paced report.
    if (route) route.onSuspect = report;
    const timer = setInterval(report, this.paceOf(spec).everyMs);
    timer.unref();
    this.timers.set(spec.id, timer);
    report();
    try {
      await this.fetchImage(spec, progress);
      progress.state = 'done';
      this.o.log?.info({ rollout: spec.id, image: spec.image, bytes: progress.bytesDone, bySource: progress.bySource, ms: this.o.now() - progress.startedAt }, 'rollout done');
    } catch (err) {
      progress.state = 'failed';
      progress.error = (err as Error).message;
      this.o.log?.warn({ rollout: spec.id, image: spec.image, reason: progress.error }, 'rollout failed');
    }
    progress.finishedAt = this.o.now();
    clearInterval(timer);
    this.timers.delete(spec.id);
    await this.journal.remove(spec.id).catch(() => undefined);
    await this.sendUntilHeard(spec, progress);
  }

  private send(spec: RolloutSpec, progress: NodeProgress): Promise<void> {
    const route = this.routes.get(spec.id);
    const copy = { ...progress, bySource: { ...progress.bySource }, ...(route ? { stripes: route.progress() } : {}) };
    if (spec.origin === this.net.self) {
      this.onReport(copy);
      return Promise.resolve();
    }
    return this.net.report(spec, copy);
  }

  /** The final report matters most: it is retried a few times. */
  private async sendUntilHeard(spec: RolloutSpec, progress: NodeProgress): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await this.send(spec, progress);
      } catch {
        await new Promise((r) => setTimeout(r, this.paceOf(spec).everyMs).unref());
      }
    }
  }

  /**
   * Whether a running rollout here is to fetch the blob (or does not know its blobs yet): a peer asking
   * this node for it, the next in the rollout's order, is worth keeping waiting for the download.
   */
  willFetch(digest: Digest): boolean {
    for (const p of this.pending.values()) if (p === 'manifests' || p.has(digest)) return true;
    return false;
  }

  /** The image, with this node placed in the rollout's order of nodes while it is fetched. */
  private async fetchImage(spec: RolloutSpec, progress: NodeProgress): Promise<void> {
    let undo: (() => void) | undefined;
    this.pending.set(spec.id, 'manifests');
    try {
      await this.fetchBlobs(spec, progress, (u) => (undo = u));
    } finally {
      this.pending.delete(spec.id);
      undo?.();
    }
  }

  /**
   * Makes sure the node before this one in the rollout's order runs the rollout before this node asks it
   * for a blob: the spread from the origin reaches nodes in no particular order (on a starved host, tens of
   * seconds apart), and a predecessor that has not heard of the rollout answers not-found, which passed it
   * over and, three such answers on, sent this node to the seed for a second copy. A node that cannot be
   * reached is passed over for the one before it (up to MAX_HANDED_BACK); a node already running the
   * rollout ignores the offer.
   */
  private async handBack(spec: RolloutSpec): Promise<void> {
    const order = spec.order ?? [];
    const place = order.indexOf(this.net.self);
    for (let at = place - 1; at >= Math.max(0, place - MAX_HANDED_BACK); at--) {
      const peer = order[at]!;
      if (peer === spec.origin) return;
      try {
        return await this.net.offer(peer, spec);
      } catch {
        // unreachable (or refused): the one before it
      }
    }
  }

  /** Pulls the image's manifests, then its blobs, `parallel` at a time, through the node's usual path. */
  private async fetchBlobs(spec: RolloutSpec, progress: NodeProgress, placed: (undo: () => void) => void): Promise<void> {
    const image: Image = { repository: parseRepositoryName(spec.repository), ns: spec.registry };
    const handedBack = this.net.followOrder ? this.handBack(spec) : Promise.resolve();
    const blobs = await this.blobsOf(spec, image, progress);
    await handedBack;
    // Placed before any blob is asked for: from the first, every chain runs in the rollout's order.
    const undos: Array<() => void> = [];
    if (spec.order && this.net.followOrder) undos.push(this.net.followOrder([...blobs.keys()], spec.order, spec.id));
    // Striped: each blob by stripes first; the order's line is the way on if they fail it.
    const route = this.routes.get(spec.id);
    if (route && this.net.followStripes) undos.push(this.net.followStripes([...blobs.keys()], route));
    placed(() => undos.forEach((undo) => undo()));
    const todo = [...blobs.values()];
    const left = new Set(blobs.keys());
    this.pending.set(spec.id, left);
    progress.blobsTotal = todo.length;
    progress.bytesTotal += todo.reduce((sum, b) => sum + b.size, 0);
    const keeping: Array<Promise<void>> = [];
    const worker = async (queue: Descriptor[]) => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const blob = next;
        const fetched = await this.retrying(spec, `blob ${blob.digest}`, () => this.fetchOne(image, blob));
        const kept = this.keep(spec, image, blob, fetched).then(({ got, source }) => {
          left.delete(blob.digest);
          progress.bytesDone += got;
          progress.bySource[source] += got;
          progress.blobsDone++;
        });
        kept.catch(() => undefined); // awaited below
        keeping.push(kept);
      }
    };
    // One at a time in the order, small blobs beside (see blob-lanes.ts for why).
    const ordered = spec.order?.includes(this.net.self) === true && this.net.followOrder !== undefined;
    const lanes = blobLanes(todo, ordered, this.o.parallel, this.o.orderedParallel);
    await Promise.all([
      ...Array.from({ length: lanes.largeWorkers }, () => worker(lanes.large)),
      ...(lanes.small.length > 0 ? [worker(lanes.small)] : []),
    ]);
    await Promise.all(keeping);
  }

  /** This node's stripes in a striped rollout; undefined when it takes the rollout whole (the origin, a node outside the order). */
  /** How often this rollout's nodes report, and when a silent one is dead: by the rollout's size. */
  private paceOf(spec: RolloutSpec): ReportPace {
    const nodes = Math.max(spec.order?.length ?? 0, spec.expected.length + 1);
    return reportPace(nodes, { everyMs: this.o.reportEveryMs, deadAfterMs: this.o.deadAfterMs });
  }

  private stripesOf(spec: RolloutSpec): NodeStripes | undefined {
    if (!spec.stripes || !spec.order || !this.net.followStripes) return undefined;
    const keeper = new StripeKeeper(spec.id, spec.origin, spec.order, spec.stripes);
    return keeper.has(this.net.self) ? new NodeStripes(spec.stripes, keeper.parentsOf(this.net.self), spec.origin) : undefined;
  }

  /** The image's manifests, pulled (and counted as done), and the blobs they name, by digest. */
  private async blobsOf(spec: RolloutSpec, image: Image, progress: NodeProgress): Promise<Map<Digest, Descriptor>> {
    const blobs = new Map<Digest, Descriptor>();
    const visit = async (reference: ManifestReference, depth: number): Promise<void> => {
      const m = await this.retrying(spec, `manifest ${referenceString(reference)}`, () => this.distribution.manifest(image.repository, reference, image.ns));
      progress.bytesTotal += m.bytes.length;
      progress.bytesDone += m.bytes.length;
      progress.bySource[m.source] += m.bytes.length;
      const parsed = parseManifest(m.bytes, m.record.mediaType);
      for (const b of parsed.blobs) blobs.set(b.digest, b);
      if (depth > 1) return;
      for (const child of parsed.manifests) {
        if (spec.platform && !platformMatches(child, spec.platform)) continue;
        await visit({ kind: 'digest', digest: child.digest }, depth + 1);
      }
    };
    await visit(parseManifestReference(spec.reference), 0);
    return blobs;
  }

  /**
   * One blob, fetched and verified; how many bytes, from where, and `kept`, which resolves once it is
   * stored (the commit's flush and rename may still be running when this returns).
   */
  private async fetchOne(image: Image, blob: Descriptor): Promise<Fetched> {
    const answer = await this.distribution.blob(image.repository, blob.digest, image.ns, false);
    let got = 0;
    let kept = Promise.resolve();
    if (answer.stored) {
      // A download: wait for its bytes to verify, without reading them back. The next blob starts then,
      // not after the commit: flushing 50 MiB while every node of a rollout flushes its own took up to a
      // second, and a node in a chain that paused between blobs never caught up with the node before it
      // (both run at the link's rate), so each pause added to its finish.
      await (answer.verified ?? answer.stored);
      kept = answer.stored;
      got = answer.size;
    } else if (answer.source !== 'local') {
      // Reading the answer to its end waits for the download, its verification and its commit.
      for await (const chunk of await answer.open()) got += (chunk as Uint8Array).length;
    } else {
      got = answer.size;
    }
    if (got !== blob.size) throw new Error(`got ${got} of ${blob.size} bytes`);
    return { got, source: answer.source, kept };
  }

  /** A blob counts as done once it is kept; a commit that failed after the bytes verified is fetched again. */
  private async keep(spec: RolloutSpec, image: Image, blob: Descriptor, fetched: Fetched): Promise<Fetched> {
    try {
      await fetched.kept;
      return fetched;
    } catch {
      return await this.retrying(spec, `blob ${blob.digest}`, async () => {
        const again = await this.fetchOne(image, blob);
        await again.kept;
        return again;
      });
    }
  }

  /** `work`, tried again after failures another try may fix (see RolloutOptions.retries). */
  private async retrying<T>(spec: RolloutSpec, what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        const reason = (err as Error).message;
        // Final: the image or blob does not exist, or this node may not have it. Busy, a full disk (the disk
        // keeper may free room) and anything transient are tried again.
        const kind = failureOf(err);
        const final = kind === 'not-found' || kind === 'refused';
        if (final || attempt >= this.o.retries) throw new Error(`${what}: ${reason}${attempt > 0 ? ` (after ${attempt + 1} attempts)` : ''}`);
        const waitMs = this.o.retryBaseMs * 2 ** attempt;
        this.o.log?.warn({ rollout: spec.id, what, reason, retryInMs: waitMs }, 'rollout fetch failed: retrying');
        await new Promise((r) => setTimeout(r, waitMs).unref());
      }
    }
  }

  /** The origin's view of a rollout (others only know their own part); undefined when unknown. */
  view(id: string): RolloutView | undefined {
    const spec = this.specs.get(id);
    if (!spec) return undefined;
    const now = this.o.now();
    const reports = this.reports.get(id) ?? new Map<string, { progress: NodeProgress; at: number }>();
    const nodes: NodeView[] = [];
    const names = new Set([spec.origin, ...spec.expected, ...reports.keys()]);
    const { deadAfterMs } = this.paceOf(spec);
    if (spec.origin !== this.net.self) {
      const own = this.mine.get(id);
      return own ? viewOf(spec, [{ ...own, status: own.state }]) : undefined;
    }
    for (const node of names) {
      const own = node === this.net.self ? this.mine.get(id) : undefined;
      if (own) {
        // This node is alive by definition: its own progress is current, whatever the clock says.
        nodes.push({ ...own, bySource: { ...own.bySource }, status: own.state, lastReportAt: now });
        continue;
      }
      const r = reports.get(node);
      if (!r) {
        nodes.push({ node, status: now - spec.createdAt > deadAfterMs ? 'dead' : 'waiting' });
        continue;
      }
      const silent = now - r.at > deadAfterMs;
      nodes.push({ ...r.progress, node, status: r.progress.state === 'running' && silent ? 'dead' : r.progress.state, lastReportAt: r.at });
    }
    return viewOf(spec, nodes);
  }

  /** The registry and repository a rollout fetches (for filtering answers by privacy); undefined when unknown. */
  subject(id: string): { registry: string; repository: string } | undefined {
    const spec = this.specs.get(id);
    return spec && { registry: spec.registry, repository: spec.repository };
  }

  list(): RolloutView[] {
    return [...this.specs.keys()].map((id) => this.view(id)).filter((v): v is RolloutView => v !== undefined).reverse();
  }

  close(): void {
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
  }

  private trim(): void {
    for (const id of this.specs.keys()) {
      if (this.specs.size <= MAX_ROLLOUTS_KEPT) break;
      if (this.mine.get(id)?.state === 'running') continue;
      this.specs.delete(id);
      this.mine.delete(id);
      this.reports.delete(id);
      this.routes.delete(id);
      this.keepers.delete(id);
    }
  }
}
