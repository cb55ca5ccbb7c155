// Which blobs come by stripes now, and by which route: a striped rollout places its blobs here while it
// runs (RolloutNetwork.followStripes), and the peer fetcher asks here for each blob it fetches.
import type { StripeRoute } from '../distribution/index.js';
import type { Digest } from '../oci/index.js';

export class StripeRoutes {
  private readonly routes = new Map<Digest, StripeRoute>();

  /** These blobs come by `route` until the returned undo (a blob in two rollouts takes the later). */
  place(digests: readonly Digest[], route: StripeRoute): () => void {
    for (const d of digests) this.routes.set(d, route);
    return () => {
      for (const d of digests) if (this.routes.get(d) === route) this.routes.delete(d);
    };
  }

  get(digest: Digest): StripeRoute | undefined {
    return this.routes.get(digest);
  }
}
