/**
 * Child process for queue-kill-worker.spec.ts: opens a Queue and an inline Worker on a queue the parent filled,
 * and processes until every job is in a final state, unless it is killed first. It appends to the journal file,
 * each line with one synchronous write (O_APPEND), so every line in the file happened before the kill:
 *
 *   start <id> <attempt> <run>   the processor was entered (before any work)
 *   end <id> <attempt> <run>     the processor is about to return (its result is not logged yet)
 *   done <id> <attempt> <run>    the Worker's 'completed' event: the COMPLETE record is written
 *   final <run>                  every job is completed or failed; the child then closes and exits 0
 *
 * It also prints `start <id>` on stdout, which the parent counts to pick the moment of the kill.
 * argv: <dir> <run> <journal> <concurrency>
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from '../../../lib/index.js';
import { exitOnWorkerError, untilDrained } from './drain.js';

const [dir, runArg, journal, concurrencyArg] = process.argv.slice(2);
const run = Number(runArg);
const fd = fs.openSync(journal!, 'a');
const note = (line: string): void => void fs.writeSync(fd, `${line}\n`);

const QUEUE_OPTS = { durability: 'batch', maxStalledCount: 1_000 } as const;

const queue = new Queue('q', { dir: dir!, ...QUEUE_OPTS });
const worker = new Worker(
  'q',
  async (job) => {
    const attempt = job.attemptsMade + 1;
    note(`start ${job.id} ${attempt} ${run}`);
    fs.writeSync(1, `start ${job.id}\n`);
    await sleep(Number(job.id) % 4); // a little async work, so kills land while jobs run
    note(`end ${job.id} ${attempt} ${run}`);
    return `${job.id}:${attempt}:${run}`;
  },
  { dir: dir!, ...QUEUE_OPTS, concurrency: Number(concurrencyArg) },
);
worker.on('completed', (job) => note(`done ${job.id} ${job.attemptsMade} ${run}`));
exitOnWorkerError(worker);
await untilDrained(queue, 10);
note(`final ${run}`);
await worker.close();
await queue.close();
