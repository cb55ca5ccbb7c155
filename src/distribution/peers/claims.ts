// The sizes peers claim a blob has, held against what this node trusts. A claim that cannot be true is
// the claimant's lie: it is penalized like bad bytes, and none of its bytes are read.
import type { Digest } from '../../oci/index.js';
import type { FetchedBody } from '../download/index.js';
import type { FetcherSettings } from './peer-network.js';
import type { PeerScores } from './peer-scores.js';

/** A peer announced a size the blob cannot have: it is penalized, and not read from. */
export class ImpossibleClaimError extends Error {
  constructor(peer: string, claimed: number, why: string) {
    super(`peer ${peer} claimed ${claimed} bytes, ${why}`);
    this.name = 'ImpossibleClaimError';
  }
}

export class ClaimJudge {
  constructor(
    private readonly scores: PeerScores,
    private readonly o: FetcherSettings,
  ) {}

  /**
   * A size a peer announced, held against the size a manifest's descriptor gives (`expected`), else the
   * largest blob any peer may claim.
   */
  judge(digest: Digest, peer: string, claimed: number, expected: number | undefined): void {
    let why: string | undefined;
    if (expected !== undefined && claimed !== expected) why = `the blob's descriptor says ${expected}`;
    else if (claimed > this.o.maxBlobBytes) why = `beyond the limit of ${this.o.maxBlobBytes}`;
    if (why === undefined) return;
    this.scores.corrupt(peer);
    this.o.log?.warn({ digest, peer, claimed, expected, limit: this.o.maxBlobBytes }, 'a peer claimed a size the blob cannot have: penalized');
    throw new ImpossibleClaimError(peer, claimed, why);
  }

  /**
   * A large claim that no descriptor confirmed (a blob asked for by digest alone): the seed is asked its
   * size (a HEAD, no body) before more than the first range is read, so a lying peer can make this node
   * read at most confirmClaimsAbove bytes, not whatever the disk holds. True when the seed confirms
   * the claim; false when it cannot say (down, or it lacks the blob: peers are all there is); a size
   * that differs is the claimants' lie, penalized, and the download goes on to the next source.
   */
  async confirm(digest: Digest, body: FetchedBody, claimants: string[], confirmSize: () => Promise<number | undefined>): Promise<boolean> {
    const trusted = await confirmSize().catch(() => undefined);
    if (trusted === undefined) return false;
    if (trusted === body.size) return true;
    body.stream.destroy();
    for (const id of claimants) this.scores.corrupt(id);
    this.o.log?.warn({ digest, peers: claimants, claimed: body.size, size: trusted }, 'peers claimed a size the seed does not give the blob: penalized');
    throw new ImpossibleClaimError(claimants.join(', '), body.size!, `the seed says ${trusted}`);
  }
}
