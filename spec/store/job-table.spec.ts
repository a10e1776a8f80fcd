/**
 * JobTable (lib/store/job-table.ts): the fold of every record type, including records that no longer apply
 * (they must change nothing), retention by count, promotion of due delayed jobs, and determinism.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RecordPointer } from '../../lib/log/writer.js';
import { REC } from '../../lib/store/events.js';
import { JobTable, type JobMeta } from '../../lib/store/job-table.js';
import { encodeSnapshot } from '../../lib/store/snapshot.js';

/** A table and a log to fold into it: each apply gets the next seq, as the owner's appends do. */
function folding(): { table: JobTable; apply(type: number, ev: object): JobMeta | undefined; last(): RecordPointer } {
  const table = new JobTable();
  let seq = 0;
  let lastPtr: RecordPointer = { seq: 0, segmentId: 1, offset: 0, size: 0 };
  return {
    table,
    apply(type, ev) {
      seq++;
      lastPtr = { seq, segmentId: 1, offset: 32 + seq * 100, size: 60 };
      return table.apply(type, ev, lastPtr);
    },
    last: () => lastPtr,
  };
}

const add = (id: string, o: object = {}, ts = 1_000, n = 'job'): object => ({ id, n, d: null, o, ts });

/** Counts of every state. */
function counts(table: JobTable): Record<string, number> {
  return Object.fromEntries((['waiting', 'delayed', 'active', 'completed', 'failed'] as const).map((s) => [s, table.count(s)]));
}

/** The ids popped from the ready heap in order (empties it). */
function drainReady(table: JobTable): string[] {
  const out: string[] = [];
  for (let j = table.ready.pop(); j; j = table.ready.pop()) out.push(j.id);
  return out;
}

describe('JobTable ADD', () => {
  it('adds a waiting job with its name, options, priority, order and timestamp', () => {
    const f = folding();
    const job = f.apply(REC.ADD, add('a', { priority: 3, attempts: 2 }, 1234, 'mail'))!;
    assert.deepEqual(
      { id: job.id, name: job.name, opts: job.opts, state: job.state, priority: job.priority, order: job.order, ts: job.timestamp, runAt: job.runAt },
      { id: 'a', name: 'mail', opts: { priority: 3, attempts: 2 }, state: 'waiting', priority: 3, order: 1, ts: 1234, runAt: 0 },
    );
    assert.deepEqual(job.ptr, f.last());
    assert.equal(f.table.jobs.get('a'), job);
    assert.deepEqual(counts(f.table), { waiting: 1, delayed: 0, active: 0, completed: 0, failed: 0 });
  });

  it('adds a job with a delay as delayed until ts + delay', () => {
    const f = folding();
    const job = f.apply(REC.ADD, add('a', { delay: 500 }, 1000))!;
    assert.equal(job.state, 'delayed');
    assert.equal(job.runAt, 1500);
    assert.equal(f.table.nextRunAt(), 1500);
    assert.deepEqual(counts(f.table), { waiting: 0, delayed: 1, active: 0, completed: 0, failed: 0 });
  });

  it('ignores an ADD for an id it holds', () => {
    const f = folding();
    const first = f.apply(REC.ADD, add('a', {}, 1, 'first'));
    assert.equal(f.apply(REC.ADD, add('a', { priority: 1 }, 2, 'second')), undefined);
    assert.equal(f.table.jobs.get('a'), first);
    assert.equal(first!.name, 'first');
    assert.equal(f.table.count('waiting'), 1);
  });

  it('orders ready jobs by priority, then by the order they were added', () => {
    const f = folding();
    for (const [id, priority] of [['a', 2], ['b', 0], ['c', 1], ['d', 0], ['e', 2]] as const) f.apply(REC.ADD, add(id, { priority }));
    assert.deepEqual(drainReady(f.table), ['b', 'd', 'c', 'a', 'e']);
  });
});

describe('JobTable ACTIVE', () => {
  it('moves waiting jobs named with their next attempt to active in the ticket', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ADD, add('b'));
    const last = f.apply(REC.ACTIVE, { t: '1x0', j: [['a', 1], ['b', 1]], ts: 5000 });
    assert.equal(last?.id, 'b');
    for (const id of ['a', 'b']) {
      const job = f.table.jobs.get(id)!;
      assert.deepEqual([job.state, job.ticket, job.processedOn], ['active', '1x0', 5000]);
    }
    assert.deepEqual([...f.table.byState.active].map((j) => j.id), ['a', 'b']);
    assert.equal(f.table.ready.pop(), undefined, 'active jobs stay in the ready heap');
  });

  it('skips an unknown job, a wrong attempt and a job that is not waiting or delayed', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ADD, add('b'));
    f.apply(REC.ACTIVE, { t: 't1', j: [['b', 1]], ts: 1 });
    assert.equal(f.apply(REC.ACTIVE, { t: 't2', j: [['nope', 1], ['a', 2], ['b', 1]], ts: 2 }), undefined);
    assert.equal(f.table.jobs.get('a')!.state, 'waiting');
    assert.equal(f.table.jobs.get('b')!.ticket, 't1');
    assert.deepEqual(counts(f.table), { waiting: 1, delayed: 0, active: 1, completed: 0, failed: 0 });
  });
});

