import { describe, expect, it } from 'vitest';
import { LandedMap } from '../../../src/store/landed-map.js';

describe('LandedMap', () => {
  it('says how far one run of bytes goes from a position, in the prefix or in a landed extent', () => {
    const m = new LandedMap();
    m.add(100, 50);
    expect(m.runFrom(40, 10)).toBe(30);
    expect(m.runFrom(40, 40)).toBe(0);
    expect(m.runFrom(40, 120)).toBe(30);
    expect(m.runFrom(40, 150)).toBe(0);
  });

  it('merges adjacent extents and hands over the one the prefix reaches', () => {
    const m = new LandedMap();
    m.add(20, 10);
    m.add(10, 10);
    m.add(40, 5);
    expect(m.takeAt(0)).toBeUndefined();
    expect(m.takeAt(10)).toEqual({ start: 10, end: 30 });
    expect(m.empty).toBe(false);
    expect(m.takeAt(40)).toEqual({ start: 40, end: 45 });
    expect(m.empty).toBe(true);
  });

  it('refuses bytes inside the prefix, over landed bytes, past the limit, or at nonsense offsets', () => {
    const m = new LandedMap();
    m.add(100, 50);
    expect(m.refuse(10, 5, 10)).toMatch(/written in order/);
    expect(m.refuse(10, 90, 20)).toMatch(/landed already/);
    expect(m.refuse(10, 149, 1)).toMatch(/landed already/);
    expect(m.refuse(10, 140, 20)).toMatch(/landed already/);
    expect(m.refuse(10, 150, 60, 200)).toMatch(/past the blob/);
    expect(m.refuse(10, -1, 1)).toMatch(/bad region/);
    expect(m.refuse(10, 1.5, 1)).toMatch(/bad region/);
    expect(m.refuse(10, 150, 50, 200)).toBeUndefined();
    expect(m.refuse(10, 10, 90)).toBeUndefined();
  });
});
