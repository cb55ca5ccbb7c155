// The loggers libp2p's components write their debug lines to: one shared no-op unless DEBUG is set. libp2p's
// default makes a new logger for every stream it opens or accepts, and for each step of it (the muxer's stream,
// multistream-select's handling), even with every name disabled: two `debug` instances, a trace logger and their
// closures each time. On a rollout's origin, which accepts a stream for every node's progress report, these were
// the largest part of what outlived young-generation collections (~2 of 5 MiB sampled, a loopback run of 8
// reports a second) and so waited in the old generation for a full collection. With DEBUG set (e.g.
// `DEBUG=libp2p:*`) libp2p gets its usual loggers and their lines, as before.
import type { ComponentLogger, Logger } from '@libp2p/interface';

const nothing = (): void => undefined;

const QUIET: Logger = Object.assign((() => undefined) as (formatter: unknown, ...args: unknown[]) => void, {
  enabled: false,
  error: nothing,
  trace: nothing,
  newScope: (): Logger => QUIET,
});

/** The component logger for libp2p: undefined (libp2p's own, logging as DEBUG says) when `debug` names anything. */
export function quietLogger(debug = process.env.DEBUG): ComponentLogger | undefined {
  if (debug !== undefined && debug.trim() !== '') return undefined;
  return { forComponent: () => QUIET };
}
