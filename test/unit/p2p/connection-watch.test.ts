// The connection watch (p2p/connection-watch.ts): a silent connection with a stream open is pinged, one that
// then hears nothing is closed and its peer reported; anything heard answers. A connection that opens or turns
// idle is pinged once; after that an idle one is never pinged and arms no timer (the kernel's keep-alive
// watches it); a connection the kernel times out is reported. Driven with a clock of the test's own over fake connections, then once over a real libp2p
// connection (the muxer field it reaches into must be there, and its socket must carry the keep-alive).
import '../../../src/polyfill.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Connection } from '@libp2p/interface';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectionWatch, createP2PNode, IDLE_KEEPALIVE, muxerOf, type ConnectionSource, type LayerdLibp2p, type SilentPeer } from '../../../src/p2p/index.js';
import { until } from '../../helpers/processes.js';

const times = { busyQuietMs: 4_000, busyAnswerMs: 8_000, idleAnswerMs: 20_000 };
function fakeConnection(peer: string) {
  const maConn = new EventTarget();
  let answering = true;
  // A live peer's pong comes at once; a vanished one's never.
  const ping = vi.fn(() => {
    if (answering) maConn.dispatchEvent(new Event('message'));
    return new Promise<number>(() => undefined);
  });
  const vanish = () => void (answering = false);
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
  /** The connection closes with this error, as libp2p's close event on the muxer's connection carries it. */
  const close = (error: object) => {
    conn.status = 'closed';
    maConn.dispatchEvent(Object.assign(new Event('close'), { error }));
  };
  return { conn, ping, hear, close, vanish, createStream };
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
  it('pings a new connection once, then never while it stays idle', () => {
    const a = fakeConnection('idle');
    const { watch, silent, run } = rig([a.conn]);
    run(1_000);
    expect(a.ping).toHaveBeenCalledTimes(1);
    run(600_000);
    expect(a.ping).toHaveBeenCalledTimes(1);
    expect(a.conn.abort).not.toHaveBeenCalled();
    expect(silent).toEqual([]);
    expect(watch.size).toBe(1);
  });

  it('closes a connection whose one ping goes unanswered, idleAnswerMs later', () => {
    const gone = fakeConnection('gone');
    gone.vanish();
    const { watch, silent, run } = rig([gone.conn]);
    run(1_000);
    expect(gone.ping).toHaveBeenCalledTimes(1);
    run(19_000);
    expect(gone.conn.abort).not.toHaveBeenCalled();
    run(1_000);
    expect(silent).toEqual([expect.objectContaining({ peer: 'gone', busy: false, silentMs: 21_000, by: 'ping' })]);
    expect(watch.size).toBe(0);
  });

  it('probes a connection with a stream open after 4 s of silence and closes it 8 s later', () => {
    const b = fakeConnection('busy');
    b.vanish();
    b.conn.streams.push({});
    const { watch, silent, run } = rig([b.conn]);
    run(3_000);
    expect(b.ping).not.toHaveBeenCalled();
    run(1_000);
    expect(b.ping).toHaveBeenCalledTimes(1);
    run(7_000);
    expect(b.conn.abort).not.toHaveBeenCalled();
    run(1_000);
    expect(silent).toEqual([expect.objectContaining({ peer: 'busy', busy: true, silentMs: 12_000, by: 'ping' })]);
    expect(watch.counts).toEqual({ probes: 1, closed: 1, timedOut: 0 });
    expect(watch.size).toBe(0);
  });

  it('takes any byte heard as the answer: a busy connection that keeps hearing is never pinged, one that answers is kept', () => {
    const chatty = fakeConnection('chatty');
    const answers = fakeConnection('answers');
    chatty.conn.streams.push({});
    answers.conn.streams.push({});
    const { watch, silent, run } = rig([chatty.conn, answers.conn]);
    run(60_000, () => chatty.hear());
    expect(chatty.ping).not.toHaveBeenCalled();
    // Answered each time, then silent again: pinged again 4 s after its answer, never closed.
    expect(answers.ping).toHaveBeenCalledTimes(15);
    expect(silent).toEqual([]);
    expect(watch.counts.closed).toBe(0);
  });

  it('pings a connection once when its last stream closes, even one that opened and closed between two sweeps', () => {
    const a = fakeConnection('a');
    const { run } = rig([a.conn]);
    run(1_000);
    expect(a.ping).toHaveBeenCalledTimes(1);
    a.conn.streams.push({});
    run(10_000, () => a.hear());
    expect(a.ping).toHaveBeenCalledTimes(1);
    a.conn.streams.pop();
    run(1_000);
    expect(a.ping).toHaveBeenCalledTimes(2);
    // A stream the sweeps never saw open: the wrapped createStream (outbound) or the 'stream' event (inbound).
    void (a.conn.muxer as unknown as { createStream(): Promise<unknown> }).createStream();
    run(1_000);
    expect(a.ping).toHaveBeenCalledTimes(3);
    a.conn.muxer.dispatchEvent(new Event('stream'));
    run(60_000);
    expect(a.ping).toHaveBeenCalledTimes(4);
  });

  it('closes a connection that vanished as its last stream closed: the one ping goes unanswered', () => {
    const c = fakeConnection('c');
    const { silent, run } = rig([c.conn]);
    run(1_000);
    c.conn.streams.push({});
    run(5_000, () => c.hear());
    c.vanish();
    c.conn.streams.pop();
    run(1_000);
    expect(c.ping).toHaveBeenCalledTimes(2);
    run(19_000);
    expect(c.conn.abort).not.toHaveBeenCalled();
    run(1_000);
    expect(silent).toEqual([expect.objectContaining({ peer: 'c', busy: false, silentMs: 21_000, by: 'ping' })]);
  });

  it('judges a probe sent while busy by the idle deadline once its stream has closed', () => {
    const c = fakeConnection('c');
    c.vanish();
    c.conn.streams.push({});
    const { silent, run } = rig([c.conn]);
    run(4_000);
    expect(c.ping).toHaveBeenCalledTimes(1);
    c.conn.streams.pop(); // e.g. the stream's own timeout aborted it: nothing heard from the peer
    run(19_000);
    expect(c.ping).toHaveBeenCalledTimes(1); // not probed again: its probe is out
    expect(silent).toEqual([]);
    run(1_000);
    expect(silent).toEqual([expect.objectContaining({ peer: 'c', busy: false, by: 'ping' })]);
  });

  it('judges nothing in a sweep that comes late (this process was stalled, not its peers)', () => {
    const c = fakeConnection('c');
    c.vanish();
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

  it('reports a connection the kernel timed out (its keep-alive unanswered), and not one closed otherwise', () => {
    const gone = fakeConnection('gone');
    const reset = fakeConnection('reset');
    const { watch, silent, run } = rig([gone.conn, reset.conn]);
    run(30_000);
    reset.close({ code: 'ECONNRESET' });
    gone.close({ code: 'ETIMEDOUT' });
    expect(silent).toEqual([expect.objectContaining({ peer: 'gone', busy: false, silentMs: 29_000, by: 'kernel' })]);
    expect(watch.counts).toEqual({ probes: 2, closed: 0, timedOut: 1 });
    expect(watch.size).toBe(1); // reset's is left to libp2p's connection:close
  });
});

describe('when the connection watch wakes', () => {
  it('runs no timer once every connection is idle and has answered its ping', () => {
    const a = fakeConnection('a');
    const b = fakeConnection('b');
    const { watch, run, now } = rig([a.conn, b.conn]);
    expect(watch.nextSweepAt).toBe(now() + 1_000);
    run(1_000);
    expect(watch.nextSweepAt).toBe(Infinity);
    run(120_000, () => a.hear());
    expect(watch.nextSweepAt).toBe(Infinity);
  });

  it('comes within a sweep once a stream opens either way, sweeps each second while one is open, and stops once none is', () => {
    const a = fakeConnection('a');
    const { watch, run, now } = rig([a.conn]);
    run(1_000);
    expect(watch.nextSweepAt).toBe(Infinity);
    void (a.conn.muxer as unknown as { createStream(): Promise<unknown> }).createStream();
    expect(a.createStream).toHaveBeenCalledTimes(1);
    expect(watch.nextSweepAt).toBe(now() + 1_000);
    a.conn.streams.push({});
    run(1_000, () => a.hear());
    expect(watch.nextSweepAt).toBe(now() + 1_000);
    a.conn.streams.pop();
    run(1_000); // its ping, answered at once
    expect(watch.nextSweepAt).toBe(Infinity);
    a.conn.muxer.dispatchEvent(new Event('stream')); // an inbound one
    expect(watch.nextSweepAt).toBe(now() + 1_000);
  });

  it("sleeps until an idle connection's probe deadline while its probe is out", () => {
    const a = fakeConnection('a');
    a.vanish();
    const { watch, run, now } = rig([a.conn]);
    run(1_000);
    expect(a.ping).toHaveBeenCalledTimes(1);
    expect(watch.nextSweepAt).toBe(now() + times.idleAnswerMs);
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
    // yamux's own keep-alive is off: the watch pings only silent busy connections.
    expect((muxer as unknown as { enableKeepAlive: boolean }).enableKeepAlive).toBe(false);
    const watch = a.services.watch;
    expect(watch.size).toBe(1);
    let heard = false;
    muxer!.maConn.addEventListener('message', () => (heard = true));
    await muxer!.ping();
    expect(heard).toBe(true);
    // Idle (once identify's and the DHT's first streams closed, and the new connection answered its one
    // ping): no timer at all; a stream this node opens brings a sweep within a second, and once it is closed
    // (and that ping answered) the watch sleeps again.
    await until('the watch to sleep', async () => (watch.nextSweepAt === Infinity ? true : undefined), 15_000);
    expect(watch.counts).toMatchObject({ closed: 0, timedOut: 0 });
    expect(watch.counts.probes).toBeGreaterThanOrEqual(1);
    const stream = await conn.newStream('/ipfs/ping/1.0.0');
    expect(watch.nextSweepAt - Date.now()).toBeLessThanOrEqual(1_000);
    await stream.close();
    await until('the watch to sleep again', async () => (watch.nextSweepAt === Infinity ? true : undefined), 15_000);
  });

  it("leaves idle connections to the kernel: both sockets carry TCP keep-alive and no Node inactivity timeout", async () => {
    const conns = [a.getConnections()[0]!, b.getConnections()[0]!];
    for (const conn of conns) {
      const socket = (conn as unknown as { maConn: { socket?: { timeout?: number } } }).maConn.socket;
      expect(socket, 'libp2p keeps the TCP socket in conn.maConn.socket').toBeDefined();
      expect(socket!.timeout ?? 0).toBe(0);
    }
    // The kernel's view (ss -o): a keep-alive timer on both ends, due within IDLE_KEEPALIVE.idleMs.
    const port = Number(/\/tcp\/(\d+)/.exec(b.getMultiaddrs()[0]!.toString())?.[1]);
    const { stdout } = await promisify(execFile)('ss', ['-tnoH', 'state', 'established', `( sport = :${port} or dport = :${port} )`]);
    const timers = [...stdout.matchAll(/timer:\(keepalive,([\d.]+)(ms|sec|min)/g)].map(([, n, unit]) => Number(n) * (unit === 'ms' ? 1 : unit === 'sec' ? 1_000 : 60_000));
    expect(timers, stdout).toHaveLength(2);
    for (const ms of timers) expect(ms).toBeLessThanOrEqual(IDLE_KEEPALIVE.idleMs);
  });
});
