/**
 * What the worker children share: a Worker error ends the child with code 2 (the parent reads stderr), and the
 * child runs until its queue has nothing waiting, paused, delayed or active, polled every `everyMs` (the parent
 * bounds the child's whole life; nothing here measures time).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue, Worker } from '../../../lib/index.js';

export function exitOnWorkerError(worker: Worker): void {
  worker.on('error', (err) => {
    process.stderr.write(`worker error: ${err.stack}\n`);
    process.exit(2);
  });
}

export async function untilDrained(queue: Queue, everyMs: number): Promise<void> {
  for (;;) {
    const c = await queue.getJobCounts();
    if (c.waiting === 0 && c.paused === 0 && c.delayed === 0 && c.active === 0) return;
    await sleep(everyMs);
  }
}
