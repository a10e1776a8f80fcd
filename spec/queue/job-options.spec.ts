/**
 * Job options through the public API: each option observed in what the queue and a Worker do with it.
 *
 * Timing: delays and backoffs are asserted as lower bounds from timestamps the jobs carry or the processor
 * records (a job must not run early); nothing asserts that anything was fast.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { UnrecoverableError, type Job, type Queue, type SpoolError } from '../../lib/index.js';
import { SAFETY, aborted, setup, waitFor, waitForCount } from '../helpers/queue.js';

/** Gaps between consecutive times. */
const gaps = (times: number[]): number[] => times.slice(1).map((t, i) => t - times[i]!);

describe('jobId', () => {
  it('returns the existing job for an id already added, and writes nothing', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const first = await q.add('a', { v: 1 }, { jobId: 'order-7' });
    const records = s.records();
    const again = await q.add('b', { v: 2 }, { jobId: 'order-7', priority: 5 });
    assert.equal(s.records(), records);
    assert.equal(first.id, 'order-7');
    assert.equal(again.id, 'order-7');
    assert.equal(again.name, 'a');
    assert.deepEqual(again.data, { v: 1 });
    assert.equal(again.opts.jobId, 'order-7');
    assert.equal(again.opts.priority, 0);
    assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 1 });
  });

  it('returns a finished job for its id too, and accepts the id again once the job is removed', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => job.data);
    await q.add('a', 1, { jobId: 'once' });
    await waitFor(w, 'completed');
    const again = await q.add('a', 2, { jobId: 'once' });
    assert.equal(again.data, 1);
    assert.equal(await again.getState(), 'completed');
    await q.remove('once');
    const completed = waitFor(w, 'completed');
    const fresh = await q.add('a', 3, { jobId: 'once' });
    assert.equal(fresh.data, 3);
    const [job, result] = await completed;
    assert.equal(job.id, 'once');
    assert.equal(result, 3);
  });

  for (const id of ['42', 42, '', 'x'.repeat(257), 'tab\there'] as const) {
    it(`refuses jobId ${JSON.stringify(id).slice(0, 20)} and writes nothing`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue();
      await q.add('first', null);
      await assert.rejects(q.add('a', null, { jobId: id as string }), { code: 'ERR_INVALID_ARG' });
      assert.equal(s.records(), 1);
    });
  }
});

describe('priority', () => {
  it('runs lower priorities first and equal priorities in the order added', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const order: string[] = [];
    const w = s.worker('q', async (job) => void order.push(job.name), { autorun: false });
    const plan: Array<[string, number]> = [['a', 3], ['b', 1], ['c', 0], ['d', 1], ['e', 2_097_152], ['f', 0], ['g', 3]];
    for (const [name, priority] of plan) await q.add(name, null, { priority });
    const done = waitForCount(w, 'completed', plan.length);
    void w.run();
    await done;
    assert.deepEqual(order, ['c', 'f', 'b', 'd', 'a', 'g', 'e']);
  });
});

describe('delay', () => {
  it('does not run a delayed job before its delay, and runs it after', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => 'late');
    const delayed = waitFor(q, 'delayed');
    const job = await q.add('later', null, { delay: 150 });
    const [ev] = await delayed;
    assert.equal(ev.jobId, job.id);
    assert.equal(await job.getState(), 'delayed');
    assert.equal(job.opts.delay, 150);
    await waitFor(w, 'completed');
    const done = (await q.getJob(job.id))!;
    assert.ok(done.processedOn! - done.timestamp >= 150, `ran ${done.processedOn! - done.timestamp} ms after it was added`);
  });
});

