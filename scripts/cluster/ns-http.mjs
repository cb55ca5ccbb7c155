#!/usr/bin/env node
// HTTP from inside a cluster namespace. The namespaces have no curl, ping or nc, and the addresses of a
// netns cluster exist only inside them, so netns-cluster-lib.mjs runs this file with
// `ip netns exec <ns> node ns-http.mjs ...` whenever it must talk to a host. Builtins only.
//
//   wait TIMEOUT_MS [READY_URL,]URL... [--status N] [--min-peers N]
//       For each target, with READY_URL first polls it until it answers 200. Then polls URL until it answers
//       (status N if given, else any status below 500) and, with --min-peers, until its JSON body has
//       connectedPeers >= N. Prints a JSON list of those last bodies (text), in the order given; exits 1 at the
//       deadline with a URL not ready and its last reason on stderr. One process waits for every host (run in
//       the cluster's hub namespace, which reaches them all over the bridge): a Node process per host cost
//       ~0.15 CPU s each, taken from the hosts it waited for.
//   request METHOD URL [--header 'Name: value']... [--body-file F] [--out F]
//       One request. The body is streamed from F, the answer streamed to --out F (never held in memory).
//       Prints {status, headers, size, sha256, body?} as JSON; body (text) only without --out.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const [command, ...rest] = process.argv.slice(2);

async function wait() {
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { status: { type: 'string' }, 'min-peers': { type: 'string' } },
  });
  const [ms, ...targets] = positionals;
  const deadline = Date.now() + Number(ms);
  const wantStatus = values.status === undefined ? undefined : Number(values.status);
  const minPeers = values['min-peers'] === undefined ? undefined : Number(values['min-peers']);
  const bodies = await Promise.all(
    targets.map(async (t) => {
      const [ready, url] = t.includes(',') ? t.split(',') : [undefined, t];
      if (ready) await poll(ready, deadline, 200);
      return poll(url, deadline, wantStatus, minPeers);
    }),
  );
  process.stdout.write(JSON.stringify(bodies));
}

// The pause between polls grows from 100 ms to 1 s: a cluster starts every host's probe at once, and 31 probes
// polling every 100 ms (each poll a request the host answers and logs) took a part of the 2 cores the hosts
// themselves were starting on (netns rollout bench, 32 hosts). A host is still seen ready within 1 s.
const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 1_000;

async function poll(url, deadline, wantStatus, minPeers) {
  let last = 'no answer yet';
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(MAX_PAUSE_MS, pause * 2)) {
    try {
      const res = await get(url, 2_000);
      const body = res.body;
      const statusOk = wantStatus === undefined ? res.status < 500 : res.status === wantStatus;
      last = `status ${res.status}: ${body.slice(0, 300)}`;
      if (statusOk) {
        if (minPeers === undefined) return body;
        const peers = JSON.parse(body).connectedPeers;
        if (typeof peers === 'number' && peers >= minPeers) return body;
        last = `connectedPeers ${peers}, want >= ${minPeers}`;
      }
    } catch (err) {
      last = String(err?.cause ?? err);
    }
    if (Date.now() > deadline) {
      process.stderr.write(`${url}: ${last}\n`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}

/**
 * One GET with node:http. Not fetch(): its first call loads undici, ~0.2 CPU s, which made each probe cost
 * 0.3 CPU s — a 32-host cluster's probes took ~10 CPU s of the 2 cores its nodes were starting on.
 */
function get(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function request() {
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { header: { type: 'string', multiple: true, default: [] }, 'body-file': { type: 'string' }, out: { type: 'string' } },
  });
  const [method, url] = positionals;
  const headers = {};
  for (const h of values.header) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const bodyFile = values['body-file'];
  if (bodyFile) headers['content-length'] = String(statSync(bodyFile).size);
  else if (method !== 'GET' && method !== 'HEAD') headers['content-length'] = '0';
  const res = await new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, resolve);
    req.on('error', reject);
    if (bodyFile) createReadStream(bodyFile).on('error', reject).pipe(req);
    else req.end();
  });
  const hash = createHash('sha256');
  const out = values.out ? createWriteStream(values.out) : undefined;
  const chunks = [];
  let size = 0;
  for await (const chunk of res) {
    hash.update(chunk);
    size += chunk.length;
    if (out) {
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    } else chunks.push(chunk);
  }
  if (out) await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
  const result = { status: res.statusCode, headers: res.headers, size, sha256: hash.digest('hex') };
  if (!out) result.body = Buffer.concat(chunks).toString('utf8');
  process.stdout.write(JSON.stringify(result));
}

const commands = { wait, request };
if (!commands[command]) {
  process.stderr.write('usage: ns-http.mjs wait TIMEOUT_MS [READY_URL,]URL... [--status N] [--min-peers N] | request METHOD URL [--header H]... [--body-file F] [--out F]\n');
  process.exit(2);
}
commands[command]().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
