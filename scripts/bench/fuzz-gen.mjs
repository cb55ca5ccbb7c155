// Generators and drivers for fuzzing a running layerd node: HTTP requests over every route family (and raw
// TCP for what an HTTP client library would refuse to send), and frames on layerd's own libp2p protocols.
// Shared by the benchmark (scripts/bench/fuzz.mjs, plain node) and the integration test
// (test/integration/fuzz.test.ts, vitest), so both run the very same cases; types in fuzz-gen.d.mts.
//
// Cases come from fast-check arbitraries sampled in batches: batch b of a run with seed s is
// fc.sample(arbitrary, {seed: s ^ (b+1)·0x9e3779b1}), so a seed replays a run's cases exactly (their outcomes can still
// differ, since cases run concurrently against a node whose state they change).
//
// What counts as a violation: a 5xx; a 4xx on /v2 without the OCI error body; an answer that does not
// arrive within the deadline (a hang); a peer stream that neither answers, closes nor resets in time.
import fc from 'fast-check';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

// ------------------------------------------------------------------ content the node and the seed hold

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A small image at a fixed digest (same bytes every run, so cases replay): pushed before fuzzing. */
export const KNOWN = (() => {
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const layer = Buffer.from('layerd fuzz layer: '.repeat(200));
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  };
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  return { repo: 'fuzz/known', tag: 'v1', config, layer, manifestDoc, manifest, configDigest: sha256(config), layerDigest: sha256(layer), manifestDigest: sha256(manifest) };
})();

/** The name the node is configured to call its seed registry by (`--upstream seed.fuzz=URL`). */
export const SEED_NAME = 'seed.fuzz';

/** Pushes KNOWN to a registry at `baseUrl` (the node itself, or its seed). */
export async function pushKnown(baseUrl) {
  for (const blob of [KNOWN.config, KNOWN.layer]) {
    // POST then PUT: CNCF distribution has no single-request upload.
    const started = await send(baseUrl, { method: 'POST', path: `/v2/${KNOWN.repo}/blobs/uploads/`, headers: {} }, 30_000);
    const location = new URL(String(started.headers?.location), baseUrl);
    location.searchParams.set('digest', sha256(blob));
    const res = await send(baseUrl, { method: 'PUT', path: `${location.pathname}${location.search}`, headers: { 'content-type': 'application/octet-stream' }, body: blob }, 30_000);
    if (res.status !== 201) throw new Error(`push of ${sha256(blob)} to ${baseUrl}: ${res.status} ${res.body?.toString().slice(0, 200)}`);
  }
  const res = await send(baseUrl, { method: 'PUT', path: `/v2/${KNOWN.repo}/manifests/${KNOWN.tag}`, headers: { 'content-type': KNOWN.manifestDoc.mediaType }, body: KNOWN.manifest }, 30_000);
  if (res.status !== 201) throw new Error(`manifest push to ${baseUrl}: ${res.status} ${res.body.toString().slice(0, 200)}`);
}

// ------------------------------------------------------------------ HTTP case generators

const hexOf = (bytes) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const sha256Hex = hexOf(32);
const sha512Hex = hexOf(64);

const repoName = fc.oneof(
  { weight: 6, arbitrary: fc.constant(KNOWN.repo) },
  { weight: 3, arbitrary: fc.constantFrom('fuzz/other', 'fuzz/new', 'library/alpine', 'a', 'a.b/c_d/e--f', 'fuzz/known/sub') },
  {
    weight: 3,
    arbitrary: fc.constantFrom('Fuzz/Known', '..', 'a/../b', '%2e%2e/x', 'a//b', '-a', 'a-', '_', 'a/', '/a', 'a%2fb', 'a b', 'a\tb', 'ü/x', 'x'.repeat(300), `${'a/'.repeat(130)}a`, '', '.', 'a/./b', '%00', 'a%ZZ'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

const digest = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(KNOWN.layerDigest, KNOWN.configDigest, KNOWN.manifestDigest) },
  { weight: 3, arbitrary: sha256Hex.map((h) => `sha256:${h}`) },
  { weight: 1, arbitrary: sha512Hex.map((h) => `sha512:${h}`) },
  { weight: 1, arbitrary: fc.constantFrom(KNOWN.layerDigest.toUpperCase(), KNOWN.layerDigest.replace('sha256', 'SHA256'), `md5:${'0'.repeat(32)}`, `sha384:${'0'.repeat(96)}`, `blake3:${'0'.repeat(64)}`, `sha256+b64:${'A'.repeat(43)}=`) },
  { weight: 1, arbitrary: fc.constantFrom('sha256:', 'sha256:abc', `sha256:${'g'.repeat(64)}`, `sha256:${'0'.repeat(65)}`, `sha512:${'0'.repeat(64)}`, ':', 'sha256', `sha256::${'0'.repeat(64)}`, `sha256:${'0'.repeat(300)}`, `${'a'.repeat(300)}:0`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
);

const tag = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(KNOWN.tag, 'latest', 'v2', 'missing') },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}$/) },
  { weight: 1, arbitrary: fc.constantFrom('-bad', '.bad', 'x'.repeat(129), 'a b', 'ä', '', 'a/b', '%2e') },
);
const reference = fc.oneof(tag, digest);

