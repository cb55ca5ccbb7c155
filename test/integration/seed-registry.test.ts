// The SeedRegistry contract (test/unit/seed/seed-registry.conformance.ts) met by HttpSeedRegistry against
// real registries: CNCF distribution as a plain process, and a layerd node that was pushed to. Content
// is pushed with the tests' registry client; each registry is started once for the suite run against it.
import { afterAll } from 'vitest';
import { HttpSeedRegistry } from '../../src/seed/index.js';
import { requireTool } from '../helpers/clients.js';
import { NodeSet } from '../helpers/nodes.js';
import { removeDir, startDistribution } from '../helpers/processes.js';
import { RegistryClient } from '../helpers/registry-client.js';
import { describeSeedRegistry, type SeedUnderTest } from '../unit/seed/seed-registry.conformance.js';

const stops: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
});

/** The seed behind `url`, started on the first case that needs it and kept for the rest. */
function seedAt(start: () => Promise<string>, referrers: boolean): () => Promise<SeedUnderTest> {
  let url: Promise<string> | undefined;
  return async () => {
    const base = await (url ??= start());
    const client = new RegistryClient(base);
    const seed = new HttpSeedRegistry({ name: 'seed.test', url: base, timeoutMs: 10_000, retries: 0, userAgent: 'layerd-conformance' });
    return {
      seed,
      referrers,
      push: {
        blob: async (repo, bytes) => void (await client.pushBlob(repo, bytes)),
        manifest: async (repo, reference, bytes, mediaType) => void (await client.pushManifest(repo, reference, bytes, mediaType)),
      },
      close: async () => seed.close(),
    };
  };
}

describeSeedRegistry(
  'CNCF distribution',
  seedAt(async () => {
    await requireTool('docker-registry');
    const dist = await startDistribution();
    stops.push(async () => (await dist.stop(), await removeDir(dist.rootDir)));
    return dist.url;
  }, false),
);

describeSeedRegistry(
  'a layerd node that was pushed to',
  seedAt(async () => {
    const nodes = new NodeSet('layerd-seed-conformance-');
    stops.push(() => nodes.stopAll());
    return (await nodes.start('seed')).url;
  }, true),
);
