// Following a chain of fetch claims: nodes missing a blob at the same moment form a chain at its
// coordinator (p2p/fetch-claims.ts), and each follows the download of the node before it, so one node
// fetches from the seed and the rest from each other.
import { setTimeout as sleep } from 'node:timers/promises';
import { PeerFetchError, type Provider } from '../../p2p/index.js';
import type { FetchedBody } from '../download/index.js';
import { ImpossibleClaimError, type ClaimJudge } from './claims.js';
import type { FetcherSettings, PeerNetwork, Wanted } from './peer-network.js';
import type { PeerScores } from './peer-scores.js';

/** Fetchers whose seed download a node tries to follow before it asks the seed itself. */
const MAX_FETCHERS_FOLLOWED = 2;
/** The least time between two questions to a predecessor that answered 'pending' (one that answers it at once). */
const PENDING_PAUSE_MS = 1_000;

export class ChainFollower {
  constructor(
    private readonly net: PeerNetwork,
    private readonly scores: PeerScores,
    private readonly judge: ClaimJudge,
    private readonly o: FetcherSettings,
  ) {}

  /**
   * The stream of the predecessor the coordinator names, from byte `from` on; undefined when there is
   * none to follow (no coordinator, this node heads the chain, or the predecessors named could not
   * serve: each is added to `failed`, which the coordinator is told so it hands this node on).
   */
  async follow(want: Wanted, from: number, failed: string[], onFollow: (id: string) => void): Promise<FetchedBody | undefined> {
    for (let i = 0; i <= MAX_FETCHERS_FOLLOWED && this.net.whoFetches; i++) {
      const predecessor = await this.net.whoFetches(want.digest, failed).catch(() => undefined);
      if (!predecessor || failed.includes(predecessor.id)) break;
      const body = await this.patiently(want, predecessor, onFollow, from);
      if (body) return body;
      failed.push(predecessor.id);
    }
    return undefined;
  }

  /**
   * The predecessor's stream, asked again while it answers 'pending' (alive, its own download not begun
   * yet: on a starved host, or behind a slow node before it), for up to followPendingMs. A slow node
   * keeps its followers: passing it over would put a second copy on another uplink, and with no one
   * left before it, a second copy from the seed. Only a predecessor that cannot serve (gone, mute, bad
   * answer, not-found) is passed over.
   */
  private async patiently(want: Wanted, predecessor: Provider, onFollow: (id: string) => void, from: number): Promise<FetchedBody | undefined> {
    const until = Date.now() + this.o.followPendingMs;
    for (let asked = 1; ; asked++) {
      const t = Date.now();
      const body = await this.stream(want, predecessor, onFollow, from);
      if (body !== 'pending') return body;
      if (Date.now() >= until) {
        this.o.log?.warn({ digest: want.digest, fetcher: predecessor.id, asked, waitedMs: this.o.followPendingMs }, 'a peer before this one in a fetch chain was still not fetching: passed over');
        return undefined;
      }
      if (asked === 1) this.o.log?.debug({ digest: want.digest, fetcher: predecessor.id }, 'the peer before this one has not begun its download: waiting for it');
      await sleep(Math.max(0, PENDING_PAUSE_MS - (Date.now() - t)));
    }
  }

  /**
   * One stream for the whole blob, written as it arrives: the node before this one sends its bytes as they
   * land, and the node after this one reads this node's the same way, so a chain of nodes moves a blob
   * with a delay of moments per hop, not of a range. Undefined when the predecessor cannot serve; 'pending' when it will but has not begun.
   */
  private async stream(want: Wanted, predecessor: Provider, onFollow: (id: string) => void, from: number): Promise<FetchedBody | 'pending' | undefined> {
    const { digest } = want;
    // Only the answer has a deadline: the body follows the predecessor's own download, at its pace.
    const answer = new AbortController();
    const timer = setTimeout(() => answer.abort(new Error(`no answer in ${this.o.followAnswerMs} ms`)), this.o.followAnswerMs);
    try {
      // From `from` on, to the end (the predecessor cuts the range at the blob's size).
      const blob = await this.net.fetch(predecessor, digest, from > 0 ? { start: from, end: Number.MAX_SAFE_INTEGER } : undefined, answer.signal);
      clearTimeout(timer);
      try {
        this.judge.judge(digest, predecessor.id, blob.size, want.expected);
      } catch (err) {
        blob.body.destroy();
        throw err;
      }
      want.contributors.add(predecessor.id);
      onFollow(predecessor.id);
      blob.body.once('end', () => this.o.onRangeFetched?.(predecessor.id, blob.length));
      this.o.log?.debug({ digest, fetcher: predecessor.id }, 'following a peer\'s download');
      return { size: blob.size, start: blob.start, stream: blob.body };
    } catch (err) {
      clearTimeout(timer);
      if (err instanceof PeerFetchError && err.status === 'pending') return 'pending';
      if (err instanceof ImpossibleClaimError) {
        // judged and penalized already
      } else if (answer.signal.aborted) {
        this.scores.unresponsive(predecessor.id);
        this.o.log?.warn({ digest, fetcher: predecessor.id, waitedMs: this.o.followAnswerMs }, 'a peer took a place in a fetch chain and never answered: avoided');
      } else this.o.log?.debug({ digest, fetcher: predecessor.id, reason: (err as Error).message }, 'could not follow a peer\'s download');
      return undefined;
    }
  }
}