const queryValue = fc.oneof(
  fc.constantFrom('', '0', '1', '2', '10', '-1', '1e3', '0x10', '99999999999', '999999999', '1.5', 'abc', ' 1', '%00', '%ZZ', 'a&b', 'x'.repeat(3000)),
  fc.nat().map(String),
  fc.string({ maxLength: 30 }),
);
const nsValue = fc.constantFrom(SEED_NAME, SEED_NAME, 'docker.io', 'unknown.example', 'UPPER.example', 'bad name', 'a:99999999', '[::1]:5000', '', '%ZZ');

/** a=b pairs, some repeated, some without a value. */
function query(keys) {
  return fc.array(fc.tuple(fc.constantFrom(...keys, 'x'), queryValue, fc.boolean()), { maxLength: 4 }).map((pairs) => {
    const text = pairs.map(([k, v, bare]) => (bare && v === '' ? k : `${k}=${escapeQuery(v)}`)).join('&');
    return text === '' ? '' : `?${text}`;
  });
}
const escapeQuery = (v) => v.replace(/[^\x21-\x7e]|[#&]/g, (c) => encodeURIComponent(c));

const oddHeaders = fc.dictionary(
  fc.constantFrom('accept', 'accept-encoding', 'authorization', 'cookie', 'x-forwarded-for', 'user-agent', 'if-none-match', 'range', 'content-encoding', 'expect', 'x-odd'),
  fc.oneof(fc.constantFrom('', '*/*', 'gzip', 'Bearer x', 'x'.repeat(8000), '"etag"', 'bytes=0-0', 'application/vnd.oci.image.manifest.v1+json, */*;q=0.1'), fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''))),
  { maxKeys: 3 },
);

const rangeHeader = fc.oneof(
  fc.tuple(fc.oneof(fc.nat(5000).map(String), fc.constant(''), fc.constant('99999999999999999999999')), fc.oneof(fc.nat(5000).map(String), fc.constant(''), fc.constant('18446744073709551616'))).map(([a, b]) => `bytes=${a}-${b}`),
  fc.constantFrom('bytes=0-0', 'bytes=-1', 'bytes=-0', 'bytes=0-', 'bytes=5-2', 'bytes=0-1,3-4', 'bytes=', 'bytes=-', 'bytes=a-b', 'items=0-1', 'BYTES = 1-2', 'bytes=-99999999999999999999', 'bytes=1-2-3', 'bytes 0-1/10'),
  fc.string({ maxLength: 20 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
);

/** A descriptor, right or wrong in every field a parser reads. */
const descriptor = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: KNOWN.layerDigest, size: KNOWN.layer.length }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        mediaType: fc.oneof(fc.constantFrom('application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.config.v1+json', '', 'application/vnd.oci.image.layer.nondistributable.v1.tar'), fc.jsonValue()),
        digest: fc.oneof(digest, fc.jsonValue()),
        size: fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, 1e308, 2 ** 53, '12', null)),
        platform: fc.oneof(fc.record({ os: fc.constantFrom('linux', 'windows'), architecture: fc.constantFrom('amd64', 'arm64') }), fc.jsonValue()),
        annotations: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })), fc.jsonValue()),
        urls: fc.jsonValue(),
        artifactType: fc.jsonValue(),
      },
      { requiredKeys: [] },
    ),
  },
);

const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  docker: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
};

/** Manifest bodies: valid ones (pushable: they reference KNOWN), mutated ones, and ones that are not even JSON. */
const manifestBody = fc.oneof(
  { weight: 40, arbitrary: fc.constant(KNOWN.manifest) },
  {
    weight: 120,
    arbitrary: fc
      .record(
        {
          schemaVersion: fc.oneof({ weight: 5, arbitrary: fc.constant(2) }, fc.constantFrom(1, 3, '2', 2.5, null, 1e400)),
          mediaType: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(MT.manifest, MT.index, MT.docker, MT.list) }, fc.constantFrom('application/vnd.docker.distribution.manifest.v1+json', 'text/plain', '', 42, null)),
          config: fc.oneof({ weight: 3, arbitrary: fc.constant(KNOWN.manifestDoc.config) }, descriptor, fc.jsonValue()),
          layers: fc.oneof({ weight: 3, arbitrary: fc.array(descriptor, { maxLength: 4 }) }, fc.jsonValue()),
          manifests: fc.oneof(fc.array(fc.oneof(fc.constant({ mediaType: MT.manifest, digest: KNOWN.manifestDigest, size: KNOWN.manifest.length }), descriptor), { maxLength: 4 }), fc.jsonValue()),
          subject: fc.oneof(fc.constant({ mediaType: MT.manifest, digest: KNOWN.manifestDigest, size: KNOWN.manifest.length }), descriptor, fc.jsonValue()),
          annotations: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })), fc.jsonValue()),
          artifactType: fc.oneof(fc.constant('application/x.fuzz'), fc.jsonValue()),
        },
        { requiredKeys: [] },
      )
      .map((doc) => Buffer.from(JSON.stringify(doc))),
  },
  { weight: 20, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  {
    weight: 20,
    arbitrary: fc.constantFrom(
      '',
      '{',
      'null',
      '[]',
      '"x"',
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"x":1e99999}',
      '{"schemaVersion":2,"layers":[],"config":{"mediaType":"a","digest":"sha256:' + '0'.repeat(64) + '","size":123456789012345678901234567890}}',
      '\u00ff\u00fe{}',
      '{"__proto__":{"x":1},"schemaVersion":2,"manifests":[]}',
      '{"constructor":{"prototype":{"polluted":true}},"schemaVersion":2,"manifests":[]}',
    ),
  },
  // deep nesting, in a field no parser reads and in one they do
  { weight: 20, arbitrary: fc.tuple(fc.integer({ min: 1_000, max: 400_000 }), fc.constantFrom('x', 'manifests', 'annotations', 'platform')).map(([d, field]) => deepManifest(d, field)) },
  // past the 4 MiB limit: rare, they are big
  { weight: 1, arbitrary: fc.constant('big').map(() => Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)) },
);

