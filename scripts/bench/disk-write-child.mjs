#!/usr/bin/env node
// p2p-transfer's `disk-write` reference, in a process of its own: writes BYTES to a new FILE in 256 KiB writes
// through the threadpool (as layerd's store writer does), fdatasyncs it (as a commit does), deletes it and prints
// {"ms", "bytes", "cpuSec"}: cpuSec counts every thread but the event loop, i.e. the threadpool's writes (the
// kernel's copies into the page cache). Each write is of a buffer just made and filled, as B writes bytes just
// received (a buffer written again and again costs a third as much: it stays in the CPU's cache); making and
// filling it stands for receiving it, which the receiver's own CPU counts.
//
//   node scripts/bench/disk-write-child.mjs FILE BYTES
import { open, rm } from 'node:fs/promises';
import { mainThreadCpuSeconds, procCpuSeconds } from './lib.mjs';

const CHUNK = 256 * 1024;
const [file, bytesText] = process.argv.slice(2);
const bytes = Number(bytesText);
if (!file || !(bytes > 0)) {
  console.error('usage: disk-write-child.mjs FILE BYTES');
  process.exit(2);
}

const poolSec = () => procCpuSeconds(process.pid) - mainThreadCpuSeconds(process.pid);
const fh = await open(file, 'w');
const pool0 = poolSec();
const t0 = performance.now();
for (let pos = 0; pos < bytes; pos += CHUNK) {
  const n = Math.min(CHUNK, bytes - pos);
  const buf = Buffer.allocUnsafe(n);
  buf.fill(pos & 255);
  for (let done = 0; done < n; ) done += (await fh.write(buf, done, n - done, pos + done)).bytesWritten;
}
await fh.datasync();
const ms = performance.now() - t0;
const cpuSec = poolSec() - pool0;
await fh.close();
await rm(file);
process.stdout.write(JSON.stringify({ ms, bytes, cpuSec }) + '\n');
