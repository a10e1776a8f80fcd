/**
 * Processing in worker_threads: the processor is a module (a path or URL), run by a pool of threads, each with
 * `concurrency` jobs at once. A thread that crashes is replaced; a job past its timeout is aborted.
 * Run: node dist/examples/worker-threads.js
 */
import { Queue, Worker } from '../lib/index.js';

const dir = './spool-data';
const queue = new Queue('emails', { dir, durability: 'batch' });
await queue.obliterate({ force: true });
await queue.addBulk(Array.from({ length: 2_000 }, (_, i) => ({ name: 'send', data: { to: `user${i}@example.com` }, opts: { timeout: 5_000 } })));

const started = performance.now();
const worker = new Worker('emails', new URL('./processors/send-email.js', import.meta.url), {
  dir,
  durability: 'batch',
  threads: 2,
  concurrency: 50,
});
let done = 0;
worker.on('completed', () => void done++);
await new Promise<void>((resolve) => worker.on('drained', resolve));
console.log(`${done} emails sent by 2 threads × 50 in ${Math.round(performance.now() - started)} ms`);
const sample = await queue.getJobs(['completed'], 0, 0);
console.log('one result:', sample[0]?.returnvalue);
await worker.close();
await queue.close();
