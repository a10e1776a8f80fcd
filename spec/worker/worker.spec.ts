/**
 * Worker through the public API: processors (inline, a map by name, a module in threads), concurrency, the
 * BullMQ-shaped events, failures, leases, and close().
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readLog, type Job } from '../../lib/index.js';
import { REC } from '../../lib/store/events.js';
import { TestClock } from '../../lib/queue/clock.js';
import { SAFETY, aborted, advanceUntil, deferred, setup, until, waitFor, waitForCount } from '../helpers/queue.js';
import { flipByte } from '../helpers/tmp.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}.js`, import.meta.url);

describe('Worker processors', () => {
  it('runs an inline function with the job and its signal, and completes the job with its result', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let seen: { data: unknown; name: string; signal: boolean } | undefined;
    const w = s.worker('q', async (job, _token, signal) => {
      seen = { data: job.data, name: job.name, signal: signal instanceof AbortSignal && !signal.aborted };
      return { sum: (job.data as number[]).reduce((a, b) => a + b, 0) };
    });
    const job = await q.add('sum', [1, 2, 3]);
    const [done, result, prev] = await waitFor(w, 'completed');
    assert.deepEqual(seen, { data: [1, 2, 3], name: 'sum', signal: true });
    assert.equal(done.id, job.id);
    assert.deepEqual(result, { sum: 6 });
    assert.equal(prev, 'active');
    assert.deepEqual(done.returnvalue, { sum: 6 });
    assert.equal(done.attemptsMade, 1);
  });

  it('runs a synchronous function too', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', (job) => `sync ${job.data}`);
    await q.add('s', 1);
    const [, result] = await waitFor(w, 'completed');
    assert.equal(result, 'sync 1');
  });

  it('runs the handler named after the job from a map, and fails a job with no handler with ERR_NO_HANDLER', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', {
      greet: async (job: Job) => `hello ${job.data}`,
      shout: async (job: Job) => String(job.data).toUpperCase(),
    });
    const results = new Map<string, unknown>();
    w.on('completed', (job: Job, r: unknown) => results.set(job.name, r));
    const failed = waitFor(w, 'failed');
    await q.add('greet', 'ann');
    await q.add('shout', 'hey');
    const odd = await q.add('whisper', 'psst', { attempts: 3 });
    const [job, err] = await failed;
    assert.equal(job.id, odd.id);
    assert.equal(err.code, 'ERR_NO_HANDLER');
    await waitFor(w, 'drained');
    assert.deepEqual(Object.fromEntries(results), { greet: 'hello ann', shout: 'HEY' });
    const after = (await q.getJob(odd.id))!;
    assert.match(after.failedReason!, /whisper/);
    assert.equal(await after.getState(), 'failed');
  });

  it('runs a processor module in a worker thread and reports its progress and logs', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', fixture('behaviours'), { threads: 1 });
    const progress: unknown[] = [];
    w.on('progress', (job: Job, p: unknown) => progress.push([job.name, p]));
    const job = await q.add('progress', null);
    const [, result] = await waitFor(w, 'completed');
    assert.equal(result, 'reported');
    assert.deepEqual(progress, [['progress', 10], ['progress', { step: 2 }]]);
    const after = (await q.getJob(job.id))!;
    assert.deepEqual(after.progress, { step: 2 });
    assert.deepEqual(await after.getLogs(), ['first', 'second']);
  });
});

describe('Worker concurrency', () => {
  for (const n of [1, 3]) {
    it(`never runs more than ${n} jobs at once, and does run ${n}`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue();
      let running = 0;
      let most = 0;
      const full = deferred();
      const w = s.worker('q', async () => {
        most = Math.max(most, ++running);
        if (running === n) full.resolve();
        await full.promise; // the first n wait for each other: the worker must run n at once
        await new Promise((r) => setImmediate(r));
        running--;
      }, { concurrency: n });
      const all = waitForCount(w, 'completed', 10);
      await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: `j${i}`, data: i })));
      await all;
      assert.equal(most, n);
    });
  }
});

describe('Worker lookahead', () => {
  /** ACTIVE records in the queue's log: one per ticket. */
  function tickets(dir: string): number {
    let n = 0;
    readLog(path.join(dir, 'q'), { onEntry: (e) => void (e.type === REC.ACTIVE && n++) });
    return n;
  }

  it('claims short jobs of a backlog many to a ticket, and still runs one at a time', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    await q.pause();
    await q.addBulk(Array.from({ length: 2_000 }, (_, i) => ({ name: 'j', data: i })));
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const w = s.worker('q', async (job) => {
      most = Math.max(most, ++running);
      order.push(job.data as number);
      await null;
      running--;
    }, { concurrency: 1 });
    const all = waitForCount(w, 'completed', 2_000);
    await q.resume();
    await all;
    assert.equal(most, 1);
    assert.deepEqual(order, Array.from({ length: 2_000 }, (_, i) => i), 'jobs ran in the order added');
    const cut = tickets(s.dir);
    // One job per ticket would make 2,000; the lookahead of a no-op job is the cap of 256 jobs.
    assert.ok(cut <= 200, `${cut} tickets for 2,000 short jobs`);
  });

  it('does not claim a job beyond its free slots while the queue has no backlog', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    t.after(() => gate.resolve());
    const w = s.worker('q', async (job) => {
      if (job.name === 'hold') await gate.promise;
    }, { concurrency: 1 });
    // Short jobs first, so that the worker has measured a run time that would allow a lookahead.
    await q.addBulk(Array.from({ length: 20 }, () => ({ name: 'short', data: null })));
    await waitForCount(w, 'completed', 20);
    const held = waitFor(w, 'active', (job: Job) => job.name === 'hold');
    await q.add('hold', null);
    await held;
    const next = await q.add('next', null, { priority: 1 });
    const urgent = await q.add('urgent', null, { priority: 0 });
    assert.equal(await next.getState(), 'waiting');
    assert.equal(await urgent.getState(), 'waiting');
    const ran: string[] = [];
    w.on('active', (job: Job) => ran.push(job.name));
    const done = waitForCount(w, 'completed', 2);
    gate.resolve();
    await done;
    assert.deepEqual(ran, ['urgent', 'next']);
  });
});

