/**
 * Queue through the public API: every method, its results and its errors, with a Worker where jobs must run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as path from 'node:path';
import { readLog, type Job, type Queue } from '../../lib/index.js';
import { REC, encodeEvent } from '../../lib/store/events.js';
import { SAFETY, deferred, setup, waitFor, waitForCount } from '../helpers/queue.js';

const ids = (jobs: Array<Job<any, any>>): string[] => jobs.map((j) => j.id);

/** A queue holding one job of every state but active: completed "good", failed "bad", delayed "later", waiting "waits". */
async function oneOfEach(s: ReturnType<typeof setup>): Promise<Queue> {
  const q = s.queue();
  const w = s.worker('q', async (job) => {
    if (job.name === 'bad') throw new Error('bad job');
    return 'ok';
  });
  const done = waitForCount(w, 'completed', 1);
  const failed = waitForCount(w, 'failed', 1);
  await q.add('good', 1);
  await q.add('bad', 2);
  await Promise.all([done, failed]);
  await w.close();
  await q.add('later', 3, { delay: 60_000 });
  await q.add('waits', 4);
  return q;
}

describe('Queue.add', () => {
  it('gives jobs generated ids "1", "2", "3" in the order they are added', SAFETY, async (t) => {
    const q = setup(t).queue();
    const jobs = [await q.add('a', null), await q.add('b', null), await q.add('c', null)];
    assert.deepEqual(ids(jobs), ['1', '2', '3']);
  });

  it('returns a Job with the name, data, options and timestamp it was added with', SAFETY, async (t) => {
    const q = setup(t).queue();
    const before = Date.now();
    const job = await q.add('mail', { to: 'x@y', n: [1, 2] }, { priority: 3, attempts: 2 });
    const after = Date.now();
    assert.equal(job.name, 'mail');
    assert.deepEqual(job.data, { to: 'x@y', n: [1, 2] });
    assert.deepEqual(job.opts, { priority: 3, attempts: 2, delay: 0 });
    assert.equal(job.queueName, 'q');
    assert.equal(job.attemptsMade, 0);
    assert.ok(job.timestamp >= before && job.timestamp <= after, `timestamp ${job.timestamp} not in [${before}, ${after}]`);
  });

  it('keeps data of every JSON type as it was added', SAFETY, async (t) => {
    const q = setup(t).queue();
    const values = [0, -1.5, 'text', '', true, null, [], {}, { nested: { deep: ['é', '✓'] } }];
    for (const v of values) {
      const job = await q.add('v', v);
      assert.deepEqual((await q.getJob(job.id))!.data, v);
    }
  });
});

describe('Queue.addBulk', () => {
  it('adds every job in order and returns them with consecutive ids', SAFETY, async (t) => {
    const q = setup(t).queue();
    const jobs = await q.addBulk([
      { name: 'a', data: 1 },
      { name: 'b', data: 2, opts: { priority: 1 } },
      { name: 'c', data: 3, opts: { jobId: 'custom' } },
    ]);
    assert.deepEqual(ids(jobs), ['1', '2', 'custom']);
    assert.deepEqual(jobs.map((j) => j.data), [1, 2, 3]);
    assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 3 });
  });

  for (const [what, bad, code] of [
    ['an invalid option', { name: 'b', data: 2, opts: { attempts: 0 } }, 'ERR_INVALID_ARG'],
    ['data that is not JSON', { name: 'b', data: { n: 1n } }, 'ERR_INVALID_ARG'],
    ['data over maxDataBytes', { name: 'b', data: 'x'.repeat(2048) }, 'ERR_TOO_LARGE'],
    ['a name that is not a string', { name: 7, data: 2 }, 'ERR_INVALID_ARG'],
  ] as const) {
    it(`adds nothing when one job has ${what}`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue('q', { maxDataBytes: 1024 });
      await q.add('first', 0);
      const records = s.records();
      const batch = [{ name: 'a', data: 1 }, bad, { name: 'c', data: 3 }] as Array<{ name: string; data: unknown }>;
      await assert.rejects(q.addBulk(batch), { code });
      assert.equal(s.records(), records);
      assert.deepEqual(await q.getJobCounts(), { waiting: 1, paused: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
      assert.deepEqual(ids(await q.getJobs()), ['1']);
    });
  }

  it('adds nothing and writes nothing for an empty list', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    await q.add('first', null);
    assert.deepEqual(await q.addBulk([]), []);
    assert.equal(s.records(), 1);
  });

  it('refuses an argument that is not an array', SAFETY, async (t) => {
    const q = setup(t).queue();
    await assert.rejects(q.addBulk({ name: 'a', data: 1 } as never), { code: 'ERR_INVALID_ARG' });
  });

  it('writes one job for a jobId repeated within the batch', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const jobs = await q.addBulk([
      { name: 'a', data: 1, opts: { jobId: 'same' } },
      { name: 'b', data: 2, opts: { jobId: 'same' } },
    ]);
    assert.deepEqual(ids(jobs), ['same', 'same']);
    assert.deepEqual(jobs.map((j) => j.data), [1, 1]);
    assert.equal(s.records(), 1);
  });
});

