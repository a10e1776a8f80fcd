/**
 * The demo's processor, run in worker_threads: one handler per job name. Failures are decided by the job's data,
 * so every run of the demo ends the same way.
 */
import { createHash } from 'node:crypto';
import { UnrecoverableError } from '../../lib/index.js';

interface DemoJob {
  name: string;
  data: { n: number; flaky?: boolean; broken?: boolean; invalid?: boolean };
  attemptsMade: number;
  updateProgress(p: number): Promise<void>;
}

export default {
  // Fast jobs: most of the queue.
  async email(job: DemoJob) {
    return { sent: `user${job.data.n}@example.com` };
  },
  // A little CPU work, the kind you move to threads.
  async thumbnail(job: DemoJob) {
    let h = Buffer.from(String(job.data.n));
    for (let i = 0; i < 20; i++) h = createHash('sha256').update(h).digest();
    return h.toString('hex').slice(0, 12);
  },
  // Fails on its first attempt when flaky, then succeeds: retried with exponential backoff.
  async report(job: DemoJob) {
    if (job.data.flaky && job.attemptsMade === 0) throw new Error('upstream timed out (first attempt)');
    await job.updateProgress(100);
    return { rows: job.data.n % 1000 };
  },
  // Always fails when broken: ends in the dead-letter queue after its attempts.
  async webhook(job: DemoJob) {
    if (job.data.invalid) throw new UnrecoverableError('payload rejected: no point retrying');
    if (job.data.broken) throw new Error('HTTP 503 from the receiver');
    return 'delivered';
  },
  async reminder() {
    return 'reminded';
  },
  async alert() {
    return 'paged';
  },
};
