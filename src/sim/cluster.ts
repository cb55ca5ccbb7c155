// The simulated network and hosts: links with a rate each way, CPU (one pool shared by every host, as on
// this box, or cores per host), and byte streams between hosts. A blob is cut into streams (one per stripe;
// one for a whole blob); a host holds a prefix of each, and a transfer moves bytes of one stream from one
// host to another from the receiver's offset on. Time moves in small steps (a fluid model): each step the
// transfers' rates are shared out max-min fair (fair-share.ts) and the bytes moved. A relay sends only what
// it has received, less a pipeline lag (the chunk it is still reading), so a chain of hosts moves a blob
// with a lag per hop, as the daemon's streams do. Between steps the virtual clock's timers run (the
// policies' decisions, crashes, detections); with nothing moving, time jumps to the next timer.
import type { CpuCost } from './cpu-cost.js';
import { FairShare, type FairFlow } from './fair-share.js';
import type { VirtualClock } from './virtual-clock.js';

export interface HostLink {
  /** Bits per second each way. */
  upBits: number;
  downBits: number;
}

export interface ClusterSettings {
  stepMs: number;
  /** Bytes a relay holds before it passes them on (the chunk it reads), per hop. */
  relayLagBytes: number;
  /** One way, per hop: a transfer's first byte comes a round trip after it is asked for. */
  latencyMs: number;
  /** Headers on the wire over payload (TCP/IP: ~4.5% as tbf counts them). */
  overhead: number;
  /** Payload a link carries at best over its rate less headers (TCP's own losses: fitted, ~0.96 here). */
  linkEfficiency: number;
  /** A peer stream (libp2p) reaches at most this share of its path's payload rate (fitted against the seed's HTTP). */
  peerEfficiency: number;
  /** 'pool': every host (and the seed) shares `cores`; 'host': each has its own `cores`. */
  cpu: 'pool' | 'host';
  cores: number;
  costs: CpuCost;
  /** How long the receivers of a crashed host's transfers take to notice (a reset: ~0; a dead machine: the idle timeout). */
  crashDetectMs: number;
}

export interface Transfer extends FairFlow {
  readonly src: number;
  readonly dst: number;
  readonly stream: number;
  /** The receiver's offset in the stream. */
  pos: number;
  /** Bytes per second this transfer never passes (a peer stream's efficiency). */
  readonly most: number;
  closed: boolean;
  active: boolean;
  /** The receiver holds the whole stream. */
  onDone?: () => void;
  /** The sender was found dead (after crashDetectMs). */
  onBroken?: () => void;
}

/** Host 0 is the seed registry: it holds every stream whole. */
export class Cluster {
  readonly hosts: number;
  readonly alive: boolean[];
  /** Virtual ms each host crashed at (undefined: alive). */
  readonly crashedAt: Array<number | undefined>;
  readonly uploaded: Float64Array;
  readonly cpuUsed: Float64Array;
  /** Cores each host spends beside its streams now (setBesides: per kind of work, and their sum), and since when that was last charged. */
  private readonly besidesBy = new Map<string, Float64Array>();
  private readonly besides: Float64Array;
  private readonly besidesSince: Float64Array;
  /** Steps run. */
  steps = 0;
  private readonly received: Float64Array;
  private readonly inRate: Float64Array;
  private readonly flows: Transfer[] = [];
  private dirty = true;
  private readonly share: FairShare;
  private readonly cpuOf: (h: number) => number;
  /** Each CPU resource's capacity with nothing beside the transfers (the pool's, or each host's). */
  private readonly caps: Float64Array;
  private readonly cpuFree: Float64Array;

  constructor(
    readonly clock: VirtualClock,
    readonly links: readonly HostLink[],
    /** Size of each stream, in bytes. */
    readonly streamSizes: readonly number[],
    readonly s: ClusterSettings,
  ) {
    const H = (this.hosts = links.length);
    const S = streamSizes.length;
    this.alive = links.map(() => true);
    this.crashedAt = links.map(() => undefined);
    this.uploaded = new Float64Array(H);
    this.cpuUsed = new Float64Array(H);
    this.besides = new Float64Array(H);
    this.besidesSince = new Float64Array(H);
    this.received = new Float64Array(H * S);
    this.inRate = new Float64Array(H * S);
    for (let k = 0; k < S; k++) this.received[k] = streamSizes[k]!;
    const payload = (bits: number) => this.payload(bits);
    const caps = new Float64Array(2 * H + (s.cpu === 'pool' ? 1 : H));
    links.forEach((l, h) => {
      caps[2 * h] = payload(l.upBits);
      caps[2 * h + 1] = payload(l.downBits);
    });
    const idle = s.costs.s.idleCores;
    if (s.cpu === 'pool') caps[2 * H] = Math.max(0.01, s.cores - idle * (H - 1));
    else for (let h = 0; h < H; h++) caps[2 * H + h] = Math.max(0.01, s.cores - (h === 0 ? 0 : idle));
    this.cpuOf = s.cpu === 'pool' ? () => 2 * H : (h) => 2 * H + h;
    this.caps = caps;
    this.cpuFree = caps.slice(2 * H);
    this.share = new FairShare(caps);
  }