function deepManifest(depth, field) {
  const nest = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const inner = field === 'manifests' ? `[{"mediaType":"${MT.manifest}","digest":"${KNOWN.manifestDigest}","size":${KNOWN.manifest.length},"platform":${nest}}]` : nest;
  const doc = field === 'x' || field === 'manifests' ? `{"schemaVersion":2,"mediaType":"${MT.index}","manifests":${field === 'manifests' ? inner : '[]'},"x":${inner}}` : `{"schemaVersion":2,"mediaType":"${MT.index}","manifests":[],"${field}":${nest}}`;
  return Buffer.from(doc);
}

const manifestContentType = fc.option(fc.constantFrom(MT.manifest, MT.index, MT.docker, MT.list, 'application/json', `${MT.manifest}; charset=utf-8`, 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'text/plain', ';', 'application/vnd.oci.image.manifest.v1+json, application/json'), { nil: undefined });

const blobBody = fc.oneof(fc.constant(KNOWN.layer), fc.constant(KNOWN.config), fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)), fc.constant(Buffer.alloc(0)));
const contentRangeFor = (len) =>
  fc.oneof(
    fc.constant(`0-${Math.max(0, len - 1)}`),
    fc.tuple(fc.nat(5000), fc.nat(5000)).map(([a, b]) => `${a}-${b}`),
    fc.constantFrom('', 'bytes 0-0/*', `bytes 0-${len - 1}/${len}`, '0-', '-1', 'a-b', '5-2', '0-99999999999999999999', '18446744073709551615-18446744073709551616', ' 0-0 '),
  );
const digestQuery = fc.oneof(digest.map((d) => `?digest=${escapeQuery(d)}`), fc.constantFrom('', '?digest=', '?digest', `?digest=${KNOWN.layerDigest}&digest=${KNOWN.configDigest}`));

/** One HTTP request: method, raw path (sent byte for byte), headers, optional body. */
const step = (method, path, headers = {}, body) => ({ method, path, headers, ...(body !== undefined ? { body } : {}) });