describe('Worker events', () => {
  it('emits active, progress, completed and drained with BullMQ arguments, in that order', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      await job.updateProgress(50);
      return 'r';
    });
    const events: unknown[] = [];
    w.on('active', (job: Job, prev: string) => events.push(['active', job.id, prev]));
    w.on('progress', (job: Job, p: unknown) => events.push(['progress', job.id, p]));
    w.on('completed', (job: Job, result: unknown, prev: string) => events.push(['completed', job.id, result, prev]));
    w.on('drained', (...args: unknown[]) => events.push(['drained', ...args]));
    const drained = waitFor(w, 'drained');
    const job = await q.add('e', null);
    await drained;
    assert.deepEqual(events, [['active', job.id, 'waiting'], ['progress', job.id, 50], ['completed', job.id, 'r', 'active'], ['drained']]);
  });

  it('emits failed with the job, the error and the previous state, once per failed attempt', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      throw new RangeError(`attempt ${job.attemptsMade + 1}`);
    });
    const failures = waitForCount(w, 'failed', 2);
    const job = await q.add('f', null, { attempts: 2 });
    const seen = await failures;
    assert.deepEqual(seen.map(([j, err, prev]) => [j.id, err.name, err.message, prev, j.attemptsMade]), [
      [job.id, 'RangeError', 'attempt 1', 'active', 1],
      [job.id, 'RangeError', 'attempt 2', 'active', 2],
    ]);
  });

  it('emits drained once the last waiting job has run, not while jobs remain', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let completed = 0;
    const w = s.worker('q', async () => void completed++);
    await q.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: 'd', data: i })));
    await waitFor(w, 'drained');
    assert.equal(completed, 5);
    assert.deepEqual(await q.getJobCounts('waiting', 'active', 'completed'), { waiting: 0, active: 0, completed: 5 });
  });
});

