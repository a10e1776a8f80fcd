/**
 * Quickstart: a queue and a worker in one process, on a directory. Run: node dist/examples/quickstart.js
 */
import { Queue, Worker } from '../lib/index.js';

const dir = './spool-data';
const queue = new Queue('quickstart', { dir });

const worker = new Worker(
  'quickstart',
  async (job) => {
    await job.updateProgress(50);
    return `hello, ${(job.data as { to: string }).to}`;
  },
  { dir, concurrency: 4 },
);
worker.on('completed', (job, result) => console.log(`job ${job.id} (${job.name}) completed: ${String(result)}`));

await queue.obliterate({ force: true }); // start clean each run
await queue.add('greet', { to: 'Ada' });
await queue.add('greet', { to: 'Grace' }, { priority: 1 });
await queue.add('greet', { to: 'Linus' }, { delay: 500 });

await new Promise<void>((resolve) => worker.on('drained', resolve));
await new Promise((r) => setTimeout(r, 700)); // the delayed one
console.log(await queue.getJobCounts());
await worker.close();
await queue.close();
