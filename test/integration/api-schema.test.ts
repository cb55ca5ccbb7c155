// The /api request schemas (src/http/api-schema.ts) over a real started node: every malformed body or id
// gets a 4xx with the OCI error body that says what was wrong, and nothing behind the route runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorAnswer, GcAnswer, RolloutsAnswer, StatusAnswer } from '../../src/http/api-schema.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';

const nodes = new NodeSet('layerd-api-schema-');
let node: TestNode;

beforeAll(async () => {
  node = await nodes.start('node');
});

afterAll(() => nodes.stopAll('SIGTERM'));

/** A raw request: the body is sent exactly as given (a string), with content-type: application/json. */
async function send(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${node.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: await res.json() };
}

/** Asserts an OCI error answer with this status and code; returns its message. */
function expectError(answer: { status: number; json: unknown }, status: number, code: string, what: string): string {
  expect(answer.status, `${what}: ${JSON.stringify(answer.json)}`).toBe(status);
  const body = answer.json as ErrorAnswer;
  expect(body.errors, what).toHaveLength(1);
  expect(body.errors[0]!.code, what).toBe(code);
  return body.errors[0]!.message;
}

describe('POST /api/rollouts refuses malformed bodies with 400 NAME_INVALID saying why', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"image": ', /body is not JSON/],
    ['a JSON array', '[]', /body must be object/],
    ['JSON null', 'null', /body must be object/],
    ['a JSON string', '"docker.io/library/alpine:3"', /body must be object/],
    ['no image', '{}', /required property 'image'/],
    ['only a platform', '{"platform": "linux/amd64"}', /required property 'image'/],
    ['an image that is a number', '{"image": 5}', /body\.image must be string/],
    // Fastify's default Ajv would turn a one-element array into its element: the schema must see it as sent.
    ['an image in an array', '["docker.io/library/alpine:3"]', /body must be object/],
    ['an image field in an array', '{"image": ["docker.io/library/alpine:3"]}', /body\.image must be string/],
    ['an empty image', '{"image": ""}', /body\.image must NOT have fewer than 1 characters/],
    ['an image of 5000 characters', JSON.stringify({ image: `docker.io/${'a'.repeat(5000)}:1` }), /body\.image must NOT have more than 1024 characters/],
    ['a platform that is a boolean', '{"image": "docker.io/library/alpine:3", "platform": true}', /body\.platform must be string/],
    ['a platform of 1000 characters', JSON.stringify({ image: 'docker.io/library/alpine:3', platform: `linux/${'x'.repeat(1000)}` }), /body\.platform must NOT have more than 100 characters/],
    ['a misspelt field', '{"image": "docker.io/library/alpine:3", "platfrom": "linux/arm64"}', /additional properties \("platfrom"\)/],
  ];
  for (const [what, body, why] of cases) {
    it(what, async () => {
      const message = expectError(await send('POST', '/api/rollouts', body), 400, 'NAME_INVALID', what);
      expect(message).toMatch(why);
      // The message says what is wanted, and never echoes a huge value back.
      expect(message).toContain('want a JSON body');
      expect(message.length).toBeLessThan(400);
    });
  }

  it('a platform that is not os/arch[/variant]', async () => {
    const message = expectError(await send('POST', '/api/rollouts', '{"image": "docker.io/library/alpine:3", "platform": "linux"}'), 400, 'NAME_INVALID', 'platform linux');
    expect(message).toMatch(/invalid platform "linux"/);
  });

  it('a field name of 10,000 characters is cut in the message', async () => {
    const message = expectError(await send('POST', '/api/rollouts', JSON.stringify({ image: 'a/b:1', ['k'.repeat(10_000)]: 1 })), 400, 'NAME_INVALID', 'long field');
    expect(message.length).toBeLessThan(400);
  });

  it('a body over 64 KiB is 413 SIZE_INVALID', async () => {
    expectError(await send('POST', '/api/rollouts', JSON.stringify({ image: 'x'.repeat(70_000) })), 413, 'SIZE_INVALID', '70 kB body');
  });

  it('none of them started a rollout', async () => {
    const list = await send('GET', '/api/rollouts');
    expect(list.status).toBe(200);
    expect((list.json as RolloutsAnswer).rollouts).toEqual([]);
  });
});

describe('POST /api/gc takes no options', () => {
  it('runs with {} or no body, and answers what it removed', async () => {
    for (const body of ['{}', '']) {
      const answer = await send('POST', '/api/gc', body);
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
      const report = answer.json as GcAnswer;
      for (const k of ['removedUploads', 'removedBlobs', 'freedBytes', 'evicted'] as const) expect(typeof report[k], k).toBe('number');
    }
  });

  const cases: Array<[string, string, RegExp]> = [
    ['an option it does not have', '{"dryRun": true}', /additional properties \("dryRun"\)/],
    ['not JSON', 'collect', /body is not JSON/],
    ['a JSON array', '[{}]', /body must be object/],
    ['a JSON number', '1', /body must be object/],
  ];
  for (const [what, body, why] of cases) {
    it(`refuses ${what} with 400 UNSUPPORTED`, async () => {
      const message = expectError(await send('POST', '/api/gc', body), 400, 'UNSUPPORTED', what);
      expect(message).toMatch(why);
      expect(message).toContain('takes no options');
    });
  }
});

describe('GET /api/rollouts/:id', () => {
  it('is 404 NAME_UNKNOWN for an id this node does not know', async () => {
    for (const id of ['nope', 'x'.repeat(100)]) {
      const message = expectError(await send('GET', `/api/rollouts/${id}`), 404, 'NAME_UNKNOWN', `id of ${id.length}`);
      expect(message.length).toBeLessThan(200);
    }
  });

  it('is 400 NAME_INVALID for an id longer than the router takes (100 characters)', async () => {
    const message = expectError(await send('GET', `/api/rollouts/${'x'.repeat(8000)}`), 400, 'NAME_INVALID', 'id of 8000');
    expect(message).toMatch(/max param length/);
  });
});

describe('answers match their declared types', () => {
  it('GET /api/status of a node with P2P off', async () => {
    const answer = await send('GET', '/api/status');
    expect(answer.status).toBe(200);
    const s = answer.json as StatusAnswer;
    expect(s.url).toBe(node.url);
    expect(s.peerId).toBeUndefined();
    expect(s.multiaddrs).toEqual([]);
    expect(s.store.maxBytes).toBeNull();
    expect(typeof s.stats.hitRatio).toBe('number');
    expect(Object.keys(s.stats.fetches).sort()).toEqual(['peer', 'upstream']);
  });
});