describe('Worker failures', () => {
  it('keeps the reason and stack of an error, and the text of a thrown string', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      if (job.name === 'string') throw 'plain words';
      const err = new Error('disk on fire') as Error & { code: string };
      err.code = 'E_FIRE';
      throw err;
    });
    const failed = waitForCount(w, 'failed', 2);
    const a = await q.add('error', null);
    const b = await q.add('string', null);
    const [[, errA], [, errB]] = await failed;
    assert.equal(errA.code, 'E_FIRE');
    assert.equal(errB.name, 'NonError');
    const jobA = (await q.getJob(a.id))!;
    assert.equal(jobA.failedReason, 'disk on fire');
    assert.match(jobA.stacktrace[0]!, /^Error: disk on fire\n\s+at /);
    const jobB = (await q.getJob(b.id))!;
    assert.equal(jobB.failedReason, 'plain words');
  });

  it('fails a job whose processor throws synchronously', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', () => {
      throw new Error('sync throw');
    });
    await q.add('s', null);
    const [, err] = await waitFor(w, 'failed');
    assert.equal(err.message, 'sync throw');
  });

  it('drops the late result of a processor that ignored its timeout', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const late = deferred();
    const w = s.worker('q', async (_job, _token, signal) => {
      await aborted(signal);
      await new Promise((r) => setImmediate(r));
      late.resolve();
      return 'too late';
    });
    const job = await q.add('slow', null, { timeout: 50 });
    const [, err] = await waitFor(w, 'failed');
    assert.equal(err.code, 'ERR_JOB_TIMEOUT');
    let completed = false;
    w.on('completed', () => (completed = true));
    await late.promise;
    await new Promise((r) => setImmediate(r));
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'failed');
    assert.equal(after.returnvalue, undefined);
    assert.equal(completed, false);
  });

  for (const [what, result, code] of [
    ['a value JSON cannot hold', { n: 1n }, 'ERR_INVALID_ARG'],
    ['a value over maxDataBytes', 'x'.repeat(4096), 'ERR_TOO_LARGE'],
  ] as const) {
    it(`fails a job whose processor returns ${what} with ${code}`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue('q', { maxDataBytes: 1024 });
      const w = s.worker('q', async () => result, { maxDataBytes: 1024 });
      const job = await q.add('r', null);
      const [failedJob, err] = await waitFor(w, 'failed');
      assert.equal(failedJob.id, job.id);
      assert.equal(err.code, code);
      const after = (await q.getJob(job.id))!;
      assert.equal(await after.getState(), 'failed');
      assert.equal(after.attemptsMade, 1);
    });
  }

  it('aborts a job whose lease is taken back with ERR_LEASE_LOST, counts a stall (not an attempt) and runs it again', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    const q = s.queue('q');
    const reasons: unknown[] = [];
    let runs = 0;
    const w = s.worker('q', async (job, _token, signal) => {
      if (runs++ > 0) return 'second run';
      reasons.push(await aborted(signal));
      throw reasons[0];
    });
    const active = waitFor(w, 'active');
    const stalled = waitFor(w, 'stalled');
    const completed = waitFor(w, 'completed');
    const job = await q.add('l', null, { attempts: 2 });
    await active;
    const taken = path.join(s.dir, 'q', 'tickets', 'taken');
    for (const name of fs.readdirSync(taken)) fs.rmSync(path.join(taken, name)); // the lease is gone
    // The worker's next renewal (every leaseMs/3 on the test clock) finds it gone.
    const [stalledId, prev] = await advanceUntil(clock, stalled, 1_000, 'the worker saw its lease gone');
    assert.equal(stalledId, job.id);
    assert.equal(prev, 'active');
    const [done, result] = await advanceUntil(clock, completed, 1_000, 'the job ran again');
    assert.equal(done.id, job.id);
    assert.equal(result, 'second run');
    assert.equal((reasons[0] as { code?: string }).code, 'ERR_LEASE_LOST');
    assert.equal((await q.getJob(job.id))!.attemptsMade, 1, 'the stall counted no attempt: only the completion did');
  });
});

