// The connection watch (p2p/connection-watch.ts): a silent connection is pinged, one that then hears nothing
// is closed and its peer reported; anything heard answers. Driven with a clock of the test's own over fake
// connections, then once over a real libp2p connection (the muxer field it reaches into must be there). Its one
// timer is armed for the next deadline: an idle node is not woken every second.
import '../../../src/polyfill.js';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Connection } from '@libp2p/interface';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectionWatch, createP2PNode, muxerOf, type ConnectionSource, type LayerdLibp2p, type SilentPeer } from '../../../src/p2p/index.js';
import { until } from '../../helpers/processes.js';

const times = { idleQuietMs: 45_000, idleAnswerMs: 20_000, busyQuietMs: 4_000, busyAnswerMs: 8_000 };

function fakeConnection(peer: string) {
  const maConn = new EventTarget();
  const ping = vi.fn(() => new Promise<number>(() => undefined));
  const createStream = vi.fn(async () => ({}));
  const muxer = Object.assign(new EventTarget(), { maConn, ping, createStream });
  const conn = {
    status: 'open',
    streams: [] as unknown[],
    remotePeer: { toString: () => peer },
    remoteAddr: { toString: () => `/ip4/10.0.0.9/tcp/5001/p2p/${peer}` },
    muxer,
    abort: vi.fn(() => (conn.status = 'closed')),
  };
  const hear = () => maConn.dispatchEvent(new Event('message'));
  return { conn, ping, hear, createStream };
}

function rig(conns: Array<ReturnType<typeof fakeConnection>['conn']>) {
  let now = 1_000_000;
  const silent: SilentPeer[] = [];
  const source: ConnectionSource = { getConnections: () => conns as unknown as Connection[], addEventListener: () => undefined, removeEventListener: () => undefined };
  const watch = new ConnectionWatch(source, { times, sweepMs: 1_000, now: () => now, onSilent: (s) => silent.push(s), timer: false });
  watch.start();
  /** Advances the clock a second at a time, sweeping each second, for `ms`. */
  const run = (ms: number, each?: () => void) => {
    for (let t = 0; t < ms; t += 1_000) {
      now += 1_000;
      each?.();
      watch.sweep();
    }
  };
  return { watch, silent, run, now: () => now };
}

describe('the connection watch', () => {
  it('pings an idle connection silent for 45 s once, and closes it 20 s later when nothing answered', () => {
    const a = fakeConnection('peerA');
    const { watch, silent, run } = rig([a.conn]);
    run(44_000);
    expect(a.ping).not.toHaveBeenCalled();
    run(1_000);
    expect(a.ping).toHaveBeenCalledTimes(1);
    run(19_000);
    expect(a.conn.abort).not.toHaveBeenCalled();
    run(1_000);
    expect(a.conn.abort).toHaveBeenCalledTimes(1);
    expect(silent).toEqual([expect.objectContaining({ peer: 'peerA', busy: false, silentMs: 65_000 })]);
    expect(watch.counts).toEqual({ probes: 1, closed: 1 });
    expect(watch.size).toBe(0);
  });

  it('takes any byte heard as the answer: a connection that keeps hearing is never pinged, one that answers is kept', () => {
    const chatty = fakeConnection('chatty');
    const answers = fakeConnection('answers');
    // Its pong comes at once.
    answers.ping.mockImplementation(() => {
      answers.hear();
      return Promise.resolve(1);
    });
    const { watch, silent, run } = rig([chatty.conn, answers.conn]);
    run(45_000, () => chatty.hear());
    expect(chatty.ping).not.toHaveBeenCalled();
    expect(answers.ping).toHaveBeenCalledTimes(1);
    run(180_000, () => chatty.hear());
    // Answered, then silent again: pinged again 45 s after its answer, never closed.
    expect(answers.ping).toHaveBeenCalledTimes(5);
    expect(chatty.ping).not.toHaveBeenCalled();
    expect(silent).toEqual([]);
    expect(watch.counts.closed).toBe(0);
  });

  it('probes a connection with a stream open after 4 s of silence and closes it 8 s later', () => {
    const b = fakeConnection('busy');
    b.conn.streams.push({});
    const { silent, run } = rig([b.conn]);
    run(4_000);
    expect(b.ping).toHaveBeenCalledTimes(1);
    run(7_000);
    expect(b.conn.abort).not.toHaveBeenCalled();
    run(1_000);
    expect(silent).toEqual([expect.objectContaining({ peer: 'busy', busy: true, silentMs: 12_000 })]);
  });

  it('judges nothing in a sweep that comes late (this process was stalled, not its peers)', () => {
    const c = fakeConnection('c');
    c.conn.streams.push({});
    const { watch, run } = rig([c.conn]);
    run(4_000);
    expect(c.ping).toHaveBeenCalledTimes(1);
    // One sweep 30 s after the last: the pong may be waiting in the socket, unread yet.
    const w = watch as unknown as { dueAt: number };
    w.dueAt -= 29_000;
    run(1_000);
    expect(c.conn.abort).not.toHaveBeenCalled();
  });
});