describe('JobTable COMPLETE', () => {
  it('completes the active attempt: attempts counted, finish time and result kept, ticket cleared', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 10 });
    const job = f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: 'ok', ts: 20 })!;
    assert.deepEqual([job.state, job.attemptsMade, job.finishedOn, job.ticket], ['completed', 1, 20, undefined]);
    assert.deepEqual(job.resultPtr, f.last());
    assert.deepEqual(counts(f.table), { waiting: 0, delayed: 0, active: 0, completed: 1, failed: 0 });
  });

  it('ignores a result for an attempt that is not active', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    assert.equal(f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: 'early', ts: 1 }), undefined, 'waiting, not active');
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 2 });
    assert.equal(f.apply(REC.COMPLETE, { id: 'a', a: 2, rv: 'wrong attempt', ts: 3 }), undefined);
    assert.equal(f.apply(REC.COMPLETE, { id: 'nope', a: 1, rv: 'unknown', ts: 3 }), undefined);
    f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: 'ok', ts: 4 });
    const resultPtr = f.table.jobs.get('a')!.resultPtr;
    assert.equal(f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: 'twice', ts: 5 }), undefined, 'already completed');
    const job = f.table.jobs.get('a')!;
    assert.deepEqual([job.state, job.attemptsMade, job.finishedOn, job.resultPtr], ['completed', 1, 4, resultPtr]);
  });

  it('ignores a late result after the attempt was stalled and retried', () => {
    const f = folding();
    f.apply(REC.ADD, add('a', { attempts: 3 }));
    f.apply(REC.ACTIVE, { t: 't1', j: [['a', 1]], ts: 1 });
    f.apply(REC.STALL, { id: 'a', a: 1, r: 2, ts: 2 });
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 2]], ts: 3 });
    assert.equal(f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: 'late', ts: 4 }), undefined);
    assert.equal(f.table.jobs.get('a')!.state, 'active');
    assert.equal(f.table.jobs.get('a')!.ticket, 't2');
  });
});

