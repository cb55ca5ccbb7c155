// Every peer message is checked at the edge before anything in it is used (issue 15): over real libp2p
// streams (three nodes in this process, TCP on loopback, noise + yamux as layerd builds them), malformed
// questions to a claim coordinator and a rollout peer, and malformed answers from a lying coordinator,
// rollout peer and blob provider, each get a clear error (a FrameError naming the field, a log line with
// the reason, or the protocol's refusal) and a reset stream, and the node goes on answering good ones.
import '../../src/polyfill.js'; // Promise.withResolvers on Node 20, as the cli loads it
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendFrame, type Protocols } from '../../scripts/bench/fuzz-gen.mjs';
import { progressFrom, specFrom, type NodeProgress, type RolloutSpec } from '../../src/distribution/rollout/index.js';
import { makeDigest, type Digest } from '../../src/oci/digest.js';
import { BLOB_PROTOCOL, fetchFromPeer, PeerFetchError } from '../../src/p2p/blob-protocol.js';
import { CLAIM_PROTOCOL, coordinatorOf, FetchClaims, parseClaimAnswer } from '../../src/p2p/fetch-claims.js';
import { FrameError, readLine } from '../../src/p2p/json-lines.js';
import { ask, peersSpeaking } from '../../src/p2p/json-rpc.js';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { ROLLOUT_PROTOCOL, RolloutTransport } from '../../src/p2p/rollout-protocol.js';
import { until } from '../helpers/processes.js';

const protocols: Protocols = { blob: BLOB_PROTOCOL, claim: CLAIM_PROTOCOL, rollout: ROLLOUT_PROTOCOL };
const DEADLINE_MS = 10_000;
const DIGEST = makeDigest('sha256', 'a'.repeat(64));

/** An honest node: a claim coordinator and a rollout peer, recording what it logged and was handed. */
let honest: LayerdLibp2p;
/** A node that answers every question on every protocol with whatever line the test set. */
let liar: LayerdLibp2p;
/** The node that asks. */
let asker: LayerdLibp2p;
let lie = 'null';
/** How long the liar waits before it answers. */
let lieAfterMs = 0;
const logged: Array<{ msg: string; reason?: string }> = [];
const offered: RolloutSpec[] = [];
const reported: NodeProgress[] = [];
const held: Stream[] = [];

const node = async (listen: string[]) => createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen, announce: [], bootstrap: [], providerTtlMs: 60_000 });
const addrOf = (n: LayerdLibp2p) => n.getMultiaddrs()[0]!.toString();
const target = (n: LayerdLibp2p) => ({ id: n.peerId.toString(), addrs: [addrOf(n)] });
const log = {
  debug: (obj: object, msg: string) => logged.push({ msg, ...(obj as { reason?: string }) }),
  info: (obj: object, msg: string) => logged.push({ msg, ...(obj as { reason?: string }) }),
  warn: (obj: object, msg: string) => logged.push({ msg, ...(obj as { reason?: string }) }),
};

beforeAll(async () => {
  [honest, liar, asker] = await Promise.all([node(['/ip4/127.0.0.1/tcp/0']), node(['/ip4/127.0.0.1/tcp/0']), node([])]);
  await new FetchClaims(honest, { log }).start();
  await new RolloutTransport(honest).start({
    checkOffer: (raw) => specFrom(raw),
    checkReport: progressFrom,
    offer: (spec) => void offered.push(spec),
    report: (progress) => void reported.push(progress),
  });
  for (const protocol of [CLAIM_PROTOCOL, ROLLOUT_PROTOCOL, BLOB_PROTOCOL]) {
    await liar.handle(protocol, async (stream: Stream) => {
      held.push(stream);
      await readLine(stream[Symbol.asyncIterator]());
      if (lieAfterMs > 0) await new Promise((r) => setTimeout(r, lieAfterMs));
      stream.send(new TextEncoder().encode(`${lie}\n`));
      await stream.close();
    });
  }
});

