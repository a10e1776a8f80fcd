/**
 * Child process of queue-events.ts: a QueueEvents on the benchmark's queue in a process of its own. For each
 * 'waiting' event it writes `<jobId> <time>` to stdout, the time in ms since the epoch from performance.timeOrigin
 * + performance.now() (the clock the parent stamps its adds with). Prints `ready` once reading has begun.
 *
 * argv: <dir>
 */
import * as fs from 'node:fs';
import { QueueEvents } from '../lib/index.js';
import { QUEUE_NAME } from './queue-common.js';

const qe = new QueueEvents(QUEUE_NAME, { dir: process.argv[2]! });
qe.on('waiting', ({ jobId }) => {
  fs.writeSync(1, `${jobId} ${(performance.timeOrigin + performance.now()).toFixed(4)}\n`);
});
qe.on('error', (err) => {
  fs.writeSync(2, `${err.message}\n`);
  process.exit(1);
});
await qe.waitUntilReady();
fs.writeSync(1, 'ready\n');
process.on('disconnect', () => void qe.close());