describe('Worker errors', () => {
  /** A closed queue of 60 jobs whose first (sealed) segment has a damaged record. */
  async function damaged(s: ReturnType<typeof setup>, withIndex: boolean): Promise<void> {
    const q = s.queue('q', { maxSegmentBytes: 4096 });
    await q.addBulk(Array.from({ length: 60 }, (_, i) => ({ name: 'j', data: { i, pad: 'x'.repeat(100) } })));
    await q.close();
    const log = path.join(s.dir, 'q', 'log');
    flipByte(path.join(log, fs.readdirSync(log).sort()[0]!), 200);
    if (!withIndex) fs.rmSync(path.join(s.dir, 'q', 'index'));
  }

  it('reports damage found at open through error and runs the intact jobs, with no Queue open', SAFETY, async (t) => {
    const s = setup(t, { damaged: true });
    await damaged(s, false);
    const errors: string[] = [];
    let completed = 0;
    const w = s.worker('q', async () => void completed++);
    w.on('error', (err: Error & { code?: string }) => errors.push(err.code ?? 'no code'));
    await waitFor(w, 'drained');
    assert.deepEqual(errors, ['ERR_CORRUPT_RECORD']);
    assert.ok(completed >= 55 && completed < 60, `${completed} jobs ran of the 60, some of them in the damaged range`);
  });

  it('fails a job whose record cannot be read, with the reason, and runs the others', SAFETY, async (t) => {
    const s = setup(t, { damaged: true });
    await damaged(s, true); // the index still lists the jobs whose records are damaged
    const failures: string[] = [];
    let completed = 0;
    const w = s.worker('q', async () => void completed++);
    w.on('failed', (_job: Job, err: Error & { code?: string }) => failures.push(err.code ?? 'no code'));
    await waitFor(w, 'drained');
    assert.ok(failures.length >= 1 && failures.length <= 5, `${failures.length} jobs failed`);
    assert.deepEqual(new Set(failures), new Set(['ERR_CORRUPT_RECORD']));
    assert.equal(completed + failures.length, 60);
  });
});