describe('attempts and backoff', () => {
  /** Runs a job that always fails with the given options; returns when each attempt started and the job after. */
  async function failing(t: Parameters<typeof setup>[0], opts: object, workerOpts: object = {}): Promise<{ starts: number[]; job: Job }> {
    const s = setup(t);
    const q = s.queue();
    const starts: number[] = [];
    const w = s.worker('q', async () => {
      starts.push(Date.now());
      throw new Error(`attempt ${starts.length}`);
    }, workerOpts);
    const added = await q.add('flaky', null, opts);
    await waitFor(w, 'failed', (job: Job) => job.attemptsMade >= ((opts as { attempts?: number }).attempts ?? 1));
    const finalFailed = await waitForState(q, added.id, 'failed');
    return { starts, job: finalFailed };
  }

  async function waitForState(q: ReturnType<ReturnType<typeof setup>['queue']>, id: string, state: string): Promise<Job> {
    const job = (await q.getJob(id))!;
    assert.equal(await job.getState(), state);
    return job;
  }

  it('retries until attempts are used up, then fails with the last reason', SAFETY, async (t) => {
    const { starts, job } = await failing(t, { attempts: 3 });
    assert.equal(starts.length, 3);
    assert.equal(job.attemptsMade, 3);
    assert.equal(job.failedReason, 'attempt 3');
  });

  it('waits at least the fixed backoff between attempts', SAFETY, async (t) => {
    const { starts, job } = await failing(t, { attempts: 3, backoff: { type: 'fixed', delay: 80 } });
    assert.equal(job.attemptsMade, 3);
    for (const gap of gaps(starts)) assert.ok(gap >= 80, `gaps ${gaps(starts)} shorter than 80 ms`);
  });

  it('takes a number as a fixed backoff', SAFETY, async (t) => {
    const { starts } = await failing(t, { attempts: 2, backoff: 80 });
    assert.equal(starts.length, 2);
    assert.ok(gaps(starts)[0]! >= 80, `gap ${gaps(starts)} shorter than 80 ms`);
  });

  it('doubles an exponential backoff after each attempt', SAFETY, async (t) => {
    const { starts } = await failing(t, { attempts: 4, backoff: { type: 'exponential', delay: 40 } });
    assert.equal(starts.length, 4);
    const g = gaps(starts);
    [40, 80, 160].forEach((min, i) => assert.ok(g[i]! >= min, `gaps ${g} not at least 40, 80, 160`));
  });

  it('waits what a named strategy from the worker settings says, called with attempts, error and job', SAFETY, async (t) => {
    const calls: Array<[number, string, string, unknown]> = [];
    const { starts, job } = await failing(t, { attempts: 3, backoff: { type: 'steps' } }, {
      settings: {
        backoffStrategies: {
          steps: (attemptsMade: number, err: Error, j: { name: string; data: unknown }) => {
            calls.push([attemptsMade, err.message, j.name, j.data]);
            return attemptsMade * 60;
          },
        },
      },
    });
    assert.deepEqual(calls, [[1, 'attempt 1', 'flaky', null], [2, 'attempt 2', 'flaky', null]]);
    assert.equal(job.attemptsMade, 3);
    const g = gaps(starts);
    assert.ok(g[0]! >= 60 && g[1]! >= 120, `gaps ${g} not at least 60, 120`);
  });

  it('fails for good when a named strategy returns a negative delay', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let runs = 0;
    const w = s.worker('q', async () => {
      runs++;
      throw new Error('stop');
    }, { settings: { backoffStrategies: { never: () => -1 } } });
    const job = await q.add('x', null, { attempts: 5, backoff: { type: 'never' } });
    await waitFor(w, 'failed');
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'failed');
    assert.equal(after.attemptsMade, 1);
    assert.equal(runs, 1);
  });

  it('retries at once when the named strategy is not registered', SAFETY, async (t) => {
    const { starts, job } = await failing(t, { attempts: 2, backoff: { type: 'unregistered', delay: 60_000 } });
    assert.equal(starts.length, 2);
    assert.equal(job.attemptsMade, 2);
  });

  it('fails at once on an UnrecoverableError despite attempts left', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let runs = 0;
    const w = s.worker('q', async () => {
      runs++;
      throw new UnrecoverableError('bad input');
    });
    const job = await q.add('x', null, { attempts: 5 });
    const [failedJob, err] = await waitFor(w, 'failed');
    assert.equal(err.name, 'UnrecoverableError');
    assert.equal(failedJob.id, job.id);
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'failed');
    assert.equal(after.attemptsMade, 1);
    assert.equal(after.failedReason, 'bad input');
    assert.equal(runs, 1);
  });
});

