// The node's /api as a contract, per endpoint: what a request may carry (a JSON schema fastify checks
// before the handler runs, and the type the handler then reads) and what the answer holds. The routes
// answer with these types, the CLI and the tests read answers as them: a field changed here is seen by
// all three at compile time. Types only come from the subsystems; nothing here runs but validation.
import type { FastifyRequest, FastifySchema } from 'fastify';
import type { GcReport, ImageSummary, PullEvent, RolloutView, StatsSnapshot } from '../distribution/index.js';
import { OciError, type Digest, type ErrorCode } from '../oci/index.js';
import type { PeerAccessStatus } from '../p2p/index.js';
import { readBounded } from './body.js';

// ---- Answers -------------------------------------------------------------------------------------

/** Every /api error: the OCI spec's body, as every other error of the node. */
export type ErrorAnswer = ReturnType<OciError['toBody']>;

export interface PeerAnswer {
  id: string;
  addrs: string[];
  /** Bytes this node sent the peer, and fetched from it. */
  uploaded: number;
  downloaded: number;
}

export interface StoreAnswer {
  bytes: number;
  blobs: number;
  /** null: no quota (and then no watermarks). */
  maxBytes: number | null;
  highWatermarkBytes: number | null;
  lowWatermarkBytes: number | null;
  evictions: number;
}

/** GET /api/status. `peerId` is absent with P2P off. */
export interface StatusAnswer extends PeerAccessStatus {
  version: string;
  url: string;
  peerId?: string;
  multiaddrs: string[];
  connectedPeers: number;
  peers: PeerAnswer[];
  upstreams: string[];
  defaultRegistry: string;
  store: StoreAnswer;
  stats: StatsSnapshot;
}

export type ImageAnswer = ImageSummary;
/** GET /api/images */
export interface ImagesAnswer {
  images: ImageAnswer[];
}

/** One blob of the store, most recently used first. */
export interface BlobAnswer {
  digest: Digest;
  size: number;
  /** Where it came from (a Source: local, peer, upstream), or "unknown" when the store never recorded it. */
  source: string;
  /** ISO 8601. */
  lastAccess: string;
}
/** GET /api/blobs (at most 1000) */
export interface BlobsAnswer {
  blobs: BlobAnswer[];
}

export type PullAnswer = PullEvent;
/** GET /api/pulls, newest first. */
export interface PullsAnswer {
  pulls: PullAnswer[];
}

/** POST /api/gc */
export type GcAnswer = GcReport;

/** POST /api/rollouts (202) and GET /api/rollouts/:id */
export type RolloutAnswer = RolloutView;
/** GET /api/rollouts, newest first. */
export interface RolloutsAnswer {
  rollouts: RolloutAnswer[];
}

export interface Check {
  ok: boolean;
  detail?: string;
}
/** GET /healthz (200 ok, 503 fail) and /readyz (200 ready, 503 not-ready). */
export interface ProbeAnswer {
  status: 'ok' | 'fail' | 'ready' | 'not-ready';
  checks: Record<string, Check>;
}

/**
 * An answer as a reader that must tolerate nodes of other versions sees it: any field may be missing,
 * and strings are any string (a newer node may send a state this one does not know). The CLI reads
 * status, images and gc answers this way, so it never breaks on an older or newer node.
 */
export type Loose<T> = T extends string ? string : T extends ReadonlyArray<infer E> ? Array<Loose<E>> : T extends object ? { [K in keyof T]?: Loose<T[K]> } : T;

// ---- Requests ------------------------------------------------------------------------------------

/** The largest request body an /api call reads (413 beyond). */
export const MAX_API_BODY = 64 * 1024;

/** POST /api/rollouts */
export interface RolloutRequest {
  /** [registry/]repository[:tag][@digest] */
  image: string;
  /** os/arch[/variant] of an index; every platform when absent. */
  platform?: string;
}

/** POST /api/gc takes nothing: an empty object (or no body). */
export type GcRequest = Record<never, never>;

