// The one way a test starts layerd nodes, alone or as a small cluster: real `layerd serve` processes
// (startLayerd) with a name, a registry client, their /api/status and the arguments to restart them
// alike. A NodeSet keeps every node it started, so a test can tell a crash from a stop it made, and
// stops them all and removes the data dirs it made in one call. The registry suites' target (a node,
// or CNCF distribution in its place) is started here too.
import { afterAll, beforeAll, expect } from 'vitest';
import type { StatusAnswer } from '../../src/http/api-schema.js';
import type { NetNamespace } from './netns.js';
import { removeDir, startDistribution, startLayerd, tempDir, until, type RunningProcess } from './processes.js';
import { RegistryClient } from './registry-client.js';

/** A node's /api/status, as the node declares it (src/http/api-schema.ts), from a node with P2P on. */
export type NodeStatus = StatusAnswer & { peerId: string };

export interface NodeSpec {
  /** A seed to mirror: `--upstream registry=url --default-registry registry`. */
  mirror?: { registry: string; url: string };
  /** Take part in P2P on a loopback port (`--p2p-listen /ip4/127.0.0.1/tcp/0`); implied by `bootstrap`. */
  p2p?: boolean;
  /** Join through this node (its first /p2p/ multiaddr) or this multiaddr. */
  bootstrap?: TestNode | string;
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Further flags, after the ones above. */
  args?: string[];
  /** Start on this data dir (kept: the test made it); else a fresh one the set removes. */
  dataDir?: string;
  /** The HTTP port on 127.0.0.1 (default: a free one); a restart keeps it. */
  port?: number;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Run inside this network namespace: its url, c and status() then answer only from inside it. */
  netns?: NetNamespace;
}

export interface TestNode extends RunningProcess {
  name: string;
  dataDir: string;
  /** Every flag it was started with after `serve --listen --data-dir`: `{ dataDir, args }` restarts it alike. */
  args: string[];
  c: RegistryClient;
  /** Its /api/status, which must answer 200. */
  status<S = NodeStatus>(): Promise<S>;
  /** Set by stop(): an exit without it is a crash. */
  stoppedOnPurpose: boolean;
  /** How it exited, or undefined while it runs. */
  exit(): string | undefined;
}

/** The flags a spec stands for, bootstrap resolved to a multiaddr. */
async function flagsOf(spec: NodeSpec): Promise<string[]> {
  const args: string[] = [];
  if (spec.mirror) args.push('--upstream', `${spec.mirror.registry}=${spec.mirror.url}`, '--default-registry', spec.mirror.registry);
  if (spec.p2p || spec.bootstrap) args.push('--p2p-listen', '/ip4/127.0.0.1/tcp/0');
  if (spec.bootstrap) {
    const addr = typeof spec.bootstrap === 'string' ? spec.bootstrap : (await spec.bootstrap.status()).multiaddrs.find((a) => a.includes('/p2p/'));
    if (!addr) throw new Error('the bootstrap node reports no /p2p/ multiaddr');
    args.push('--bootstrap', addr);
  }
  if (spec.logLevel) args.push('--log-level', spec.logLevel);
  return [...args, ...(spec.args ?? [])];
}

export class NodeSet {
  readonly nodes: TestNode[] = [];
  private readonly dirs: string[] = [];
  /** How each node was started: what a restart must start it with again. */
  private readonly specs = new Map<TestNode, NodeSpec>();

  /** `prefix` names the temp data dirs, e.g. 'layerd-p2p-'. */
  constructor(private readonly prefix = 'layerd-node-') {}

  async start(name: string, spec: NodeSpec = {}): Promise<TestNode> {
    let dataDir = spec.dataDir;
    if (!dataDir) this.dirs.push((dataDir = await tempDir(`${this.prefix}${name}-`)));
    const args = await flagsOf(spec);
    const proc = await startLayerd({ dataDir, args, port: spec.port, env: spec.env, readyTimeoutMs: spec.readyTimeoutMs, netns: spec.netns });
    const node: TestNode = {
      ...proc,
      name,
      dataDir,
      args,
      c: new RegistryClient(proc.url),
      stoppedOnPurpose: false,
      async status<S = NodeStatus>(): Promise<S> {
        const res = await fetch(`${proc.url}/api/status`, { signal: AbortSignal.timeout(5_000) });
        expect(res.status, `${name} /api/status`).toBe(200);
        return (await res.json()) as S;
      },
      stop(signal?: NodeJS.Signals) {
        node.stoppedOnPurpose = true;
        return proc.stop(signal);
      },
      exit() {
        const { exitCode, signalCode } = proc.child;
        return exitCode === null && signalCode === null ? undefined : `exited (code ${exitCode}, signal ${signalCode})`;
      },
    };
    this.nodes.push(node);
    this.specs.set(node, spec);
    return node;
  }