const routeCase = fc.oneof(
  // /v2/ itself
  { weight: 20, arbitrary: fc.tuple(fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'PUT', 'OPTIONS'), fc.constantFrom('/v2/', '/v2', '/v2//', '/v2/?x=1')).map(([m, p]) => [step(m, p)]) },
  // listings
  { weight: 40, arbitrary: fc.tuple(fc.constantFrom('GET', 'HEAD', 'POST'), query(['n', 'last'])).map(([m, q]) => [step(m, `/v2/_catalog${q}`)]) },
  { weight: 40, arbitrary: fc.tuple(repoName, query(['n', 'last'])).map(([r, q]) => [step('GET', `/v2/${r}/tags/list${q}`)]) },
  // manifests
  {
    weight: 100,
    arbitrary: fc.tuple(fc.constantFrom('GET', 'GET', 'HEAD', 'DELETE'), repoName, reference, query(['ns']), fc.option(nsValue, { nil: undefined }), oddHeaders).map(([m, r, ref, q, ns, h]) => [step(m, `/v2/${r}/manifests/${ref}${ns !== undefined ? `?ns=${escapeQuery(ns)}` : q}`, h)]),
  },
  { weight: 100, arbitrary: fc.tuple(repoName, reference, manifestBody, manifestContentType).map(([r, ref, body, type]) => [step('PUT', `/v2/${r}/manifests/${ref}`, type === undefined ? {} : { 'content-type': type }, body)]) },
  // blobs
  {
    weight: 100,
    arbitrary: fc.tuple(fc.constantFrom('GET', 'GET', 'HEAD', 'DELETE'), repoName, digest, fc.option(rangeHeader, { nil: undefined }), fc.option(nsValue, { nil: undefined })).map(([m, r, d, range, ns]) => [step(m, `/v2/${r}/blobs/${d}${ns !== undefined ? `?ns=${escapeQuery(ns)}` : ''}`, range === undefined ? {} : { range })]),
  },
  { weight: 20, arbitrary: fc.tuple(repoName, digest, query(['artifactType'])).map(([r, d, q]) => [step('GET', `/v2/${r}/referrers/${d}${q}`)]) },
  // monolithic upload and mount
  { weight: 40, arbitrary: fc.tuple(repoName, digestQuery, blobBody).map(([r, q, body]) => [step('POST', `/v2/${r}/blobs/uploads/${q}`, { 'content-type': 'application/octet-stream' }, body)]) },
  { weight: 20, arbitrary: fc.tuple(repoName, digest, fc.oneof(repoName, fc.constant(KNOWN.repo))).map(([r, d, from]) => [step('POST', `/v2/${r}/blobs/uploads/?mount=${escapeQuery(d)}&from=${escapeQuery(from)}`)]) },
  // upload sessions: POST, then chunks, then a PUT or a DELETE, on the session's own URL or a bogus one
  {
    weight: 120,
    arbitrary: fc
      .tuple(
        repoName,
        fc.array(fc.tuple(blobBody, fc.option(fc.nat(), { nil: undefined })).chain(([body, seedN]) => fc.tuple(fc.constant(body), fc.option(contentRangeFor(body.length), { nil: undefined }), fc.constant(seedN))), { maxLength: 3 }),
        fc.constantFrom('put', 'put-body', 'delete', 'status', 'none'),
        digestQuery,
        fc.oneof({ weight: 5, arbitrary: fc.constant('{upload}') }, fc.constantFrom('bogus', '..', '%2e%2e', '%2F', 'x'.repeat(300)), fc.uuid().map((u) => `/v2/${KNOWN.repo}/blobs/uploads/${u}`)),
        fc.boolean(),
      )
      .map(([r, chunks, finish, dq, target, chunkedEncoding]) => {
        const url = target.startsWith('/') ? target : target === '{upload}' ? '{upload}' : `/v2/${r}/blobs/uploads/${target}`;
        const steps = [step('POST', `/v2/${r}/blobs/uploads/`)];
        for (const [body, range] of chunks) {
          const headers = { 'content-type': 'application/octet-stream' };
          if (range !== undefined) headers['content-range'] = range;
          if (chunkedEncoding) headers['transfer-encoding'] = 'chunked';
          steps.push(step('PATCH', url, headers, body));
        }
        const joiner = (u) => (u.includes('?') ? '&' : '?');
        if (finish === 'put') steps.push(step('PUT', `${url}${dq === '' ? '' : joiner(url) + dq.slice(1)}`));
        if (finish === 'put-body') steps.push(step('PUT', `${url}${dq === '' ? '' : joiner(url) + dq.slice(1)}`, { 'content-type': 'application/octet-stream' }, KNOWN.config));
        if (finish === 'delete') steps.push(step('DELETE', url));
        if (finish === 'status') steps.push(step('GET', url));
        return steps;
      }),
  },
  // the node's own API and pages
  {
    weight: 60,
    arbitrary: fc
      .tuple(
        fc.constantFrom('/api/status', '/api/images', '/api/blobs', '/api/pulls', '/api/rollouts', '/api/rollouts/x', `/api/rollouts/${randomUUID()}`, '/api/rollouts/%ZZ', '/api/nope', '/api/', '/metrics', '/healthz', '/readyz', '/', '/dashboard.js', '/dashboard.css', '/favicon.ico', '/v1/', '/v3/x', '//v2/', '/%00'),
        fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'DELETE'),
        query(['x', 'format']),
      )
      .map(([p, m, q]) => [step(m, `${p}${q}`)]),
  },
  {
    weight: 20,
    arbitrary: fc
      .oneof(
        fc.constantFrom('', '{', '[]', 'null', '{"image":1}', '{"image":"a","platform":5}', '{"image":"UPPER"}', '{"image":"seed.fuzz/fuzz/known:v1","platform":"linux"}', '{"image":"seed.fuzz/fuzz/known:v1","platform":"linux/amd64"}', '{"image":"' + 'x'.repeat(2000) + '"}'),
        fc.record({ image: fc.oneof(fc.string(), fc.constant(`${SEED_NAME}/${KNOWN.repo}:${KNOWN.tag}`)), platform: fc.oneof(fc.constantFrom('linux/amd64', 'linux/arm/v7', 'x', ''), fc.jsonValue()) }, { requiredKeys: [] }).map((d) => JSON.stringify(d)),
      )
      .map((body) => [step('POST', '/api/rollouts', { 'content-type': 'application/json' }, Buffer.from(body))]),
  },
  // rarely: a garbage collection while everything else runs
  { weight: 1, arbitrary: fc.constant([step('POST', '/api/gc', { 'content-type': 'application/json' })]) },
  // any path at all
  { weight: 20, arbitrary: fc.tuple(fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE'), fc.string({ maxLength: 60 })).map(([m, p]) => [step(m, `/v2/${p}`)]) },
);

/** Raw bytes for what an HTTP library will not send: broken request lines, headers and bodies. */
const rawCase = fc.oneof(
  fc.constantFrom(
    'GARBAGE\r\n\r\n',
    'GET\r\n\r\n',
    'GET /v2/ HTTP/9.9\r\nHost: localhost\r\n\r\n',
    'GET /v2/ HTTP/1.1\r\n\r\n',
    'GET /v2/ HTTP/1.0\r\n\r\n',
    'get /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'PROPFIND /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'TRACE /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'CONNECT /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'BREW /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET /v2/a b/tags/list HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET /v2/\x00/tags/list HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET * HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET http://x/v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET /v2/ HTTP/1.1\r\nHost: localhost\r\nbad header line\r\n\r\n',
    'GET /v2/ HTTP/1.1\r\nHost: localhost\r\n folded: continuation\r\n\r\n',
    'GET /v2/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n',
    'GET /v2/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n',
    'POST /v2/fuzz/known/blobs/uploads/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    'POST /v2/fuzz/known/blobs/uploads/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST /v2/fuzz/known/blobs/uploads/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    'POST /v2/fuzz/known/blobs/uploads/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    'POST /v2/fuzz/known/blobs/uploads/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab',
    'PUT /v2/fuzz/known/manifests/v9 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 99999999999999999999\r\n\r\n{}',
    'PUT /v2/fuzz/known/manifests/v9 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\n\r\n{"schemaVersion":2',
    'GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\nGET /v2/_catalog HTTP/1.1\r\nHost: localhost\r\n\r\nGARBAGE\r\n\r\n',
    '\r\n\r\n\r\n',
    '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03',
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  ),
  // a request line or headers past the parser's limits
  fc.constantFrom(`GET /v2/${'a'.repeat(70_000)}/tags/list HTTP/1.1\r\nHost: localhost\r\n\r\n`, `GET /v2/ HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, `GET /v2/ HTTP/1.1\r\nHost: localhost\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: y`).join('\r\n')}\r\n\r\n`),
  // bytes of any kind
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  // a valid start, then cut anywhere
  fc.tuple(fc.constantFrom(`PUT /v2/fuzz/known/manifests/cut HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${MT.manifest}\r\nContent-Length: ${KNOWN.manifest.length}\r\n\r\n${KNOWN.manifest}`, `GET /v2/${KNOWN.repo}/blobs/${KNOWN.layerDigest} HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n\r\n`), fc.nat()).map(([text, at]) => text.slice(0, at % text.length)),
);

/** Content-Length that does not match the body: the client half-closes, or sends more than it said. */
const lengthMismatch = fc
  .tuple(
    fc.constantFrom(
      (r) => ({ line: `POST /v2/${r}/blobs/uploads/?digest=${KNOWN.layerDigest}`, body: KNOWN.layer }),
      (r) => ({ line: `PUT /v2/${r}/manifests/lm`, body: KNOWN.manifest, type: MT.manifest }),
      () => ({ line: `PATCH {upload}`, body: KNOWN.config }),
      () => ({ line: `PUT {upload}?digest=${KNOWN.configDigest}`, body: KNOWN.config }),
      () => ({ line: 'POST /api/rollouts', body: Buffer.from('{"image":"x"}'), type: 'application/json' }),
    ),
    fc.constantFrom(KNOWN.repo, 'fuzz/other'),
    fc.integer({ min: -50, max: 5000 }),
    fc.nat(),
  )
  .map(([make, repo, delta, cut]) => {
    const { line, body, type } = make(repo);
    const declared = Math.max(0, body.length + (delta === 0 ? 1 : delta));
    const sent = delta < 0 ? body : body.subarray(0, cut % (body.length + 1));
    const head = `${line} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${type ? `Content-Type: ${type}\r\n` : ''}Content-Length: ${declared}\r\n\r\n`;
    return { text: head, body: sent, upload: line.includes('{upload}') };
  });

/** One case: `{kind: 'http', steps}` sent over a keep-alive connection, or `{kind: 'raw', ...}` on its own socket. */
export const httpCase = fc.oneof(
  { weight: 94, arbitrary: routeCase.map((steps) => ({ kind: 'http', steps })) },
  { weight: 3, arbitrary: rawCase.map((text) => ({ kind: 'raw', text, body: Buffer.alloc(0), upload: false })) },
  { weight: 3, arbitrary: lengthMismatch.map((m) => ({ kind: 'raw', ...m })) },
);

// ------------------------------------------------------------------ sending and judging HTTP

/** Keeps a raw path sendable by node:http (it refuses chars outside \x21-\xff): the rest are percent-encoded. */
function sendablePath(path) {
  return path.replace(/[^\x21-\xff]/gu, (c) => encodeURIComponent(c));
}

/**
 * Sends one request; resolves {status, headers, body} or {error}; never rejects. A request that has no
 * complete answer within `deadlineMs` resolves {hang: true} and its socket is destroyed.
 */
export function send(baseUrl, req, deadlineMs, agent) {
  const url = new URL(baseUrl);
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(v);
    };
    const headers = { ...req.headers };
    const body = req.body;
    if (body !== undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(body.length);
    let r;
    try {
      r = http.request({ host: url.hostname, port: url.port, method: req.method, path: sendablePath(req.path), headers, agent: agent ?? false });
    } catch (err) {
      return finish({ error: `client refused: ${err.message}`, clientRefused: true });
    }
    const timer = setTimeout(() => {
      r.destroy(new Error('deadline'));
      finish({ hang: true });
    }, deadlineMs);
    r.on('response', (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        if (size <= 1 << 20) chunks.push(c);
      });
      res.on('end', () => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (err) => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), cut: err.message }));
      res.on('aborted', () => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), cut: 'aborted' }));
    });
    r.on('error', (err) => finish({ error: err.message }));
    r.end(body);
  });
}

