/**
 * Retries with backoff, UnrecoverableError, and a dead-letter queue.
 * Run: node dist/examples/retries-and-dead-letters.js
 */
import { Queue, UnrecoverableError, Worker } from '../lib/index.js';

const dir = './spool-data';
const queue = new Queue('payments', { dir });
const dead = new Queue('payments-dead', { dir });
await queue.obliterate({ force: true });
await dead.obliterate({ force: true });

const opts = { attempts: 4, backoff: { type: 'exponential', delay: 50 }, deadLetter: 'payments-dead' };
await queue.add('charge', { card: 'ok', failTimes: 2 }, opts); // fails twice, then succeeds
await queue.add('charge', { card: 'declined' }, opts); // fails for good at once
await queue.add('charge', { card: 'flaky', failTimes: 99 }, opts); // fails 4 times, then goes to payments-dead

const worker = new Worker(
  'payments',
  async (job) => {
    const d = job.data as { card: string; failTimes?: number };
    if (d.card === 'declined') throw new UnrecoverableError('card declined: retrying will not help');
    if (job.attemptsMade < (d.failTimes ?? 0)) throw new Error(`gateway timeout (attempt ${job.attemptsMade + 1})`);
    return 'charged';
  },
  { dir },
);
worker.on('failed', (job, err) => console.log(`job ${job.id} ${(job.data as { card: string }).card}: attempt ${job.attemptsMade} failed: ${err.message}`));
worker.on('completed', (job) => console.log(`job ${job.id} ${(job.data as { card: string }).card}: completed after ${job.attemptsMade} attempts`));

await new Promise<void>((resolve) => {
  const check = setInterval(async () => {
    const c = await queue.getJobCounts();
    if (c.waiting + c.delayed + c.active === 0 && (await dead.getJobCounts()).waiting === 2) {
      clearInterval(check);
      resolve();
    }
  }, 50);
});
for (const job of await dead.getJobs(['waiting'], 0, -1, true)) console.log(`dead letter ${job.id}: ${JSON.stringify(job.data)}`);
await worker.close();
await dead.close();
await queue.close();