  /**
   * Starts `node` again on its data dir, with the same flags, environment, port (if the test fixed one)
   * and namespace, once the test has stopped it (as it chose: SIGTERM, SIGKILL) or it crashed: two
   * processes on one data dir would be a test of something else.
   */
  async restart(node: TestNode): Promise<TestNode> {
    if (node.exit() === undefined) throw new Error(`${node.name} still runs: stop it before restarting it`);
    const { port, env, readyTimeoutMs, netns } = this.specs.get(node) ?? {};
    return this.start(node.name, { dataDir: node.dataDir, args: node.args, port, env, readyTimeoutMs, netns });
  }

  /**
   * `names.length` nodes: the first alone, then the rest at once, each bootstrapped to the first (as a
   * cluster's nodes come up). Returns once all answer /v2/; how connected they must be is the test's.
   */
  async cluster<const Names extends readonly string[]>(names: Names, spec: NodeSpec = {}): Promise<{ [K in keyof Names]: TestNode }> {
    const first = await this.start(names[0]!, spec);
    // Every start settles before a failure is thrown: with Promise.all the test's afterAll ran stopAll while
    // the other nodes were still starting, and those left running after the test file (seen on a loaded box).
    const settled = await Promise.allSettled(names.slice(1).map((n) => this.start(n, { ...spec, bootstrap: first })));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const rest = settled.map((s) => (s as PromiseFulfilledResult<TestNode>).value);
    return [first, ...rest] as { [K in keyof Names]: TestNode };
  }

  /** The node of that name started last (a restart starts a node of the same name). */
  find(name: string): TestNode | undefined {
    return this.nodes.findLast((n) => n.name === name);
  }

  /** Nodes that exited without a stop(); each is reported once (then counts as stopped). */
  crashed(): TestNode[] {
    const crashed = this.nodes.filter((n) => !n.stoppedOnPurpose && n.exit() !== undefined);
    for (const n of crashed) n.stoppedOnPurpose = true;
    return crashed;
  }

  /** What a test's afterEach asserts empty: a report of each node that crashed, with its last lines. */
  crashReports(): string[] {
    return this.crashed().map((n) => `${n.name} exited (${n.child.exitCode ?? n.child.signalCode}):\n${n.output().split('\n').slice(-25).join('\n')}`);
  }

  /** Lines where a node logged an unhandled rejection: it survives one, but it is a bug all the same. */
  rejections(): string[] {
    return this.nodes.flatMap((n) => n.output().split('\n').filter((l) => l.includes('unhandled rejection')).map((l) => `${n.name}: ${l.slice(0, 400)}`));
  }

  /** Stops every node (by its pid) and removes the data dirs this set made. */
  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop(signal).catch(() => undefined)));
    for (const d of this.dirs) await removeDir(d);
  }
}

/** Waits until the node reports at least `peers` connected peers. */
export async function connected(node: TestNode, peers = 1, timeoutMs = 30_000): Promise<void> {
  await until(`${node.name} to connect to ${peers} peers`, async () => ((await node.status()).connectedPeers >= peers ? true : undefined), timeoutMs);
}

/** A registry the suites run against: a node, or CNCF distribution in its place. */
interface Target {
  url: string;
  client: RegistryClient;
  stop(): Promise<void>;
}

/**
 * The registry under test: a real `layerd serve`. Setting LAYERD_IT_TARGET=distribution runs the same
 * suite against CNCF distribution instead, to tell a misreading of the spec from a layerd bug.
 */
async function startTarget(spec: NodeSpec = {}): Promise<Target> {
  if (process.env.LAYERD_IT_TARGET === 'distribution') {
    const d = await startDistribution();
    return { url: d.url, client: new RegistryClient(d.url), stop: async () => (await d.stop(), await removeDir(d.rootDir)) };
  }
  const nodes = new NodeSet('layerd-data-');
  const node = await nodes.start('target', spec);
  // The data dir goes with the set only if the set made it.
  return { url: node.url, client: node.c, stop: () => nodes.stopAll('SIGTERM') };
}

/**
 * Starts the registry under test (see startTarget) in beforeAll and stops it in afterAll of the calling
 * file or describe block. The client and url() it returns may be taken at module level: they only read
 * the target once a hook or test runs.
 */
export function useRegistryTarget(spec: NodeSpec = {}): { client: RegistryClient; url(): string } {
  let target: Target | undefined;
  const url = () => {
    if (!target) throw new Error('the registry target is not started: use it in a test or hook, after its beforeAll');
    return target.url;
  };
  beforeAll(async () => {
    target = await startTarget(spec);
  });
  afterAll(async () => {
    await target?.stop();
  });
  return { client: new RegistryClient(url), url };
}
