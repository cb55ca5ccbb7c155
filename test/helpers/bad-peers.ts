// Drives the bad-peer process (test/helpers/bad-peer.mjs) over its stdin and stdout: libp2p nodes that
// join a cluster, announce a blob in its DHT, and answer layerd's blob protocol wrongly.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connected, NodeSet, type TestNode } from './nodes.js';
import { removeDir, repoRoot, startDistribution, tempDir } from './processes.js';

/** How a bad node answers (see bad-peer.mjs). */
export type BadMode = 'corrupt' | 'wrong-size' | 'truncate' | 'reset' | 'stall-header' | 'stall-body' | 'claim' | 'held' | 'corrupt-held';

export class BadPeers {
  private readonly waiting = new Map<string, (msg: Record<string, unknown>) => void>();
  /** Digests each bad node was asked for. */
  readonly asked = new Map<string, string[]>();
  private readonly stderr: string[] = [];

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown> & { key: string };
      if (typeof msg.asked === 'string') {
        this.asked.set(msg.key, [...(this.asked.get(msg.key) ?? []), msg.asked]);
        return;
      }
      const wake = this.waiting.get(msg.key);
      this.waiting.delete(msg.key);
      wake?.(msg);
    });
    child.stderr!.on('data', (d: Buffer) => this.stderr.push(d.toString()));
  }

  /** The bad-peer process, started. */
  static start(): BadPeers {
    return new BadPeers(spawn(process.execPath, [join(repoRoot, 'test', 'helpers', 'bad-peer.mjs')], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  private call(cmd: Record<string, unknown> & { key: string }): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bad peer: no answer to ${JSON.stringify(cmd)}\n${this.stderr.join('').slice(-2000)}`)), 60_000);
      this.waiting.set(cmd.key, (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  /** A new bad node announcing `digest` (bytes in `file`); resolves with its peer id once it has provided. */
  async serve(key: string, bootstrap: string, digest: string, file: string, mode: BadMode, opts: { claimSize?: number } = {}): Promise<string> {
    const answer = await this.call({ op: 'serve', key, bootstrap, digest, file, mode, ...opts });
    if (answer.error) throw new Error(`bad peer ${key}: ${String(answer.error)}`);
    return answer.peerId as string;
  }

  /** Lets a 'held' or 'corrupt-held' node send the last KiB it holds back (now and on later requests). */
  async release(key: string): Promise<void> {
    await this.call({ op: 'release', key });
  }

  async stop(key: string): Promise<void> {
    await this.call({ op: 'stop', key });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The cluster the lying-peer tests run against: a layerd node (the victim) with a docker-registry seed,
 * an honest second node (the victim's DHT server to walk to: the liars are DHT clients, see
 * bad-peer.mjs), and the bad-peer process. The victim's peer idle limit is the test's to choose.
 */
export interface LiarRig {
  seed: Awaited<ReturnType<typeof startDistribution>>;
  victim: TestNode;
  bystander: TestNode;
  bad: BadPeers;
  /** A scratch folder for the blobs the liars serve. */
  dir: string;
  /** The victim's multiaddr, for the liars to join through. */
  bootstrap: string;
  stop(): Promise<void>;
}

export async function startLiarRig(o: { prefix: string; peerIdleTimeout: string }): Promise<LiarRig> {
  const dir = await tempDir(o.prefix);
  const seed = await startDistribution();
  const registry = `127.0.0.1:${seed.port}`;
  const nodes = new NodeSet(o.prefix);
  const mirror = { registry, url: seed.url };
  const victim = await nodes.start('victim', { mirror, p2p: true, args: ['--peer-idle-timeout', o.peerIdleTimeout, '--peer-lookup-timeout', '10s'], readyTimeoutMs: 60_000 });
  const bootstrap = (await victim.status()).multiaddrs.find((a) => a.includes('/p2p/'))!;
  const bystander = await nodes.start('bystander', { mirror, bootstrap, readyTimeoutMs: 60_000 });
  await connected(victim, 1, 30_000);
  const bad = BadPeers.start();
  return {
    seed,
    victim,
    bystander,
    bad,
    dir,
    bootstrap,
    async stop() {
      await bad.close();
      await nodes.stopAll('SIGKILL');
      await seed.stop();
      for (const d of [dir, seed.rootDir]) await removeDir(d);
    },
  };
}