describe('timeout', () => {
  it('aborts the signal of a job past its timeout with ERR_JOB_TIMEOUT and fails it with that reason', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let reason: unknown;
    const w = s.worker('q', async (_job, _token, signal) => {
      reason = await aborted(signal);
      throw reason;
    });
    const job = await q.add('slow', null, { timeout: 100 });
    const [failedJob, err] = await waitFor(w, 'failed');
    assert.equal(failedJob.id, job.id);
    assert.equal((reason as { code?: string }).code, 'ERR_JOB_TIMEOUT');
    assert.equal(err.code, 'ERR_JOB_TIMEOUT');
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'failed');
    assert.match(after.failedReason!, /timed out after 100 ms/);
    assert.ok(after.finishedOn! - after.processedOn! >= 100, 'failed before its timeout');
  });

  it('retries a timed-out job while attempts remain', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let runs = 0;
    const w = s.worker('q', async (_job, _token, signal) => {
      if (++runs === 2) return 'second time lucky';
      throw await aborted(signal);
    });
    const job = await q.add('slow', null, { timeout: 50, attempts: 2 });
    const [done, result] = await waitFor(w, 'completed');
    assert.equal(done.id, job.id);
    assert.equal(result, 'second time lucky');
    assert.equal((await q.getJob(job.id))!.attemptsMade, 2);
  });
});

describe('removeOnComplete and removeOnFail', () => {
  it('removes a job as it completes with removeOnComplete true', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => 'gone');
    const job = await q.add('a', null, { removeOnComplete: true });
    const [done, result] = await waitFor(w, 'completed');
    assert.equal(done.id, job.id);
    assert.equal(result, 'gone');
    assert.equal(await q.getJob(job.id), undefined);
    assert.deepEqual(await q.getJobCounts('completed'), { completed: 0 });
  });

  it('removes a job as it fails for good with removeOnFail true, not on a retried attempt', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => {
      throw new Error('no');
    });
    const job = await q.add('a', null, { removeOnFail: true, attempts: 2 });
    await waitForCount(w, 'failed', 2);
    assert.equal(await q.getJob(job.id), undefined);
    assert.deepEqual(await q.getJobCounts('failed', 'waiting'), { failed: 0, waiting: 0 });
  });

  for (const [what, opts, fails] of [
    ['removeOnComplete', { removeOnComplete: 2 }, false],
    ['removeOnComplete { count }', { removeOnComplete: { count: 2 } }, false],
    ['removeOnFail', { removeOnFail: 2 }, true],
  ] as const) {
    it(`keeps only the newest N finished jobs with ${what}: N`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue();
      const w = s.worker('q', async (job) => {
        if (fails) throw new Error(job.name);
        return job.name;
      });
      const finished = waitForCount(w, fails ? 'failed' : 'completed', 5);
      await q.addBulk(['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, data: null, opts })));
      await finished;
      const state = fails ? 'failed' : 'completed';
      assert.deepEqual((await q.getJobs(state, 0, -1, true)).map((j) => j.name), ['d', 'e']);
    });
  }

  it('removes finished jobs once they are older than { age } seconds', { timeout: 20_000 }, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      if (job.name === 'fail') throw new Error('fail');
      return 'ok';
    });
    const finished = Promise.all([waitFor(w, 'completed'), waitFor(w, 'failed')]);
    const removed = waitForCount(q, 'removed', 2);
    const ok = await q.add('ok', null, { removeOnComplete: { age: 1 } });
    const bad = await q.add('fail', null, { removeOnFail: { age: 1 } });
    await finished;
    const finishedOn = new Map<string, number>();
    for (const id of [ok.id, bad.id]) {
      const job = (await q.getJob(id))!;
      assert.ok(job, `job ${id} removed at once`);
      finishedOn.set(id, job.finishedOn!);
    }
    const events = await removed;
    const at = Date.now();
    assert.deepEqual(events.map(([e]) => e.jobId).sort(), [ok.id, bad.id].sort());
    for (const [id, f] of finishedOn) assert.ok(at - f >= 1000, `job ${id} removed ${at - f} ms after it finished`);
    assert.deepEqual(await q.getJobCounts('completed', 'failed'), { completed: 0, failed: 0 });
  });
});