describe('Worker leases', () => {
  it('keeps the lease of a job that runs longer than leaseMs by renewing it', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    const q = s.queue('q', { leaseMs: 300 });
    const gate = deferred();
    const w = s.worker('q', async () => {
      await gate.promise;
      return 'kept';
    }, { leaseMs: 300 });
    let stalls = 0;
    w.on('stalled', () => stalls++);
    q.on('stalled', () => stalls++); // the owner's side: it took the lease back
    const active = waitFor(w, 'active');
    const completed = waitFor(w, 'completed');
    const job = await q.add('long', null, { attempts: 2 });
    await active;
    await clock.advance(900); // three leases long on the test clock, renewals and the owner's lease checks firing
    gate.resolve();
    const [, result] = await completed;
    assert.equal(result, 'kept');
    assert.equal(stalls, 0);
    assert.equal((await q.getJob(job.id))!.attemptsMade, 1);
  });

  it('reports no stall for jobs that finish while their leases are being renewed', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    // fsync: each outcome takes a while to become durable, and the test clock fires a renewal (every leaseMs/3)
    // at every turn of the event loop meanwhile, so renewals land between every outcome and its durability.
    const q = s.queue('q', { leaseMs: 60, durability: 'fsync' });
    const w = s.worker('q', async () => {
      await new Promise((r) => setImmediate(r));
      return 1;
    }, { concurrency: 4, leaseMs: 60, durability: 'fsync' });
    const stalled: unknown[] = [];
    w.on('stalled', (id: string) => stalled.push(id));
    q.on('stalled', ({ jobId }) => stalled.push(jobId));
    const all = waitForCount(q, 'completed', 150);
    await q.addBulk(Array.from({ length: 150 }, (_, i) => ({ name: 'j', data: i })));
    await advanceUntil(clock, all, 20, 'every job completed', 100_000);
    assert.deepEqual(stalled, []);
    assert.deepEqual(await q.getJobCounts('completed', 'waiting', 'failed'), { completed: 150, waiting: 0, failed: 0 });
  });

  it('at lease expiry stalls the job that was running and releases, uncounted, the claimed-ahead ones not started', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    const q = s.queue('q');
    const JOBS = 60;
    const BLOCKER = 40;
    const added = await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'j', data: { i } })));
    const blocker = added[BLOCKER]!.id;
    let blocked = 0;
    const completed = waitForCount(q, 'completed', JOBS);
    // Concurrency 1 with short jobs: the worker claims ahead, so the blocker's ticket holds jobs it never starts.
    const w = s.worker('q', async (job, _token, signal) => {
      if (job.id === blocker && blocked++ === 0) throw await aborted(signal);
      return null;
    });
    const active = waitFor(w, 'active', (j: Job) => j.id === blocker);
    await active;
    // Its start is known once the log says so: the claim covers the ticket's first s jobs, START the rest.
    const startKnown = (): boolean => {
      let slot = -1;
      let t = '';
      let known = false;
      readLog(path.join(s.dir, 'q'), {
        onEntry: (e) => {
          const ev = JSON.parse(e.payload().toString()) as { t: string; j: Array<[string, number]>; s: number; n: number };
          if (e.type === REC.ACTIVE && ev.j.some(([id]) => id === blocker)) {
            t = ev.t;
            slot = ev.j.findIndex(([id]) => id === blocker);
            known ||= slot < ev.s;
          }
          if (e.type === REC.START && ev.t === t && slot < ev.n) known = true;
        },
      });
      return known;
    };
    await until(startKnown, 'the log knows the blocker started');
    const taken = path.join(s.dir, 'q', 'tickets', 'taken');
    for (const name of fs.readdirSync(taken)) fs.rmSync(path.join(taken, name)); // the lease is gone
    await advanceUntil(clock, completed, 1_000, 'every job completed'); // the owner's lease check finds it gone
    await w.close();
    await q.close(); // every record written
    const stalls: string[] = [];
    const releases: string[] = [];
    const ticketOf = new Map<string, { t: string; slot: number; s: number }>();
    // The tickets claimed before the lease check (their ACTIVE precedes the STALL): every one lost its lease file.
    // Besides the blocker's, the worker may have claimed the next one ahead while the blocker ran.
    const claimedThen = new Set<string>();
    readLog(path.join(s.dir, 'q'), {
      onEntry: (e) => {
        const ev = JSON.parse(e.payload().toString()) as { id: string; t: string; j: Array<[string, number]>; s: number };
        if (e.type === REC.STALL) stalls.push(ev.id);
        if (e.type === REC.RELEASE) releases.push(ev.id);
        if (e.type === REC.ACTIVE && stalls.length === 0) {
          claimedThen.add(ev.t);
          ev.j.forEach(([id], slot) => ticketOf.set(id, { t: ev.t, slot, s: ev.s }));
        }
      },
    });
    assert.deepEqual(stalls, [blocker], 'only the job that was running is stalled');
    const after = added.slice(BLOCKER + 1).map((j) => j.id).filter((id) => claimedThen.has(ticketOf.get(id)?.t ?? ''));
    assert.ok(after.length > 0, 'the worker held claimed-ahead jobs behind the blocker');
    assert.deepEqual(releases, after, 'the claimed-ahead jobs behind it, none started, are released');
    const q2 = s.queue('q');
    for (const id of [blocker, ...after]) assert.equal((await q2.getJob(id))!.attemptsMade, 1, `job ${id}: only its completion counted`);
  });

  it('fails a stalled job at once with maxStalledCount 0, attempts left or not', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    const q = s.queue('q', { maxStalledCount: 0 });
    const w = s.worker('q', async (_job, _token, signal) => {
      throw await aborted(signal);
    }, { maxStalledCount: 0 });
    const active = waitFor(w, 'active');
    const failed = waitFor(q, 'failed');
    const job = await q.add('l', null, { attempts: 5 });
    await active;
    const taken = path.join(s.dir, 'q', 'tickets', 'taken');
    for (const name of fs.readdirSync(taken)) fs.rmSync(path.join(taken, name));
    const [ev] = await advanceUntil(clock, failed, 1_000, 'the owner took the lease back');
    assert.equal(ev.jobId, job.id);
    assert.equal(ev.final, true);
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'failed');
    assert.equal(after.attemptsMade, 0, 'a stall counts no attempt');
    assert.equal(after.failedReason, 'job stalled more than allowable limit');
  });
});

