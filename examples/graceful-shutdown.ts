/**
 * Graceful shutdown on SIGINT / SIGTERM: stop claiming, let running jobs finish (up to closeTimeoutMs), hand the
 * rest back without counting an attempt, checkpoint, release the lock. A running Worker keeps the process alive
 * (waiting for more work once the queue is empty) until it is closed. Run it and press Ctrl-C, or:
 *   node dist/examples/graceful-shutdown.js --self-test   (sends itself SIGTERM after a moment)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from '../lib/index.js';

const dir = './spool-data';
const queue = new Queue('videos', { dir });
await queue.obliterate({ force: true });
await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'encode', data: { video: i } })));

const worker = new Worker(
  'videos',
  async (job, _token, signal) => {
    await sleep(300, undefined, { signal });
    return `encoded ${(job.data as { video: number }).video}`;
  },
  { dir, concurrency: 2, closeTimeoutMs: 10_000 },
);
worker.on('completed', (job) => console.log(`finished ${job.id}`));
worker.on('drained', () => console.log('queue empty: waiting for more work; press Ctrl-C to stop'));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${sig}: finishing running jobs, handing the rest back…`);
    await worker.close();
    const c = await queue.getJobCounts();
    console.log(`closed cleanly: ${c.completed} done, ${c.waiting} waiting for next time, ${c.active} active`);
    await queue.close();
    process.exit(0);
  });
}

if (process.argv.includes('--self-test')) setTimeout(() => process.kill(process.pid, 'SIGTERM'), 1_000);
else console.log('processing; press Ctrl-C to stop');
