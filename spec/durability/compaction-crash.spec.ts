/**
 * Compaction killed at each of its steps. A log of ~10 sealed segments (a checkpoint in the middle) is compacted
 * with a liveness rule that leaves some segments with no live record (deleted), some sparse (rewritten) and some
 * dense (kept). A counting run learns how many fs calls of each kind compaction makes; then, for every kind and
 * every n up to that count, compaction runs with the nth call failing, and either
 *   - the process carries on: compact() must reject with ERR_IO, an append after it must still be acknowledged,
 *     and the log closes normally; or
 *   - the power is cut right after the failure (FaultFs.powerLoss), so the disk keeps only what was fsynced.
 * Reopened with the real fs, the log must hold exactly the live records it held before (same seqs, same bytes),
 * any other record must be one that was there before, byte for byte, replay from the checkpoint (when recovery
 * accepts it) must see every record past it, and verify must be ok.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { CompactionError } from '../../lib/log/compactor.js';
import { Log } from '../../lib/log/log.js';
import type { LogEntry } from '../../lib/log/log-scan.js';
import { readLog } from '../../lib/log/read-log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { FaultFs, type FaultKind } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';

const SEGMENT_BYTES = 4096;
const RECORDS = 160;

function payloadOf(id: number): Buffer {
  const b = Buffer.alloc(120 + (id % 5) * 30, id % 251);
  b.writeUInt32LE(id, 0);
  return b;
}

/** Seq → the record's bytes exactly as stored, and the seqs the liveness rule keeps. */
interface Before {
  raw: Map<number, Buffer>;
  live: Set<number>;
}

/** Builds the log every run copies: RECORDS appends in batches, a checkpoint after half of them. */
async function makeTemplate(dir: string): Promise<Before> {
  const log = await Log.open(dir, { maxSegmentBytes: SEGMENT_BYTES });
  for (let id = 0; id < RECORDS; id += 16) {
    await Promise.all(Array.from({ length: 16 }, (_, i) => log.append(1, payloadOf(id + i))));
    if (id === 80) await log.checkpoint(Buffer.from('state'));
  }
  await log.close();
  // Liveness by segment, in log order: none live, sparse (1 in 5), dense (4 in 5).
  const before: Before = { raw: new Map(), live: new Set() };
  const segments: number[] = [];
  readLog(dir, {
    onEntry: (e) => {
      if (segments[segments.length - 1] !== e.segmentId) segments.push(e.segmentId);
      before.raw.set(e.seq, Buffer.from(e.raw()));
      const kind = (segments.length - 1) % 3;
      if ((kind === 1 && e.seq % 5 === 0) || (kind === 2 && e.seq % 5 !== 0)) before.live.add(e.seq);
    },
  });
  return before;
}

interface Run {
  ffs: FaultFs;
  dir: string;
  /** Seqs appended (and acknowledged) after the compaction. */
  appendedAfter: Map<number, Buffer>;
}

type Ending = 'carry on' | 'power loss';

/**
 * Opens a copy of the template on a FaultFs, arms `fault` for the compaction and runs it. Returns the
 * compaction's outcome; the log is then closed (carry on, after one more append) or abandoned (power loss).
 */
async function compactOnce(
  t: TestContext,
  template: string,
  before: Before,
  fault: { kind: FaultKind; n: number } | undefined,
  ending: Ending,
): Promise<Run & { result: PromiseSettledResult<unknown> }> {
  const dir = tempDir(t);
  fs.cpSync(template, dir, { recursive: true });
  const ffs = new FaultFs();
  const log = await Log.open(dir, { fs: ffs, lock: false });
  if (fault) ffs.failNth(fault.kind, fault.n);
  const [result] = await Promise.allSettled([log.compact((e: LogEntry) => before.live.has(e.seq))]);
  const appendedAfter = new Map<number, Buffer>();
  if (ending === 'power loss') {
    ffs.powerLoss();
  } else {
    const payload = payloadOf(RECORDS);
    const ptr = await log.append(1, payload);
    appendedAfter.set(ptr.seq, payload);
    await log.close();
  }
  return { ffs, dir, appendedAfter, result: result! };
}