describe('JobTable FAIL and STALL', () => {
  function activeJob(opts: object = {}): ReturnType<typeof folding> {
    const f = folding();
    f.apply(REC.ADD, add('a', opts));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 10 });
    return f;
  }

  it('fails for good on a FAIL with no retry time', () => {
    const f = activeJob();
    const job = f.apply(REC.FAIL, { id: 'a', a: 1, e: { name: 'Error', message: 'boom' }, r: null, ts: 20 })!;
    assert.deepEqual([job.state, job.attemptsMade, job.failedReason, job.finishedOn, job.ticket], ['failed', 1, 'boom', 20, undefined]);
    assert.deepEqual(job.failPtr, f.last());
    assert.deepEqual(counts(f.table), { waiting: 0, delayed: 0, active: 0, completed: 0, failed: 1 });
  });

  it('delays a retry whose time is after the failure', () => {
    const f = activeJob({ attempts: 2 });
    const job = f.apply(REC.FAIL, { id: 'a', a: 1, e: { name: 'Error', message: 'later' }, r: 520, ts: 20 })!;
    assert.deepEqual([job.state, job.runAt, job.attemptsMade, job.finishedOn], ['delayed', 520, 1, 0]);
    assert.equal(f.table.nextRunAt(), 520);
  });

  it('makes a retry due at the failure time waiting, and a later hand-back keeps it waiting', () => {
    const f = activeJob({ attempts: 3 });
    const job = f.apply(REC.FAIL, { id: 'a', a: 1, e: { name: 'Error', message: 'now' }, r: 20, ts: 20 })!;
    assert.equal(job.state, 'waiting');
    assert.equal(f.table.nextRunAt(), undefined);
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 2]], ts: 30 });
    f.apply(REC.RELEASE, { id: 'a', a: 2 });
    assert.equal(job.state, 'waiting');
    assert.deepEqual(counts(f.table), { waiting: 1, delayed: 0, active: 0, completed: 0, failed: 0 });
  });

  it('folds a STALL of an older writer (no s) as an attempt and a stall, as it always did', () => {
    const f = activeJob({ attempts: 2 });
    const job = f.apply(REC.STALL, { id: 'a', a: 1, r: 15, ts: 15 })!;
    assert.deepEqual([job.state, job.attemptsMade, job.stalls], ['waiting', 1, 1]);
    assert.match(job.failedReason!, /stalled/);
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 2]], ts: 16 });
    f.apply(REC.STALL, { id: 'a', a: 2, r: null, ts: 17 });
    assert.deepEqual([job.state, job.attemptsMade, job.stalls, job.finishedOn], ['failed', 2, 2, 17]);
  });

  it('folds a STALL marked s: 1 as a stall only, failing with BullMQ\'s reason when it has no retry time', () => {
    const f = activeJob();
    const job = f.apply(REC.STALL, { id: 'a', a: 1, r: 15, ts: 15, s: 1 })!;
    assert.deepEqual([job.state, job.attemptsMade, job.stalls], ['waiting', 0, 1]);
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 1]], ts: 16, s: 1 });
    f.apply(REC.STALL, { id: 'a', a: 1, r: null, ts: 17, s: 1, why: 'its owner died' });
    assert.deepEqual([job.state, job.attemptsMade, job.stalls, job.finishedOn, job.failedReason],
      ['failed', 0, 2, 17, 'job stalled more than allowable limit']);
  });

  it('knows which jobs of a tracked ticket started: its claimed prefix once claimed, and what START says', () => {
    const f = folding();
    for (const id of ['a', 'b', 'c', 'd']) f.apply(REC.ADD, add(id));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1], ['b', 1], ['c', 1], ['d', 1]], ts: 10, s: 1 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => f.table.jobs.get(id)!) as [JobMeta, JobMeta, JobMeta, JobMeta];
    const started = (claimed: boolean): boolean[] => [a, b, c, d].map((j) => f.table.isStarted(j, claimed));
    assert.deepEqual(started(false), [false, false, false, false], 'an unclaimed ticket started nothing');
    assert.deepEqual(started(true), [true, false, false, false], 'the claim starts the first s');
    f.apply(REC.START, { t: 't', n: 3 });
    f.apply(REC.START, { t: 't', n: 2 }); // a lower count (late, or repeated) changes nothing
    assert.deepEqual(started(true), [true, true, true, false]);
    assert.deepEqual(started(false), [true, true, true, false]);
    f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: null, ts: 11 });
    f.apply(REC.RELEASE, { id: 'b', a: 1 });
    f.apply(REC.STALL, { id: 'c', a: 1, r: 12, ts: 12, s: 1 });
    assert.equal(f.table.tickets.size, 1, 'the ticket lives while a job is active in it');
    f.apply(REC.RELEASE, { id: 'd', a: 1 });
    assert.equal(f.table.tickets.size, 0);
    f.apply(REC.ACTIVE, { t: 'u', j: [['d', 1]], ts: 13, s: 0 });
    f.apply(REC.START, { t: 'other', n: 1 });
    assert.equal(f.table.isStarted(d, true), false, 'a START for another ticket is not this one');
  });

  it('counts every job of a ticket cut by an older writer (no s) as started', () => {
    const f = activeJob();
    assert.equal(f.table.isStarted(f.table.jobs.get('a')!, false), true);
    assert.equal(f.table.tickets.size, 0);
  });

  it('ignores a FAIL or STALL for an attempt that is not active', () => {
    const f = activeJob();
    assert.equal(f.apply(REC.FAIL, { id: 'a', a: 2, e: { name: 'E', message: 'x' }, r: null, ts: 1 }), undefined);
    assert.equal(f.apply(REC.STALL, { id: 'a', a: 3, r: null, ts: 1 }), undefined);
    assert.equal(f.apply(REC.FAIL, { id: 'zz', a: 1, e: { name: 'E', message: 'x' }, r: null, ts: 1 }), undefined);
    assert.equal(f.table.jobs.get('a')!.state, 'active');
    assert.equal(f.table.jobs.get('a')!.attemptsMade, 0);
  });
});

