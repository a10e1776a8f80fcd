/**
 * Child process for queue-crash-lookahead.spec.ts: an inline Worker (concurrency 4) on a queue the parent filled
 * with a backlog of no-op jobs ({ i }), so that it claims ahead (lookahead, worker.ts). It journals, each line with
 * one synchronous write (O_APPEND), so every line in the file happened before a kill:
 *
 *   start <id>     the processor was entered
 *   done <id>      the Worker's 'completed' event (the COMPLETE record is written)
 *   kill <id>      the job with data.kill is about to SIGKILL this process (mode 'kill' only)
 *   final          every job is final; the child then closes and exits 0
 *
 * In mode 'kill', once the killer has started, the jobs after it (i > killer's i) that start hold their slots
 * (they never return), so that the Worker's other slots stop and what it claimed ahead stays claimed and
 * unstarted. The killer waits until its 3 neighbours hold, then two turns of the event loop: every job handed to
 * a processor has been entered by then (inline processors start a microtask later), and the log writer has
 * flushed since they started, so their START is written (a job killed before its START is released orphaned,
 * queue/owner/starts.ts "Starts"; not what this child tests). The kill then lands between turns, not inside a claim.
 * argv: <dir> <journal> <mode: kill | run> <killer's i>
 */
import * as fs from 'node:fs';
import { Queue, Worker } from '../../../lib/index.js';
import { exitOnWorkerError, untilDrained } from './drain.js';

const [dir, journal, mode, killerArg] = process.argv.slice(2);
const killerI = Number(killerArg);
const fd = fs.openSync(journal!, 'a');
const note = (line: string): void => void fs.writeSync(fd, `${line}\n`);
const OPTS = { durability: 'batch' } as const;
const CONCURRENCY = 4;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
let killerStarted = false;
let holding = 0;

const queue = new Queue('q', { dir: dir!, ...OPTS });
const worker = new Worker(
  'q',
  async (job) => {
    note(`start ${job.id}`);
    const { i, kill } = job.data as { i: number; kill?: boolean };
    if (mode !== 'kill') return null;
    if (kill) {
      killerStarted = true;
      // A bound, not a timing assumption: the parent checks that unstarted claimed jobs were released.
      for (let n = 0; holding < CONCURRENCY - 1 && n < 100_000; n++) await turn();
      for (let n = 0; n < 2; n++) await turn();
      note(`kill ${job.id}`);
      process.kill(process.pid, 'SIGKILL');
    }
    if (killerStarted && i > killerI) {
      holding++;
      await new Promise(() => {});
    }
    return null;
  },
  { dir: dir!, ...OPTS, concurrency: CONCURRENCY },
);
worker.on('completed', (job) => note(`done ${job.id}`));
exitOnWorkerError(worker);
await untilDrained(queue, 5);
note('final');
await worker.close();
await queue.close();