describe('ADD records', () => {
  it('hold exactly the JSON of the job event, whatever the name, id, data and options', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const jobs = [
      { name: 'plain', data: { n: 1 } },
      { name: 'quote " back\\slash \u2028 \u00e9 \ud83d\ude00', data: 'text "quoted"\n' },
      { name: 'custom', data: [1, null, true], opts: { jobId: 'id "with" quotes', priority: 3, attempts: 2 } },
      { name: 'no data', data: undefined },
      { name: 'delayed', data: 0, opts: { delay: 60_000, backoff: { type: 'fixed', delay: 5 } } },
    ];
    await q.addBulk(jobs as Array<{ name: string; data: unknown }>);
    await q.add('single', { x: 'y' });
    const payloads: string[] = [];
    readLog(path.join(s.dir, 'q'), { onEntry: (e) => void (e.type === REC.ADD && payloads.push(e.payload().toString('utf8'))) });
    assert.equal(payloads.length, jobs.length + 1);
    for (const p of payloads) assert.equal(p, encodeEvent(JSON.parse(p) as object).toString('utf8'));
    assert.deepEqual(payloads.map((p) => (JSON.parse(p) as { n: string }).n), [...jobs.map((j) => j.name), 'single']);
    assert.equal((await q.getJob('id "with" quotes'))?.name, 'custom');
  });
});

describe('Queue.add with a jobId', () => {
  it('writes one job for two adds of the same id made at the same time', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const [a, b] = await Promise.all([q.add('a', 1, { jobId: 'same' }), q.add('b', 2, { jobId: 'same' })]);
    assert.deepEqual([a.id, a.name, a.data, b.id, b.name, b.data], ['same', 'a', 1, 'same', 'a', 1]);
    assert.equal(s.records(), 1);
  });
});

describe('Queue events', () => {
  it('emits waiting, delayed, active, progress, completed, failed and removed with the job id', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const events: unknown[] = [];
    for (const ev of ['waiting', 'delayed', 'active', 'progress', 'completed', 'failed', 'removed'] as const) {
      q.on(ev, (e: Record<string, unknown>) => events.push([ev, ev === 'delayed' ? { ...e, delay: typeof e.delay } : e]));
    }
    const later = await q.add('later', null, { delay: 60_000 });
    const w = s.worker('q', async (job) => {
      if (job.name === 'bad') throw new Error('bad one');
      await job.updateProgress(5);
      return 'fine';
    });
    const finished = Promise.all([waitFor(w, 'completed'), waitFor(w, 'failed')]);
    await w.waitUntilReady();
    const good = await q.add('good', null);
    const bad = await q.add('bad', null);
    await finished;
    await q.remove(later.id);
    const byEvent = (name: string): unknown[] => events.filter((e) => (e as unknown[])[0] === name).map((e) => (e as unknown[])[1]);
    assert.deepEqual(byEvent('delayed'), [{ jobId: later.id, delay: 'number' }]);
    assert.deepEqual(byEvent('waiting'), [{ jobId: good.id }, { jobId: bad.id }]);
    assert.deepEqual(byEvent('progress'), [{ jobId: good.id, data: 5 }]);
    assert.deepEqual(byEvent('completed'), [{ jobId: good.id, returnvalue: 'fine' }]);
    assert.deepEqual(byEvent('failed'), [{ jobId: bad.id, failedReason: 'bad one', final: true }]);
    assert.deepEqual(byEvent('removed'), [{ jobId: later.id }]);
    assert.deepEqual(byEvent('active'), [{ jobId: good.id }, { jobId: bad.id }]);
  });
});

