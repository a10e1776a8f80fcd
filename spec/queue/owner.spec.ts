/**
 * The owner across close and reopen: the fold of the log (with or without the index file) gives back every job
 * as it was, checkpoints are written and used, and jobs that were handed out but never ran come back unharmed.
 *
 * A "crash" here is a copy of a queue directory taken while its owner runs (durability 'none' writes every
 * record before add() resolves), with the owner lock left behind: what a process killed at that moment leaves.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { logStats, verifyLog, type Queue } from '../../lib/index.js';
import { Log } from '../../lib/log/log.js';
import { REC, encodeEvent } from '../../lib/store/events.js';
import { SAFETY, deferred, setup, until, waitFor, waitForCount } from '../helpers/queue.js';

type Setup = ReturnType<typeof setup>;

/** Everything a user can read about the queue's jobs, job by job, in a form deepEqual compares. */
async function describeQueue(q: Queue): Promise<unknown> {
  const jobs = await q.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'], 0, -1, true);
  const rows = [];
  for (const j of jobs) {
    rows.push({
      id: j.id, name: j.name, data: j.data, opts: j.opts, state: await j.getState(), returnvalue: j.returnvalue,
      failedReason: j.failedReason, stacktrace: j.stacktrace, attemptsMade: j.attemptsMade, progress: j.progress,
      logs: await j.getLogs(), timestamp: j.timestamp, processedOn: j.processedOn, finishedOn: j.finishedOn,
    });
  }
  return { counts: await q.getJobCounts(), paused: await q.isPaused(), rows };
}

/** A queue with jobs in every state a closed queue can hold, left paused; closed again when built. */
async function populate(s: Setup, opts: object = {}): Promise<unknown> {
  const q = s.queue('q', opts);
  // The same options as the Queue: handles on one queue in a process share its owner (ERR_OPTIONS_CONFLICT).
  const w = s.worker('q', async (job) => {
    await job.updateProgress({ at: job.name });
    await job.log(`ran ${job.name}`);
    if (job.name === 'bad') throw new Error('bad data');
    return { ok: job.data };
  }, opts);
  const finished = Promise.all([waitForCount(w, 'completed', 2), waitFor(w, 'failed')]);
  await q.add('good', { n: 1 });
  await q.add('bad', { n: 2 }, { attempts: 1 });
  await q.add('custom', [3], { jobId: 'my-id', removeOnFail: 3 });
  await finished;
  await w.close();
  await q.add('later', 'delayed', { delay: 3_600_000, priority: 4 });
  await q.add('low', 'waits', { priority: 9, attempts: 4, backoff: { type: 'exponential', delay: 10 } });
  await q.add('high', 'waits', { priority: 1, timeout: 5000 });
  await (await q.add('touched', 'waits')).updateProgress(33);
  await q.pause();
  const before = await describeQueue(q);
  await q.close();
  return before;
}