/** Whether a body is the OCI error JSON: {"errors":[{"code","message",...}]}. */
export function isOciErrorBody(body) {
  try {
    const doc = JSON.parse(body.toString('utf8'));
    return Array.isArray(doc.errors) && doc.errors.length > 0 && doc.errors.every((e) => typeof e.code === 'string' && typeof e.message === 'string');
  } catch {
    return false;
  }
}

/** What is wrong with an answer, or undefined. */
export function judge(req, res) {
  if (res.hang) return 'no answer within the deadline';
  if (res.status === undefined) return undefined; // the connection was closed on us: not a 5xx, not a hang
  if (res.status >= 500) return `status ${res.status}`;
  if (res.status >= 400 && req.method !== 'HEAD' && req.path.startsWith('/v2') && !isOciErrorBody(res.body)) return `status ${res.status} without an OCI error body: ${res.body.toString('utf8').slice(0, 120)}`;
  return undefined;
}

/** Runs an http case's steps in order; `{upload}` is the Location the case's POST got (or a bogus one). */
async function runHttpCase(baseUrl, c, deadlineMs, agent, record) {
  let upload = `/v2/${KNOWN.repo}/blobs/uploads/never-started`;
  for (const s of c.steps) {
    const req = { ...s, path: s.path.replace('{upload}', upload) };
    const res = await send(baseUrl, req, deadlineMs, agent);
    record(req, res);
    if (req.method === 'POST' && res.status === 202 && typeof res.headers.location === 'string') upload = new URL(res.headers.location, baseUrl).pathname;
  }
}

