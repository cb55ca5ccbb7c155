// Property tests for the frame decoders of layerd's peer protocols: whatever bytes a peer sends, the
// line reader and each protocol's request parser return a value or throw a FrameError (or, for a bad
// digest, an OciError), which the handlers turn into a "bad-request" answer or a closed stream. Any
// other exception (a TypeError from a null field, say) would be a bug. Valid frames round-trip.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALGORITHMS, type Algorithm } from '../../../src/oci/digest.js';
import { OciError } from '../../../src/oci/errors.js';
import { parseBlobRequest, parseBlobResponse } from '../../../src/p2p/blob-protocol.js';
import { parseClaimAnswer, parseClaimQuestion, parseReleaseAnswer } from '../../../src/p2p/fetch-claims.js';
import { encodeLine, FrameError, parseJsonLine, parseJsonObject, readLine } from '../../../src/p2p/json-lines.js';
import { fitPeersAnswer, parsePeersAnswer, parseRolloutAnswer, parseRolloutMessage } from '../../../src/p2p/rollout-protocol.js';
import { progressFrom, specFrom } from '../../../src/distribution/rollout/index.js';

const RUNS = { numRuns: 1_000 };

function typed<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FrameError) return undefined;
    if (err instanceof OciError && err.code === 'DIGEST_INVALID') return undefined;
    throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.message}, want FrameError or DIGEST_INVALID`);
  }
}

async function* chunked(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

/** A real peer id and address, so the generators also reach answers that pass every check. */
const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN';
const ADDR = '/ip4/127.0.0.1/tcp/4001';
const digest = fc.constantFrom(...(Object.keys(ALGORITHMS) as Algorithm[])).chain((a) => fc.uint8Array({ minLength: ALGORITHMS[a] / 2, maxLength: ALGORITHMS[a] / 2 }).map((b) => `${a}:${Buffer.from(b).toString('hex')}`));
const anyValue = fc.oneof(fc.jsonValue(), fc.constant(null), fc.constant(-1), fc.constant(1e300), fc.constant(2 ** 60), fc.string(), digest);
/** JSON lines shaped like the protocols' messages with any field wrong or missing, and lines that are not JSON. */
const frameText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
  fc.record({ digest: fc.oneof(digest, anyValue), start: anyValue, end: anyValue }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({ digest: fc.oneof(digest, anyValue), failed: anyValue, release: anyValue }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({ status: fc.oneof(fc.constantFrom('ok', 'busy', 'not-found'), anyValue), size: anyValue, start: anyValue, length: anyValue }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({ type: fc.oneof(fc.constantFrom('offer', 'report'), anyValue), spec: anyValue, progress: anyValue }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({ fetcher: fc.oneof(fc.constant(PEER), anyValue), addrs: fc.oneof(fc.constant([ADDR]), fc.array(fc.oneof(fc.constant(ADDR), anyValue), { maxLength: 3 }), anyValue) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.record({ ok: fc.oneof(fc.boolean(), anyValue), error: anyValue }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
);

describe('line framing', () => {
  it('reads the first line of any chunking, or fails with a FrameError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 6 }), fc.integer({ min: 1, max: 2048 }), async (parts, max) => {
        const all = Buffer.concat(parts);
        const nl = all.indexOf(0x0a);
        let got: { line: string; rest: Uint8Array } | undefined;
        try {
          got = await readLine(chunked(parts), max);
        } catch (err) {
          expect(err).toBeInstanceOf(FrameError);
          expect(nl < 0 || nl > max).toBe(true);
          return;
        }
        expect(nl).toBeGreaterThanOrEqual(0);
        expect(got.line).toBe(all.subarray(0, nl).toString('utf8'));
        // what follows the line is handed on, up to the end of the chunk the line ended in
        expect(Buffer.from(all.subarray(nl + 1)).subarray(0, got.rest.length).equals(Buffer.from(got.rest))).toBe(true);
      }),
      RUNS,
    );
  });

  it('round-trips an encoded line, and parses any text to a value or a FrameError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), async (obj) => {
        const { line } = await readLine(chunked([encodeLine(obj)]), 1 << 20);
        expect(parseJsonObject(line)).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
      RUNS,
    );
    fc.assert(fc.property(frameText, (text) => void typed(() => parseJsonLine(text))), RUNS);
  });
});

describe('protocol requests', () => {
  it('a blob request parses to a digest and a range with start <= end, or fails typed', () => {
    fc.assert(
      fc.property(frameText, (text) => {
        const r = typed(() => parseBlobRequest(text));
        if (r?.range) expect(0 <= r.range.start && r.range.start <= r.range.end).toBe(true);
      }),
      RUNS,
    );
  });

  it('a valid blob request round-trips', () => {
    fc.assert(
      fc.property(digest, fc.option(fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()), { nil: undefined }), (d, range) => {
        const req = range ? { digest: d, start: Math.min(...range), end: Math.max(...range) } : { digest: d };
        const parsed = parseBlobRequest(JSON.stringify(req));
        expect(parsed).toEqual(range ? { digest: d, range: { start: req.start, end: req.end } } : { digest: d });
      }),
      RUNS,
    );
  });

  it('a blob response header is believed only when it answers the range asked for, within its size (issue 13, item 5)', () => {
    const range = fc.option(fc.tuple(fc.nat(1 << 20), fc.nat(1 << 20)).map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) })), { nil: undefined });
    fc.assert(
      fc.property(frameText, range, (text, asked) => {
        const h = typed(() => parseBlobResponse(text, asked));
        if (h?.status !== 'ok') return;
        const { size, start, length } = h as Required<typeof h>;
        for (const v of [size, start, length]) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
        expect(start).toBe(asked?.start ?? 0);
        expect(start + length).toBeLessThanOrEqual(size);
        expect(length).toBe(Math.max(0, Math.min(asked?.end ?? size - 1, size - 1) - start + 1));
      }),
      RUNS,
    );
    // What an honest server sends parses; the same with a length past the size, or another start, does not.
    expect(parseBlobResponse('{"status":"ok","size":100,"start":10,"length":20}', { start: 10, end: 29 })).toEqual({ status: 'ok', size: 100, start: 10, length: 20 });
    expect(parseBlobResponse('{"status":"ok","size":100,"start":0,"length":100}', undefined)).toMatchObject({ size: 100 });
    expect(() => parseBlobResponse('{"status":"ok","size":100,"start":0,"length":101}', undefined)).toThrow(FrameError);
    expect(() => parseBlobResponse('{"status":"ok","size":100,"start":5,"length":20}', { start: 10, end: 29 })).toThrow(FrameError);
    expect(() => parseBlobResponse('null', undefined)).toThrow(FrameError);
    expect(() => parseBlobResponse('{"status":"maybe"}', undefined)).toThrow(FrameError);
  });

  it('claim and rollout questions parse or fail typed', () => {
    fc.assert(
      fc.property(frameText, (text) => {
        const value = typed(() => parseJsonLine(text));
        if (value === undefined) return;
        const claim = typed(() => parseClaimQuestion(value));
        if (claim?.kind === 'claim') expect(claim.failed.every((f) => typeof f === 'string')).toBe(true);
        typed(() => parseRolloutMessage(value));
      }),
      RUNS,
    );
  });

  it('answers to claims, releases and rollout messages parse or fail typed, and what parses has the shape promised', () => {
    fc.assert(
      fc.property(frameText, (text) => {
        const value = typed(() => parseJsonLine(text));
        if (value === undefined) return;
        const claim = typed(() => parseClaimAnswer(value));
        if (claim) {
          expect(typeof claim.id).toBe('string');
          expect(claim.addrs.every((a) => typeof a === 'string' && a.startsWith('/'))).toBe(true);
        }
        typed(() => parseReleaseAnswer(value));
        const rollout = typed(() => parseRolloutAnswer(value));
        if (rollout && !rollout.ok) expect(typeof rollout.error).toBe('string');
        const named = typed(() => parsePeersAnswer(value));
        if (named) expect(named.every((p) => typeof p.id === 'string' && p.addrs.length <= 2 && p.addrs.every((a) => a.startsWith('/')))).toBe(true);
      }),
      RUNS,
    );
  });

  it('refuses the malformed answers a coordinator or a rollout peer could send, naming what is wrong', () => {
    expect(parseClaimAnswer({ fetcher: PEER, addrs: [ADDR] })).toEqual({ id: PEER, addrs: [ADDR] });
    expect(parseClaimAnswer({ fetcher: PEER, addrs: [] })).toEqual({ id: PEER, addrs: [] });
    const bad: Array<[unknown, RegExp]> = [
      [null, /claim answer: want a JSON object/],
      [[PEER], /claim answer: want a JSON object/],
      [{ addrs: [ADDR] }, /fetcher: want a peer id/],
      [{ fetcher: 'not-a-peer', addrs: [] }, /fetcher: not a peer id/],
      [{ fetcher: 'x'.repeat(500), addrs: [] }, /fetcher: want a peer id/],
      [{ fetcher: PEER }, /addrs: want a list/],
      [{ fetcher: PEER, addrs: [7] }, /addrs: want strings/],
      [{ fetcher: PEER, addrs: ['tcp/1'] }, /addrs: not a multiaddr/],
      [{ fetcher: PEER, addrs: [''] }, /addrs: not a multiaddr/],
      [{ fetcher: PEER, addrs: Array(257).fill(ADDR) }, /addrs: want a list of at most 256/],
    ];
    for (const [answer, why] of bad) expect(() => parseClaimAnswer(answer)).toThrow(why);
    for (const answer of bad.map(([a]) => a)) expect(() => parseClaimAnswer(answer)).toThrow(FrameError);
    expect(() => parseReleaseAnswer({ ok: true })).not.toThrow();
    expect(() => parseReleaseAnswer({ ok: 'yes' })).toThrow(FrameError);
    expect(() => parseReleaseAnswer(null)).toThrow(FrameError);
    expect(parseRolloutAnswer({ ok: true })).toEqual({ ok: true });
    expect(parseRolloutAnswer({ ok: false, error: 'bad rollout id' })).toEqual({ ok: false, error: 'bad rollout id' });
    expect(parseRolloutAnswer({ ok: false, error: 'x'.repeat(10_000) })).toEqual({ ok: false, error: 'x'.repeat(500) });
    expect(() => parseRolloutAnswer(null)).toThrow(FrameError);
    expect(() => parseRolloutAnswer({})).toThrow(/want "ok" true or false/);
    expect(parsePeersAnswer({ ok: true, peers: [{ id: PEER, addrs: [ADDR] }, { id: PEER }] })).toEqual([{ id: PEER, addrs: [ADDR] }, { id: PEER, addrs: [] }]);
    expect(parsePeersAnswer({ ok: false, error: 'unknown message type' })).toEqual([]); // a node of an older version
    const badPeers: Array<[unknown, RegExp]> = [
      [{ ok: true }, /a list of at most 100 peers/],
      [{ ok: true, peers: Array(101).fill({ id: PEER }) }, /a list of at most 100 peers/],
      [{ ok: true, peers: [PEER] }, /peers answer entry: want a JSON object/],
      [{ ok: true, peers: [{ id: 'not-a-peer' }] }, /peers answer id: not a peer id/],
      [{ ok: true, peers: [{ id: PEER, addrs: Array(3).fill(ADDR) }] }, /addrs: want a list of at most 2/],
      [{ ok: true, peers: [{ id: PEER, addrs: ['tcp/1'] }] }, /addrs: not a multiaddr/],
    ];
    for (const [answer, why] of badPeers) expect(() => parsePeersAnswer(answer)).toThrow(why);
    // What a node answers fits in the line an asker reads (16 KiB), and parses, however many peers it has.
    const many = Array.from({ length: 300 }, () => ({ id: PEER, addrs: [ADDR.padEnd(900, '/tcp/1'), ADDR] }));
    const fitted = fitPeersAnswer(many);
    expect(fitted.length).toBeGreaterThan(5);
    expect(Buffer.byteLength(JSON.stringify({ ok: true, peers: fitted }))).toBeLessThanOrEqual(14 * 1024);
    expect(parsePeersAnswer({ ok: true, peers: fitPeersAnswer(Array(300).fill({ id: PEER, addrs: [ADDR] })) })).toHaveLength(100);
  });

  it("a claim question's failed peers are a list of strings, heeded up to 64", () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseClaimQuestion({ digest: d })).toEqual({ kind: 'claim', digest: d, failed: [] });
    expect(parseClaimQuestion({ digest: d, failed: ['a', 'b'] })).toEqual({ kind: 'claim', digest: d, failed: ['a', 'b'] });
    const many = parseClaimQuestion({ digest: d, failed: Array.from({ length: 100 }, (_, i) => `p${i}`) });
    expect(many.kind === 'claim' && many.failed).toEqual(Array.from({ length: 64 }, (_, i) => `p${i}`));
    expect(() => parseClaimQuestion({ digest: d, failed: 'a' })).toThrow(/failed: want a list/);
    expect(() => parseClaimQuestion({ digest: d, failed: [1] })).toThrow(/failed: want strings/);
  });

  it("a rollout's spec and progress are checked with an Error naming the field, never a TypeError", () => {
    const spec = fc.record(
      { id: fc.oneof(fc.uuid(), anyValue), origin: anyValue, createdAt: anyValue, platform: fc.oneof(fc.constant('linux/amd64'), anyValue), registry: fc.oneof(fc.constant('seed:5000'), anyValue), repository: fc.oneof(fc.constant('a/b'), anyValue), reference: fc.oneof(fc.constant('v1'), digest, anyValue), originAddrs: anyValue, expected: anyValue },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(spec, anyValue), fc.oneof(spec, anyValue), (s, p) => {
        for (const parse of [() => specFrom(s), () => progressFrom(p, 'peer')]) {
          try {
            parse();
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
            expect(err).not.toBeInstanceOf(TypeError);
            expect(err).not.toBeInstanceOf(RangeError);
          }
        }
      }),
      RUNS,
    );
  });
});
