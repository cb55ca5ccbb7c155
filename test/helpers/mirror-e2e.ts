// What the e2e tests of real clients pulling through a node share: cleanups that run last-first after
// each test (even one that failed half-way), logs shown when a test fails, a seed holding the test image,
// a node started for one test, and the /v2 requests a node logged (the proof a pull went through it).
import { afterEach, onTestFailed } from 'vitest';
import { requireTool, runTool } from './clients.js';
import { NodeSet, type NodeSpec, type TestNode } from './nodes.js';
import { logLines, removeDir, startDistribution } from './processes.js';

export type OnCleanup = (fn: () => Promise<unknown>) => void;

/**
 * Each test registers how to undo what it started, as it starts it; they run last-first after the test,
 * so a namespace is deleted only after everything in it has been stopped. Call at the top of a test file.
 */
export function useCleanups(): OnCleanup {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    const errors: unknown[] = [];
    while (cleanups.length > 0) await cleanups.pop()!().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw new Error(`cleanup failed: ${errors.map(String).join('\n')}`);
  });
  return (fn) => cleanups.push(fn);
}

/** When the test fails, prints the end of a process's log: the node's and the seed's say what went wrong. */
export function showLogOnFailure(name: string, output: () => string): void {
  onTestFailed(() => {
    const lines = output().trimEnd().split('\n');
    console.error(`--- ${name}: last ${Math.min(lines.length, 60)} of ${lines.length} log lines ---\n${lines.slice(-60).join('\n')}`);
  });
}

export type RunIn = (cmd: string, args: string[], env: Record<string, string>) => Promise<string>;

/** Pushes tag v1 of an OCI layout to `dest` (`host/name:tag`); `runIn` runs skopeo where the seed is reachable. */
export async function pushLayout(layoutDir: string, dest: string, registriesConf: string, runIn: RunIn = runTool): Promise<void> {
  await requireTool('skopeo');
  // --preserve-digests: skopeo must fail rather than rewrite the manifest, so the digests checked are the layout's.
  await runIn('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layoutDir}:v1`, `docker://${dest}`], {
    CONTAINERS_REGISTRIES_CONF: registriesConf,
  });
}

/** A CNCF distribution seed on 127.0.0.1 holding the layout's v1 as `repoTag`; stopped and removed by the cleanups. */
export async function seedWithImage(onCleanup: OnCleanup, layoutDir: string, registriesConf: string, repoTag: string) {
  const seed = await startDistribution();
  onCleanup(() => removeDir(seed.rootDir));
  onCleanup(() => seed.stop());
  showLogOnFailure('seed (docker-registry)', seed.output);
  const host = `127.0.0.1:${seed.port}`;
  await pushLayout(layoutDir, `${host}/${repoTag}`, registriesConf);
  return { seed, host };
}

/** A layerd node for this test only: stopped, and its data dir removed, by the cleanups. */
export async function layerdNode(onCleanup: OnCleanup, spec: NodeSpec, prefix = 'layerd-mirror-e2e-node-'): Promise<TestNode> {
  const nodes = new NodeSet(prefix);
  onCleanup(() => nodes.stopAll('SIGTERM'));
  const node = await nodes.start('mirror', spec);
  showLogOnFailure('layerd', node.output);
  return node;
}

/** A request the node logged (one `request` line each, when it completed). */
export interface NodeRequest {
  method: string;
  url: string;
  status: number;
}

/** The /v2 requests in a node's log, in order. */
export function nodeRequests(node: { output(): string }): NodeRequest[] {
  return logLines(node)
    .filter((l) => l.msg === 'request' && typeof l.url === 'string' && l.url.startsWith('/v2/') && l.url !== '/v2/')
    .map((l) => ({ method: String(l.method), url: String(l.url), status: Number(l.status) }));
}
