/**
 * Transitions (lib/store/job-table.ts, Transition) and the events derived from them (lib/store/transitions.ts):
 * each record kind gives its from → to and its facts, a record that changes nothing gives NONE, and the events are
 * BullMQ's names and payloads in the documented order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REC } from '../../lib/store/events.js';
import { JobTable, TRANSITION } from '../../lib/store/job-table.js';
import { deriveEvents } from '../../lib/store/transitions.js';

/** Folds records one by one; returns the events each gave, as [name, payload] pairs. */
function folding(): { table: JobTable; apply(type: number, ev: object): Array<[string, unknown]> } {
  const table = new JobTable();
  let seq = 0;
  return {
    table,
    apply(type, ev) {
      seq++;
      table.apply(type, ev, { seq, segmentId: 1, offset: 32 + seq * 100, size: 60 });
      const out: Array<[string, unknown]> = [];
      deriveEvents(table.transition, (name, payload) => out.push([name, payload]));
      return out;
    },
  };
}

const add = (id: string, o: object = {}, ts = 1_000, n = 'job'): object => ({ id, n, d: null, o, ts });
const err = { name: 'Error', message: 'boom' };

describe('transitions', () => {
  it('an add is added then waiting, or delayed with its run time', () => {
    const f = folding();
    assert.deepEqual(f.apply(REC.ADD, add('a', {}, 1_000, 'mail')), [['added', { jobId: 'a', name: 'mail' }], ['waiting', { jobId: 'a' }]]);
    const t = f.table.transition;
    assert.equal(t.kind, TRANSITION.ADDED);
    assert.equal(t.from, undefined);
    assert.equal(t.to, 'waiting');
    assert.deepEqual(f.apply(REC.ADD, add('d', { delay: 500 }, 1_000)), [['added', { jobId: 'd', name: 'job' }], ['delayed', { jobId: 'd', delay: 1_500 }]]);
  });

  it('a ticket makes each of its jobs active with the state it came from, and skips jobs it does not move', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ADD, add('b'));
    const events = f.apply(REC.ACTIVE, { t: 't1', j: [['a', 1], ['zz', 1], ['b', 2], ['b', 1]], ts: 5 });
    assert.deepEqual(events, [['active', { jobId: 'a', prev: 'waiting' }], ['active', { jobId: 'b', prev: 'waiting' }]]);
    const t = f.table.transition;
    assert.equal(t.kind, TRANSITION.ACTIVATED);
    assert.deepEqual(t.jobs.map((j) => j.id), ['a', 'b']);
    assert.equal(t.attempt, 1);
  });

  it('a completion carries the returnvalue from the record, and drained when the queue went idle', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 2 });
    const events = f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: { ok: 1 }, ts: 3 });
    assert.deepEqual(events, [['completed', { jobId: 'a', returnvalue: { ok: 1 }, prev: 'active' }], ['drained', undefined]]);
    assert.equal(f.table.transition.ptr?.seq, 3);
    assert.deepEqual(f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: 'again', ts: 4 }), [], 'a result that no longer applies gives nothing');
    assert.equal(f.table.transition.kind, TRANSITION.NONE);
  });

  it('a failure with a retry is waiting (prev failed) or delayed, a final one failed and retries-exhausted', () => {
    const f = folding();
    f.apply(REC.ADD, add('a', { attempts: 3 }));
    f.apply(REC.ADD, add('keep'));
    f.apply(REC.ACTIVE, { t: 't1', j: [['a', 1]], ts: 10 });
    assert.deepEqual(f.apply(REC.FAIL, { id: 'a', a: 1, e: err, r: 10, ts: 10 }), [['waiting', { jobId: 'a', prev: 'failed' }]]);
    assert.equal(f.table.transition.retryAt, 10);
    assert.equal(f.table.transition.final, false);
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 2]], ts: 11 });
    assert.deepEqual(f.apply(REC.FAIL, { id: 'a', a: 2, e: err, r: 500, ts: 12 }), [['delayed', { jobId: 'a', delay: 500 }]]);
    f.apply(REC.ACTIVE, { t: 't3', j: [['a', 3]], ts: 501 });
    assert.deepEqual(f.apply(REC.FAIL, { id: 'a', a: 3, e: err, r: null, ts: 502 }), [
      ['failed', { jobId: 'a', failedReason: 'boom', prev: 'active' }],
      ['retries-exhausted', { jobId: 'a', attemptsMade: 3 }],
    ]);
    assert.equal(f.table.transition.final, true);
  });

  it('a final failure before the last attempt (UnrecoverableError) is failed without retries-exhausted', () => {
    const f = folding();
    f.apply(REC.ADD, add('a', { attempts: 3 }));
    f.apply(REC.ADD, add('keep'));
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 1 });
    assert.deepEqual(f.apply(REC.FAIL, { id: 'a', a: 1, e: err, r: null, ts: 2 }), [['failed', { jobId: 'a', failedReason: 'boom', prev: 'active' }]]);
  });

  it('a stall is stalled then waiting (prev active), or stalled then failed when it stalled too often', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ADD, add('keep'));
    f.apply(REC.ACTIVE, { t: 't1', j: [['a', 1]], ts: 1 });
    assert.deepEqual(f.apply(REC.STALL, { id: 'a', a: 1, r: 2, ts: 2, s: 1 }), [['stalled', { jobId: 'a' }], ['waiting', { jobId: 'a', prev: 'active' }]]);
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 1]], ts: 3 });
    assert.deepEqual(f.apply(REC.STALL, { id: 'a', a: 1, r: null, ts: 4, s: 1 }), [
      ['stalled', { jobId: 'a' }],
      ['failed', { jobId: 'a', failedReason: 'job stalled more than allowable limit', prev: 'active' }],
    ]);
  });

  it('progress, removal (with each job\'s state), promotion, retry, release, pause and resume', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    f.apply(REC.ADD, add('d', { delay: 100 }));
    f.apply(REC.ADD, add('x', { delay: 100 }));
    assert.deepEqual(f.apply(REC.PROGRESS, { id: 'a', p: { step: 2 } }), [['progress', { jobId: 'a', data: { step: 2 } }]]);
    assert.deepEqual(f.apply(REC.LOG, { id: 'a', l: 'line' }), []);
    assert.equal(f.table.transition.kind, TRANSITION.LOGGED);
    assert.deepEqual(f.apply(REC.PROMOTE, { id: 'd' }), [['waiting', { jobId: 'd', prev: 'delayed' }]]);
    assert.deepEqual(f.apply(REC.REMOVE, { ids: ['x', 'nope', 'd'] }), [['removed', { jobId: 'x', prev: 'delayed' }], ['removed', { jobId: 'd', prev: 'waiting' }]]);
    f.apply(REC.ACTIVE, { t: 't', j: [['a', 1]], ts: 5 });
    assert.deepEqual(f.apply(REC.RELEASE, { id: 'a', a: 1 }), [['waiting', { jobId: 'a', prev: 'active' }]]);
    f.apply(REC.ACTIVE, { t: 't2', j: [['a', 1]], ts: 6 });
    f.apply(REC.COMPLETE, { id: 'a', a: 1, rv: null, ts: 7 });
    assert.deepEqual(f.apply(REC.RETRY, { id: 'a', ts: 8 }), [['waiting', { jobId: 'a', prev: 'completed' }]]);
    assert.deepEqual(f.apply(REC.PAUSE, {}), [['paused', {}]]);
    assert.deepEqual(f.apply(REC.RESUME, {}), [['resumed', {}]]);
    assert.deepEqual(f.apply(REC.START, { t: 't2', n: 1 }), []);
    assert.deepEqual(f.apply(99, { id: 'a' }), [], 'a record type from a newer writer');
  });

  it('promoteDue is a PROMOTED transition without a record', () => {
    const table = new JobTable();
    table.apply(REC.ADD, add('d', { delay: 10 }, 0), { seq: 1, segmentId: 1, offset: 32, size: 60 });
    table.promoteDue(5);
    assert.equal(table.transition.kind, TRANSITION.NONE, 'nothing due yet');
    table.promoteDue(10);
    const t = table.transition;
    assert.equal(t.kind, TRANSITION.PROMOTED);
    assert.equal(t.seq, 0);
    const out: Array<[string, unknown]> = [];
    deriveEvents(t, (name, payload) => out.push([name, payload]));
    assert.deepEqual(out, [['waiting', { jobId: 'd', prev: 'delayed' }]]);
  });

  it('builds only the events somebody hears', () => {
    const f = folding();
    f.apply(REC.ADD, add('a'));
    const out: string[] = [];
    deriveEvents(f.table.transition, (name) => out.push(name), (name) => name === 'waiting');
    assert.deepEqual(out, ['waiting']);
  });
});
