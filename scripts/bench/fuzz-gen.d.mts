// Types for fuzz-gen.mjs, so the TypeScript integration test drives the same generators as the benchmark
// (the module stays plain Node: the benchmark runs with nothing but `node`).
import type { Libp2p } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Agent, IncomingHttpHeaders } from 'node:http';
import type { Arbitrary } from 'fast-check';

export declare const KNOWN: {
  repo: string;
  tag: string;
  config: Buffer;
  layer: Buffer;
  manifest: Buffer;
  manifestDoc: Record<string, unknown>;
  configDigest: string;
  layerDigest: string;
  manifestDigest: string;
};
export declare const SEED_NAME: string;

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}
export interface FuzzResponse {
  status?: number;
  headers?: IncomingHttpHeaders;
  body?: Buffer;
  hang?: boolean;
  error?: string;
}
export type HttpCase = { kind: 'http'; steps: FuzzRequest[] } | { kind: 'raw'; text: string; body: Buffer; upload: boolean };
export interface FrameCase {
  protocol: 'blob' | 'claim' | 'rollout';
  chunks: Buffer[];
  end: 'close' | 'abort' | 'stall';
}
export type Protocols = Record<FrameCase['protocol'], string>;

export declare const httpCase: Arbitrary<HttpCase>;
export declare const frameCase: Arbitrary<FrameCase>;

export declare function pushKnown(baseUrl: string): Promise<void>;
export declare function send(baseUrl: string, req: FuzzRequest, deadlineMs: number, agent?: Agent): Promise<FuzzResponse>;
export declare function isOciErrorBody(body: Buffer): boolean;
export declare function judge(req: FuzzRequest, res: FuzzResponse): string | undefined;
export declare function sampleBatches<T>(arb: Arbitrary<T>, seed: number, batchSize?: number): Generator<T>;

export interface Violation {
  problem: string;
  [key: string]: unknown;
}
export interface HttpStats {
  requests: number;
  cases: number;
  statuses: Record<string, number>;
  fiveXX: number;
  hangs: number;
  badBodies: number;
  closedWithoutAnswer: number;
  clientRefused: number;
  crashed: boolean;
  violations: Violation[];
}
export declare function fuzzHttp(opts: {
  baseUrl: string;
  count: number;
  seed: number;
  concurrency?: number;
  deadlineMs?: number;
  alive?: () => boolean;
  /** Checked before each case: true ends the run early. */
  stop?: () => boolean;
  onProgress?: (stats: HttpStats) => void;
}): Promise<HttpStats>;

export interface FrameStats {
  frames: number;
  outcomes: Record<string, number>;
  hangs: number;
  badAnswers: number;
  crashed: boolean;
  violations: Violation[];
}
export interface FrameOutcome {
  outcome: 'answered' | 'closed' | 'reset' | 'sent' | 'hang' | 'dial-failed';
  answer?: string;
  bytes?: number;
  error?: string;
}
export declare function sendFrame(libp2p: Libp2p, target: Multiaddr, protocols: Protocols, c: FrameCase, deadlineMs: number): Promise<FrameOutcome>;
export declare function judgeFrame(c: FrameCase, r: FrameOutcome): string | undefined;
export declare function blobStillServed(libp2p: Libp2p, target: Multiaddr, protocols: Protocols, deadlineMs?: number): Promise<boolean>;
export declare function fuzzPeers(opts: {
  libp2p: Libp2p;
  target: Multiaddr;
  protocols: Protocols;
  count: number;
  seed: number;
  concurrency?: number;
  deadlineMs?: number;
  alive?: () => boolean;
  stop?: () => boolean;
}): Promise<FrameStats>;