describe('when the connection watch wakes', () => {
  it('sleeps until the earliest idle deadline while no connection has a stream open', () => {
    const a = fakeConnection('a');
    const b = fakeConnection('b');
    const { watch, run, now } = rig([a.conn, b.conn]);
    const start = now();
    expect(watch.nextSweepAt).toBe(start + 45_000);
    run(10_000, () => a.hear());
    // a was heard 10 s in: b's deadline (45 s) is still the earliest.
    expect(watch.nextSweepAt).toBe(start + 45_000);
    run(35_000);
    expect(b.ping).toHaveBeenCalledTimes(1);
    // b's answer is due 20 s after its probe, before a's probe at 55 s.
    expect(watch.nextSweepAt).toBe(start + 55_000);
  });

  it('comes within a sweep once a stream opens either way, and sweeps each second while one is open', () => {
    const a = fakeConnection('a');
    const { watch, run, now } = rig([a.conn]);
    expect(watch.nextSweepAt).toBe(now() + 45_000);
    void (a.conn.muxer as unknown as { createStream(): Promise<unknown> }).createStream();
    expect(a.createStream).toHaveBeenCalledTimes(1);
    expect(watch.nextSweepAt).toBe(now() + 1_000);
    a.conn.streams.push({});
    run(1_000);
    expect(watch.nextSweepAt).toBe(now() + 1_000);
    a.conn.streams.pop();
    run(1_000);
    expect(watch.nextSweepAt).toBeGreaterThan(now() + 40_000);
    a.conn.muxer.dispatchEvent(new Event('stream')); // an inbound one
    expect(watch.nextSweepAt).toBe(now() + 1_000);
  });

  it('hands the muxer its own createStream back once the connection is no longer watched', () => {
    const a = fakeConnection('a');
    const { watch } = rig([a.conn]);
    expect(a.conn.muxer.createStream).not.toBe(a.createStream);
    watch.stop();
    expect(a.conn.muxer.createStream).toBe(a.createStream);
    expect(watch.nextSweepAt).toBe(Infinity);
  });
});

describe('the connection watch on a real libp2p connection', () => {
  let a: LayerdLibp2p;
  let b: LayerdLibp2p;
  beforeAll(async () => {
    const make = async () => createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], bootstrap: [], providerTtlMs: 3_600_000 });
    [a, b] = await Promise.all([make(), make()]);
    await a.dial(b.getMultiaddrs()[0]!);
  });
  afterAll(async () => Promise.all([a?.stop(), b?.stop()]));

  it('runs as a libp2p service, finds yamux behind each connection, and hears the pong to its ping', async () => {
    const conn = await until('a connection', async () => a.getConnections()[0]);
    const muxer = muxerOf(conn);
    expect(muxer, 'libp2p keeps the muxer in conn.muxer').toBeDefined();
    // yamux's own keep-alive is off: the watch pings only silent connections.
    expect((muxer as unknown as { enableKeepAlive: boolean }).enableKeepAlive).toBe(false);
    const watch = a.services.watch;
    expect(watch.size).toBe(1);
    let heard = false;
    muxer!.maConn.addEventListener('message', () => (heard = true));
    await muxer!.ping();
    expect(heard).toBe(true);
    // Idle (once identify's and the DHT's first streams closed): the next sweep is the ping deadline, not a
    // second away; a stream this node opens brings it near.
    await until('the watch to sleep until a ping is due', async () => (watch.nextSweepAt - Date.now() > 30_000 ? true : undefined), 15_000);
    const stream = await conn.newStream('/ipfs/ping/1.0.0');
    expect(watch.nextSweepAt - Date.now()).toBeLessThanOrEqual(1_000);
    await stream.close();
  });
});