afterAll(async () => {
  for (const s of held) s.abort(new Error('test over'));
  await Promise.all([asker?.stop(), liar?.stop(), honest?.stop()]);
});

const frame = (protocol: keyof Protocols, text: string) => sendFrame(asker, multiaddr(addrOf(honest)), protocols, { protocol, chunks: [Buffer.from(`${text}\n`)], end: 'close' }, DEADLINE_MS);

describe('a claim coordinator, sent malformed questions', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', 'digest please', /not a JSON line/],
    ['not an object', 'null', /claim question: want a JSON object/],
    ['no digest', '{"failed":[]}', /no digest/],
    ['a bad digest', '{"digest":"sha256:zz"}', /digest/i],
    ['failed peers that are not strings', `{"digest":"${DIGEST}","failed":[1,2]}`, /failed: want strings/],
    ['a line past the limit', `{"digest":"${DIGEST}","failed":["${'x'.repeat(17_000)}"]}`, /line too long/],
  ];
  for (const [what, text, reason] of cases) {
    it(`resets the stream on ${what}, and logs why`, async () => {
      const before = logged.length;
      const outcome = await frame('claim', text);
      expect(['closed', 'reset']).toContain(outcome.outcome); // no answer: the asker's side ends or resets first
      await until('the coordinator to log the refusal', () => (logged.length > before ? true : undefined), DEADLINE_MS);
      expect(logged.slice(before)).toContainEqual(expect.objectContaining({ msg: 'claim: a question failed, stream reset', reason: expect.stringMatching(reason) }));
    });
  }

  it('goes on answering a well-formed question', async () => {
    const outcome = await frame('claim', JSON.stringify({ digest: DIGEST, failed: [] }));
    expect(outcome.outcome).toBe('answered');
    expect(parseClaimAnswer(JSON.parse(outcome.answer!))).toMatchObject({ id: asker.peerId.toString() });
  });
});

describe('a rollout peer, sent malformed messages', () => {
  it('refuses a malformed envelope or spec with the reason, and hands its handlers nothing', async () => {
    expect(JSON.parse((await frame('rollout', '[1]')).answer!)).toEqual({ ok: false, error: 'want a JSON object' });
    expect(JSON.parse((await frame('rollout', '{"type":"gossip"}')).answer!)).toEqual({ ok: false, error: 'unknown message type' });
    expect(JSON.parse((await frame('rollout', '{"type":"offer","spec":{"id":5}}')).answer!)).toEqual({ ok: false, error: 'bad rollout id' });
    // A report must be the sender's own.
    const progress = { rollout: 'r1', node: 'someone-else', state: 'running', blobsTotal: 1, blobsDone: 0, bytesTotal: 1, bytesDone: 0, startedAt: 1, bySource: { local: 0, peer: 0, upstream: 0 } };
    expect(JSON.parse((await frame('rollout', JSON.stringify({ type: 'report', progress }))).answer!)).toEqual({ ok: false, error: 'bad report' });
    expect(['closed', 'reset']).toContain((await frame('rollout', '{"type":')).outcome);
    expect(offered).toEqual([]);
    expect(reported).toEqual([]);
    // A good report still goes through, typed.
    const own = { ...progress, node: asker.peerId.toString() };
    expect(JSON.parse((await frame('rollout', JSON.stringify({ type: 'report', progress: own }))).answer!)).toEqual({ ok: true });
    expect(reported).toEqual([own]);
  });
});

