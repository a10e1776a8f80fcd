/**
 * Issue 9 in worker_threads, for real: jobs that share a thread with the one at fault are victims. With the
 * default attempts (1) and maxStalledCount (1):
 *   - a job that calls process.exit() in a thread running two neighbours: the pool re-runs the three alone, one at
 *     a time, and charges only the one that crashes again (a failure of its attempt, ERR_THREAD_CRASHED); the
 *     neighbours complete with nothing counted, and the Worker emits 'stalled' for them;
 *   - a CPU loop past its timeout: its thread is terminated; the loop fails (ERR_JOB_TIMEOUT), its neighbours are
 *     released with nothing counted (RELEASE, no FAIL or STALL), the Worker emits 'stalled' for them, and they
 *     complete when run again.
 * The neighbours (dq-poison 'hold') wait for a gate file that the test creates only once the Worker has reported
 * them stalled, so they are certainly in the thread when it dies. Nothing here waits for time to pass.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { readLog, type Job, type Worker } from '../../lib/index.js';
import { REC, decodeEvent } from '../../lib/store/events.js';
import { setup, waitFor, waitForCount } from '../helpers/queue.js';

const processor = new URL('../worker/fixtures/dq-poison.js', import.meta.url);
const OPTS = { durability: 'batch' } as const;

/** Record types logged per job id. */
function typesById(dir: string): Map<string, Array<{ type: number; ev: Record<string, unknown> }>> {
  const out = new Map<string, Array<{ type: number; ev: Record<string, unknown> }>>();
  readLog(path.join(dir, 'q'), {
    onEntry: (e) => {
      if (e.type === REC.ADD || e.type === REC.ACTIVE || e.type === REC.START) return;
      const ev = decodeEvent<Record<string, unknown>>(e.payload(), e.seq);
      if (typeof ev.id === 'string') out.set(ev.id, [...(out.get(ev.id) ?? []), { type: e.type, ev }]);
    },
  });
  return out;
}

/** Side and gate files for the fixture (threads copy process.env when they start). */
function files(t: TestContext, dir: string): { gate: string } {
  const side = path.join(dir, 'side');
  const gate = path.join(dir, 'gate');
  process.env.SPOOLQ_DQ_SIDE = side;
  process.env.SPOOLQ_DQ_GATE = gate;
  t.after(() => {
    delete process.env.SPOOLQ_DQ_SIDE;
    delete process.env.SPOOLQ_DQ_GATE;
  });
  return { gate };
}

/**
 * What the Worker reports: the ids it emitted 'stalled' for (always from 'active') and its 'failed' jobs as
 * `id:code`. Once every neighbour in `ids` was reported stalled, the gate file is written: the neighbours' re-runs
 * wait for it, so they cannot finish before the culprit's story is told.
 */
function watchWorker(worker: Worker, ids: string[], gate: string): { workerStalls: string[]; workerFailures: string[] } {
  const workerStalls: string[] = [];
  const workerFailures: string[] = [];
  let gateOpen = false;
  worker.on('stalled', (id: string, prev: string) => {
    assert.equal(prev, 'active');
    workerStalls.push(id);
    if (!gateOpen && ids.every((n) => workerStalls.includes(n))) {
      gateOpen = true;
      fs.writeFileSync(gate, '');
    }
  });
  worker.on('failed', (job: Job, err: Error & { code?: string }) => workerFailures.push(`${job.id}:${err.code}`));
  return { workerStalls, workerFailures };
}

