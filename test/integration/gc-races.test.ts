// Garbage collection and eviction against pushes (issue 13, items 3 and 9): collections back to back, on
// request and on the --gc-interval timer, or evictions under a quota, over a store of a few thousand
// repositories while hundreds of pushes run; every push that was answered 201 must be whole afterwards.
// And a tag whose name looks like a temp file survives collection and a restart.
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeSet, type TestNode as Proc } from '../helpers/nodes.js';
import { removeDir, tempDir } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

/** A collection, asked as the CLI asks it (/api POSTs take JSON only). */
const GC: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };

const launched = new NodeSet('layerd-gc-');
const dirs: string[] = [];
afterAll(async () => {
  await launched.stopAll('SIGTERM');
  for (const d of dirs) await removeDir(d);
});

/** Writes a file as the stores lay it out (the content under its digest, or a record). */
function put(path: string, data: Buffer | string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
}

/**
 * A data dir with `count` repositories fill/r<i>, each linking one shared image (config, layer,
 * manifest, tag v1), written the way the filesystem stores write them: what makes one collection's
 * listing of the repositories take seconds, as on a node that has served for a while.
 */
function prefill(dataDir: string, count: number): void {
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const layer = Buffer.from('shared layer');
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)] });
  const old = new Date(Date.now() - 3_600_000);
  for (const blob of [config, layer, manifest]) {
    const hex = digestOf(blob).slice('sha256:'.length);
    const path = join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
    put(path, blob);
    utimesSync(path, old, old);
  }
  const hexes = [config, layer].map((b) => digestOf(b).slice('sha256:'.length));
  const m = digestOf(manifest);
  const record = JSON.stringify({ digest: m, mediaType: MT.ociManifest, size: manifest.length });
  for (let i = 0; i < count; i++) {
    const repo = join(dataDir, 'repositories', 'fill', `r${i}`);
    for (const hex of hexes) put(join(repo, '_layers', 'sha256', hex), '');
    put(join(repo, '_manifests', 'revisions', 'sha256', m.slice('sha256:'.length)), record);
    put(join(repo, '_manifests', 'tags', 'v1'), m);
  }
}

interface Pushed {
  repo: string;
  tag: string;
  manifest: Buffer;
  blobs: Buffer[];
}

/** One image of two tiny blobs of its own, pushed by plain HTTP; what went wrong, if anything. */
async function pushOne(client: RegistryClient, repo: string, tag: string, monolithic: boolean): Promise<Pushed | string> {
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
  const layer = randomBlob(512);
  try {
    for (const b of [config, layer]) {
      if (monolithic) await client.pushBlob(repo, b);
      else await client.putBlob(repo, b);
    }
    const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)] });
    const res = await client.putManifest(repo, tag, manifest, MT.ociManifest);
    if (res.status !== 201) return `manifest ${repo}:${tag}: ${res.status} ${res.body.toString().slice(0, 200)}`;
    return { repo, tag, manifest, blobs: [config, layer] };
  } catch (err) {
    return (err as Error).message;
  }
}

/** What is missing of a push answered 201: the manifest by tag and by digest, and every blob. */
async function missing(client: RegistryClient, p: Pushed): Promise<string[]> {
  const out: string[] = [];
  const digest = digestOf(p.manifest);
  for (const ref of [p.tag, digest]) {
    const res = await client.req('GET', `/v2/${p.repo}/manifests/${ref}`, { headers: { accept: MT.ociManifest } });
    if (res.status !== 200 || digestOf(res.body) !== digest) out.push(`${p.repo} manifest ${ref}: ${res.status}`);
  }
  for (const b of p.blobs) {
    const res = await client.req('GET', `/v2/${p.repo}/blobs/${digestOf(b)}`);
    if (res.status !== 200 || digestOf(res.body) !== digestOf(b)) out.push(`${p.repo} blob ${digestOf(b)}: ${res.status}`);
  }
  return out;
}

/**
 * Pushes to a node over `REPOS` prefilled repositories while `busy` keeps it collecting or evicting: at
 * least 300, 4 at a time, and on until `enough()` says the node went through its runs. Each goes to a
 * repository of its own (new names are what a listing misses) or to one of the prefilled ones; half with
 * monolithic uploads, half with POST then PUT. Returns what failed and what is missing afterwards of the
 * pushes answered 201.
 */
