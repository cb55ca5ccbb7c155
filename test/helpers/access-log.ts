// Reading CNCF distribution's access log (combined log format, one line per request on its stderr), to
// prove who fetched what from a seed: each line names the method, path, status and the client's User-Agent.
//   127.0.0.1 - - [25/Nov/2026:07:08:11 +0000] "GET /v2/library/foo/blobs/sha256:2d56… HTTP/1.1" 200 98 "" "docker/20.10.24 …"

export interface AccessLogEntry {
  method: string;
  /** Request target as sent, query included. */
  path: string;
  status: number;
  userAgent: string;
}

// A quoted field may hold backslash escapes (\" and \\), as distribution writes them.
const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const LINE = new RegExp(String.raw`^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ ${QUOTED} ${QUOTED}\s*$`);

/** Every access-log line in a process's output; the other (logrus) lines are ignored. */
export function parseAccessLog(output: string): AccessLogEntry[] {
  const entries: AccessLogEntry[] = [];
  for (const line of output.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    entries.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), userAgent: m[5]!.replace(/\\(.)/g, '$1') });
  }
  return entries;
}

/** A blob GET (`GET /v2/<name>/blobs/<digest>`), with the digest it asked for. */
export interface BlobGet extends AccessLogEntry {
  name: string;
  digest: string;
}

/** The blob GETs in a process's output, or among already parsed entries. */
export function blobGets(log: string | AccessLogEntry[]): BlobGet[] {
  const gets: BlobGet[] = [];
  for (const e of typeof log === 'string' ? parseAccessLog(log) : log) {
    const m = /^\/v2\/(.+)\/blobs\/(sha(?:256|512):[0-9a-f]+)(?:\?.*)?$/.exec(e.path);
    if (e.method === 'GET' && m) gets.push({ ...e, name: m[1]!, digest: m[2]! });
  }
  return gets;
}

/**
 * distribution writes an access-log line when a request has finished, a moment after the client got its
 * last byte: wait until the process's output stops growing before counting what it was asked.
 */
export async function logSettled(proc: { output(): string }, opts: { everyMs?: number; timeoutMs?: number } = {}): Promise<void> {
  const everyMs = opts.everyMs ?? 150;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last = -1;
  for (;;) {
    const len = proc.output().length;
    if (len === last) return;
    if (Date.now() > deadline) throw new Error('the access log did not settle');
    last = len;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
