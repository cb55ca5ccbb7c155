// Cuts HTTP clients that hold a connection without using it: one that sends part of a request and
// stops (in the headers or the body), one that stops reading its answer, and one that drips its headers
// byte by byte (slowloris). A transfer that moves, however slowly, is never cut: the timer is the
// socket's idle time, restarted by every byte either way. A request the node itself is still working
// on (a seed fetch, hashing a big blob at commit) is not the client's stall and is left alone.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Options for http.createServer: the headers deadline, and how often Node checks it. */
export function headersDeadline(idleMs: number): { headersTimeout?: number; connectionsCheckingInterval?: number } {
  if (idleMs <= 0) return {};
  return { headersTimeout: idleMs, connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.round(idleMs / 4))) };
}

export function cutIdleClients(server: Server, idleMs: number): void {
  if (idleMs <= 0) return;
  server.timeout = idleMs;
  const current = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const exchange = { req, res };
    current.set(req.socket, exchange);
    res.once('close', () => {
      if (current.get(req.socket) === exchange) current.delete(req.socket);
    });
  });
  // With a listener here, Node leaves the decision to it instead of destroying every idle socket.
  server.on('timeout', (socket: Socket) => {
    const exchange = current.get(socket);
    const waitingForClient = !exchange || !exchange.req.complete || exchange.res.writableNeedDrain;
    if (waitingForClient) socket.destroy();
  });
}
