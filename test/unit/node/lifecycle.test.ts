// The node's lifecycle: services start in the declared order and stop in the reverse, a failed start
// stops what had started, and a failed stop does not keep the others running.
import { describe, expect, it } from 'vitest';
import { startInOrder, type Service } from '../../../src/node/lifecycle.js';

/** Services that write what happens to them into `log`; `failing` says which fail and when. */
function services(names: string[], log: string[], failing: { start?: string; stop?: string } = {}): Service[] {
  return names.map((name) => ({
    name,
    async start() {
      if (failing.start === name) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    async stop() {
      log.push(`stop ${name}`);
      if (failing.stop === name) throw new Error(`${name} cannot stop`);
    },
  }));
}

describe('startInOrder', () => {
  it('starts in the declared order and stops in the reverse', async () => {
    const log: string[] = [];
    const lifecycle = await startInOrder(services(['a', 'b', 'c'], log), () => undefined);
    await lifecycle.stop();
    expect(log).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('stops, last first, what had started when a start fails, and rejects with that failure', async () => {
    const log: string[] = [];
    await expect(startInOrder(services(['a', 'b', 'c', 'd'], log, { start: 'c' }), () => undefined)).rejects.toThrow('c cannot start');
    expect(log).toEqual(['start a', 'start b', 'stop b', 'stop a']);
  });

  it('stops every service even when one fails to, reporting it, and rejects with the failure', async () => {
    const log: string[] = [];
    const failed: string[] = [];
    const lifecycle = await startInOrder(services(['a', 'b', 'c'], log, { stop: 'b' }), (service) => failed.push(service));
    await expect(lifecycle.stop()).rejects.toThrow('b cannot stop');
    expect(log.slice(3)).toEqual(['stop c', 'stop b', 'stop a']);
    expect(failed).toEqual(['b']);
  });

  it('takes services with nothing to start or nothing to stop, and stops once however often asked', async () => {
    const log: string[] = [];
    const lifecycle = await startInOrder(
      [{ name: 'closes only', stop: async () => void log.push('stop closes only') }, { name: 'starts only', start: async () => void log.push('start starts only') }],
      () => undefined,
    );
    await Promise.all([lifecycle.stop(), lifecycle.stop()]);
    expect(log).toEqual(['start starts only', 'stop closes only']);
  });
});
