// The seed's keep-alive agents: the https one (and node:https with it) is made only on the first https request,
// and an https URL still goes out over TLS through it.
import { Agent as HttpsAgent } from 'node:https';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { keepAliveAgents, send, type Agents } from '../../../src/seed/http.js';

const TLS_HANDSHAKE = 0x16; // a TLS record's first byte: a ClientHello starts with it

let agents: Agents | undefined;
afterEach(() => agents?.destroy());

/** A TCP server on loopback that records the first byte of each connection and hangs up. */
async function firstBytes(): Promise<{ port: number; seen: number[]; close(): void }> {
  const seen: number[] = [];
  const server = createServer((socket: Socket) => socket.once('data', (d: Buffer) => (seen.push(d[0]!), socket.destroy())));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, close: () => server.close() };
}

describe('seed agents', () => {
  it('make no https agent until one is asked for, and destroy without one', () => {
    agents = keepAliveAgents();
    expect(Object.values(agents)).not.toContainEqual(expect.any(HttpsAgent));
    agents.destroy();
    agents = undefined;
  });

  it('send an https URL over TLS, through a keep-alive https agent made then', async () => {
    const server = await firstBytes();
    try {
      agents = keepAliveAgents();
      await expect(send('GET', new URL(`https://127.0.0.1:${server.port}/v2/`), {}, 5_000, agents)).rejects.toThrow();
      expect(server.seen).toEqual([TLS_HANDSHAKE]);
      expect(agents.https).toBeInstanceOf(HttpsAgent);
      expect(agents.https.maxSockets).toBe(64);
      expect(agents.https).toBe(agents.https);
    } finally {
      server.close();
    }
  });
});