describe('Queue.getJob', () => {
  it('returns undefined for an id it does not hold', SAFETY, async (t) => {
    const q = setup(t).queue();
    await q.add('a', 1);
    assert.equal(await q.getJob('2'), undefined);
    assert.equal(await q.getJob('nope'), undefined);
  });

  it('returns the data, return value and times of a completed job', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => ({ doubled: (job.data as number) * 2 }));
    const added = await q.add('double', 21);
    await waitFor(w, 'completed');
    const job = (await q.getJob(added.id))!;
    assert.equal(job.data, 21);
    assert.deepEqual(job.returnvalue, { doubled: 42 });
    assert.equal(job.attemptsMade, 1);
    assert.equal(job.failedReason, undefined);
    assert.ok(job.processedOn! >= job.timestamp, 'processedOn before timestamp');
    assert.ok(job.finishedOn! >= job.processedOn!, 'finishedOn before processedOn');
  });

  it('returns the failed reason and stack of a failed job', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => {
      throw new TypeError('no such mailbox');
    });
    const added = await q.add('send', null);
    await waitFor(w, 'failed');
    const job = (await q.getJob(added.id))!;
    assert.equal(job.failedReason, 'no such mailbox');
    assert.equal(job.returnvalue, undefined);
    assert.equal(job.stacktrace.length, 1);
    assert.match(job.stacktrace[0]!, /^TypeError: no such mailbox\n\s+at /);
    assert.equal(await job.getState(), 'failed');
  });
});

describe('Queue.getJobs', () => {
  it('lists waiting jobs by priority then insertion with asc, and the reverse without', SAFETY, async (t) => {
    const q = setup(t).queue();
    for (const [name, priority] of [['a', 2], ['b', 0], ['c', 1], ['d', 0], ['e', 2], ['f', 1]] as const) {
      await q.add(name, null, { priority });
    }
    const asc = await q.getJobs(['waiting'], 0, -1, true);
    assert.deepEqual(asc.map((j) => j.name), ['b', 'd', 'c', 'f', 'a', 'e']);
    const desc = await q.getJobs(['waiting']);
    assert.deepEqual(desc.map((j) => j.name), ['e', 'a', 'f', 'c', 'd', 'b']);
  });

  it('lists completed jobs newest first, or oldest first with asc', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => job.name);
    const done = waitForCount(w, 'completed', 4);
    await q.addBulk(['a', 'b', 'c', 'd'].map((name) => ({ name, data: null })));
    await done;
    assert.deepEqual((await q.getJobs('completed')).map((j) => j.name), ['d', 'c', 'b', 'a']);
    assert.deepEqual((await q.getJobs('completed', 0, -1, true)).map((j) => j.name), ['a', 'b', 'c', 'd']);
  });

  it('returns the range from start to end inclusive', SAFETY, async (t) => {
    const q = setup(t).queue();
    await q.addBulk(['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, data: null })));
    assert.deepEqual((await q.getJobs('waiting', 1, 3, true)).map((j) => j.name), ['b', 'c', 'd']);
    assert.deepEqual((await q.getJobs('waiting', 3, -1, true)).map((j) => j.name), ['d', 'e']);
    assert.deepEqual(await q.getJobs('waiting', 9, 12, true), []);
  });

  it('lists the jobs of several states, state by state', SAFETY, async (t) => {
    const q = await oneOfEach(setup(t));
    assert.deepEqual((await q.getJobs(['failed', 'delayed', 'completed'])).map((j) => j.name), ['bad', 'later', 'good']);
    assert.deepEqual((await q.getJobs(['waiting'])).map((j) => j.name), ['waits']);
  });

  it('lists waiting jobs of a paused queue under paused', SAFETY, async (t) => {
    const q = setup(t).queue();
    await q.pause();
    await q.add('a', null);
    assert.deepEqual((await q.getJobs('paused')).map((j) => j.name), ['a']);
  });

  it('refuses an unknown state', SAFETY, async (t) => {
    const q = setup(t).queue();
    await assert.rejects(q.getJobs(['waiting', 'prioritized' as never]), { code: 'ERR_INVALID_ARG' });
  });
});