  /**
   * CPU that work beside the byte streams takes from `host` from now on (cores; messages, say): in one
   * pool it is taken from the pool. Charged to the host as it runs, like the streams' CPU.
   */
  setBesides(host: number, cores: number, kind = 'messages'): void {
    this.chargeBesides(host);
    let of = this.besidesBy.get(kind);
    if (!of) this.besidesBy.set(kind, (of = new Float64Array(this.hosts)));
    this.besides[host]! += cores - of[host]!;
    of[host] = cores;
    cores = this.besides[host]!;
    const H = this.hosts;
    if (this.s.cpu === 'pool') {
      let sum = 0;
      for (const c of this.besides) sum += c;
      this.caps[2 * H] = Math.max(0.01, this.cpuFree[0]! - sum);
    } else this.caps[2 * H + host] = Math.max(0.01, this.cpuFree[host]! - cores);
  }

  /** The pool's cores (or, per host, `host`'s) left to the streams after every kind of work beside them but `kind`. */
  freeCores(kind: string, host = 0): number {
    const H = this.hosts;
    const of = this.besidesBy.get(kind);
    if (this.s.cpu === 'pool') {
      let other = 0;
      for (let h = 0; h < H; h++) other += this.besides[h]! - (of?.[h] ?? 0);
      return Math.max(0, this.cpuFree[0]! - other);
    }
    return Math.max(0, this.cpuFree[host]! - (this.besides[host]! - (of?.[host] ?? 0)));
  }

  /** Transfers moving bytes now. */
  get activeTransfers(): number {
    let n = 0;
    for (const t of this.flows) if (!t.closed) n++;
    return n;
  }

  /** Payload bytes per second a link of `bits` carries. */
  payload(bits: number): number {
    return (bits / 8 / (1 + this.s.overhead)) * this.s.linkEfficiency;
  }

  has(host: number, stream: number): number {
    return this.received[host * this.streamSizes.length + stream]!;
  }

  complete(host: number, stream: number): boolean {
    return this.has(host, stream) >= this.streamSizes[stream]!;
  }

  /** Bytes of `stream` from `src` to `dst`, from what dst holds on; the first byte a round trip later. */
  open(src: number, dst: number, stream: number): Transfer {
    const path = this.payload(Math.min(this.links[src]!.upBits, this.links[dst]!.downBits));
    const most = src === 0 ? Infinity : this.s.peerEfficiency * path;
    const t: Transfer = { src, dst, stream, pos: this.has(dst, stream), closed: false, active: false, uses: this.usesOf(src, dst), cap: 0, rate: 0, most };
    this.clock.after(2 * this.s.latencyMs, () => {
      if (t.closed || !this.alive[dst]) return;
      // A sender dead already is found out as one that dies mid-way.
      if (!this.alive[src]) this.clock.after(this.s.crashDetectMs, () => this.breakOff(t));
      t.active = true;
      this.flows.push(t);
      this.dirty = true;
    });
    return t;
  }

  close(t: Transfer): void {
    if (t.closed) return;
    t.closed = true;
    if (t.active) this.dirty = true;
  }

  /** The host stops: what it sends stalls until its receivers notice; what it receives ends. */
  crash(host: number): void {
    this.alive[host] = false;
    this.crashedAt[host] = this.clock.now();
    for (const t of this.flows) {
      if (t.dst === host) this.close(t);
      else if (t.src === host) this.clock.after(this.s.crashDetectMs, () => this.breakOff(t));
    }
  }

  /** Steps until `finished` says so or `limitMs` of virtual time passed. */
  async run(finished: () => boolean, limitMs: number): Promise<void> {
    try {
      await this.stepUntil(finished, limitMs);
    } finally {
      for (let h = 0; h < this.hosts; h++) this.chargeBesides(h);
    }
  }

  private async stepUntil(finished: () => boolean, limitMs: number): Promise<void> {
    const dt = this.s.stepMs;
    while (!finished() && this.clock.now() < limitMs) {
      if (this.clock.nextAt() <= this.clock.now()) await this.clock.run({ until: this.clock.now() });
      if (finished()) return;
      const moved = this.step(dt / 1000);
      this.steps++;
      const next = this.clock.now() + dt;
      // Nothing moves until some timer changes that: jump to it.
      if (!moved && this.clock.nextAt() > next) {
        if (this.clock.nextAt() === Infinity) return;
        await this.clock.run({ until: this.clock.nextAt() });
        continue;
      }
      if (this.clock.nextAt() <= next) await this.clock.run({ until: next });
      this.clock.advance(next);
    }
  }

