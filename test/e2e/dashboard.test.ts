// The dashboard in a real browser: a docker-registry seed holding a small image, two `layerd serve` nodes
// joined over P2P, the image pulled through node 1, and node 1's page loaded in headless Debian chromium
// (driven by playwright-core; no browser is downloaded). The page must show what /api reports, redraw
// itself when the numbers move, and render hostile names as text.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connected, NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, repoRoot, startDistribution, until } from '../helpers/processes.js';
import { descriptor, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

interface Status {
  peerId: string;
  multiaddrs: string[];
  connectedPeers: number;
  peers?: Array<{ id: string }>;
  stats: { served: { local: number; peer: number; upstream: number }; hitRatio?: number; bytesSavedVsSeed?: number };
}

const REPO = 'test/dash';
const TAG = 'v1';
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');
const SCREENSHOT = join(repoRoot, '.out', 'test', 'dashboard.png');
/** How long the page may take to show something: a few 2 s refreshes on a busy 2-core box. */
const PAGE_WAIT_MS = 30_000;

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  // No internet here: keep chromium from trying to reach Google's services in the background.
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let seed: Awaited<ReturnType<typeof startDistribution>>;
let registry: string;
let node1: TestNode;
let node2: TestNode;
const nodes = new NodeSet('layerd-dash-');
let browser: Browser;
const dirs: string[] = [];

const status = (node: TestNode) => node.status<Status>();

/** A client's pull through `node`: the manifest by tag, then every blob; returns the blob count. */
async function pull(node: TestNode): Promise<number> {
  const c = new RegistryClient(node.url);
  const m = await c.req('GET', `/v2/${REPO}/manifests/${TAG}`, { headers: { accept: ACCEPT } });
  expect(m.status, `manifest: ${m.body.toString().slice(0, 200)}`).toBe(200);
  const doc = m.json<{ config: { digest: string }; layers: Array<{ digest: string }> }>();
  const digests = [doc.config.digest, ...doc.layers.map((l) => l.digest)];
  for (const d of digests) expect((await c.req('GET', `/v2/${REPO}/blobs/${d}`)).status, `blob ${d}`).toBe(200);
  return digests.length;
}

/** A fresh page on node 1's dashboard; script errors are collected so a test can insist there were none. */
async function openDashboard(setup?: (page: Page) => Promise<void>, opts: { bypassCSP?: boolean } = {}): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: opts.bypassCSP });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await setup?.(page);
  await page.goto(`${node1.url}/`);
  // The first round of /api requests has been drawn.
  await page.locator('#updated').filter({ hasText: /^updated/ }).waitFor({ timeout: PAGE_WAIT_MS });
  return { page, errors };
}

const text = async (page: Page, selector: string) => ((await page.locator(selector).first().textContent()) ?? '').trim();

/** Waits for the page (redrawing itself) to show what `ok` accepts in `selector`; fails with the last text seen. */
async function pageShows(page: Page, selector: string, what: string, ok: (t: string) => boolean): Promise<string> {
  let last = '';
  try {
    return await until(what, async () => ((await page.locator(selector).count()) > 0 && ok((last = await text(page, selector))) ? last : undefined), PAGE_WAIT_MS);
  } catch (err) {
    throw new Error(`${(err as Error).message}; ${selector} last showed ${JSON.stringify(last)}`);
  }
}

beforeAll(async () => {
  seed = await startDistribution();
  dirs.push(seed.rootDir);
  registry = `127.0.0.1:${seed.port}`;

  // The image at the seed: a config and two small layers (one under, one over a MiB).
  const c = new RegistryClient(seed.url);
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
  const layers = [randomBlob(300_000), randomBlob(1_500_000)];
  for (const b of [config, ...layers]) await c.pushBlob(REPO, b);
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l)) });
  await c.pushManifest(REPO, TAG, manifest, MT.ociManifest);

  [node1, node2] = await nodes.cluster(['node1', 'node2'], { mirror: { registry, url: seed.url }, p2p: true, logLevel: 'warn' });
  for (const n of [node1, node2]) await connected(n, 1, 30_000);

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await Promise.all([nodes.stopAll('SIGTERM'), seed?.stop().catch(() => undefined)]);
  for (const d of dirs) await removeDir(d);
});