describe('Queue.getJobCounts', () => {
  it('counts the jobs of every state', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    const w = s.worker('q', async (job) => {
      if (job.name === 'bad') throw new Error('bad');
      if (job.name === 'hold') await gate.promise;
      return 1;
    });
    t.after(() => gate.resolve());
    const seen = waitFor(w, 'active', (job: Job) => job.name === 'hold');
    await q.addBulk([{ name: 'good', data: 1 }, { name: 'bad', data: 2 }, { name: 'hold', data: 3 }]);
    await seen;
    await q.add('waits', 4);
    await q.add('later', 5, { delay: 60_000 });
    assert.deepEqual(await q.getJobCounts(), { waiting: 1, paused: 0, delayed: 1, active: 1, completed: 1, failed: 1 });
    assert.deepEqual(await q.getJobCounts('completed', 'failed'), { completed: 1, failed: 1 });
    assert.equal(await q.count(), 2);
  });
});

describe('Queue.pause and resume', () => {
  it('reports whether the queue is paused', SAFETY, async (t) => {
    const q = setup(t).queue();
    assert.equal(await q.isPaused(), false);
    await q.pause();
    assert.equal(await q.isPaused(), true);
    await q.resume();
    assert.equal(await q.isPaused(), false);
  });

  it('holds waiting jobs as paused, and processes them only after resume', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    await q.pause();
    let calls = 0;
    const w = s.worker('q', async () => {
      calls++;
      return 'done';
    });
    await w.waitUntilReady();
    const job = await q.add('a', null);
    await q.add('b', null);
    assert.equal(await job.getState(), 'paused');
    assert.deepEqual(await q.getJobCounts('waiting', 'paused'), { waiting: 0, paused: 2 });
    assert.equal(calls, 0);
    const completed = waitForCount(w, 'completed', 2);
    const resumedAt = Date.now();
    await q.resume();
    await completed;
    assert.equal(calls, 2);
    const after = (await q.getJob(job.id))!;
    assert.ok(after.processedOn! >= resumedAt, `processed at ${after.processedOn}, before resume at ${resumedAt}`);
    assert.deepEqual(await q.getJobCounts('completed', 'paused'), { completed: 2, paused: 0 });
  });

  it('writes nothing when paused twice or resumed while running', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    await q.add('a', null);
    await q.resume();
    assert.equal(s.records(), 1);
    await q.pause();
    await q.pause();
    assert.equal(s.records(), 2);
  });

  it('emits paused and resumed', SAFETY, async (t) => {
    const q = setup(t).queue();
    const paused = waitFor(q, 'paused');
    await q.pause();
    await paused;
    const resumed = waitFor(q, 'resumed');
    await q.resume();
    await resumed;
  });
});

describe('Queue.remove', () => {
  it('removes a job and says whether there was one', SAFETY, async (t) => {
    const q = setup(t).queue();
    const job = await q.add('a', null);
    await q.add('b', null);
    assert.equal(await q.remove(job.id), true);
    assert.equal(await q.getJob(job.id), undefined);
    assert.equal(await job.getState(), 'unknown');
    assert.equal(await q.remove(job.id), false);
    assert.equal(await q.remove('never'), false);
    assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 1 });
  });

  it('refuses to remove an active job', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    const w = s.worker('q', () => gate.promise);
    const active = waitFor(w, 'active');
    const job = await q.add('a', null);
    await active;
    await assert.rejects(q.remove(job.id), { code: 'ERR_JOB_ACTIVE' });
    assert.equal(await job.getState(), 'active');
    const completed = waitFor(w, 'completed');
    gate.resolve();
    await completed;
    assert.equal(await q.remove(job.id), true);
  });
});