/** Reopens with the real fs and checks the live set, the rest, replay from the checkpoint and verify. */
async function reopenAndCheck(run: Run, before: Before): Promise<void> {
  const log = await Log.open(run.dir);
  const seen: number[] = [];
  try {
    readLog(run.dir, {
      onEntry: (e) => {
        seen.push(e.seq);
        const after = run.appendedAfter.get(e.seq);
        if (after) return void assert.deepEqual(e.payload(), after);
        const was = before.raw.get(e.seq);
        assert.ok(was, `seq ${e.seq} was not in the log before compaction`);
        assert.deepEqual(Buffer.from(e.raw()), was, `seq ${e.seq} changed`);
      },
    });
    const present = new Set(seen);
    for (const seq of before.live) assert.ok(present.has(seq), `live seq ${seq} was lost`);
    for (const seq of run.appendedAfter.keys()) assert.ok(present.has(seq), `seq ${seq}, appended after compaction, was lost`);
    const from = log.recovery.checkpoint?.position.nextSeq ?? 1;
    const replayed: number[] = [];
    log.replay((e) => void replayed.push(e.seq));
    assert.deepEqual(replayed, seen.filter((s) => s >= from), 'replay from the checkpoint does not see the log');
  } finally {
    await log.close();
  }
  const report = verifyLog(run.dir);
  assert.equal(report.ok, true, JSON.stringify(report.damage));
}

const template = fs.mkdtempSync(path.join(os.tmpdir(), 'spoolq-compact-template-'));
after(() => fs.rmSync(template, { recursive: true, force: true }));
const before = await makeTemplate(template);

// The counting run: how many calls of each kind one compaction makes.
const KINDS: FaultKind[] = ['write', 'fsync', 'rename', 'open', 'unlink'];
const calls = await (async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spoolq-compact-count-'));
  try {
    fs.cpSync(template, dir, { recursive: true });
    const ffs = new FaultFs();
    const log = await Log.open(dir, { fs: ffs, lock: false });
    const start = { ...ffs.counts };
    const result = await log.compact((e) => before.live.has(e.seq));
    const made = Object.fromEntries(KINDS.map((k) => [k, ffs.counts[k] - start[k]])) as Record<FaultKind, number>;
    await log.close();
    return { made, result };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();

describe('compaction without faults', () => {
  it('deletes dead segments, rewrites sparse ones and keeps dense ones', () => {
    assert.ok(calls.result.deleted.length >= 2, `deleted ${calls.result.deleted.length}`);
    assert.ok(calls.result.rewritten.length >= 2, `rewritten ${calls.result.rewritten.length}`);
    assert.ok(calls.result.bytesAfter < calls.result.bytesBefore);
    for (const k of KINDS) assert.ok(calls.made[k] > 0, `compaction makes no ${k} call`);
  });
  for (const ending of ['carry on', 'power loss'] as const) {
    it(`keeps exactly the live records (${ending} after it)`, async (t) => {
      const run = await compactOnce(t, template, before, undefined, ending);
      assert.equal(run.result.status, 'fulfilled');
      await reopenAndCheck(run, before);
    });
  }
});

for (const kind of KINDS) {
  describe(`compaction killed at a failing ${kind}`, () => {
    for (let n = 1; n <= calls.made[kind]; n++) {
      for (const ending of ['carry on', 'power loss'] as const) {
        it(`keeps exactly the live records when ${kind} #${n} fails (${ending})`, async (t) => {
          const run = await compactOnce(t, template, before, { kind, n }, ending);
          assert.equal(run.ffs.fired.length, 1, 'the fault did not fire');
          assert.equal(run.result.status, 'rejected', `${kind} #${n} (on ${run.ffs.fired[0]!.path}) failed silently`);
          const err = (run.result as PromiseRejectedResult).reason as { code?: string };
          assert.equal(err.code, 'ERR_IO', String(err));
          await reopenAndCheck(run, before);
        });
      }
    }
  });
}

describe('compaction that fails part way', () => {
  it(
    'leaves every live record readable through the pointers the caller holds',
    {},
    async (t) => {
      const dir = tempDir(t);
      fs.cpSync(template, dir, { recursive: true });
      const ffs = new FaultFs();
      const log = await Log.open(dir, { fs: ffs, lock: false });
      t.after(() => log.close());
      const pointers = new Map<number, { seq: number; segmentId: number; offset: number; size: number }>();
      readLog(dir, { onEntry: (e) => void pointers.set(e.seq, { seq: e.seq, segmentId: e.segmentId, offset: e.offset, size: e.size }) });
      ffs.failNth('rename', 2); // The second rewrite fails; the first one is done.
      const err = await log.compact((e) => before.live.has(e.seq)).then(
        () => assert.fail('compaction should fail'),
        (e: unknown) => e as CompactionError,
      );
      assert.equal(err.code, 'ERR_IO');
      assert.ok(err.result.rewritten.length >= 1, 'the first rewrite is reported');
      for (const [seq, ptr] of err.result.relocated) pointers.set(seq, ptr);
      for (const seq of before.live) {
        assert.deepEqual(Buffer.from(log.read(pointers.get(seq)!).raw()), before.raw.get(seq), `live seq ${seq} is unreadable`);
      }
    },
  );
});
