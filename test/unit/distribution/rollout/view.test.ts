// The origin's view of a rollout lists its nodes in code-unit order (peer ids are mixed-case base58), not with
// localeCompare (ICU's collator, which would map ~3 MiB into the origin once called: an order ICU gives is
// case-insensitive first, '1 a Ab b B').
import { describe, expect, it } from 'vitest';
import { viewOf, type NodeView, type RolloutSpec } from '../../../../src/distribution/rollout/view.js';

const spec: RolloutSpec = { id: 'r1', image: 'seed/app:v1', registry: 'seed', repository: 'app', reference: 'v1', origin: 'o', originAddrs: [], createdAt: 0, expected: [] };

describe('viewOf', () => {
  it('orders nodes by code unit: upper case before lower, digits first', () => {
    const nodes: NodeView[] = ['b', 'a', 'B', 'Ab', '1'].map((node) => ({ node, status: 'waiting' }));
    expect(viewOf(spec, nodes).nodes.map((n) => n.node)).toEqual(['1', 'Ab', 'B', 'a', 'b']);
  });
});