describe('JobTable PROGRESS, LOG, PAUSE and RESUME', () => {
  it('keeps the latest progress and every log line, and ignores both for unknown jobs', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.PROGRESS, { id: 'a', p: 10 });
    f.apply(REC.PROGRESS, { id: 'a', p: { step: 2 } });
    f.apply(REC.LOG, { id: 'a', l: 'one' });
    const one = f.last();
    f.apply(REC.LOG, { id: 'a', l: 'two' });
    const two = f.last();
    assert.equal(f.apply(REC.PROGRESS, { id: 'zz', p: 1 }), undefined);
    assert.equal(f.apply(REC.LOG, { id: 'zz', l: 'x' }), undefined);
    const job = f.table.jobs.get('a')!;
    assert.deepEqual(job.progress, { step: 2 });
    assert.deepEqual(job.logPtrs, [one, two]);
  });

  it('pauses and resumes', () => {
    const f = folding();
    assert.equal(f.table.paused, false);
    f.apply(REC.PAUSE, {});
    assert.equal(f.table.paused, true);
    f.apply(REC.PAUSE, {});
    assert.equal(f.table.paused, true);
    f.apply(REC.RESUME, {});
    assert.equal(f.table.paused, false);
  });
});

describe('JobTable REMOVE', () => {
  it('removes jobs in every state and ignores ids it does not hold', () => {
    const f = folding();
    f.apply(REC.ADD, add('w'));
    f.apply(REC.ADD, add('d', { delay: 100 }));
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ADD, add('c'));
    f.apply(REC.ADD, add('x'));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1], ['c', 1], ['x', 1]], ts: 1 });
    f.apply(REC.COMPLETE, { id: 'c', a: 1, rv: null, ts: 2 });
    f.apply(REC.FAIL, { id: 'x', a: 1, e: { name: 'E', message: 'x' }, r: null, ts: 2 });
    f.apply(REC.ADD, add('keep'));
    const last = f.apply(REC.REMOVE, { ids: ['w', 'd', 'a', 'c', 'x', 'never'] });
    assert.equal(last?.id, 'x');
    assert.deepEqual([...f.table.jobs.keys()], ['keep']);
    assert.deepEqual(counts(f.table), { waiting: 1, delayed: 0, active: 0, completed: 0, failed: 0 });
    assert.deepEqual(drainReady(f.table), ['keep'], 'a removed job left a live heap entry');
    assert.equal(f.table.nextRunAt(), undefined);
  });
});

describe('JobTable PROMOTE and promoteDue', () => {
  it('makes a delayed job waiting at once, and ignores one that is not delayed', () => {
    const f = folding();
    f.apply(REC.ADD, add('d', { delay: 1000 }));
    f.apply(REC.ADD, add('w'));
    const job = f.apply(REC.PROMOTE, { id: 'd' })!;
    assert.deepEqual([job.state, job.runAt], ['waiting', 0]);
    assert.equal(f.apply(REC.PROMOTE, { id: 'w' }), undefined);
    assert.equal(f.apply(REC.PROMOTE, { id: 'zz' }), undefined);
    assert.deepEqual(counts(f.table), { waiting: 2, delayed: 0, active: 0, completed: 0, failed: 0 });
    assert.deepEqual(drainReady(f.table), ['d', 'w']);
  });

  it('promotes the delayed jobs due by now, in run-time order, and leaves the rest', () => {
    const f = folding();
    f.apply(REC.ADD, add('late', { delay: 300 }, 0));
    f.apply(REC.ADD, add('soon', { delay: 100 }, 0));
    f.apply(REC.ADD, add('mid', { delay: 200 }, 0));
    assert.deepEqual(f.table.promoteDue(99).map((j) => j.id), []);
    assert.deepEqual(f.table.promoteDue(200).map((j) => j.id), ['soon', 'mid']);
    assert.deepEqual(counts(f.table), { waiting: 2, delayed: 1, active: 0, completed: 0, failed: 0 });
    assert.equal(f.table.nextRunAt(), 300);
    assert.equal(f.table.jobs.get('mid')!.runAt, 0);
  });
});

describe('JobTable RETRY and RELEASE', () => {
  it('sends a failed or completed job back to waiting, reset, behind the jobs already waiting', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 1 });
    f.apply(REC.FAIL, { id: 'a', a: 1, e: { name: 'E', message: 'x' }, r: null, ts: 2 });
    f.apply(REC.ADD, add('b'));
    const job = f.apply(REC.RETRY, { id: 'a', ts: 3 })!;
    assert.deepEqual(
      [job.state, job.attemptsMade, job.stalls, job.failedReason, job.failPtr, job.finishedOn, job.processedOn, job.order],
      ['waiting', 0, 0, undefined, undefined, 0, 0, f.last().seq],
    );
    assert.deepEqual(drainReady(f.table), ['b', 'a']);
  });

  it('ignores a RETRY for a job that is not failed or completed', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    assert.equal(f.apply(REC.RETRY, { id: 'a', ts: 1 }), undefined);
    assert.equal(f.apply(REC.RETRY, { id: 'zz', ts: 1 }), undefined);
    assert.equal(f.table.jobs.get('a')!.order, 1);
  });

  it('hands an active attempt back without counting it, to waiting or to its delay', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 1 });
    const job = f.apply(REC.RELEASE, { id: 'a', a: 1 })!;
    assert.deepEqual([job.state, job.attemptsMade, job.ticket], ['waiting', 0, undefined]);
    assert.equal(f.apply(REC.RELEASE, { id: 'a', a: 1 }), undefined, 'not active any more');
    f.apply(REC.ADD, add('d', { delay: 50 }, 100));
    f.apply(REC.ACTIVE, { t: 't2', j: [['d', 1]], ts: 101 }); // a delayed job handed out early (PROMOTE-free)
    f.apply(REC.RELEASE, { id: 'd', a: 1 });
    assert.equal(f.table.jobs.get('d')!.state, 'delayed');
  });
});