describe('the dashboard', () => {
  it('`/` is the page; its script and stylesheet answer with their own types', async () => {
    for (const [path, type] of [['/', /^text\/html\b/], ['/dashboard.js', /^text\/javascript\b/], ['/dashboard.css', /^text\/css\b/]] as const) {
      const res = await fetch(`${node1.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(type);
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      expect((await res.text()).length, path).toBeGreaterThan(100);
    }
  });

  it('shows the node, its peer and a pulled image, and redraws itself as the numbers move', { timeout: 180_000 }, async () => {
    const blobCount = await pull(node1);
    const s1 = await status(node1);
    const s2 = await status(node2);
    const { page, errors } = await openDashboard();

    await pageShows(page, '#peer-id', "node 1's peer id", (t) => t === s1.peerId);
    await pageShows(page, '#connected-peers', 'one connected peer', (t) => t === '1');
    await pageShows(page, `#peers tr[data-peer-id="${s2.peerId}"]`, "node 2 in the peers table", (t) => t.includes(s2.peerId));

    // The image, as registry/repository with its tag, wholly held after the pull.
    const row = `#images tr[data-repository="${REPO}"]`;
    const imageText = await pageShows(page, row, `a row for ${REPO} in the images table`, (t) => t.includes(`${registry}/${REPO}`));
    expect(imageText).toContain(TAG);
    expect(await page.locator(row).getAttribute('data-tags')).toContain(TAG);
    expect(await text(page, `${row} td.held`)).toContain('100%');

    // A recent pull of the repository: the manifest by tag, and blobs.
    await pageShows(page, `#pulls tr[data-repository="${REPO}"][data-kind="manifest"]`, 'the manifest pull', (t) => t.includes(`${REPO}:${TAG}`));
    expect(await page.locator(`#pulls tr[data-repository="${REPO}"][data-kind="blob"]`).count()).toBeGreaterThanOrEqual(blobCount);
    expect(await page.locator('#blobs tr[data-digest]').count()).toBeGreaterThanOrEqual(blobCount);

    // The first pull came from the seed: nothing answered from disk yet.
    expect(await page.locator('#hit-ratio').count()).toBe(1);
    const ratioBefore = await pageShows(page, '#hit-ratio', 'a hit ratio', (t) => /^\d+(\.\d)?%$/.test(t));
    const localCell = '#sources tr[data-source="local"] td[data-field="served"]';
    const localBefore = Number(await pageShows(page, localCell, 'a count of local answers', (t) => /^\d+$/.test(t)));

    // The same pull again is answered from disk; the open page must show it without being reloaded.
    await page.evaluate(() => void ((globalThis as Record<string, unknown>).notReloaded = true));
    await pull(node1);
    const localAfter = Number(await pageShows(page, localCell, 'more local answers', (t) => Number(t.replace(/,/g, '')) >= localBefore + blobCount));
    const s1After = await status(node1);
    expect(s1After.stats.served.local).toBeGreaterThanOrEqual(localAfter);
    const ratioAfter = await pageShows(page, '#hit-ratio', 'a higher hit ratio', (t) => t !== ratioBefore && /%$/.test(t));
    expect(parseFloat(ratioAfter)).toBeGreaterThan(parseFloat(ratioBefore));
    await pageShows(page, '#bytes-saved', 'bytes saved as a size', (t) => /^\d+(\.\d)? (B|KiB|MiB)$/.test(t));
    expect(await page.evaluate(() => (globalThis as Record<string, unknown>).notReloaded)).toBe(true);

    // A rollout of the image from node 1 reaches node 2 too; the page lists it and sees it end.
    const rollout = await fetch(`${node1.url}/api/rollouts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: `${registry}/${REPO}:${TAG}` }) });
    expect(rollout.status).toBe(202);
    const { id } = (await rollout.json()) as { id: string };
    await pageShows(page, `#rollouts tr[data-rollout="${id}"]`, 'the rollout, done on both nodes', (t) => t.includes('done') && t.includes('2/2'));

    // Every endpoint answered, and the script never threw.
    expect(await page.locator('[data-error-for]:not([hidden])').allTextContents()).toEqual([]);
    expect(errors).toEqual([]);

    await mkdir(join(repoRoot, '.out', 'test'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = await readFile(SCREENSHOT);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature').toBe(true);
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(20_000);
    await page.close();
  });

  it('renders names with markup as text, and a failing endpoint leaves the rest of the page drawn', { timeout: 120_000 }, async () => {
    const hostile = 'evil/<img src=x onerror="window.pwned=1">';
    const tag = '<script>window.pwned=2</script>';
    // The page's CSP would stop an injected handler from running anyway: switch it off, so that what is
    // tested is the rendering itself.
    const { page, errors } = await openDashboard(async (p) => {
      // Only this browser's requests are answered here; the node itself is not involved.
      await p.route('**/api/images', (route) =>
        route.fulfill({
          contentType: 'application/json',
          body: JSON.stringify({ images: [{ registry: 'local', repository: hostile, tags: [tag], digest: 'sha256:<b>bold</b>', mediaType: MT.ociManifest, size: 2048, heldBytes: 1024, blobs: 2, heldBlobs: 1 }] }),
        }),
      );
      await p.route('**/api/pulls', (route) =>
        route.fulfill({
          contentType: 'application/json',
          body: JSON.stringify({ pulls: [{ at: new Date().toISOString(), kind: 'manifest', registry: 'local', repository: hostile, reference: tag, digest: 'sha256:00', size: 10, source: '<i>local</i>' }] }),
        }),
      );
      await p.route('**/api/blobs', (route) =>
        route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'disk on fire' }] }) }),
      );
    }, { bypassCSP: true });
    const s1 = await status(node1);

    const row = page.locator('#images tr[data-repository]');
    await pageShows(page, '#images tr[data-repository]', 'the hostile image row', (t) => t.includes(hostile));
    expect(await row.getAttribute('data-repository')).toBe(hostile);
    expect(await text(page, '#images tr[data-repository] .tag')).toBe(tag);
    expect(await text(page, '#images tr[data-repository] td.held')).toContain('50%');
    await pageShows(page, '#pulls tr[data-repository]', 'the hostile pull row', (t) => t.includes(`${hostile}:${tag}`) && t.includes('<i>local</i>'));
    // Text, not markup: no element was made from the names, and nothing ran.
    expect(await page.locator('main img, main script, main b, main i').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as Record<string, unknown>).pwned)).toBeUndefined();

    // The failing endpoint is named in its own card; the node's own status is still drawn.
    await pageShows(page, '[data-error-for="blobs"]', 'the blobs error note', (t) => t.includes('/api/blobs') && t.includes('500') && t.includes('disk on fire'));
    await pageShows(page, '#updated', 'the failing count', (t) => t.includes('1 endpoint(s) failing'));
    expect(await text(page, '#peer-id')).toBe(s1.peerId);
    expect(await page.locator('[data-error-for="images"]').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
