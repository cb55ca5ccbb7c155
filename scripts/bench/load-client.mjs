// A worker thread of scripts/bench/load.mjs: runs its share of the benchmark's clients, all at once.
// Each client is one GET of a whole blob on its own connection, hashed as it streams in (never kept), and
// reports when it finished relative to the moment the main thread said go, and whether it got every byte
// with the right sha256. node: builtins only.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ jobs: Array<{ i: number, url: string, size: number, digest: string }>, idleTimeoutMs: number, maxWallMs: number }} */
const { jobs, idleTimeoutMs, maxWallMs } = workerData;
/** Requests still running, so that the wall-time cap can end them. */
const open = new Set();

// One socket per client, all open at once: the agent must not queue requests (its default is unlimited, said
// here so it stays so), and no keep-alive, so every client pays its own connect like a fresh puller does.
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity, maxTotalSockets: Infinity });

function get(job, t0) {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let ttfbMs = null;
    let settled = false;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      const ms = performance.now() - t0;
      const digest = `sha256:${hash.digest('hex')}`;
      const ok = !error && bytes === job.size && digest === job.digest;
      resolve({ i: job.i, ok, ms, ttfbMs, bytes, error: error ?? (ok ? undefined : `${bytes} bytes with ${digest}`) });
    };
    const req = http.get(job.url, { agent }, (res) => {
      ttfbMs = performance.now() - t0;
      if (res.statusCode !== 200) {
        res.resume();
        return finish(`status ${res.statusCode}`);
      }
      res.on('data', (c) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () => finish(res.complete ? undefined : 'response cut off'));
      res.on('error', (err) => finish(err.message));
      res.on('close', () => finish(res.complete ? undefined : `response cut off after ${bytes} bytes`));
    });
    // An idle limit, not a deadline: a client that gets no byte for this long counts as failed (a hang).
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`no byte for ${idleTimeoutMs} ms`)));
    req.on('error', (err) => finish(err.message));
    open.add(req);
    req.on('close', () => open.delete(req));
  });
}

parentPort.on('message', async (msg) => {
  if (msg !== 'go') return;
  const t0 = performance.now();
  // A cap on the whole run, so that a proxy that crawls still yields numbers (its unfinished clients fail).
  const cap = setTimeout(() => {
    for (const req of open) req.destroy(new Error(`not done within ${maxWallMs / 1000} s`));
  }, maxWallMs);
  const results = await Promise.all(jobs.map((job) => get(job, t0)));
  clearTimeout(cap);
  agent.destroy();
  parentPort.postMessage(results);
});
parentPort.postMessage('ready');
