/**
 * Leases that expire, for real: a short leaseMs (200), a Worker that keeps renewing its lease, and the test
 * pushing the taken ticket's mtime into the past (fs.utimesSync) until the owner's lease check finds it expired.
 * That is what a worker that stopped renewing looks like to the owner, without stopping this process's event
 * loop (which the owner shares). The owner must log the job as stalled (a stall counts, not an attempt: the
 * second run has the same attempt number, in another ticket), cut it again, and ignore whatever the first run
 * reports later; and the worker, once it sees its lease gone, must stop the first
 * run and say so.
 *
 * The mtime is pushed back in a loop, every few ms, until the 'stalled' event: a renewal in between just means
 * another round. Nothing here depends on how long anything takes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readLog, type Job, type Queue } from '../../lib/index.js';
import type { Outcome } from '../../lib/queue/backend.js';
import { resolveQueueOptions } from '../../lib/queue/options.js';
import { acquireOwner, releaseOwner } from '../../lib/queue/owner/registry.js';
import { REC, decodeEvent, type CompleteEvent } from '../../lib/store/events.js';
import { aborted, deferred, setup, until, waitFor } from '../helpers/queue.js';

const OPTS = { durability: 'batch', leaseMs: 200, maxStalledCount: 5 } as const;

/**
 * Pushes the mtime of the job's taken ticket an hour into the past, again and again, until the queue reports
 * the job stalled. Resolves with the taken file's name.
 */
async function expireLease(queue: Queue, dir: string, jobId: string): Promise<string> {
  const taken = path.join(dir, 'q', 'tickets', 'taken');
  let stalled = false;
  const seen = waitFor(queue, 'stalled', (e: { jobId: string }) => e.jobId === jobId).then(() => (stalled = true));
  const [name] = fs.readdirSync(taken);
  assert.ok(name, 'the running job has a taken ticket');
  const past = new Date(Date.now() - 3_600_000);
  for (let i = 0; !stalled; i++) {
    assert.ok(i < 2_000, 'the owner never took the lease back');
    try {
      fs.utimesSync(path.join(taken, name), past, past);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // gone: the owner has recycled it
    }
    await sleep(5);
  }
  await seen;
  return name;
}

