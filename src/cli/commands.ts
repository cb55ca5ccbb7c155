// The commands that talk to a running node: status, pull, ls, gc, rollout.
import { isPlatform } from '../oci/index.js';
import { UsageError, nodeOptionsHelp, nodeFlags, printJson, type Command } from './command.js';
import type { ImagesAnswer, Loose, RolloutRequest } from '../http/index.js';
import { formatGc, formatImages, type GcDoc } from './images.js';
import { NodeClient } from './node-client.js';
import { pull, summaryLine } from './pull.js';
import { failedNodes, summaryOf, waitForRollout, type RolloutDoc } from './rollout.js';
import { formatStatus, type StatusDoc } from './status.js';

export const status: Command = {
  summary: "show a node's status",
  help: () => `Usage: layerd status [--node URL] [--user USER[:PASSWORD]] [--json]

Shows a node's version, peer id and addresses, connected peers, seed registries, store use,
hit ratio, bytes saved versus the seeds, and blobs fetched by source (GET /api/status).

${nodeOptionsHelp()}`,
  async run(args) {
    const f = nodeFlags(args);
    const doc = await new NodeClient(f.node, f.authorization).json<StatusDoc>('GET', '/api/status');
    if (f.json) printJson(doc);
    else process.stdout.write(`${formatStatus(doc)}\n`);
  },
};

export const pullCommand: Command = {
  summary: "pull an image into a node's cache",
  help: () => `Usage: layerd pull IMAGE [--node URL] [--user USER[:PASSWORD]] [--platform OS/ARCH[/VARIANT]] [--json]

Pulls IMAGE's manifests and blobs through the node's /v2 endpoint, as a container runtime would, so
the node caches everything it did not hold. Every blob is streamed and checked against its digest.
IMAGE is [REGISTRY/]REPOSITORY[:TAG][@DIGEST], e.g. registry.example:5000/team/app:v1,
team/app@sha256:..., alpine (= docker.io/library/alpine:latest).
An index pulls every platform's manifest and blobs, unless --platform picks one.

${nodeOptionsHelp([['--platform OS/ARCH[/VARIANT]', 'only this platform of an index, e.g. linux/arm64']])}`,
  async run(args) {
    const f = nodeFlags(args, { platform: { type: 'string' } }, 1);
    const image = f.positionals[0];
    if (image === undefined) throw new UsageError('pull: missing IMAGE (try: layerd pull --help)');
    const summary = await pull({ node: f.node, authorization: f.authorization, image, platform: f.values.platform as string | undefined, json: f.json, stderr: process.stderr });
    if (f.json) printJson(summary);
    else process.stdout.write(`${summaryLine(summary)}\n`);
  },
};

export const ls: Command = {
  summary: 'list the images a node holds',
  help: () => `Usage: layerd ls [--node URL] [--user USER[:PASSWORD]] [--json]

Lists the images a node has cached or had pushed (GET /api/images): registry and repository, tags,
short digest, size, and how much of it is on the node's disk.

${nodeOptionsHelp()}`,
  async run(args) {
    const f = nodeFlags(args);
    const doc = await new NodeClient(f.node, f.authorization).json<Loose<ImagesAnswer>>('GET', '/api/images');
    if (f.json) printJson(doc);
    else process.stdout.write(`${formatImages(Array.isArray(doc.images) ? doc.images : [])}\n`);
  },
};

export const gc: Command = {
  summary: "reclaim a node's unreferenced content",
  help: () => `Usage: layerd gc [--node URL] [--user USER[:PASSWORD]] [--json]

Asks the node to collect garbage (POST /api/gc): unfinished uploads and blobs nothing references,
and prints what it removed and the bytes freed.

${nodeOptionsHelp()}`,
  async run(args) {
    const f = nodeFlags(args);
    const doc = await new NodeClient(f.node, f.authorization).json<GcDoc>('POST', '/api/gc');
    if (f.json) printJson(doc);
    else process.stdout.write(`${formatGc(doc)}\n`);
  },
};

export const rollout: Command = {
  summary: 'have every node of the cluster pre-fetch an image',
  help: () => `Usage: layerd rollout IMAGE [--node URL] [--user USER[:PASSWORD]] [--platform OS/ARCH[/VARIANT]] [--wait] [--json]

Asks the node to roll IMAGE out to the cluster (POST /api/rollouts): the request spreads to every node,
and each fetches the manifests from its seed and the layers through the normal path (local, then
peers, then the seed), so nodes feed each other instead of all asking the seed. Asking again while it
runs joins the same rollout. Without --wait, prints the rollout's id and returns.
With --wait, shows each node's progress (blobs, bytes, where they came from) until every node is done,
failed or dead (a node that stops reporting), then a summary: makespan, bytes the seed sent against the
image size. Exit code 1 if any node failed or died.

${nodeOptionsHelp([
    ['--platform OS/ARCH[/VARIANT]', 'only this platform of an index (default: every platform)'],
    ['--wait', 'follow the rollout until it ends'],
  ])}`,
  async run(args) {
    const f = nodeFlags(args, { platform: { type: 'string' }, wait: { type: 'boolean' } }, 1);
    const image = f.positionals[0];
    if (image === undefined) throw new UsageError('rollout: missing IMAGE (try: layerd rollout --help)');
    const platform = f.values.platform as string | undefined;
    if (platform !== undefined && !isPlatform(platform)) throw new UsageError(`invalid --platform ${JSON.stringify(platform)}: want os/arch[/variant]`);
    const client = new NodeClient(f.node, f.authorization);
    const request: RolloutRequest = platform ? { image, platform } : { image };
    const started = await client.json<RolloutDoc>('POST', '/api/rollouts', request);
    if (f.values.wait !== true) {
      if (f.json) printJson(started);
      else process.stdout.write(`rollout ${started.id} of ${started.image} started (follow it: layerd rollout ${image} --wait, or GET ${f.node}/api/rollouts/${started.id})\n`);
      return;
    }
    const done = await waitForRollout(client, started.id, f.json ? undefined : process.stderr);
    if (f.json) printJson(done);
    else process.stdout.write(`${summaryOf(done)}\n`);
    const failure = failedNodes(done);
    if (failure) throw failure;
  },
};
