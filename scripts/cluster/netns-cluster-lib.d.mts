// Types for netns-cluster-lib.mjs, so TypeScript tests can drive a cluster (the library stays plain Node so
// a benchmark or the CLI runs it with nothing but `node`).

export interface ClusterOptions {
  /** layerd nodes besides the seed (default 3). */
  nodes?: number;
  /** Each host's link, both ways, in tc bit units: `100mbit` (default), `1gbit`, `800kbit`. */
  rate?: string;
  /** The seed registry: CNCF distribution with its access log on (default), or a layerd node without P2P. */
  seed?: 'distribution' | 'layerd';
  /** Names are `<prefix>-<6 hex>-{hub,seed,nK}` (default `lc`); 1-12 lower-case letters and digits. */
  prefix?: string;
  /** A private IPv4 subnet that exists only inside the cluster's namespaces (default 10.77.0.0/24). */
  subnet?: string;
  /** tbf's latency (default 50ms) and burst in bytes (default 20 ms worth of the rate, at least 32 KiB). */
  latency?: string;
  burst?: number;
  /** Extra `layerd serve` arguments for every node, and extra arguments for the seed's command. */
  nodeArgs?: string[];
  seedArgs?: string[];
  /** Wait until every node is connected to at least one peer (default true). */
  waitForPeers?: boolean;
  /** Deadline for the whole set-up (default 120 s). */
  timeoutMs?: number;
  layerdBin?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Aborts a set-up in progress (it tears down what it made, then rejects). */
  signal?: AbortSignal;
  /**
   * While the cluster is up, SIGINT/SIGTERM/SIGHUP stop it first; the signal is then raised again unless
   * another listener handles it (default true; false when the caller stops the cluster on signals itself).
   */
  handleSignals?: boolean;
  /** A server exited while the cluster was up (not called during stop()). */
  onExit?: (host: ClusterHost, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface RunOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  /** [source, target] bind mounts private to this one command. */
  bindMounts?: Array<[string, string]>;
  /** A private /var/lib/containers/cache per namespace (skopeo/podman as root share one otherwise). */
  isolateContainersCache?: boolean;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Request body, streamed from this file. */
  bodyFile?: string;
  /** Response body, streamed to this file (else returned as text in `body`). */
  outFile?: string;
  timeoutMs?: number;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  size: number;
  /** Hex sha256 of the response body. */
  sha256: string;
  body?: string;
}

export interface ClusterHost {
  name: string;
  role: 'seed' | 'node';
  kind: 'distribution' | 'layerd';
  ns: string;
  addr: string;
  /** `http://<addr>:5000`, reachable only from inside the cluster's namespaces. */
  url: string;
  /** Nodes only: the libp2p multiaddr and peer id from /api/status. */
  multiaddr?: string;
  peerId?: string;
  pid: number;
  dataDir: string;
  /** The server's stdout and stderr (for distribution: its access log). */
  logFile: string;
  hubVeth: string;
  output(): string;
  exec(cmd: string, args?: string[], opts?: RunOptions): Promise<{ stdout: string; stderr: string }>;
  /** An HTTP request to this host's own URL + path, from inside its namespace. */
  http(path: string, opts?: HttpOptions): Promise<HttpResult>;
}

export interface Cluster {
  id: string;
  prefix: string;
  runDir: string;
  subnet: string;
  rate: string;
  hub: { ns: string; bridge: string };
  seed: ClusterHost;
  nodes: ClusterHost[];
  setupMs: number;
  networkMs: number;
  teardownMs?: number;
  /** PIDs this run started that are still tracked (servers, tools still running). */
  pids(): number[];
  host(nameOrNs: string): ClusterHost;
  runIn(ns: string, cmd: string, args?: string[], opts?: RunOptions): Promise<{ stdout: string; stderr: string }>;
  http(ns: string, url: string, opts?: HttpOptions): Promise<HttpResult>;
  /** tbf's "Sent N bytes" on the host's eth0: everything it sent since set-up. */
  bytesSent(nameOrNs: string): Promise<number>;
  /** tbf's "Sent N bytes" on the host's hub-side veth: everything it received. */
  bytesReceived(nameOrNs: string): Promise<number>;
  describe(): object;
  /** Stops what this run started, waits for it to exit, deletes the namespaces and the run dir. Idempotent. */
  stop(): Promise<void>;
}

export function startCluster(opts?: ClusterOptions): Promise<Cluster>;
export function down(opts?: { prefix?: string; log?: (line: string) => void }): Promise<{ namespaces: string[]; pids: number[]; dirs: string[] }>;
export function namespacesOf(prefix: string): Promise<string[]>;
export function parseRate(rate: string): number;
/** The node flags on the layerd bin's `#!/usr/bin/env -S node …` line (how it ships). */
export function shippedNodeFlags(layerdBin: string): string[];
export function parseSubnet(cidr: string): { network: number; length: number; size: number };
export const repoRoot: string;
export const defaultLayerdBin: string;