describe('deadLetter', () => {
  it('moves a job that used up its attempts to the named queue, with its name and data', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => {
      throw new Error('always');
    });
    const job = await q.add('mail', { to: 'x@y' }, { attempts: 2, deadLetter: 'dead' });
    await waitForCount(w, 'failed', 2);
    assert.equal(await q.getJob(job.id), undefined);
    assert.deepEqual(await q.getJobCounts('failed', 'waiting'), { failed: 0, waiting: 0 });
    const dead = s.queue('dead');
    const moved = (await dead.getJob(`q:${job.id}`))!;
    assert.ok(moved, 'not in the dead-letter queue');
    assert.equal(moved.name, 'mail');
    assert.deepEqual(moved.data, { to: 'x@y' });
    assert.equal(await moved.getState(), 'waiting');
    assert.deepEqual(await dead.getJobCounts('waiting'), { waiting: 1 });
  });

  for (const withIndex of [true, false]) {
    it(`keeps a dead letter's failedReason, stack trace, attempts and origin, also reopened ${withIndex ? 'from the index' : 'with the index deleted'}`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue();
      const w = s.worker('q', async (job) => {
        throw new Error(`card declined on attempt ${job.attemptsMade + 1}`);
      });
      const job = await q.add('charge', { card: 'x' }, { attempts: 3, deadLetter: 'dead' });
      await waitForCount(w, 'failed', 3);
      const describe = async (dead: Queue): Promise<unknown> => {
        const moved = (await dead.getJob(`q:${job.id}`))!;
        assert.ok(moved, 'not in the dead-letter queue');
        return {
          failedReason: moved.failedReason, stack: moved.stacktrace.map((l) => l.split('\n')[0]),
          stackHasFrames: moved.stacktrace[0]?.includes('\n    at ') ?? false, attemptsMade: moved.attemptsMade,
          origin: moved.origin, json: (moved.toJSON() as { origin?: unknown }).origin, data: moved.data, name: moved.name,
        };
      };
      const expected = {
        failedReason: 'card declined on attempt 3', stack: ['Error: card declined on attempt 3'], stackHasFrames: true,
        attemptsMade: 3, origin: { queue: 'q', jobId: job.id }, json: { queue: 'q', jobId: job.id }, data: { card: 'x' }, name: 'charge',
      };
      const dead = s.queue('dead');
      assert.deepEqual(await describe(dead), expected);
      await w.close();
      await dead.close();
      await q.close(); // the last holder of the dead-letter queue's owner: its close writes the index
      const reopened = setup(t, { crashCopyOf: s.dir });
      if (!withIndex) fs.rmSync(path.join(reopened.dir, 'dead', 'index'));
      else assert.equal(fs.existsSync(path.join(reopened.dir, 'dead', 'index')), true);
      assert.deepEqual(await describe(reopened.queue('dead')), expected);
    });
  }

  it('moves nothing from an encrypted queue into a dead-letter queue open without encryption', SAFETY, async (t) => {
    const s = setup(t);
    const key = randomBytes(32);
    const dead = s.queue('dead');
    await dead.waitUntilReady();
    const q = s.queue('q', { encryption: { key } });
    const w = s.worker('q', async () => {
      throw new Error('secret-reason');
    }, { encryption: { key } });
    const errors: SpoolError[] = [];
    w.on('error', (err) => errors.push(err as SpoolError));
    const job = await q.add('x', { pin: 'secret-data' }, { deadLetter: 'dead' });
    await waitFor(w, 'failed');
    assert.deepEqual(errors.map((e) => e.code), ['ERR_OPTIONS_CONFLICT']);
    assert.equal(await (await q.getJob(job.id))!.getState(), 'failed');
    assert.deepEqual(await dead.getJobCounts('waiting'), { waiting: 0 });
  });

  it('leaves a failed job alone that is retried before its move is made', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const job = await q.add('x', null, { deadLetter: 'dead' });
    // Retried from inside the owner's 'failed' event: Job.retry() logs its RETRY before its first await, so it
    // lands before the move, which waits for the FAIL to be durable.
    q.once('failed', () => void job.retry());
    let runs = 0;
    const w = s.worker('q', async () => {
      if (++runs === 1) throw new Error('first');
      return 'second';
    });
    const [, result] = await waitFor(w, 'completed');
    assert.equal(result, 'second');
    assert.equal(await (await q.getJob(job.id))!.getState(), 'completed');
    assert.equal(await s.queue('dead').getJob(`q:${job.id}`), undefined);
  });

  it('does not move a job that fails an attempt but is retried', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let runs = 0;
    const w = s.worker('q', async () => {
      if (++runs === 1) throw new Error('once');
      return 'ok';
    });
    const job = await q.add('mail', null, { attempts: 2, deadLetter: 'dead' });
    await waitFor(w, 'completed');
    const dead = s.queue('dead');
    assert.equal(await dead.getJob(`q:${job.id}`), undefined);
    assert.equal(await (await q.getJob(job.id))!.getState(), 'completed');
  });
});
