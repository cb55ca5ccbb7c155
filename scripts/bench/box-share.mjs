// How much of this shared box a set of hosts gets, measured two ways for the simulator's calibration (README
// "Cluster scale"): the simulator takes the CPU pool the hosts had as an input, and that input must not be
// read off the run it predicts (the hosts' CPU over the makespan would make a CPU-bound makespan agree by
// construction).
//
// - probePool: fixed in advance, outside the measured run. For `ms`, `n` busy loops, each in its own session
//   as each netns host is (spawned detached: with autogroup scheduling on, the kernel shares the cores
//   between sessions, so n sessions compete with the rest of the box as the n hosts do), and the CPU they got
//   per second. Run just before and just after the rollout; the mean is the pool.
// - windowShare: during the run, from /proc/stat: what everything else on the box took (the box's busy time
//   less the hosts', the seed's and this bench's own) and what the hosts had left (the cores less that).
//   On a saturated box that is the hosts' CPU over the makespan again, so it is a cross-check, not an input.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The box's busy and idle CPU seconds so far, all cores (/proc/stat's first line). */
export function boxCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: (user + nice + system + irq + softirq + steal) / CLK_TCK, idle: (idle + iowait) / CLK_TCK };
}

/** CPU seconds of a process (all threads), or 0 once it is gone. */
function pidCpu(pid, withChildren = false) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (f[11] + f[12] + (withChildren ? f[13] + f[14] : 0)) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** The cores `n` CPU-hungry sessions get on this box over `ms`, as it is loaded now. */
export async function probePool(n, ms) {
  const kids = Array.from({ length: n }, () => spawn('/bin/sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: true }));
  try {
    await new Promise((res) => setTimeout(res, 200)); // every loop started
    const before = kids.map((k) => pidCpu(k.pid));
    const t0 = performance.now();
    await new Promise((res) => setTimeout(res, ms));
    const seconds = (performance.now() - t0) / 1000;
    const got = kids.reduce((s, k, i) => s + pidCpu(k.pid) - before[i], 0);
    return { cores: got / seconds, seconds };
  } finally {
    for (const k of kids) {
      try {
        process.kill(-k.pid, 'SIGKILL'); // its own process group (detached)
      } catch {
        /* gone */
      }
    }
  }
}

/**
 * Starts a window over the box's CPU; the function returned ends it: the box's busy and idle seconds, the
 * hosts', the seed's, this bench's (with the children it reaped: its HTTP helpers), everything else's, and
 * the cores that left the hosts (and the seed, which the simulator puts in the same pool).
 */
export function windowShare(hostPids, seedPid) {
  const read = () => ({ box: boxCpu(), hosts: hostPids.reduce((s, p) => s + pidCpu(p), 0), seed: pidCpu(seedPid), self: pidCpu(process.pid, true), at: performance.now() });
  const a = read();
  return () => {
    const b = read();
    const seconds = (b.at - a.at) / 1000;
    const busy = b.box.busy - a.box.busy;
    const idle = b.box.idle - a.box.idle;
    const hosts = b.hosts - a.hosts;
    const seed = b.seed - a.seed;
    const harness = b.self - a.self;
    const others = Math.max(0, busy - hosts - seed - harness);
    const cores = cpus().length;
    return { seconds, busy, idle, hosts, seed, harness, others, othersCores: others / seconds, leftCores: cores - (others + harness) / seconds };
  };
}