/** Writes a raw case on its own socket, half-closes, and collects what comes back until the server closes. */
async function runRawCase(baseUrl, c, deadlineMs, agent, record) {
  const url = new URL(baseUrl);
  let text = c.text;
  if (c.upload) {
    const started = await send(baseUrl, step('POST', `/v2/${KNOWN.repo}/blobs/uploads/`), deadlineMs, agent);
    record({ method: 'POST', path: `/v2/${KNOWN.repo}/blobs/uploads/` }, started);
    const location = typeof started.headers?.location === 'string' ? new URL(started.headers.location, baseUrl).pathname : '/v2/x/blobs/uploads/none';
    text = text.replace('{upload}', location);
  }
  const res = await new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    const chunks = [];
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish({ hang: true, data: Buffer.concat(chunks) }), deadlineMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => finish({ data: Buffer.concat(chunks) }));
    socket.on('close', () => finish({ data: Buffer.concat(chunks) }));
    socket.on('connect', () => {
      socket.write(Buffer.from(text, 'latin1'));
      socket.end(c.body);
    });
  });
  const path = /^[A-Z]+ (\S+)/.exec(text)?.[1] ?? '';
  const responses = parseResponses(res.data);
  if (responses.length === 0) record({ method: 'RAW', path, raw: true }, res.hang ? { hang: true } : { closed: true });
  for (const r of responses) record({ method: 'RAW', path, raw: true }, { ...r, hang: false });
  if (res.hang && responses.length > 0) record({ method: 'RAW', path, raw: true }, { hang: true });
}

/** The responses in a raw byte stream from an HTTP/1.1 server (Content-Length bodies; enough here). */
function parseResponses(data) {
  const out = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = data.subarray(at, end).toString('latin1');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) break;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    out.push({ status: Number(m[1]), headers: {}, body: data.subarray(end + 4, end + 4 + len) });
    at = end + 4 + len;
  }
  return out;
}

/** Samples `arb` lazily, in seeded batches (see the top of this file). */
export function* sampleBatches(arb, seed, batchSize = 200) {
  // Batch seeds spread apart (a golden-ratio step), so runs with nearby seeds share no batch.
  for (let b = 0; ; b++) yield* fc.sample(arb, { seed: (seed ^ Math.imul(b + 1, 0x9e3779b1)) | 0, numRuns: batchSize });
}

/**
 * Runs HTTP cases against `baseUrl` until `count` requests were sent. `alive()` says whether the node's
 * process still runs; a case that finds it dead counts a crash and stops the run.
 */
