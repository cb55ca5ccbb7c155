// A way out of a loopback-only namespace to the npm registry, and to nothing else: `docker build` of
// compose/Dockerfile runs `npm ci` (as it does for real users), but its dockerd lives in a namespace of
// the test's own. Two halves, joined by a Unix socket (the namespace shares the machine's filesystem):
//   - in the machine's namespace, an HTTP CONNECT proxy on the socket that opens tunnels to allowed
//     host:port pairs only (registry.npmjs.org:443), and refuses the rest;
//   - in the test's namespace, a TCP listener on 127.0.0.1 that pipes each connection to that socket.
// The build then gets HTTPS_PROXY=http://127.0.0.1:<port> (a build argument docker predefines, kept out of
// the image's history) with `--network host`, so its RUN steps share dockerd's namespace. No interface,
// route or firewall rule is added anywhere: the namespace stays loopback-only.
import { connect, type Socket } from 'node:net';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import type { NetNamespace } from './netns.js';
import { whenReady, type RunningProcess } from './processes.js';

export interface RegistryRelay {
  /** The proxy URL for processes inside the namespace. */
  proxyUrl: string;
  /** Every CONNECT target asked for, allowed or not (to show what the build reached). */
  asked(): string[];
  stop(): Promise<void>;
}

/** Runs in the namespace: 127.0.0.1:argv[1] → Unix socket argv[2], byte for byte. */
const NS_HALF = `
const net = require('node:net');
const [port, sock] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(sock);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(Number(port), '127.0.0.1', () => console.log('relay listening'));`;

function answer(client: Socket, status: string): void {
  client.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

/** The machine-side CONNECT proxy, on a Unix socket; tunnels only to `allowed` ("host:port"). */
function connectProxy(socketPath: string, allowed: readonly string[], asked: string[], tunnels: Set<Socket>): Promise<Server> {
  const server = createHttpServer((_req, res) => res.writeHead(405).end('CONNECT only\n'));
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    asked.push(target);
    // A tunnel is no longer the HTTP server's: remember it, so stop() can end it.
    tunnels.add(client);
    client.once('close', () => tunnels.delete(client));
    client.on('error', () => client.destroy());
    if (!allowed.includes(target)) return answer(client, '403 Forbidden');
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    let open = false;
    const upstream = connect(port, host, () => {
      open = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => (open ? client.destroy() : answer(client, '502 Bad Gateway')));
    client.once('close', () => upstream.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

/** Starts both halves; `dir` holds the socket (keep it short: a Unix socket path has ~100 bytes). */
export async function startRegistryRelay(ns: NetNamespace, dir: string, port: number, allowed: readonly string[] = ['registry.npmjs.org:443']): Promise<RegistryRelay> {
  const socketPath = join(dir, 'relay.sock');
  const asked: string[] = [];
  const tunnels = new Set<Socket>();
  const server = await connectProxy(socketPath, allowed, asked, tunnels);
  let half: RunningProcess | undefined;
  try {
    half = ns.spawn(process.execPath, ['-e', NS_HALF, String(port), socketPath], { port });
    const started = half;
    await whenReady(started, 'registry relay', async () => {
      const deadline = Date.now() + 10_000;
      while (!started.output().includes('relay listening')) {
        if (Date.now() > deadline) throw new Error(`the relay did not listen in namespace ${ns.name}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  } catch (err) {
    await half?.stop();
    await new Promise((r) => server.close(r));
    throw err;
  }
  return {
    proxyUrl: `http://127.0.0.1:${port}`,
    asked: () => [...asked],
    async stop() {
      await half?.stop();
      for (const t of tunnels) t.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
