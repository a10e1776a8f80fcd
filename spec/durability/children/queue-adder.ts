/**
 * Child process for queue-kill-adds.spec.ts: opens a Queue in fsync mode and adds jobs forever from `lanes`
 * concurrent loops, mixing add() and addBulk(), custom ids, delays, priorities, a job id repeated inside one bulk,
 * and re-adds of ids it already has (which must resolve with the existing job and write nothing). Every job it is
 * given back is reported as a line `ack <id> <run> <i> <fingerprint>` written synchronously to fd 1, so a line
 * the parent reads was acknowledged (durable) before the kill. The job contents come from jobFor(run, i).
 *
 * argv: <dir> <run> <seed> <lanes> <maxSegmentBytes>
 */
import * as fs from 'node:fs';
import { Queue, type Job } from '../../../lib/index.js';
import { prng } from '../../helpers/child.js';
import { customId, jobFor } from './queue-jobs.js';

const [dir, runArg, seedArg, lanesArg, segArg] = process.argv.slice(2);
const run = Number(runArg);
const rand = prng(Number(seedArg));

const queue = new Queue('q', { dir: dir!, durability: 'fsync', maxSegmentBytes: Number(segArg), checkpointEvery: 500 });
await queue.waitUntilReady();
fs.writeSync(1, 'open\n');

let next = 0;
/** Custom ids this run was given back, with the i whose data they hold. */
const ownCustom: Array<{ id: string; i: number }> = [];

function report(jobs: Job[]): void {
  let out = '';
  for (const job of jobs) {
    const d = job.data as { r: number; i: number; fp: string };
    out += `ack ${job.id} ${d.r} ${d.i} ${d.fp}\n`;
    if (d.r === run && job.id === customId(run, d.i)) ownCustom.push({ id: job.id, i: d.i });
  }
  fs.writeSync(1, out);
}

async function lane(): Promise<never> {
  for (;;) {
    const roll = rand();
    if (roll < 0.45) {
      const p = jobFor(run, next++);
      report([await queue.add(p.name, p.data, p.opts)]);
    } else if (roll < 0.9) {
      const n = 2 + Math.floor(rand() * 15);
      const batch = Array.from({ length: n }, () => jobFor(run, next++));
      const first = batch.find((p) => p.opts.jobId !== undefined);
      if (first && rand() < 0.3) {
        // The same custom id twice in one bulk: the second entry must come back as the first job.
        const other = jobFor(run, next++);
        batch.push({ ...other, opts: { ...other.opts, jobId: first.opts.jobId } });
      }
      report(await queue.addBulk(batch));
    } else if (ownCustom.length > 0) {
      // A re-add of an id it already has, with other data: resolves with the existing job and writes nothing.
      const known = ownCustom[Math.floor(rand() * ownCustom.length)]!;
      const other = jobFor(run, next++);
      const job = await queue.add(other.name, other.data, { ...other.opts, jobId: known.id });
      const d = job.data as { r: number; i: number };
      if (job.id !== known.id || d.r !== run || d.i !== known.i) {
        throw new Error(`re-adding ${known.id} gave back ${job.id} holding ${JSON.stringify(d)}`);
      }
      report([job]);
    }
  }
}

await Promise.all(Array.from({ length: Number(lanesArg) }, lane));