export async function fuzzHttp({ baseUrl, count, seed, concurrency = 16, deadlineMs = 20_000, alive = () => true, stop = () => false, onProgress }) {
  const stats = { requests: 0, cases: 0, statuses: {}, fiveXX: 0, hangs: 0, badBodies: 0, closedWithoutAnswer: 0, clientRefused: 0, crashed: false, violations: [] };
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const cases = sampleBatches(httpCase, seed);
  const record = (req, res) => {
    stats.requests++;
    if (res.clientRefused) stats.clientRefused++;
    const key = res.hang ? 'hang' : res.status !== undefined ? String(res.status) : 'closed';
    stats.statuses[key] = (stats.statuses[key] ?? 0) + 1;
    if (res.status === undefined && !res.hang) stats.closedWithoutAnswer++;
    const problem = judge(req, res);
    if (!problem) return;
    if (res.hang) stats.hangs++;
    else if (res.status >= 500) stats.fiveXX++;
    else stats.badBodies++;
    if (stats.violations.length < 50) stats.violations.push({ problem, method: req.method, path: req.path.slice(0, 300), headers: Object.fromEntries(Object.entries(req.headers ?? {}).map(([k, v]) => [k, String(v).slice(0, 100)])), body: req.body ? req.body.subarray(0, 300).toString('latin1') : undefined, answer: res.body?.subarray(0, 300).toString('utf8') });
  };
  const worker = async () => {
    while (stats.requests < count && !stats.crashed && !stop()) {
      const c = cases.next().value;
      stats.cases++;
      if (c.kind === 'http') await runHttpCase(baseUrl, c, deadlineMs, agent, record);
      else await runRawCase(baseUrl, c, deadlineMs, agent, record);
      if (!alive()) stats.crashed = true;
      onProgress?.(stats);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return stats;
}

// ------------------------------------------------------------------ peer frames

const anyJson = fc.oneof(fc.jsonValue(), fc.constantFrom(null, -1, 1.5, 1e308, 2 ** 60, '', 'x'.repeat(2000), [], {}));
const offset = fc.oneof(fc.nat(10_000), fc.constantFrom(0, KNOWN.layer.length - 1, KNOWN.layer.length, Number.MAX_SAFE_INTEGER, -1, 1.5, 1e308, '0', null), anyJson);

/** A JSON line a protocol would take, with any field right or wrong. */
const blobFrame = fc.oneof(
  { weight: 3, arbitrary: fc.record({ digest: fc.constantFrom(KNOWN.layerDigest, KNOWN.configDigest) }) },
  { weight: 3, arbitrary: fc.record({ digest: fc.oneof(digest, anyJson), start: offset, end: offset }, { requiredKeys: ['digest'] }) },
  { weight: 1, arbitrary: fc.record({ digest: anyJson, start: anyJson, end: anyJson, extra: anyJson }, { requiredKeys: [] }) },
);
const claimFrame = fc.oneof(
  fc.record({ digest: fc.oneof(digest, anyJson), failed: fc.oneof(fc.array(fc.string({ maxLength: 60 }), { maxLength: 100 }), anyJson), release: fc.oneof(fc.boolean(), anyJson) }, { requiredKeys: ['digest'] }),
  fc.record({ digest: anyJson, failed: anyJson, release: anyJson }, { requiredKeys: [] }),
);
const rolloutSpec = fc.record(
  {
    id: fc.oneof(fc.uuid(), anyJson),
    origin: fc.oneof(fc.constant('12D3KooWNotARealPeerIdNotARealPeerIdNotARealPe'), fc.string({ maxLength: 60 }), anyJson),
    originAddrs: fc.oneof(fc.array(fc.constantFrom('/ip4/127.0.0.1/tcp/1', 'garbage'), { maxLength: 3 }), anyJson),
    createdAt: fc.oneof(fc.nat(), anyJson),
    registry: fc.oneof(fc.constantFrom(SEED_NAME, 'docker.io', 'BAD NAME'), anyJson),
    repository: fc.oneof(fc.constantFrom(KNOWN.repo, 'Bad/Repo', '../x'), anyJson),
    reference: fc.oneof(fc.constantFrom(KNOWN.tag, KNOWN.manifestDigest, 'bad tag', `sha256:${'0'.repeat(64)}`), anyJson),
    platform: fc.oneof(fc.constantFrom('linux/amd64', 'x'), anyJson),
    expected: fc.oneof(fc.array(fc.string({ maxLength: 60 }), { maxLength: 20 }), anyJson),
  },
  { requiredKeys: [] },
);
const rolloutProgress = fc.record(
  {
    rollout: fc.oneof(fc.uuid(), anyJson),
    node: anyJson,
    state: fc.oneof(fc.constantFrom('running', 'done', 'failed'), anyJson),
    blobsTotal: offset,
    blobsDone: offset,
    bytesTotal: offset,
    bytesDone: offset,
    startedAt: offset,
    finishedAt: offset,
    bySource: fc.oneof(fc.record({ local: offset, peer: offset, upstream: offset }), anyJson),
    error: anyJson,
  },
  { requiredKeys: [] },
);
const rolloutFrame = fc.oneof(
  fc.record({ type: fc.constant('offer'), spec: fc.oneof(rolloutSpec, anyJson) }),
  fc.record({ type: fc.constant('report'), progress: fc.oneof(rolloutProgress, anyJson) }),
  fc.record({ type: anyJson, spec: anyJson, progress: anyJson }, { requiredKeys: [] }),
);

const FRAME_OBJECTS = { blob: blobFrame, claim: claimFrame, rollout: rolloutFrame };

/** The bytes of a frame: a JSON line, or one broken in a way a peer could break it. */
function frameBytes(protocol) {
  const line = FRAME_OBJECTS[protocol].map((o) => Buffer.from(`${JSON.stringify(o)}\n`));
  return fc.oneof(
    { weight: 8, arbitrary: line },
    { weight: 1, arbitrary: fc.tuple(line, fc.nat()).map(([b, at]) => b.subarray(0, at % b.length)) }, // truncated: no newline
    { weight: 1, arbitrary: anyJson.map((v) => Buffer.from(`${JSON.stringify(v) ?? ''}\n`)) }, // wrong type altogether
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)) }, // garbage
    { weight: 1, arbitrary: fc.constantFrom(1_100, 17_000, 70_000, 1_000_000).map((n) => Buffer.concat([Buffer.from('{"digest":"'), Buffer.alloc(n, 0x61), Buffer.from('"}\n')])) }, // oversized line
    { weight: 1, arbitrary: fc.constantFrom('\n', '\n\n', '{}\n', '{"digest":"sha256:00"}\n{"digest":"x"}\n', '\u0000\n', '\ufeff{}\n', '{"digest":"' + KNOWN.layerDigest + '"}').map((t) => Buffer.from(t)) },
    { weight: 1, arbitrary: fc.tuple(line, fc.uint8Array({ minLength: 1, maxLength: 2000 })).map(([b, extra]) => Buffer.concat([b, Buffer.from(extra)])) }, // trailing bytes after the line
  );
}

/**
 * One frame case: which protocol, the bytes cut into chunks, and how the sender ends: `close` (half-close,
 * then wait for the answer), `abort` (reset the stream right after sending), `stall` (keep the stream
 * open and send nothing more: the node must time it out).
 */
export const frameCase = fc
  .tuple(fc.constantFrom('blob', 'blob', 'claim', 'rollout'), fc.nat(), fc.oneof({ weight: 40, arbitrary: fc.constant('close') }, { weight: 4, arbitrary: fc.constant('abort') }, { weight: 1, arbitrary: fc.constant('stall') }))
  .chain(([protocol, split, end]) => frameBytes(protocol).map((bytes) => ({ protocol, chunks: splitInto(bytes, split), end })));