describe('Worker sharing', () => {
  it('shares the work between two workers in one process and runs each job once', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const runs = new Map<string, string[]>();
    const processor = (who: string) => async (job: Job): Promise<void> => {
      runs.set(job.id, [...(runs.get(job.id) ?? []), who]);
      await new Promise((r) => setImmediate(r));
    };
    const a = s.worker('q', processor('a'), { concurrency: 2 });
    const b = s.worker('q', processor('b'), { concurrency: 2 });
    await Promise.all([a.waitUntilReady(), b.waitUntilReady()]);
    const all = waitForCount(q, 'completed', 40);
    const jobs = await q.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: 'j', data: i })));
    await all;
    for (const job of jobs) assert.equal(runs.get(job.id)?.length, 1, `job ${job.id} ran ${runs.get(job.id)?.length ?? 0} times`);
    const by = [...runs.values()].flat();
    assert.ok(by.includes('a') && by.includes('b'), `one worker did everything: ${by.filter((x) => x === 'a').length} by a`);
  });

  it('lets a running job finish when the queue pauses, and starts no other', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    const started: string[] = [];
    const w = s.worker('q', async (job) => {
      started.push(job.name);
      if (job.name === 'first') await gate.promise;
      return job.name;
    });
    const active = waitFor(w, 'active');
    await q.add('first', null);
    await q.add('second', null);
    await active;
    await q.pause();
    const completed = waitFor(w, 'completed');
    gate.resolve();
    const [done] = await completed;
    assert.equal(done.name, 'first');
    assert.deepEqual(started, ['first']);
    assert.deepEqual(await q.getJobCounts('paused', 'completed', 'active'), { paused: 1, completed: 1, active: 0 });
  });
});

