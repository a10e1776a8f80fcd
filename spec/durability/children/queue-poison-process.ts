/**
 * Child process for queue-poison-process.spec.ts: an inline Worker (concurrency 1) on a queue the parent filled
 * with a backlog of short jobs ({ i }), so that it claims ahead (lookahead, worker.ts). One job (data.poison) ends
 * the process from its processor: mode 'exit' calls process.exit(1); mode 'spin' blocks the event loop for good
 * (`for (;;) {}`) and the parent kills it -9 once it said so. Every line goes to stdout with one synchronous write,
 * so every line the parent reads happened before the end:
 *
 *   start <id> <attemptsMade>   the processor was entered
 *   poison <id>                 the poison job is about to end the process (exit) or to spin (spin)
 *   final                       every job is final; the child then closes and exits 0
 *
 * argv: <dir> <mode: exit | spin>
 */
import * as fs from 'node:fs';
import { Queue, Worker } from '../../../lib/index.js';
import { exitOnWorkerError, untilDrained } from './drain.js';

const [dir, mode] = process.argv.slice(2);
const note = (line: string): void => void fs.writeSync(1, `${line}\n`);
const OPTS = { durability: 'batch' } as const;

const queue = new Queue('q', { dir: dir!, ...OPTS });
const worker = new Worker(
  'q',
  async (job) => {
    note(`start ${job.id} ${job.attemptsMade}`);
    if ((job.data as { poison?: boolean }).poison) {
      note(`poison ${job.id}`);
      if (mode === 'exit') process.exit(1);
      for (;;) {
        // blocks the event loop until the parent kills the process
      }
    }
    let x = 0;
    for (let k = 0; k < 2_000; k++) x += k; // a short job, so that the worker claims ahead
    return x;
  },
  { dir: dir!, ...OPTS, concurrency: 1 },
);
exitOnWorkerError(worker);
await untilDrained(queue, 5);
note('final');
await worker.close();
await queue.close();