describe('reopening a queue', () => {
  for (const withIndex of [true, false]) {
    it(`gives back every job with its state, data, result and reason ${withIndex ? 'from the index' : 'with the index deleted'}`, SAFETY, async (t) => {
      const s = setup(t);
      const before = await populate(s);
      const index = path.join(s.dir, 'q', 'index');
      assert.equal(fs.existsSync(index), true, 'close wrote no index');
      if (!withIndex) fs.rmSync(index);
      const q = s.queue();
      assert.deepEqual(await describeQueue(q), before);
      // …and it goes on working where it left off: ids continue, waiting jobs run by priority.
      const next = await q.add('next', null);
      assert.equal(Number(next.id) > 6, true, `id ${next.id} reused`);
      const order: string[] = [];
      const w = s.worker('q', async (job) => void order.push(job.name));
      await q.resume();
      await waitFor(w, 'drained');
      assert.deepEqual(order, ['touched', 'next', 'high', 'low']);
    });
  }

  it('gives back an encrypted, compressed queue as it was, with no job data in clear on disk', SAFETY, async (t) => {
    const s = setup(t);
    const opts = { encryption: { key: randomBytes(32) }, compression: { threshold: 64 } };
    const before = await populate(s, opts);
    const q = s.queue('q', opts);
    const big = await q.add('big', { text: 'secret-marker '.repeat(200) });
    assert.deepEqual((await q.getJob(big.id))!.data, { text: 'secret-marker '.repeat(200) });
    await big.remove();
    assert.deepEqual(await describeQueue(q), before);
    const segments = fs.readdirSync(path.join(s.dir, 'q', 'log')).map((f) => fs.readFileSync(path.join(s.dir, 'q', 'log', f)));
    for (const bytes of segments) {
      assert.equal(bytes.includes('secret-marker'), false, 'job data in clear');
      assert.equal(bytes.includes('bad data'), false, 'a failure reason in clear');
    }
  });

  it('writes a checkpoint at close that covers the whole log', SAFETY, async (t) => {
    const s = setup(t);
    await populate(s);
    const dir = path.join(s.dir, 'q');
    const report = verifyLog(dir);
    assert.equal(report.index.present, true);
    assert.equal(report.index.usable, true);
    assert.equal(report.index.nextSeq, logStats(dir).lastSeq + 1);
  });

  it('writes checkpoints while running every checkpointEvery records, and replays only what follows one', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { checkpointEvery: 4 });
    const dir = path.join(s.dir, 'q');
    const index = path.join(dir, 'index');
    for (let i = 0; i < 8; i++) await q.add('a', i, { priority: i % 3 });
    // The 4th record triggers one (a checkpoint is due every max(checkpointEvery, jobs) records): it covers 1..4.
    await until(() => fs.existsSync(index), 'a checkpoint is written');
    assert.equal(verifyLog(dir).index.nextSeq, 5);
    await q.add('after the checkpoint', 'tail');
    await q.remove('2');
    const before = await describeQueue(q);
    const crashed = setup(t, { crashCopyOf: s.dir });
    const copy = path.join(crashed.dir, 'q');
    const report = verifyLog(copy);
    assert.equal(report.index.usable, true);
    assert.ok(report.index.nextSeq! < logStats(copy).lastSeq + 1, 'no records follow the checkpoint: the replay of a tail is not exercised');
    const reopened = crashed.queue();
    assert.deepEqual(await describeQueue(reopened), before);
  });

  it('stalls a job the previous owner left running, counting a stall but no attempt, and runs it again', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    t.after(() => gate.resolve());
    const w = s.worker('q', () => gate.promise);
    const active = waitFor(w, 'active');
    const job = await q.add('crashes', { x: 1 }, { attempts: 2 });
    await active;
    const s2 = setup(t, { crashCopyOf: s.dir });
    const reopened = s2.queue();
    await reopened.waitUntilReady();
    const after = (await reopened.getJob(job.id))!;
    assert.equal(after.attemptsMade, 0);
    assert.equal(await after.getState(), 'waiting');
    assert.match(after.failedReason!, /stalled/);
    const w2 = s2.worker('q', async (j) => j.data);
    const [done, result] = await waitFor(w2, 'completed');
    assert.equal(done.id, job.id);
    assert.deepEqual(result, { x: 1 });
    assert.equal((await reopened.getJob(job.id))!.attemptsMade, 1);
  });

  it('does not fail a job the previous owner left running at its first stall, with the default attempts (1)', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    t.after(() => gate.resolve());
    const w = s.worker('q', () => gate.promise);
    const active = waitFor(w, 'active');
    const job = await q.add('crashes', null);
    await active;
    const reopened = setup(t, { crashCopyOf: s.dir }).queue();
    const after = (await reopened.getJob(job.id))!;
    assert.equal(await after.getState(), 'waiting');
    assert.equal(after.attemptsMade, 0);
  });

  it('fails a job the previous owner left running when that stall is one more than maxStalledCount (0)', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const gate = deferred();
    t.after(() => gate.resolve());
    const w = s.worker('q', () => gate.promise);
    const active = waitFor(w, 'active');
    const job = await q.add('crashes', null, { attempts: 5 });
    await active;
    const reopened = setup(t, { crashCopyOf: s.dir }).queue('q', { maxStalledCount: 0 });
    const after = (await reopened.getJob(job.id))!;
    assert.equal(await after.getState(), 'failed');
    assert.equal(after.attemptsMade, 0);
    assert.equal(after.failedReason, 'job stalled more than allowable limit');
  });

  // Records as the code before issue 9 wrote them, by hand: ACTIVE without `s` and STALL without `s`.
  async function withOldRecords(t: Parameters<typeof setup>[0], records: (id: string) => Array<[number, object]>): Promise<{ s: Setup; id: string }> {
    const s = setup(t);
    const q = s.queue();
    const job = await q.add('old', null, { attempts: 3 });
    await q.close();
    const log = await Log.open(path.join(s.dir, 'q'), { durability: 'none' });
    for (const [type, ev] of records(job.id)) await log.append(type, encodeEvent(ev));
    await log.close();
    return { s, id: job.id };
  }

  it('replays a STALL written before issue 9 (no s) as an attempt and a stall, as it always did', SAFETY, async (t) => {
    const { s, id } = await withOldRecords(t, (id) => [
      [REC.ACTIVE, { t: '1x0', j: [[id, 1]], ts: 1 }],
      [REC.STALL, { id, a: 1, r: 2, ts: 2 }],
    ]);
    const job = (await s.queue().getJob(id))!;
    assert.equal(await job.getState(), 'waiting');
    assert.equal(job.attemptsMade, 1, 'the old STALL counted an attempt');
    assert.match(job.failedReason!, /stalled/);
  });

  it('stalls, counting no attempt, a job an older owner left active in a ticket with no start record (no s)', SAFETY, async (t) => {
    const { s, id } = await withOldRecords(t, (id) => [[REC.ACTIVE, { t: '1x0', j: [[id, 1]], ts: 1 }]]);
    const q = s.queue();
    const stalled = waitFor(q, 'stalled');
    const job = (await q.getJob(id))!;
    assert.equal(await job.getState(), 'waiting');
    assert.equal(job.attemptsMade, 0);
    assert.match(job.failedReason!, /stalled/, 'without a record of its starts, it counts as started');
    assert.deepEqual((await stalled)[0], { jobId: id });
  });

  it('hands back a job cut for a worker that closed before claiming it, when the owner closes', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let runs = 0;
    const w = s.worker('q', async () => void runs++);
    await w.waitUntilReady();
    // Both close the moment the owner hands the job out, so the owner closes with the ticket still in flight.
    let closing: Promise<unknown> | undefined;
    q.once('active', () => (closing = Promise.all([w.close(), q.close()])));
    const job = await q.add('in flight', null, { attempts: 3 });
    await closing;
    const q2 = s.queue();
    const w2 = s.worker('q', async () => void runs++);
    const [done] = await waitFor(w2, 'completed');
    assert.equal(done.id, job.id);
    assert.equal(runs, 1);
    assert.equal((await q2.getJob(job.id))!.attemptsMade, 1);
  });
});
