// libp2p's component logger (src/p2p/quiet-logger.ts): one shared no-op for every component and scope unless DEBUG
// names something, when libp2p keeps its own loggers.
import { describe, expect, it } from 'vitest';
import { quietLogger } from '../../../src/p2p/quiet-logger.js';

describe('quietLogger', () => {
  it('gives every component and every scope below it the same disabled logger, which does nothing', () => {
    const components = quietLogger(undefined)!;
    const log = components.forComponent('libp2p:yamux');
    expect(log.enabled).toBe(false);
    expect(components.forComponent('libp2p:mss')).toBe(log);
    expect(log.newScope('stream:1')).toBe(log);
    expect(log.newScope('a').newScope('b')).toBe(log);
    expect(() => {
      log('opened %s', 'x');
      log.error('failed %e', new Error('boom'));
      log.trace('frame %o', { n: 1 });
    }).not.toThrow();
  });

  it('leaves libp2p its own loggers when DEBUG is set, and is quiet when it is empty', () => {
    expect(quietLogger('libp2p:*')).toBeUndefined();
    expect(quietLogger('')).toBeDefined();
    expect(quietLogger('  ')).toBeDefined();
  });
});
