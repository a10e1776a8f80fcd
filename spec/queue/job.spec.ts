/**
 * Job methods through the public API: state, progress, logs, remove and retry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from '../../lib/index.js';
import { SAFETY, deferred, setup, waitFor } from '../helpers/queue.js';

describe('Job.getState', () => {
  it('reports waiting, paused, delayed, active, completed, failed and unknown', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const waiting = await q.add('w', null);
    assert.equal(await waiting.getState(), 'waiting');
    await q.pause();
    assert.equal(await waiting.getState(), 'paused');
    await q.resume();
    const delayed = await q.add('d', null, { delay: 60_000 });
    assert.equal(await delayed.getState(), 'delayed');

    const gate = deferred();
    t.after(() => gate.resolve());
    const w = s.worker('q', async (job) => {
      if (job.name === 'f') throw new Error('f');
      if (job.name === 'a') await gate.promise;
      return job.name;
    });
    await waitFor(w, 'completed', (job: Job) => job.id === waiting.id);
    assert.equal(await waiting.getState(), 'completed');
    const failing = await q.add('f', null);
    await waitFor(w, 'failed');
    assert.equal(await failing.getState(), 'failed');
    const active = waitFor(w, 'active', (job: Job) => job.name === 'a');
    const running = await q.add('a', null);
    await active;
    assert.equal(await running.getState(), 'active');
    await q.remove(failing.id);
    assert.equal(await failing.getState(), 'unknown');
  });
});

describe('Job.updateProgress', () => {
  it('emits progress on the Worker and the Queue and keeps the value on the job', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      await job.updateProgress(42);
      await job.updateProgress({ step: 'sent', pct: 90 });
      return 'ok';
    });
    const onWorker: Array<[string, unknown]> = [];
    const onQueue: unknown[] = [];
    w.on('progress', (job: Job, p: unknown) => onWorker.push([job.id, p]));
    q.on('progress', (e: unknown) => onQueue.push(e));
    const job = await q.add('p', null);
    await waitFor(w, 'completed');
    assert.deepEqual(onWorker, [[job.id, 42], [job.id, { step: 'sent', pct: 90 }]]);
    assert.deepEqual(onQueue, [{ jobId: job.id, data: 42 }, { jobId: job.id, data: { step: 'sent', pct: 90 } }]);
    assert.deepEqual((await q.getJob(job.id))!.progress, { step: 'sent', pct: 90 });
  });

  it('can be called from outside a processor', SAFETY, async (t) => {
    const q = setup(t).queue();
    const job = await q.add('p', null);
    await job.updateProgress(7);
    assert.equal(job.progress, 7);
    assert.equal((await q.getJob(job.id))!.progress, 7);
  });

  for (const bad of ['50%', null, undefined, true]) {
    it(`refuses progress ${String(bad)} and writes nothing`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue();
      const job = await q.add('p', null);
      await assert.rejects(job.updateProgress(bad as never), { code: 'ERR_INVALID_ARG' });
      assert.equal(s.records(), 1);
      assert.equal((await q.getJob(job.id))!.progress, 0);
    });
  }
});

describe('Job.log and getLogs', () => {
  it('adds lines and returns the count, and reads them back oldest first', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const counts: number[] = [];
    const w = s.worker('q', async (job) => {
      counts.push(await job.log('connecting'));
      counts.push(await job.log('sent ✓'));
      return null;
    });
    const job = await q.add('l', null);
    await waitFor(w, 'completed');
    assert.deepEqual(counts, [1, 2]);
    assert.deepEqual(await (await q.getJob(job.id))!.getLogs(), ['connecting', 'sent ✓']);
  });

  it('returns no lines for a job that logged none, and refuses a line that is not a string', SAFETY, async (t) => {
    const q = setup(t).queue();
    const job = await q.add('l', null);
    assert.deepEqual(await job.getLogs(), []);
    await assert.rejects(job.log(5 as never), { code: 'ERR_INVALID_ARG' });
  });
});

describe('Job.remove', () => {
  it('removes a waiting job', SAFETY, async (t) => {
    const q = setup(t).queue();
    const job = await q.add('r', null);
    await job.remove();
    assert.equal(await q.getJob(job.id), undefined);
    await job.remove(); // removing it again changes nothing
    assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 0 });
  });

  it('refuses to remove an active job', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    t.after(() => gate.resolve());
    const w = s.worker('q', () => gate.promise);
    const active = waitFor(w, 'active');
    const job = await q.add('r', null);
    const [running] = await active;
    await assert.rejects(running.remove(), { code: 'ERR_JOB_ACTIVE' });
    await assert.rejects(job.remove(), { code: 'ERR_JOB_ACTIVE' });
    assert.equal(await job.getState(), 'active');
  });
});

describe('Job.retry', () => {
  it('sends a failed job back to waiting with its attempts reset, and it runs again', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let runs = 0;
    const w = s.worker('q', async () => {
      if (++runs === 1) throw new Error('first');
      return 'second';
    });
    const job = await q.add('r', null);
    await waitFor(w, 'failed');
    const failed = (await q.getJob(job.id))!;
    assert.equal(failed.attemptsMade, 1);
    const completed = waitFor(w, 'completed');
    await failed.retry();
    const [done, result] = await completed;
    assert.equal(done.id, job.id);
    assert.equal(result, 'second');
    const after = (await q.getJob(job.id))!;
    assert.equal(after.attemptsMade, 1);
    assert.equal(after.failedReason, undefined);
    assert.deepEqual(after.stacktrace, []);
  });

  it('refuses a job that is not failed or completed', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const job = await q.add('r', null);
    await assert.rejects(job.retry(), { code: 'ERR_INVALID_ARG' });
    assert.equal(s.records(), 1);
  });
});

describe('Job.toJSON', () => {
  it('holds the fields BullMQ users read', SAFETY, async (t) => {
    const q = setup(t).queue();
    const job = await q.add('j', { a: 1 }, { attempts: 2, jobId: 'jj' });
    assert.deepEqual(JSON.parse(JSON.stringify(job)), {
      id: 'jj', name: 'j', data: { a: 1 }, opts: { attempts: 2, priority: 0, delay: 0, jobId: 'jj' }, progress: 0,
      attemptsMade: 0, stacktrace: [], timestamp: job.timestamp,
    });
  });
});