describe('an asker, sent malformed answers', () => {
  it('refuses a claim answer that is not one, naming the field: a FrameError, never a TypeError', async () => {
    const question = { digest: DIGEST, failed: [] };
    for (const [answer, why] of [
      ['null', /claim answer: want a JSON object/],
      ['{"fetcher":"me","addrs":[]}', /fetcher: not a peer id/],
      [`{"fetcher":"${asker.peerId.toString()}","addrs":["nowhere"]}`, /addrs: not a multiaddr/],
      ['{"fetcher":', /not a JSON line/],
    ] as const) {
      lie = answer;
      const err = await ask(asker, target(liar), CLAIM_PROTOCOL, question, DEADLINE_MS, parseClaimAnswer).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(FrameError);
      expect((err as Error).message).toMatch(new RegExp(`${CLAIM_PROTOCOL}: bad answer from ${liar.peerId.toString()}: .*${why.source}`));
    }
  });

  it('passes over a coordinator that answers garbage, and fetches for itself', async () => {
    lie = '{"fetcher":"me","addrs":[]}';
    const claims = new FetchClaims(asker, { log, askTimeoutMs: DEADLINE_MS });
    await asker.dial(multiaddr(addrOf(liar)));
    const liarId = liar.peerId.toString();
    await until('the asker to learn that the liar speaks the claim protocol', async () => ((await peersSpeaking(asker, CLAIM_PROTOCOL)).includes(liarId) ? true : undefined), DEADLINE_MS);
    // A digest whose coordinator is the liar, whoever else the asker knows.
    const candidates = [asker.peerId.toString(), ...(await peersSpeaking(asker, CLAIM_PROTOCOL))];
    let digest: Digest | undefined;
    for (let i = 0; !digest; i++) {
      const d = makeDigest('sha256', i.toString(16).padStart(64, '0'));
      if (coordinatorOf(d, candidates) === liarId) digest = d;
    }
    const before = logged.length;
    await expect(claims.whoFetches(digest)).resolves.toBeUndefined();
    expect(logged.slice(before)).toContainEqual(expect.objectContaining({ msg: 'claim: coordinator did not answer, asking the next', reason: expect.stringMatching(/bad answer .*fetcher: not a peer id/) }));
  });

  it('waits for a coordinator that answers slowly (past the old 5 s deadline) instead of heading a second chain', { timeout: 30_000 }, async () => {
    const honestId = honest.peerId.toString();
    lie = JSON.stringify({ fetcher: honestId, addrs: [addrOf(honest)] });
    lieAfterMs = 6_000;
    try {
      const claims = new FetchClaims(asker, { log });
      await asker.dial(multiaddr(addrOf(liar)));
      const liarId = liar.peerId.toString();
      await until('the asker to learn that the liar speaks the claim protocol', async () => ((await peersSpeaking(asker, CLAIM_PROTOCOL)).includes(liarId) ? true : undefined), DEADLINE_MS);
      const candidates = [asker.peerId.toString(), ...(await peersSpeaking(asker, CLAIM_PROTOCOL))];
      let digest: Digest | undefined;
      for (let i = 0; !digest; i++) {
        const d = makeDigest('sha256', (i + 1000).toString(16).padStart(64, '0'));
        if (coordinatorOf(d, candidates) === liarId) digest = d;
      }
      const before = logged.length;
      // The coordinator's answer names the node to follow: this node does not go to the seed itself.
      await expect(claims.whoFetches(digest)).resolves.toMatchObject({ id: honestId });
      expect(logged.slice(before).map((l) => l.msg)).not.toContain('claim: coordinator did not answer, asking the next');
    } finally {
      lieAfterMs = 0;
    }
  });

  it('refuses a rollout answer that is not one, instead of reading "ok" off null', async () => {
    lie = 'null';
    const err = await new RolloutTransport(asker).offer(liar.peerId.toString(), { id: 'r1' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(FrameError);
    expect((err as Error).message).toMatch(/rollout answer: want a JSON object/);
    lie = '{"ok":false,"error":"not today"}';
    await expect(new RolloutTransport(asker).offer(liar.peerId.toString(), { id: 'r1' })).rejects.toThrow('peer refused: not today');
  });

  it("refuses a blob header with status ok but no numbers: a protocol error, the body never read", async () => {
    lie = '{"status":"ok"}';
    const err = await fetchFromPeer(asker, target(liar), DIGEST, undefined, undefined, { idleTimeoutMs: DEADLINE_MS }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PeerFetchError);
    expect((err as PeerFetchError).status).toBe('protocol');
    expect((err as Error).message).toMatch(/bad response header: ok without a size, start and length/);
  });
});