describe('Queue.retryJobs', () => {
  /** Three failed jobs "a", "b", "c" (failed in that order) and one completed "d", with no worker left. */
  async function failedThree(s: ReturnType<typeof setup>): Promise<Queue> {
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      if (job.name !== 'd') throw new Error(`fail ${job.name}`);
      return 'd';
    });
    const failed = waitForCount(w, 'failed', 3);
    const completed = waitFor(w, 'completed');
    await q.addBulk(['a', 'b', 'c', 'd'].map((name) => ({ name, data: null })));
    await Promise.all([failed, completed]);
    await w.close();
    return q;
  }

  it('sends every failed job back in batches of count (as BullMQ), oldest first, with attempts reset', SAFETY, async (t) => {
    const q = await failedThree(setup(t));
    assert.equal(await q.retryJobs({ state: 'failed', count: 2 }), 3);
    assert.deepEqual(await q.getJobCounts('waiting', 'failed', 'completed'), { waiting: 3, failed: 0, completed: 1 });
    const waiting = await q.getJobs('waiting', 0, -1, true);
    assert.deepEqual(waiting.map((j) => j.name).slice(0, 2), ['a', 'b']);
    for (const job of waiting) {
      assert.equal(job.attemptsMade, 0);
      assert.equal(job.failedReason, undefined);
    }
  });

  it('sends every failed job back by default', SAFETY, async (t) => {
    const q = await failedThree(setup(t));
    assert.equal(await q.retryJobs(), 3);
    assert.deepEqual(await q.getJobCounts('waiting', 'failed'), { waiting: 3, failed: 0 });
  });

  it('sends completed jobs back with state completed, and they run again', SAFETY, async (t) => {
    const s = setup(t);
    const q = await failedThree(s);
    assert.equal(await q.retryJobs({ state: 'completed' }), 1);
    const job = (await q.getJobs('waiting'))[0]!;
    assert.equal(job.name, 'd');
    assert.equal(job.returnvalue, undefined);
    const w = s.worker('q', async () => 'again');
    await waitFor(w, 'completed');
    assert.equal((await q.getJob(job.id))!.returnvalue, 'again');
  });

  it('refuses a state other than failed or completed', SAFETY, async (t) => {
    const q = setup(t).queue();
    await assert.rejects(q.retryJobs({ state: 'active' as never }), { code: 'ERR_INVALID_ARG' });
  });
});

describe('Queue.promote', () => {
  it('makes a delayed job run now', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => 'ran');
    const job = await q.add('later', null, { delay: 60_000 });
    assert.equal(await job.getState(), 'delayed');
    const completed = waitFor(w, 'completed');
    await q.promote(job.id);
    await completed;
    const done = (await q.getJob(job.id))!;
    assert.equal(done.returnvalue, 'ran');
    assert.ok(done.processedOn! - done.timestamp < 60_000);
  });

  it('refuses a job that is not delayed, or unknown', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const job = await q.add('now', null);
    const records = s.records();
    await assert.rejects(q.promote(job.id), { code: 'ERR_INVALID_ARG' });
    await assert.rejects(q.promote('nope'), { code: 'ERR_INVALID_ARG' });
    assert.equal(s.records(), records);
  });
});

describe('Queue.drain', () => {
  it('removes waiting jobs and keeps delayed and finished ones', SAFETY, async (t) => {
    const q = await oneOfEach(setup(t));
    await q.add('waits too', 5);
    await q.drain();
    assert.deepEqual(await q.getJobCounts(), { waiting: 0, paused: 0, delayed: 1, active: 0, completed: 1, failed: 1 });
  });

  it('removes delayed jobs too when asked', SAFETY, async (t) => {
    const q = await oneOfEach(setup(t));
    await q.drain(true);
    assert.deepEqual(await q.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 1, failed: 1 });
  });

  it('removes the waiting jobs of a paused queue', SAFETY, async (t) => {
    const q = setup(t).queue();
    await q.pause();
    await q.addBulk([{ name: 'a', data: 1 }, { name: 'b', data: 2 }]);
    await q.drain();
    assert.deepEqual(await q.getJobCounts('paused', 'waiting'), { paused: 0, waiting: 0 });
  });
});

