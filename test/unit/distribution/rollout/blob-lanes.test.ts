import { describe, expect, it } from 'vitest';
import { blobLanes } from '../../../../src/distribution/index.js';

const blobs = [{ size: 115 }, { size: 50 << 20 }, { size: 50 << 20 }, { size: 1 << 20 }];

describe('blobLanes', () => {
  it('in a rollout order: large blobs one at a time in sequence, small ones beside', () => {
    const lanes = blobLanes(blobs, true, 6, 1);
    expect(lanes.large).toEqual([blobs[1], blobs[2]]);
    expect(lanes.largeWorkers).toBe(1);
    expect(lanes.small).toEqual([blobs[0], blobs[3]]);
  });

  it('outside an order: every blob in one lane, `parallel` at once (no more workers than blobs)', () => {
    const lanes = blobLanes(blobs, false, 6, 1);
    expect(lanes.large).toEqual(blobs);
    expect(lanes.largeWorkers).toBe(4);
    expect(lanes.small).toEqual([]);
  });
});
