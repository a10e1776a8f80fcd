/**
 * npm run demo — spoolq doing a real job on disk (./spool-data):
 *
 *   50,000 jobs of six kinds are added in bulk: emails and thumbnails, reports of which some fail once and are
 *   retried with exponential backoff, webhooks of which some always fail and end in a dead-letter queue, reminders
 *   delayed by a second or two, and high-priority alerts added last that jump the line. A pool of 2 worker_threads
 *   × 50 processes them with a live progress line, and the run ends with a summary.
 *
 * `node dist/examples/demo.js --log` runs the earlier demo of the storage engine alone (kill -9, recovery,
 * compaction): see examples/log-demo.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Queue, Worker, type JobsOptions } from '../lib/index.js';

const DIR = path.resolve('spool-data');
const TOTAL = 50_000;
const KINDS = ['email', 'email', 'email', 'thumbnail', 'report', 'webhook', 'reminder'] as const;

function jobFor(i: number): { name: string; data: object; opts?: JobsOptions } {
  const name = KINDS[i % KINDS.length]!;
  switch (name) {
    case 'report':
      return { name, data: { n: i, flaky: i % 5 === 4 }, opts: { attempts: 3, backoff: { type: 'exponential', delay: 100 }, priority: 5 } };
    case 'webhook':
      return {
        name,
        data: { n: i, broken: i % 50 === 5, invalid: i % 500 === 12 },
        opts: { attempts: 3, backoff: { type: 'fixed', delay: 200 }, deadLetter: 'demo-dead', priority: 5 },
      };
    case 'reminder':
      return { name, data: { n: i }, opts: { delay: 1000 + (i % 1000), priority: 5 } };
    default:
      return { name, data: { n: i }, opts: { priority: 5, removeOnComplete: 10_000 } };
  }
}

async function main(): Promise<void> {
  fs.rmSync(DIR, { recursive: true, force: true });
  console.log(`spoolq demo — node ${process.version}, ${process.platform}; data in ${path.relative(process.cwd(), DIR)}/\n`);
  const queue = new Queue('demo', { dir: DIR, durability: 'batch' });

  let t = performance.now();
  for (let i = 0; i < TOTAL - 100; i += 5_000) {
    await queue.addBulk(Array.from({ length: Math.min(5_000, TOTAL - 100 - i) }, (_, k) => jobFor(i + k)));
  }
  await queue.addBulk(Array.from({ length: 100 }, (_, k) => ({ name: 'alert', data: { n: k }, opts: { priority: 0 } })));
  const addSecs = (performance.now() - t) / 1000;
  console.log(`added ${TOTAL.toLocaleString()} jobs with addBulk in ${addSecs.toFixed(2)} s (${Math.round(TOTAL / addSecs).toLocaleString()} jobs/s)`);

  const processor = new URL('./processors/demo.js', import.meta.url);
  const worker = new Worker('demo', processor, { dir: DIR, durability: 'batch', threads: 2, concurrency: 50 });
  let completed = 0;
  let failedAttempts = 0;
  let firstAlertAt = 0;
  let firstEmailAt = 0;
  worker.on('completed', (job) => {
    completed++;
    if (job.name === 'alert' && !firstAlertAt) firstAlertAt = completed;
    if (job.name === 'email' && !firstEmailAt) firstEmailAt = completed;
  });
  worker.on('failed', () => failedAttempts++);
  worker.on('error', (err) => console.error('worker error:', err.message));

  t = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(async () => {
      const c = await queue.getJobCounts();
      const secs = (performance.now() - t) / 1000;
      const line = `processing  done ${completed.toLocaleString().padStart(6)}  active ${String(c.active).padStart(3)}  ` +
        `waiting ${String(c.waiting).padStart(6)}  delayed ${String(c.delayed).padStart(5)}  failed ${c.failed}  ` +
        `${Math.round(completed / secs).toLocaleString()} jobs/s`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K`);
      if (c.waiting + c.delayed + c.active === 0) {
        clearInterval(timer);
        if (process.stdout.isTTY) process.stdout.write('\n');
        resolve();
      }
    }, 200);
  });
  const secs = (performance.now() - t) / 1000;
  await worker.close();

  const counts = await queue.getJobCounts();
  // The owner of 'demo' opened its dead-letter queue with its own durability: a handle here must agree.
  const dead = new Queue('demo-dead', { dir: DIR, durability: 'batch' });
  const deadJobs = await dead.getJobs(['waiting'], 0, 2, true);
  const deadCount = (await dead.getJobCounts()).waiting;
  const failed = await queue.getJobs(['failed'], 0, 0);
  console.log(`\nprocessed ${completed.toLocaleString()} jobs in ${secs.toFixed(2)} s: ${Math.round(completed / secs).toLocaleString()} jobs/s ` +
    `(2 threads × 50, durability batch); ${failedAttempts} failed attempts along the way`);
  console.log(`alerts added last started first: the first alert completed as job #${firstAlertAt}, the first email as #${firstEmailAt}`);
  console.log(`counts: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}  ` +
    `(removeOnComplete: 10,000 on emails and thumbnails keeps the newest 10,000 completed)`);
  console.log(`dead-letter queue 'demo-dead': ${deadCount} webhooks that failed for good (3 attempts, or an UnrecoverableError at once), e.g. ${deadJobs.map((j) => j.id).join(', ')}`);
  if (failed[0]) console.log(`failed set (the queue's own dead letters): ${counts.failed}, e.g. job ${failed[0].id}: "${failed[0].failedReason}"`);
  console.log(`\nall of it is in ${path.relative(process.cwd(), DIR)}/demo — try: npx spoolq stats spool-data/demo`);
  await dead.close();
  await queue.close();
}

if (process.argv.includes('--log')) await import('./log-demo.js');
else await main();