/** GET /api/rollouts/:id: an id this node does not know is 404; one over the router's 100 characters, 400. */
export interface RolloutParams {
  id: string;
}

/** A JSON body an /api route reads: its schema, and what a client that got it wrong is told. */
export interface BodySpec {
  /** The OCI code of a bad body (its status is 400). */
  code: ErrorCode;
  /** The shape wanted, for people: the error message ends with it. */
  want: string;
  schema: Record<string, unknown>;
}

export const rolloutBody = {
  code: 'NAME_INVALID',
  want: 'want a JSON body {"image": "registry/repository:tag", "platform"?: "os/arch"}',
  // Unknown fields are refused rather than ignored: `platfrom` would otherwise roll out every platform.
  // 1024 characters is what parseImageReference takes; os/arch/variant is far shorter than 100.
  schema: {
    type: 'object',
    required: ['image'],
    additionalProperties: false,
    properties: {
      image: { type: 'string', minLength: 1, maxLength: 1024 },
      platform: { type: 'string', minLength: 1, maxLength: 100 },
    },
  },
} as const satisfies BodySpec;

export const gcBody = {
  code: 'UNSUPPORTED',
  // A field here is an option this node does not have (a dry run?): refused, not silently ignored.
  want: 'POST /api/gc takes no options: send {} or no body',
  schema: { type: 'object', additionalProperties: false, properties: {} },
} as const satisfies BodySpec;

// Compile-time: each schema names exactly the fields of its request type.
type SchemaKeys<S> = S extends { properties: infer P } ? keyof P : never;
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemasMatch: [SameKeys<SchemaKeys<typeof rolloutBody.schema>, keyof RolloutRequest>, SameKeys<SchemaKeys<typeof gcBody.schema>, keyof GcRequest>] = [true, true];
void schemasMatch;

/** One Ajv error (as fastify hands it over) in words: where, and what was wrong; never the value sent. */
interface SchemaError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

function describe(e: SchemaError): string {
  const where = `body${e.instancePath.replace(/\//g, '.')}`;
  const extra = e.params?.additionalProperty;
  const field = typeof extra === 'string' ? ` (${JSON.stringify(extra.slice(0, 100))})` : '';
  return `${where} ${e.message ?? 'is invalid'}${field}`;
}

/**
 * The route options that make fastify read, parse and check a JSON body before the handler sees it.
 * Bodies stay unparsed streams in this server (server.ts), so the body is read here, bounded: none or
 * an empty one counts as {}; malformed JSON and schema failures are 400 with the spec's `code`.
 */
export function jsonBody(spec: BodySpec): { schema: FastifySchema; preValidation: (request: FastifyRequest) => Promise<void>; schemaErrorFormatter: (errors: SchemaError[]) => Error } {
  const bad = (why: string) => new OciError(spec.code, `${why}; ${spec.want}`, { status: 400 });
  return {
    schema: { body: spec.schema },
    preValidation: async (request) => {
      const text = (await readBounded(request, MAX_API_BODY)).toString('utf8');
      try {
        request.body = text.trim() === '' ? {} : (JSON.parse(text) as unknown);
      } catch {
        throw bad('body is not JSON');
      }
    },
    schemaErrorFormatter: (errors) => bad(errors.length > 0 ? describe(errors[0]!) : 'body is invalid'),
  };
}

/** The schemas of the /api bodies, all of them (a unit test checks each against JSON Schema's meta-schema). */
export const BODY_SCHEMAS = [rolloutBody.schema, gcBody.schema] as const;

/**
 * Ajv as /api wants it (fastify's own defaults coerce `5` into "5" and drop unknown fields silently):
 * a request is checked as sent, or refused. The schemas are not checked against JSON Schema's meta-schema
 * at every start (validateSchema): compiling that meta-schema's validator was most of Ajv's part of a
 * node's start (~0.1 CPU s of it, issue 16), for schemas that are constants checked once by a unit test.
 */
export const STRICT_AJV = { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, validateSchema: false } } as const;
