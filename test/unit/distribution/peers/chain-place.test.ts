import { describe, expect, it } from 'vitest';
import { ChainPlace } from '../../../../src/distribution/index.js';

describe('ChainPlace', () => {
  it('passes over a predecessor that failed, up to three, then gives up on peers', () => {
    const place = new ChainPlace();
    for (const id of ['a', 'b', 'c']) {
      place.follow(id);
      expect(place.retry()).toBe(true);
    }
    expect(place.failed).toEqual(['a', 'b', 'c']);
    place.follow('d');
    expect(place.retry()).toBe(false);
  });

  it('a head (following no one) has nothing to pass over', () => {
    const place = new ChainPlace();
    place.follow('a');
    place.lead();
    expect(place.follows).toBeUndefined();
    expect(place.retry()).toBe(false);
  });
});
