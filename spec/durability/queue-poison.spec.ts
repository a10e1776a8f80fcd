/**
 * Poison jobs in a worker_threads pool, for real: a job that kills its thread every time (process.exit, or a
 * throw outside any promise) and a CPU-bound `for (;;);` past its timeout. Each ends failed after its attempts,
 * its thread dead and replaced, while the other jobs of the same pool complete.
 *
 * A thread crash that the pool traces to its job (alone on its thread, or crashing again when re-run alone) is a
 * failure of that attempt, as BullMQ fails a sandboxed job whose process exits: retried per attempts and backoff,
 * never a stall (README, "What happens when things die"). So `attempts: 3` ends the poison job after 3 crashes.
 * Neighbours of a crash or of a terminated loop are victims: they complete with nothing counted
 * (crash-victims.spec.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Job } from '../../lib/index.js';
import { setup, waitFor, waitForCount } from '../helpers/queue.js';

const processor = new URL('../worker/fixtures/dq-poison.js', import.meta.url);
const OPTS = { durability: 'batch' } as const;
const OK_JOBS = 20;

/** Resolves with what `p` resolves to, or fails naming `what` after a safety net of `ms`. */
async function within<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('poison jobs in a thread pool', () => {
  for (const how of ['exit', 'throw-outside'] as const) {
    it(`fails a job that kills its thread every time (${how}) after its 3 attempts, while the other jobs complete`, { timeout: 30_000 }, async (t) => {
      const s = setup(t);
      const queue = s.queue('q', OPTS);
      const poison = await queue.add(how, {}, { attempts: 3 });
      const oks = await queue.addBulk(Array.from({ length: OK_JOBS }, (_, i) => ({ name: 'ok', data: { i } })));
      const stalls: string[] = [];
      queue.on('stalled', ({ jobId }: { jobId: string }) => stalls.push(jobId));
      const failed = waitFor(queue, 'failed', (e: { jobId: string; final: boolean }) => e.jobId === poison.id && e.final, 15_000);
      const completed = waitForCount(queue, 'completed', OK_JOBS, 15_000);

      // One job per thread at a time, so a dying thread takes no other job down with it.
      const worker = s.worker('q', processor, { ...OPTS, threads: 2, concurrency: 1 });
      const crashes: string[] = [];
      worker.on('failed', (job: Job, err: Error & { code?: string }) => crashes.push(`${job.id}:${err.code}`));
      await Promise.all([failed, completed]);

      const job = await queue.getJob(poison.id);
      assert.equal(await job!.getState(), 'failed');
      assert.equal(job!.attemptsMade, 3);
      assert.deepEqual(stalls, [], 'a crash traced to its job is a failure of the attempt, not a stall');
      assert.deepEqual(crashes, Array(3).fill(`${poison.id}:ERR_THREAD_CRASHED`));
      for (const ok of oks) {
        const done = await queue.getJob(ok.id);
        assert.equal(await done!.getState(), 'completed', `job ${ok.id}`);
        assert.equal(done!.attemptsMade, 1, `job ${ok.id} was caught in a crash`);
        assert.equal(typeof done!.returnvalue, 'number');
      }
      assert.deepEqual(await queue.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: OK_JOBS, failed: 1 });
      await within(worker.close(), 'closing the pool (every thread exits)');
    });
  }

  it('terminates the thread of a CPU-bound loop past its timeout, fails the job after its attempts, and goes on', { timeout: 30_000 }, async (t) => {
    const s = setup(t);
    const side = path.join(s.dir, 'spins');
    process.env.SPOOLQ_DQ_SIDE = side; // threads copy process.env when they start
    t.after(() => delete process.env.SPOOLQ_DQ_SIDE);
    const queue = s.queue('q', OPTS);
    const spin = await queue.add('spin', {}, { timeout: 300, attempts: 2 });
    const oks = await queue.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: 'ok', data: { i } })));
    const stalls: string[] = [];
    queue.on('stalled', ({ jobId }: { jobId: string }) => stalls.push(jobId));
    const failed = waitFor(queue, 'failed', (e: { jobId: string; final: boolean }) => e.jobId === spin.id && e.final, 15_000);
    const completed = waitForCount(queue, 'completed', 5, 15_000);

    // One thread, one job at a time: the loop holds the pool's only slot until its thread is terminated.
    const worker = s.worker('q', processor, { ...OPTS, threads: 1, concurrency: 1, abortGraceMs: 100 });
    const timeouts: string[] = [];
    worker.on('failed', (job: Job, err: Error & { code?: string }) => timeouts.push(`${job.id}:${err.code}`));
    await Promise.all([failed, completed]);

    const job = await queue.getJob(spin.id);
    assert.equal(await job!.getState(), 'failed');
    assert.equal(job!.attemptsMade, 2);
    assert.match(job!.failedReason ?? '', /timed out after 300 ms/);
    assert.deepEqual(timeouts, [`${spin.id}:ERR_JOB_TIMEOUT`, `${spin.id}:ERR_JOB_TIMEOUT`]);
    assert.deepEqual(stalls, [], 'a timeout is a failure of the attempt, not a stall');
    const spinThreads = fs.readFileSync(side, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]));
    assert.equal(spinThreads.length, 2, 'the loop ran once per attempt');
    assert.equal(new Set(spinThreads).size, 2, 'each attempt looped in a thread of its own');
    for (const ok of oks) {
      const done = await queue.getJob(ok.id);
      assert.equal(await done!.getState(), 'completed', `job ${ok.id}`);
      assert.equal(done!.attemptsMade, 1);
      assert.equal(spinThreads.includes(done!.returnvalue as number), false, `job ${ok.id} ran in a thread that was looping`);
    }
    assert.deepEqual(await queue.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 5, failed: 1 });
    // close() waits for every thread to exit: a thread still looping never would.
    await within(worker.close(), 'closing the pool (every thread exits)');
  });
});