describe('JobTable retention', () => {
  function finish(f: ReturnType<typeof folding>, id: string, ok: boolean): void {
    f.apply(REC.ACTIVE, { t: `t${id}`, j: [[id, 1]], ts: 1 });
    if (ok) f.apply(REC.COMPLETE, { id, a: 1, rv: null, ts: 2 });
    else f.apply(REC.FAIL, { id, a: 1, e: { name: 'E', message: 'x' }, r: null, ts: 2 });
  }

  it('removes a job as it completes with removeOnComplete true', () => {
    const f = folding();
    f.apply(REC.ADD, add('a', { removeOnComplete: true }));
    finish(f, 'a', true);
    assert.equal(f.table.jobs.get('a'), undefined);
    assert.equal(f.table.count('completed'), 0);
  });

  it('keeps the newest N completed jobs with removeOnComplete N', () => {
    const f = folding();
    for (const id of ['a', 'b', 'c', 'd']) f.apply(REC.ADD, add(id, { removeOnComplete: 2 }));
    for (const id of ['a', 'b', 'c', 'd']) finish(f, id, true);
    assert.deepEqual([...f.table.byState.completed].map((j) => j.id), ['c', 'd']);
    assert.deepEqual([...f.table.jobs.keys()], ['c', 'd']);
  });

  it('applies removeOnFail only to failed jobs and removeOnComplete only to completed ones', () => {
    const f = folding();
    f.apply(REC.ADD, add('ok', { removeOnFail: true }));
    f.apply(REC.ADD, add('bad', { removeOnComplete: true }));
    f.apply(REC.ADD, add('gone', { removeOnFail: { count: 0 } }));
    finish(f, 'ok', true);
    finish(f, 'bad', false);
    assert.deepEqual([...f.table.jobs.keys()].sort(), ['bad', 'gone', 'ok']);
    finish(f, 'gone', false);
    assert.deepEqual([...f.table.jobs.keys()].sort(), ['ok']);
  });

  it('leaves ages to the owner: { age } alone removes nothing in the fold', () => {
    const f = folding();
    f.apply(REC.ADD, add('a', { removeOnComplete: { age: 0 } }));
    finish(f, 'a', true);
    assert.equal(f.table.jobs.get('a')!.state, 'completed');
  });
});

describe('JobTable fold', () => {
  it('ignores a record type it does not know', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    assert.equal(f.apply(99, { id: 'a', anything: true }), undefined);
    assert.deepEqual(counts(f.table), { waiting: 1, delayed: 0, active: 0, completed: 0, failed: 0 });
  });

  it('gives the same table for the same records', () => {
    const records: Array<[number, object]> = [
      [REC.ADD, add('a', { priority: 1 })], [REC.ADD, add('b', { delay: 10 }, 5)], [REC.ADD, add('c', { attempts: 2 })],
      [REC.ACTIVE, { t: 't', j: [['c', 1], ['a', 1]], ts: 7 }], [REC.FAIL, { id: 'c', a: 1, e: { name: 'E', message: 'm' }, r: 9, ts: 8 }],
      [REC.PROGRESS, { id: 'a', p: 50 }], [REC.LOG, { id: 'a', l: 'x' }], [REC.COMPLETE, { id: 'a', a: 1, rv: 1, ts: 9 }],
      [REC.PAUSE, {}], [REC.REMOVE, { ids: ['zz'] }],
    ];
    const one = folding();
    const two = folding();
    for (const [type, ev] of records) one.apply(type, ev);
    for (const [type, ev] of records) two.apply(type, JSON.parse(JSON.stringify(ev)));
    assert.deepEqual(encodeSnapshot(one.table), encodeSnapshot(two.table));
  });
});
