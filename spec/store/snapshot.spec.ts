/**
 * The job table as checkpoint state (lib/store/snapshot.ts): a table encoded and decoded is the same table,
 * field by field and order by order; bytes that are not a table are refused with a stable code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RecordPointer } from '../../lib/log/writer.js';
import { REC } from '../../lib/store/events.js';
import { JOB_STATES, JobTable, type JobMeta } from '../../lib/store/job-table.js';
import { decodeSnapshot, encodeSnapshot } from '../../lib/store/snapshot.js';

/** Every field of every job by id, plus the orders a queue relies on. */
function describeTable(table: JobTable): unknown {
  const row = (j: JobMeta): unknown => ({
    id: j.id, name: j.name, opts: j.opts, state: j.state, priority: j.priority, order: j.order, runAt: j.runAt,
    attemptsMade: j.attemptsMade, stalls: j.stalls, timestamp: j.timestamp, processedOn: j.processedOn,
    finishedOn: j.finishedOn, progress: j.progress, failedReason: j.failedReason, ptr: j.ptr, resultPtr: j.resultPtr,
    // The ticket of an active job is kept for tracked tickets only: an untracked one tells the next owner nothing.
    failPtr: j.failPtr, logPtrs: j.logPtrs, ticket: j.run ? j.ticket : undefined,
    run: j.run && { id: j.run.id, atClaim: j.run.atClaim, started: j.run.started, open: j.run.open, slot: j.slot },
  });
  const nextRunAt = table.nextRunAt();
  // The order the heaps give jobs out in, by popping them: call this once per table, last.
  const ready: string[] = [];
  for (let j = table.ready.pop(); j; j = table.ready.pop()) ready.push(j.id);
  const delayed: string[] = [];
  for (let j = table.delayed.pop(); j; j = table.delayed.pop()) delayed.push(j.id);
  return {
    paused: table.paused,
    counts: JOB_STATES.map((s) => table.count(s)),
    jobs: Object.fromEntries([...table.jobs.values()].map((j) => [j.id, row(j)])),
    active: [...table.byState.active].map((j) => j.id),
    completed: [...table.byState.completed].map((j) => j.id),
    failed: [...table.byState.failed].map((j) => j.id),
    ready,
    delayed,
    nextRunAt,
  };
}

/** A table with jobs in every state and every optional field set somewhere. */
function richTable(): JobTable {
  const table = new JobTable();
  let seq = 0;
  const apply = (type: number, ev: object): RecordPointer => {
    const ptr = { seq: ++seq, segmentId: 1 + Math.floor(seq / 7), offset: 40 + seq * 90, size: 55 + (seq % 4) };
    table.apply(type, ev, ptr);
    return ptr;
  };
  const add = (id: string, o: object = {}, n = 'job', ts = 1_700_000_000_000 + seq): RecordPointer =>
    apply(REC.ADD, { id, n, d: { big: 'ignored by the table' }, o, ts });
  for (const [id, o] of [
    ['1', {}], ['2', { priority: 5 }], ['3', { priority: 5 }], ['custom-é', { priority: 1, attempts: 3 }],
    ['-5', { delay: 60_000 }], ['1e3', { delay: 30_000, removeOnComplete: { age: 10, count: 5 } }],
    ['9007199254740993', {}], ['4294967295', { backoff: { type: 'exponential', delay: 10, jitter: 0.5 } }],
    ['c1', {}], ['c2', { removeOnComplete: 3 }], ['f1', { attempts: 2 }], ['f2', {}], ['act', {}],
  ] as const) add(id, o, id.startsWith('c') ? 'other-name' : 'job');
  apply(REC.ACTIVE, { t: '1x0', j: [['c2', 1], ['c1', 1], ['f1', 1], ['f2', 1], ['act', 1]], ts: 5 });
  apply(REC.PROGRESS, { id: 'c2', p: { pct: 50, note: 'half' } });
  apply(REC.PROGRESS, { id: 'act', p: 7 });
  apply(REC.LOG, { id: 'c2', l: 'line 1' });
  apply(REC.LOG, { id: 'c2', l: 'line 2' });
  apply(REC.COMPLETE, { id: 'c2', a: 1, rv: 'r', ts: 6 }); // completed first…
  apply(REC.COMPLETE, { id: 'c1', a: 1, rv: 'r', ts: 7 }); // …then this one: the order must survive
  apply(REC.FAIL, { id: 'f2', a: 1, e: { name: 'Error', message: 'final ✗' }, r: null, ts: 8 });
  apply(REC.FAIL, { id: 'f1', a: 1, e: { name: 'Error', message: 'retry me' }, r: 1_000, ts: 8 });
  apply(REC.ACTIVE, { t: '1x1', j: [['f1', 2]], ts: 1_001 });
  apply(REC.STALL, { id: 'f1', a: 2, r: null, ts: 1_002 });
  apply(REC.RETRY, { id: 'f2', ts: 9 });
  apply(REC.PAUSE, {});
  return table;
}