describe('Queue.clean', () => {
  async function completedFour(s: ReturnType<typeof setup>): Promise<Queue> {
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      if (job.name === 'x') throw new Error('x');
      return job.name;
    });
    const done = waitForCount(w, 'completed', 4);
    const failed = waitFor(w, 'failed');
    await q.addBulk(['a', 'b', 'c', 'x', 'd'].map((name) => ({ name, data: null })));
    await Promise.all([done, failed]);
    return q;
  }

  it('removes the jobs of a state finished longer ago than grace, oldest first, and returns their ids', SAFETY, async (t) => {
    const q = await completedFour(setup(t));
    assert.deepEqual(await q.clean(60_000, 0, 'completed'), []);
    assert.deepEqual(await q.clean(0, 0, 'completed'), ['1', '2', '3', '5']);
    assert.deepEqual(await q.getJobCounts('completed', 'failed'), { completed: 0, failed: 1 });
  });

  it('removes at most limit jobs', SAFETY, async (t) => {
    const q = await completedFour(setup(t));
    assert.deepEqual(await q.clean(0, 2), ['1', '2']);
    assert.deepEqual((await q.getJobs('completed', 0, -1, true)).map((j) => j.name), ['c', 'd']);
  });

  it('cleans failed and waiting jobs when asked', SAFETY, async (t) => {
    const q = await completedFour(setup(t));
    assert.deepEqual(await q.clean(0, 0, 'failed'), ['4']);
    await q.pause();
    const w = await q.add('w', null);
    assert.deepEqual(await q.clean(0, 0, 'paused'), [w.id]);
    assert.deepEqual(await q.getJobCounts('completed', 'failed', 'paused'), { completed: 4, failed: 0, paused: 0 });
  });

  for (const [what, args] of [
    ['a negative grace', [-1, 0, 'completed']],
    ['a limit that is not an integer', [0, 1.5, 'completed']],
    ['an unknown state', [0, 0, 'finished']],
  ] as const) {
    it(`refuses ${what}`, SAFETY, async (t) => {
      const q = setup(t).queue();
      await assert.rejects(q.clean(...(args as unknown as [number, number, 'completed'])), { code: 'ERR_INVALID_ARG' });
    });
  }
});

describe('Queue.obliterate', () => {
  it('removes every job and unpauses the queue', SAFETY, async (t) => {
    const q = await oneOfEach(setup(t));
    await q.pause();
    await q.obliterate();
    assert.deepEqual(await q.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
    assert.equal(await q.isPaused(), false);
    assert.deepEqual(await q.getJobs(), []);
  });

  it('refuses while a job is active and removes nothing', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    const w = s.worker('q', () => gate.promise);
    t.after(() => gate.resolve());
    const active = waitFor(w, 'active');
    await q.add('a', null);
    await q.add('b', null);
    await active;
    await assert.rejects(q.obliterate(), { code: 'ERR_JOB_ACTIVE' });
    assert.deepEqual(await q.getJobCounts('active', 'waiting'), { active: 1, waiting: 1 });
  });

  it('removes every job with force, even an active one', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    const w = s.worker('q', () => gate.promise);
    const active = waitFor(w, 'active');
    await q.add('a', null);
    await q.add('b', null);
    await active;
    await q.obliterate({ force: true });
    assert.deepEqual(await q.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
    gate.resolve();
    await w.close();
    assert.deepEqual(await q.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
  });
});

describe('Queue.close', () => {
  it('refuses every call after close with ERR_CLOSED', SAFETY, async (t) => {
    const q = setup(t).queue();
    await q.add('a', null);
    await q.close();
    await q.close(); // a second close is fine
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['add', () => q.add('b', null)],
      ['addBulk', () => q.addBulk([{ name: 'b', data: null }])],
      ['getJob', () => q.getJob('1')],
      ['getJobs', () => q.getJobs()],
      ['getJobCounts', () => q.getJobCounts()],
      ['count', () => q.count()],
      ['pause', () => q.pause()],
      ['resume', () => q.resume()],
      ['isPaused', () => q.isPaused()],
      ['remove', () => q.remove('1')],
      ['retryJobs', () => q.retryJobs()],
      ['promote', () => q.promote('1')],
      ['drain', () => q.drain()],
      ['clean', () => q.clean(0, 0)],
      ['obliterate', () => q.obliterate()],
      ['waitUntilReady', () => q.waitUntilReady()],
    ];
    for (const [name, call] of calls) await assert.rejects(call(), { code: 'ERR_CLOSED' }, name);
  });
});