  /** What `host` spent beside its streams since this was last charged. */
  private chargeBesides(host: number): void {
    const now = this.clock.now();
    this.cpuUsed[host]! += (this.besides[host]! * (now - this.besidesSince[host]!)) / 1000;
    this.besidesSince[host] = now;
  }

  private breakOff(t: Transfer): void {
    if (t.closed) return;
    this.close(t);
    t.onBroken?.();
  }

  private usesOf(src: number, dst: number): Transfer['uses'] {
    const fromSeed = src === 0;
    const bits = Math.min(this.links[src]!.upBits, this.links[dst]!.downBits);
    const send = this.s.costs.send(fromSeed, bits);
    const recv = this.s.costs.recv(fromSeed, bits);
    const uses = [
      { resource: 2 * src, weight: 1 },
      { resource: 2 * dst + 1, weight: 1 },
    ];
    const cs = this.cpuOf(src);
    const cd = this.cpuOf(dst);
    if (cs === cd) uses.push({ resource: cs, weight: send + recv });
    else uses.push({ resource: cs, weight: send }, { resource: cd, weight: recv });
    return uses;
  }

  /** One step of `dt` seconds: rates, then bytes. False when no byte moved. */
  private step(dt: number): boolean {
    if (this.dirty) this.prune();
    const S = this.streamSizes.length;
    for (const t of this.flows) t.cap = this.capOf(t, dt);
    this.share.allocate(this.flows);
    const nextIn = new Float64Array(this.inRate.length);
    for (const t of this.flows) nextIn[t.dst * S + t.stream] = t.rate;
    let moved = false;
    const done: Transfer[] = [];
    const sent = this.flows.map((t) => this.bytesOf(t, dt, nextIn));
    this.flows.forEach((t, i) => {
      const bytes = sent[i]!;
      if (bytes <= 0) return;
      moved = true;
      t.pos += bytes;
      this.received[t.dst * S + t.stream] = t.pos;
      this.uploaded[t.src]! += bytes;
      for (const u of t.uses) if (u.resource >= 2 * this.hosts) this.chargeCpu(t, u.resource, u.weight * bytes);
      if (t.pos >= this.streamSizes[t.stream]! - 1e-6) done.push(t);
    });
    this.inRate.set(nextIn);
    for (const t of done) {
      this.received[t.dst * S + t.stream] = this.streamSizes[t.stream]!;
      this.close(t);
      t.onDone?.();
    }
    return moved;
  }

  /** The most a transfer may move this step: what the sender holds beyond the receiver, less the relay's lag, plus what flows in. */
  private capOf(t: Transfer, dt: number): number {
    if (!this.alive[t.src]) return 0;
    return Math.min(t.most, this.relayCap(t, dt));
  }

  private relayCap(t: Transfer, dt: number): number {
    const size = this.streamSizes[t.stream]!;
    const S = this.streamSizes.length;
    const held = this.received[t.src * S + t.stream]!;
    if (held >= size) return Infinity;
    const ahead = Math.max(0, held - this.s.relayLagBytes - t.pos);
    return ahead / dt + this.inRate[t.src * S + t.stream]!;
  }

  /** Bytes moved: the rate's, never past the stream's end nor past what the sender holds by the step's end. */
  private bytesOf(t: Transfer, dt: number, nextIn: Float64Array): number {
    const S = this.streamSizes.length;
    const size = this.streamSizes[t.stream]!;
    const held = this.received[t.src * S + t.stream]!;
    const limit = held >= size ? size : held + nextIn[t.src * S + t.stream]! * dt;
    return Math.max(0, Math.min(t.rate * dt, size - t.pos, limit - t.pos));
  }

  private chargeCpu(t: Transfer, resource: number, seconds: number): void {
    if (this.s.cpu === 'host') this.cpuUsed[resource - 2 * this.hosts]! += seconds;
    else {
      // One pool: split between sender and receiver in proportion to their costs.
      const bits = Math.min(this.links[t.src]!.upBits, this.links[t.dst]!.downBits);
      const send = this.s.costs.send(t.src === 0, bits);
      const recv = this.s.costs.recv(t.src === 0, bits);
      this.cpuUsed[t.src]! += (seconds * send) / (send + recv);
      this.cpuUsed[t.dst]! += (seconds * recv) / (send + recv);
    }
  }

  private prune(): void {
    const open = this.flows.filter((t) => !t.closed);
    this.flows.length = 0;
    this.flows.push(...open);
    this.share.index(this.flows);
    this.dirty = false;
  }
}