describe('victims of a job that kills or overruns its thread (issue 9)', () => {
  it('charges only the job that calls process.exit(), found by re-running the suspects alone; its neighbours complete', { timeout: 60_000 }, async (t) => {
    const s = setup(t);
    const { gate } = files(t, s.dir);
    const queue = s.queue('q', OPTS);
    const culprit = await queue.add('exit-after-holds', { n: 2 });
    const neighbours = await queue.addBulk([{ name: 'hold', data: {} }, { name: 'hold', data: {} }]);
    const ids = neighbours.map((j) => j.id);
    const failed = waitFor(queue, 'failed', (e: { jobId: string; final: boolean }) => e.jobId === culprit.id && e.final, 30_000);
    const completed = waitForCount(queue, 'completed', 2, 30_000);
    const queueStalls: string[] = [];
    queue.on('stalled', ({ jobId }: { jobId: string }) => queueStalls.push(jobId));

    // One thread running all three at once: the exit takes the neighbours down with it.
    const worker = s.worker('q', processor, { ...OPTS, threads: 1, concurrency: 3 });
    const { workerStalls, workerFailures } = watchWorker(worker, ids, gate);
    await Promise.all([failed, completed]);

    const bad = (await queue.getJob(culprit.id))!;
    assert.equal(await bad.getState(), 'failed');
    assert.equal(bad.attemptsMade, 1);
    assert.match(bad.failedReason!, /died with code 7/);
    assert.deepEqual(workerFailures, [`${culprit.id}:ERR_THREAD_CRASHED`], 'only the culprit is charged');
    for (const id of ids) {
      const job = (await queue.getJob(id))!;
      assert.equal(await job.getState(), 'completed', `neighbour ${id}`);
      assert.equal(job.attemptsMade, 1, `neighbour ${id}: only its completion counted`);
      assert.ok(workerStalls.includes(id), `the Worker reported neighbour ${id} stalled`);
    }
    assert.deepEqual(queueStalls, [], 'no stall was logged: the suspects were re-run inside the pool');
    await worker.close();
    await queue.close(); // every record written
    const logged = typesById(s.dir);
    for (const id of ids) assert.deepEqual(logged.get(id)!.map((r) => r.type), [REC.COMPLETE], `records of neighbour ${id}`);
    assert.deepEqual(logged.get(culprit.id)!.map((r) => r.type), [REC.FAIL]);
  });

  it('retries the neighbours of a CPU loop terminated past its timeout without any count, reporting them stalled', { timeout: 60_000 }, async (t) => {
    const s = setup(t);
    const { gate } = files(t, s.dir);
    const queue = s.queue('q', OPTS);
    const spin = await queue.add('spin', {}, { timeout: 300 });
    const neighbours = await queue.addBulk([{ name: 'hold', data: {} }, { name: 'hold', data: {} }]);
    const ids = neighbours.map((j) => j.id);
    const failed = waitFor(queue, 'failed', (e: { jobId: string; final: boolean }) => e.jobId === spin.id && e.final, 30_000);
    const completed = waitForCount(queue, 'completed', 2, 30_000);

    const worker = s.worker('q', processor, { ...OPTS, threads: 1, concurrency: 3, abortGraceMs: 100 });
    const { workerStalls, workerFailures } = watchWorker(worker, ids, gate);
    await Promise.all([failed, completed]);

    assert.deepEqual(workerFailures, [`${spin.id}:ERR_JOB_TIMEOUT`]);
    assert.deepEqual([...workerStalls].sort(), [...ids].sort(), "'stalled' once for each neighbour");
    for (const id of ids) {
      const job = (await queue.getJob(id))!;
      assert.equal(await job.getState(), 'completed');
      assert.equal(job.attemptsMade, 1, `neighbour ${id}: only its completion counted`);
    }
    const loop = (await queue.getJob(spin.id))!;
    assert.equal(await loop.getState(), 'failed');
    assert.equal(loop.attemptsMade, 1);
    await worker.close();
    await queue.close(); // every record written
    const logged = typesById(s.dir);
    for (const id of ids) {
      const records = logged.get(id)!;
      assert.deepEqual(records.map((r) => r.type), [REC.RELEASE, REC.COMPLETE], `records of neighbour ${id}`);
      assert.match(String(records[0]!.ev.why), /interrupted: the worker thread was terminated because job/);
    }
  });
});
