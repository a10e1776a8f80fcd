/**
 * A processor module for worker_threads: its default export runs each job, on a thread of the pool.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export default async function sendEmail(job: { id: string; data: { to: string } }, _token: string, signal: AbortSignal) {
  await sleep(5, undefined, { signal }); // pretend to talk to an SMTP server; honours timeouts
  return { to: job.data.to, messageId: `<${job.id}@example.com>` };
}