describe('snapshot', () => {
  it('decodes to the table it encoded, with every field, state order and heap order', () => {
    const table = richTable();
    const decoded = decodeSnapshot(encodeSnapshot(table));
    assert.deepEqual(describeTable(decoded), describeTable(table));
  });

  it('keeps which active jobs of a tracked ticket started (version 2), so the next owner can settle them', () => {
    const table = new JobTable();
    let seq = 0;
    const apply = (type: number, ev: object): void => void table.apply(type, ev, { seq: ++seq, segmentId: 1, offset: seq * 80, size: 60 });
    for (const id of ['a', 'b', 'c', 'old']) apply(REC.ADD, { id, n: 'j', d: null, o: {}, ts: 1 });
    apply(REC.ACTIVE, { t: '3x1', j: [['a', 1], ['b', 1], ['c', 1]], ts: 2, s: 1 });
    apply(REC.START, { t: '3x1', n: 2 });
    apply(REC.ACTIVE, { t: '2x9', j: [['old', 1]], ts: 3 }); // an older writer's ticket: untracked
    const decoded = decodeSnapshot(encodeSnapshot(table));
    const started = (t: JobTable): boolean[] => ['a', 'b', 'c', 'old'].map((id) => t.isStarted(t.jobs.get(id)!, false));
    assert.deepEqual(started(decoded), [true, true, false, true]);
    assert.equal(decoded.tickets.get('3x1')!.open, 3);
    decoded.apply(REC.START, { t: '3x1', n: 3 }, { seq: 99, segmentId: 1, offset: 9_000, size: 60 });
    assert.equal(decoded.isStarted(decoded.jobs.get('c')!, false), true, 'a START after the checkpoint still applies');
    assert.deepEqual(describeTable(decodeSnapshot(encodeSnapshot(table))), describeTable(table));
  });

  it('keeps the orphan mark of a RELEASE with o: 1 (flag 64) through stalls, and drops it at a COMPLETE or FAIL', () => {
    const table = new JobTable();
    let seq = 0;
    const apply = (t: JobTable, type: number, ev: object): void => void t.apply(type, ev, { seq: ++seq, segmentId: 1, offset: seq * 80, size: 60 });
    for (const id of ['a', 'b', 'c', 'd']) apply(table, REC.ADD, { id, n: 'j', d: null, o: {}, ts: 1 });
    apply(table, REC.ACTIVE, { t: '3x1', j: [['a', 1], ['b', 1], ['c', 1], ['d', 1]], ts: 2, s: 0 });
    for (const id of ['a', 'b', 'c']) apply(table, REC.RELEASE, { id, a: 1, why: 'not started', o: 1 });
    apply(table, REC.RELEASE, { id: 'd', a: 1 }); // a graceful hand-back: no mark
    const decoded = decodeSnapshot(encodeSnapshot(table));
    const marks = (t: JobTable): boolean[] => ['a', 'b', 'c', 'd'].map((id) => t.jobs.get(id)!.orphaned);
    assert.deepEqual(marks(decoded), [true, true, true, false]);
    apply(decoded, REC.ACTIVE, { t: '4x1', j: [['a', 1], ['b', 1], ['c', 1]], ts: 3, s: 3 });
    apply(decoded, REC.STALL, { id: 'a', a: 1, r: 3, ts: 3, s: 1 });
    apply(decoded, REC.COMPLETE, { id: 'b', a: 1, rv: null, ts: 3 });
    apply(decoded, REC.FAIL, { id: 'c', a: 1, e: { name: 'Error', message: 'x' }, r: 4, ts: 3 });
    assert.deepEqual(marks(decodeSnapshot(encodeSnapshot(decoded))), [true, false, false, false]);
  });

  it('still reads version 1, whose active jobs count as started', () => {
    const table = richTable();
    const v1 = Buffer.from(encodeSnapshot(table));
    assert.ok(table.byState.active.size > 0 && table.tickets.size === 0, 'the rich table has untracked active jobs');
    v1.writeUInt16LE(1, 4); // with no tracked ticket, the bytes of version 2 are those of version 1
    const decoded = decodeSnapshot(v1);
    for (const j of decoded.byState.active) assert.equal(decoded.isStarted(j, false), true);
    assert.deepEqual(describeTable(decoded), describeTable(richTable()));
  });

  it('keeps the order completed and failed jobs finished in, not the order they were added', () => {
    const decoded = decodeSnapshot(encodeSnapshot(richTable()));
    assert.deepEqual([...decoded.byState.completed].map((j) => j.id), ['c2', 'c1']);
    assert.deepEqual([...decoded.byState.failed].map((j) => j.id), ['f1']);
  });

  it('round-trips an empty table, paused or not', () => {
    for (const paused of [false, true]) {
      const table = new JobTable();
      table.paused = paused;
      const decoded = decodeSnapshot(encodeSnapshot(table));
      assert.deepEqual(describeTable(decoded), describeTable(table));
    }
  });

  it('gives a decoded table that folds later records as the original does', () => {
    const table = richTable();
    const decoded = decodeSnapshot(encodeSnapshot(table));
    const more: Array<[number, object]> = [
      [REC.RESUME, {}], [REC.ADD, { id: 'new', n: 'job', d: null, o: {}, ts: 1 }],
      [REC.ACTIVE, { t: '2x0', j: [['1', 1], ['custom-é', 1]], ts: 2 }], [REC.COMPLETE, { id: 'custom-é', a: 1, rv: 1, ts: 3 }],
      [REC.REMOVE, { ids: ['c2', '2'] }], [REC.PROMOTE, { id: '-5' }],
    ];
    let seq = 1000;
    for (const t of [table, decoded]) {
      seq = 1000;
      for (const [type, ev] of more) t.apply(type, ev, { seq: ++seq, segmentId: 9, offset: seq, size: 50 });
    }
    assert.deepEqual(describeTable(decoded), describeTable(table));
  });

  for (const [what, mutate, code] of [
    ['a buffer too short', (b: Buffer) => b.subarray(0, 10), 'ERR_CORRUPT_RECORD'],
    ['a wrong magic', (b: Buffer) => Buffer.concat([Buffer.from('NOPE'), b.subarray(4)]), 'ERR_CORRUPT_RECORD'],
    ['version 3', (b: Buffer) => { const c = Buffer.from(b); c.writeUInt16LE(3, 4); return c; }, 'ERR_UNSUPPORTED_VERSION'],
    ['a truncated table', (b: Buffer) => b.subarray(0, b.length - 3), 'ERR_CORRUPT_RECORD'],
    ['trailing bytes', (b: Buffer) => Buffer.concat([b, Buffer.alloc(1)]), 'ERR_CORRUPT_RECORD'],
  ] as const) {
    it(`refuses ${what} with ${code}`, () => {
      const bytes = encodeSnapshot(richTable());
      assert.throws(() => decodeSnapshot(mutate(bytes)), { code });
    });
  }
});