async function pushesDuring(n: Proc, enough: () => boolean): Promise<{ failed: string[]; lost: string[]; acknowledged: number }> {
  const client = new RegistryClient(n.url);
  const results: Array<Pushed | string> = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < 300 || !enough(); i = next++) {
      const repo = i % 3 === 0 ? `fill/r${(i * 13) % REPOS}` : `push/p${i}`;
      results.push(await pushOne(client, repo, `t${i}`, i % 2 === 0));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  const failed = results.filter((r): r is string => typeof r === 'string');
  const acknowledged = results.filter((r): r is Pushed => typeof r !== 'string');
  // One more collection after the pushes: what they left is linked, so it must stay.
  expect((await fetch(`${n.url}/api/gc`, GC)).status).toBe(200);
  const lost: string[] = [];
  for (const p of acknowledged) lost.push(...(await missing(client, p)));
  return { failed, lost, acknowledged: acknowledged.length };
}

const REPOS = 3_000;

async function prefilledNode(args: string[]): Promise<Proc> {
  const dataDir = await tempDir('layerd-gc-race-');
  dirs.push(dataDir);
  prefill(dataDir, REPOS);
  return launched.start('prefilled', { dataDir, args: ['--max-upload-sessions', '0', ...args], readyTimeoutMs: 60_000 });
}

describe('garbage collection and eviction while pushes run', () => {
  it('loses no push answered 201 with collections back to back over a few thousand repositories', async () => {
    // The timer collects too (the hourly one, much more often).
    const n = await prefilledNode(['--gc-interval', '3s']);
    let pushing = true;
    let collections = 0;
    const gcFailures: string[] = [];
    const collecting = (async () => {
      while (pushing) {
        try {
          const res = await fetch(`${n.url}/api/gc`, { ...GC, signal: AbortSignal.timeout(120_000) });
          await res.arrayBuffer();
          if (res.status === 200) collections++;
          else gcFailures.push(String(res.status));
        } catch (err) {
          gcFailures.push((err as Error).message);
        }
      }
    })();
    const { failed, lost, acknowledged } = await pushesDuring(n, () => collections >= 2);
    pushing = false;
    await collecting;
    // A push that failed part way had a blob answered 201 that then went (MANIFEST_BLOB_UNKNOWN): a loss too.
    expect({ failed, lost }).toEqual({ failed: [], lost: [] });
    expect(acknowledged).toBeGreaterThanOrEqual(300);
    expect(gcFailures).toEqual([]);
    expect(collections).toBeGreaterThanOrEqual(2);
  }, 180_000);

  it('loses no push answered 201 to evictions under a quota smaller than what is pushed', async () => {
    // Always over the quota once a few dozen images are in: every commit starts an eviction, which lists
    // the pushed repositories to know what it must not evict. Pushed content is never evicted.
    const n = await prefilledNode(['--max-disk-bytes', '32KiB']);
    const evictionRuns = () => (n.output().match(/disk quota: still over the high watermark/g) ?? []).length;
    const { failed, lost, acknowledged } = await pushesDuring(n, () => evictionRuns() >= 2);
    expect({ failed, lost }).toEqual({ failed: [], lost: [] });
    expect(acknowledged).toBeGreaterThanOrEqual(300);
    expect(evictionRuns()).toBeGreaterThanOrEqual(2);
  }, 180_000);
});

describe('temp names', () => {
  it('a tag that looks like a temp file survives collection and a restart', async () => {
    const dataDir = await tempDir('layerd-gc-tag-');
    dirs.push(dataDir);
    const first = await launched.start('first', { dataDir });
    const client = new RegistryClient(first.url);
    const tag = 'rel.tmp-0123456789ab';
    const image = await client.pushImage('team/app', tag);
    // Collection leaves temp files younger than a minute (they may be mid-write): make the tag's file old.
    const tags = join(dataDir, 'repositories', 'team', 'app', '_manifests', 'tags');
    expect(await readdir(tags)).toEqual([tag]);
    const old = new Date(Date.now() - 300_000);
    await utimes(join(tags, tag), old, old);

    expect((await fetch(`${first.url}/api/gc`, GC)).status).toBe(200);
    const after = await client.req('GET', `/v2/team/app/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
    expect([after.status, digestOf(after.body)]).toEqual([200, image.digest]);

    // Stale temp files are collected at start too.
    await first.stop();
    const second = await launched.start('second', { dataDir });
    const again = await new RegistryClient(second.url).req('GET', `/v2/team/app/manifests/${tag}`, { headers: { accept: MT.ociManifest } });
    expect([again.status, digestOf(again.body)]).toEqual([200, image.digest]);
    expect((await new RegistryClient(second.url).req('GET', '/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: [tag] });
  });
});