describe('Worker.close', () => {
  it('processes nothing when closed straight after it is made', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const job = await q.add('waits', null);
    let runs = 0;
    const w = s.worker('q', async () => void runs++);
    await w.close();
    assert.equal(runs, 0);
    assert.equal(await job.getState(), 'waiting');
  });

  it('lets a running job finish before it resolves', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    const order: string[] = [];
    const w = s.worker('q', async () => {
      await gate.promise;
      order.push('job finished');
      return 'finished';
    });
    const active = waitFor(w, 'active');
    const job = await q.add('slow', null);
    await active;
    const closed = w.close().then(() => order.push('closed'));
    await new Promise((r) => setImmediate(r));
    gate.resolve();
    await closed;
    assert.deepEqual(order, ['job finished', 'closed']);
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'completed');
    assert.equal(after.returnvalue, 'finished');
  });

  it('hands back, uncounted, the claimed-ahead jobs it had not started', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const JOBS = 400;
    const added = await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'j', data: { i } })));
    const ran = new Set<string>();
    let closing: Promise<void> | undefined;
    // Concurrency 2, short jobs: the worker claims ahead. Job 200 closes the worker a turn later, from a callback
    // queued before the writer's next flush, with claimed-ahead jobs still in its inbox.
    const w = s.worker('q', async (job) => {
      ran.add(job.id);
      if ((job.data as { i: number }).i === 200) {
        await new Promise((r) => setImmediate(r));
        closing = w.close();
      }
      return null;
    }, { concurrency: 2 });
    await until(() => closing !== undefined, 'job 200 closed the worker');
    await closing;
    const counts = await q.getJobCounts();
    assert.equal(counts.active, 0, `close() left jobs active: ${JSON.stringify(counts)}`);
    // Every job that never ran is waiting again, nothing counted: close() handed it back (RELEASE).
    for (const j of added) {
      if (ran.has(j.id)) continue;
      const job = (await q.getJob(j.id))!;
      assert.equal(await job.getState(), 'waiting', `job ${j.id} never ran`);
      assert.equal(job.attemptsMade, 0, `job ${j.id} never ran, yet has attemptsMade ${job.attemptsMade}`);
    }
  });

  it('stops claiming: a job added after close waits', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async () => 'x');
    await w.waitUntilReady();
    await w.close();
    const job = await q.add('after', null);
    assert.equal(await job.getState(), 'waiting');
    assert.equal(w.isRunning, false);
  });

  it('hands a job that does not finish within closeTimeoutMs back to waiting without counting an attempt', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let reason: unknown;
    const w = s.worker('q', async (_job, _token, signal) => {
      void aborted(signal).then((r) => (reason = r));
      return new Promise(() => {}); // never ends, ignores its signal
    }, { closeTimeoutMs: 0 });
    const active = waitFor(w, 'active');
    const job = await q.add('forever', null, { attempts: 3 });
    await active;
    await w.close();
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'waiting');
    assert.equal(after.attemptsMade, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal((reason as { code?: string }).code, 'ERR_LEASE_LOST');
  });

  it('hands back a job claimed for it while it closes, without counting an attempt', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { leaseMs: 150 });
    let runs = 0;
    const first = s.worker('q', async () => void runs++, { leaseMs: 150 });
    await first.waitUntilReady();
    // Close the worker at the moment the owner hands it a job: its ticket arrives after close has begun.
    let closing: Promise<void> | undefined;
    q.once('active', () => (closing = first.close()));
    const job = await q.add('caught', null, { attempts: 3 });
    await closing;
    const second = s.worker('q', async () => void runs++, { leaseMs: 150 });
    const [done] = await waitFor(second, 'completed');
    assert.equal(done.id, job.id);
    assert.equal(runs, 1);
    assert.equal((await q.getJob(job.id))!.attemptsMade, 1);
  });

  it('leaves no job with more attempts counted than it ran when closed mid-run', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { leaseMs: 150 });
    const runs = new Map<string, number>();
    const processor = async (job: Job): Promise<string> => {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      await new Promise((r) => setImmediate(r));
      return job.id;
    };
    const allDone = waitForCount(q, 'completed', 30);
    const first = s.worker('q', processor, { concurrency: 4, leaseMs: 150 });
    const closed = waitForCount(first, 'completed', 5).then(() => first.close());
    const jobs = await q.addBulk(Array.from({ length: 30 }, (_, i) => ({ name: 'm', data: i, opts: { attempts: 5 } })));
    await closed;
    assert.ok((await q.getJobCounts('completed')).completed! < 30, 'the first worker ran every job: nothing was handed back');
    s.worker('q', processor, { concurrency: 4, leaseMs: 150 });
    await allDone;
    for (const job of jobs) {
      const after = (await q.getJob(job.id))!;
      assert.equal(await after.getState(), 'completed', `job ${job.id}`);
      assert.equal(after.attemptsMade, runs.get(job.id), `job ${job.id} ran ${runs.get(job.id)} times`);
    }
  });

  it('resolves every call to close with the same promise, and emits closed', SAFETY, async (t) => {
    const s = setup(t);
    s.queue();
    const w = s.worker('q', async () => 'x');
    const closedEvent = waitFor(w, 'closed');
    const a = w.close();
    const b = w.close();
    assert.equal(a, b);
    await a;
    await closedEvent;
  });
});