function splitInto(bytes, split) {
  const n = 1 + (split % 4);
  if (bytes.length === 0 || n === 1) return [bytes];
  const cuts = [...new Set(Array.from({ length: n - 1 }, (_, i) => ((split >> (i * 3)) * 7919 + i * 131) % bytes.length))].sort((a, b) => a - b);
  const out = [];
  let at = 0;
  for (const c of cuts) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  out.push(bytes.subarray(at));
  return out.filter((b) => b.length > 0);
}

/**
 * Opens a stream for the case and sends it. Resolves the outcome: `answered` (the node sent a line),
 * `closed` (it ended the stream without one), `reset` (the stream was reset), `sent` (an aborted case), or
 * `hang` (none of these within the deadline). `answer` is the first line's text when there was one.
 */
export async function sendFrame(libp2p, target, protocols, c, deadlineMs) {
  let stream;
  try {
    stream = await libp2p.dialProtocol(target, protocols[c.protocol], { signal: AbortSignal.timeout(deadlineMs) });
  } catch (err) {
    return { outcome: 'dial-failed', error: err.message };
  }
  // Read with events, not the stream's async iterator: an iterator made after the remote has closed
  // (a fast answer to a half-closed stream) gets the buffered bytes but never ends (libp2p 3).
  const got = [];
  let size = 0;
  let timer;
  const ended = new Promise((resolve) => {
    stream.addEventListener('message', (evt) => {
      const bytes = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray();
      size += bytes.length;
      if (size <= 1 << 20) got.push(Buffer.from(bytes));
    });
    stream.addEventListener('end', () => resolve('end'));
    stream.addEventListener('close', (evt) => resolve(evt.error ? 'reset' : 'end'));
    timer = setTimeout(() => resolve('hang'), deadlineMs);
  });
  try {
    for (const chunk of c.chunks) if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(deadlineMs) });
    if (c.end === 'abort') {
      stream.abort(new Error('fuzz: aborted on purpose'));
      return { outcome: 'sent' };
    }
    if (c.end === 'close') await stream.close({ signal: AbortSignal.timeout(deadlineMs) });
  } catch (err) {
    // The node closed or reset the stream while we were still sending: an answer of its own.
    if (stream.status === 'open') return { outcome: 'hang', error: err.message };
  }
  const how = await ended;
  clearTimeout(timer);
  // The node has ended its side; end ours too (a stalled sender never closed), or the stream stays
  // open here and counts against this peer's stream limits.
  if (stream.status === 'open') stream.abort(new Error('fuzz: done'));
  if (how === 'hang') return { outcome: 'hang' };
  const data = Buffer.concat(got);
  if (data.length === 0) return { outcome: how === 'reset' ? 'reset' : 'closed' };
  const nl = data.indexOf(0x0a);
  return { outcome: 'answered', answer: data.subarray(0, nl < 0 ? data.length : nl).toString('utf8'), bytes: size };
}

/** What is wrong with a frame's outcome, or undefined: an answer must be one JSON object. */
export function judgeFrame(c, r) {
  if (r.outcome === 'hang') return 'no answer, close or reset within the deadline';
  if (r.outcome === 'dial-failed') return `could not open the stream: ${r.error}`;
  if (r.outcome !== 'answered') return undefined;
  try {
    const doc = JSON.parse(r.answer);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return `answer is not a JSON object: ${r.answer.slice(0, 100)}`;
    if (c.protocol === 'blob' && !['ok', 'not-found', 'busy', 'bad-request', 'error'].includes(doc.status)) return `unknown blob status: ${r.answer.slice(0, 100)}`;
  } catch {
    return `answer is not JSON: ${r.answer.slice(0, 100)}`;
  }
  return undefined;
}

/** Fetches KNOWN.layer over the blob protocol: the node still serves peers. Resolves true when the bytes are right. */
export async function blobStillServed(libp2p, target, protocols, deadlineMs = 20_000) {
  const r = await sendFrame(libp2p, target, protocols, { protocol: 'blob', chunks: [Buffer.from(`${JSON.stringify({ digest: KNOWN.layerDigest })}\n`)], end: 'close' }, deadlineMs);
  if (r.outcome !== 'answered') return false;
  const header = JSON.parse(r.answer);
  return header.status === 'ok' && header.length === KNOWN.layer.length && r.bytes === Buffer.byteLength(r.answer) + 1 + KNOWN.layer.length;
}

/** Sends `count` frame cases, `concurrency` at a time. */
export async function fuzzPeers({ libp2p, target, protocols, count, seed, concurrency = 8, deadlineMs = 30_000, alive = () => true, stop = () => false }) {
  const stats = { frames: 0, outcomes: {}, hangs: 0, badAnswers: 0, crashed: false, violations: [] };
  const cases = sampleBatches(frameCase, seed);
  const worker = async () => {
    while (stats.frames < count && !stats.crashed && !stop()) {
      const c = cases.next().value;
      stats.frames++;
      const r = await sendFrame(libp2p, target, protocols, c, deadlineMs);
      stats.outcomes[r.outcome] = (stats.outcomes[r.outcome] ?? 0) + 1;
      const problem = judgeFrame(c, r);
      if (problem) {
        if (r.outcome === 'hang') stats.hangs++;
        else stats.badAnswers++;
        if (stats.violations.length < 50) stats.violations.push({ problem, protocol: c.protocol, end: c.end, frame: Buffer.concat(c.chunks).subarray(0, 300).toString('latin1') });
      }
      if (!alive()) stats.crashed = true;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return stats;
}
