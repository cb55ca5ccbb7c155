// Who is in the cluster, found through the peers (issue 16). A node's connections are not its cluster: kad-dht
// connects a node to the peers its queries reached (go-libp2p-kad-dht admits no other), so a cluster started
// together is not a full mesh and a node knows a few of its peers. What every node does know is whom it is
// connected to, and the cluster is connected through them (every node dialled a bootstrap peer). A rollout's
// origin asks its peers for theirs, then asks the ones it learned of, until no answer names a node it has not
// asked: the nodes that answered are the cluster reachable from here. The asking dials them, which the
// origin would do anyway to hand each the rollout and hear its reports.

/** A node named by a peer: its id and where it listens (empty: the DHT is asked when it is dialled). */
export interface NamedPeer {
  id: string;
  addrs: string[];
}

export interface GatherOptions {
  /** Questions in flight at once. */
  concurrency?: number;
  /** Nodes gathered at most: a peer that names thousands of made-up ids cannot make the walk endless. */
  maxNodes?: number;
}

/**
 * Every node reachable from `start` through the peers each names, `self` left out: `ask(peer)` resolves with
 * the peers `peer` is connected to, or rejects when it cannot be reached (it is then not gathered). A node
 * that answers but names no one (an older version that does not know the question answers it refused, which
 * `ask` resolves as []) is gathered. In the order each answered.
 */
export async function gatherCluster(self: string, start: readonly NamedPeer[], ask: (peer: NamedPeer) => Promise<NamedPeer[]>, opts: GatherOptions = {}): Promise<NamedPeer[]> {
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const maxNodes = opts.maxNodes ?? 10_000;
  const seen = new Set<string>([self]);
  const queue: NamedPeer[] = [];
  const gathered: NamedPeer[] = [];
  const learn = (p: NamedPeer) => {
    if (seen.has(p.id) || seen.size > maxNodes) return;
    seen.add(p.id);
    queue.push(p);
  };
  start.forEach(learn);
  let running = 0;
  await new Promise<void>((done) => {
    const next = () => {
      while (running < concurrency && queue.length > 0) {
        const peer = queue.shift()!;
        running++;
        ask(peer)
          .then(
            (named) => {
              gathered.push(peer);
              named.forEach(learn);
            },
            () => undefined, // unreachable now: not in the cluster this walk sees
          )
          .finally(() => {
            running--;
            next();
          });
      }
      if (running === 0 && queue.length === 0) done();
    };
    next();
  });
  return gathered;
}
