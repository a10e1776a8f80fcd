/**
 * Child process for queue-events-process.spec.ts: the owner of queue 'q' (batch durability, small segments, frequent
 * checkpoints), with a Worker in the same process. Every 4th job fails its first attempt (attempts: 2), every job
 * reports progress, and returns `r<id>`. Prints `open`, then `ack <id>` for each add.
 *
 * argv: <dir> <jobs> — adds that many jobs, waits until no job is waiting or active, prints `done` and closes;
 * with jobs = 0 it adds forever (until killed).
 */
import * as fs from 'node:fs';
import { Queue, Worker } from '../../../lib/index.js';

const [dir, jobsArg] = process.argv.slice(2);
const jobs = Number(jobsArg);
const opts = { dir: dir!, durability: 'batch' as const, maxSegmentBytes: 32 * 1024, checkpointEvery: 200 };
const queue = new Queue('q', opts);
const worker = new Worker('q', async (job) => {
  await job.updateProgress(1);
  if (Number(job.data) % 4 === 0 && job.attemptsMade === 0) throw new Error('first attempt fails');
  return `r${job.id}`;
}, { ...opts, concurrency: 8 });
worker.on('error', () => undefined);
await queue.waitUntilReady();
fs.writeSync(1, 'open\n');
for (let i = 1; jobs === 0 || i <= jobs; i++) {
  const job = await queue.add('j', i, { attempts: 2 });
  fs.writeSync(1, `ack ${job.id}\n`);
}
for (;;) {
  const c = await queue.getJobCounts('waiting', 'active', 'delayed');
  if (c.waiting === 0 && c.active === 0 && c.delayed === 0) break;
  await new Promise((r) => setTimeout(r, 10));
}
await worker.close();
await queue.close();
fs.writeSync(1, 'done\n');
