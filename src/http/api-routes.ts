// The node's own API (/api): what an operator or script asks a node about itself.
import type { FastifyInstance } from 'fastify';

export interface NodeStatus {
  version: string;
  url: string;
  peerId?: string;
  multiaddrs: string[];
  connectedPeers: number;
  [key: string]: unknown;
}

export function registerApiRoutes(app: FastifyInstance, status: () => NodeStatus): void {
  app.get('/api/status', async (_request, reply) => {
    reply.header('cache-control', 'no-store').send(status());
  });
}