/** What `p` resolves to, or `otherwise` after a safety net of `ms` (whose timer holds the process open). */
async function within<T, U>(p: Promise<T>, ms: number, otherwise: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<U>((resolve) => (timer = setTimeout(resolve, ms, otherwise)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The COMPLETE records of the queue's log. */
function completeRecords(dir: string): CompleteEvent[] {
  const out: CompleteEvent[] = [];
  readLog(path.join(dir, 'q'), {
    onEntry: (e) => void (e.type === REC.COMPLETE && out.push(decodeEvent<CompleteEvent>(e.payload(), e.seq))),
  });
  return out;
}

describe('expired leases', () => {
  it('stalls a job whose lease expired, runs it again, and ignores the late result of the first run', { timeout: 30_000 }, async (t) => {
    const s = setup(t);
    const queue = s.queue('q', OPTS);
    await queue.waitUntilReady();
    // The owner's finish(), watched: the first run's result must reach it and be refused.
    const { key, owner: ownerP } = acquireOwner('q', resolveQueueOptions({ dir: s.dir, ...OPTS }));
    const owner = await ownerP;
    await releaseOwner(key); // the Queue keeps it open; this handle was only for reaching it
    const reports: Array<{ attempt: number; result: unknown; accepted: boolean }> = [];
    const finish = owner.finish.bind(owner);
    owner.finish = (ticket: string, id: string, attempt: number, outcome: Outcome) => {
      const done = finish(ticket, id, attempt, outcome);
      reports.push({ attempt, result: outcome.kind === 'completed' ? outcome.result : outcome.kind, accepted: done !== undefined });
      return done;
    };

    const job = await queue.add('j', {}, { attempts: 3 });
    const firstRun = deferred<string>();
    const started = deferred();
    // The first run returns the moment the owner logs the stall (a synchronous listener: before the Worker can
    // renew and find out), so its result arrives while the job is already active again in a new ticket.
    queue.on('stalled', () => firstRun.resolve('first'));
    const completed: unknown[] = [];
    let runs = 0;
    const worker = s.worker('q', async () => {
      if (runs++ === 0) {
        started.resolve();
        return firstRun.promise;
      }
      return 'second';
    }, { ...OPTS, concurrency: 2 });
    worker.on('completed', (_j: Job, result: unknown) => completed.push(result));
    const done = waitFor(queue, 'completed', (e: { jobId: string }) => e.jobId === job.id);

    await started.promise;
    await expireLease(queue, s.dir, job.id);
    await done;

    // Both runs are attempt 1 (a stall counts no attempt); the first's result is refused for its ticket.
    assert.deepEqual(reports, [
      { attempt: 1, result: 'first', accepted: false },
      { attempt: 1, result: 'second', accepted: true },
    ]);
    const final = await queue.getJob(job.id);
    assert.equal(await final!.getState(), 'completed');
    assert.equal(final!.returnvalue, 'second');
    assert.equal(final!.attemptsMade, 1, 'the stall counted no attempt');
    assert.deepEqual(completed, ['second']);
    assert.deepEqual(completeRecords(s.dir).map((c) => [c.a, c.rv]), [[1, 'second']]);
  });

  // The same job running twice in one Worker (its lease taken back, then cut again to this Worker): each run has its
  // own identity (ticket + job id) from the Worker down to its runner, so the lost one is told to stop and the new
  // one is left alone.
  it('has the worker stop the first run when it finds its lease gone, even with the job running again beside it', { timeout: 30_000 }, async (t) => {
    const s = setup(t);
    const queue = s.queue('q', OPTS);
    await queue.waitUntilReady();
    const job = await queue.add('j', {}, { attempts: 3 });
    const started = deferred();
    const firstStopped = deferred<unknown>();
    const secondSignal = deferred<AbortSignal>();
    let runs = 0;
    const worker = s.worker('q', async (_j: Job, _token: string, signal: AbortSignal) => {
      if (runs++ === 0) {
        started.resolve();
        const reason = await aborted(signal);
        firstStopped.resolve(reason);
        return 'first, too late';
      }
      secondSignal.resolve(signal);
      // Holds its slot until the first run is stopped, so the two runs of the job overlap in this worker.
      await Promise.race([firstStopped.promise, sleep(10_000, undefined, { ref: false })]);
      return 'second';
    }, { ...OPTS, concurrency: 2 });
    const workerStalls: string[] = [];
    worker.on('stalled', (id: string) => workerStalls.push(id));
    const completed: unknown[] = [];
    worker.on('completed', (_j: Job, result: unknown) => completed.push(result));
    const finished: string[] = [];
    queue.on('completed', (e: { jobId: string }) => finished.push(e.jobId));

    await started.promise;
    await expireLease(queue, s.dir, job.id);
    const reason = await within(firstStopped.promise, 5_000, 'never');
    assert.notEqual(reason, 'never', "the first run's signal never fired after its lease was taken back");
    assert.equal((reason as { code?: string }).code, 'ERR_LEASE_LOST');
    await until(() => finished.includes(job.id), 'the job completes');
    assert.equal((await secondSignal.promise).aborted, false, 'the second run, whose lease holds, was not aborted');
    assert.deepEqual(workerStalls, [job.id], "the Worker reports the job it lost as 'stalled'");
    const final = await queue.getJob(job.id);
    assert.equal(final!.returnvalue, 'second');
    assert.equal(final!.attemptsMade, 1);
    assert.deepEqual(completed, ['second']);
    assert.deepEqual(completeRecords(s.dir).map((c) => [c.a, c.rv]), [[1, 'second']]);
  });
});
