// The node's lifecycle: its subsystems' services, started one after another in the order the node
// declares them, and stopped in the reverse order, so nothing stops while something started after it
// (and maybe using it) still runs.

/** A part of the node that runs: its start acquires what it holds (a socket, a timer, a protocol), its stop lets go. */
export interface Service {
  /** For the log, and for the error a failed start is reported with. */
  readonly name: string;
  /** Absent: nothing to start (the service only has something to let go of). A start that fails cleans up after itself. */
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

export interface Lifecycle {
  /** Stops every started service, last started first; rejects with the first failure once all were tried. */
  stop(): Promise<void>;
}

/** What a stop that failed is told to, so stopping goes on with the rest. */
export type StopFailed = (service: string, err: unknown) => void;

/**
 * Starts `services` in order. If one fails, those started before it are stopped (in reverse) and the
 * start rejects with the original cause, so a node that fails half way leaves nothing running.
 */
export async function startInOrder(services: readonly Service[], stopFailed: StopFailed): Promise<Lifecycle> {
  const started: Service[] = [];
  for (const service of services) {
    try {
      await service.start?.();
    } catch (err) {
      await stopAll(started, stopFailed).catch(() => undefined);
      throw err;
    }
    started.push(service);
  }
  let stopping: Promise<void> | undefined;
  return { stop: () => (stopping ??= stopAll(started, stopFailed)) };
}

async function stopAll(started: readonly Service[], stopFailed: StopFailed): Promise<void> {
  let first: { err: unknown } | undefined;
  for (const service of [...started].reverse()) {
    try {
      await service.stop?.();
    } catch (err) {
      stopFailed(service.name, err);
      first ??= { err };
    }
  }
  if (first) throw first.err;
}
