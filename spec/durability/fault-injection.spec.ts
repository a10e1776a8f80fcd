/**
 * Every fs call of a small workload, failed in turn. The workload opens a log left by an earlier run (its tail
 * torn and a stale index.tmp beside it, so recovery truncates and unlinks), appends 30 records in three batches
 * across segment rolls, checkpoints between them, appends two more one at a time, and closes. A counting run
 * learns how many calls of each kind it makes; then, for every kind and every n up to that count, the workload
 * runs with the nth call of that kind failing (EIO, and for writes also ENOSPC after half the bytes went out).
 *
 * Each run must show:
 *   - the failure surfaces: Log.open, an append, the checkpoint or close rejects with ERR_IO. Never a silent
 *     success;
 *   - a failure of the log's writer (on a segment or the log directory) is sticky: every later append, the
 *     checkpoint and close reject with the very same error, and nothing refused reaches the disk. Except one: a
 *     write that failed for want of room (ENOSPC) and was cut back (writer.ts) rejects its batch only, and the
 *     workload goes on with later appends acknowledged;
 *   - a write that failed is cut back: none of the appends it rejected is in the log after reopen;
 *   - a failure while writing the index leaves the log working: later appends are acknowledged;
 *   - reopened with the real fs: every record of the earlier run and every acknowledged append is there with its
 *     exact payload, in order, nothing else is (only records whose append was attempted before the failure),
 *     and verify is ok.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { Log } from '../../lib/log/log.js';
import { readLog } from '../../lib/log/read-log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { FaultFs, type FaultKind, type FaultOptions } from '../helpers/fault-fs.js';
import { segmentFiles, tempDir, truncateBy } from '../helpers/tmp.js';

const SEGMENT_BYTES = 4096;
const EARLIER_RECORDS = 8; // ids 0..7; the last is torn before the workload runs.
const FIRST_WORKLOAD_ID = 100;
const REFUSED_ID = 1_000_000; // Appends made after a writer failure get ids from here: none may reach the disk.

function payloadOf(id: number): Buffer {
  const b = Buffer.alloc(60 + (id % 7) * 110, id % 251);
  b.writeUInt32LE(id, 0);
  return b;
}

/** The log the workload starts from: 8 records, the last one torn, and a stale index.tmp. */
async function makeEarlierLog(dir: string): Promise<void> {
  const log = await Log.open(dir, { maxSegmentBytes: SEGMENT_BYTES });
  await Promise.all(Array.from({ length: EARLIER_RECORDS }, (_, id) => log.append(1, payloadOf(id))));
  await log.close();
  const files = segmentFiles(dir);
  truncateBy(files[files.length - 1]!, 10);
  fs.writeFileSync(path.join(dir, 'index.tmp'), 'half an index');
}

interface Outcome {
  /** Seq → id of every append that resolved. */
  acked: Map<number, number>;
  /** Ids of every append made before the writer failed (the ones after it are REFUSED_ID and up). */
  attempted: Set<number>;
  /** Ids of appends rejected by a failed write (not an fsync): cut back, so never in the log. */
  rejected: Set<number>;
  failure: { phase: 'open' | 'append' | 'checkpoint' | 'close'; err: unknown } | undefined;
  /** The fault fired inside a Log.open that succeeded (ENOSPC creating the head: created at the first write). */
  absorbedAtOpen: boolean;
}

/** Runs the workload on `ffs`, checking stickiness and recovery from a failed checkpoint as it goes. */
async function runWorkload(ffs: FaultFs, dir: string): Promise<Outcome> {
  const out: Outcome = { acked: new Map(), attempted: new Set(), rejected: new Set(), failure: undefined, absorbedAtOpen: false };
  let log: Log;
  try {
    log = await Log.open(dir, { fs: ffs, lock: false, maxSegmentBytes: SEGMENT_BYTES });
  } catch (err) {
    out.failure = { phase: 'open', err };
    return out;
  }
  out.absorbedAtOpen = ffs.fired.length > 0;
  let nextId = FIRST_WORKLOAD_ID;
  let writerError: unknown;
  let indexFailed = false;
  const appendAll = async (count: number): Promise<void> => {
    const batch = Array.from({ length: count }, () => nextId++);
    const writesBefore = ffs.fired.length;
    const settled = await Promise.allSettled(
      batch.map((id) => {
        out.attempted.add(id);
        return log.append(1, payloadOf(id)).then((ptr) => void out.acked.set(ptr.seq, id));
      }),
    );
    const reasons = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (reasons.length === 0) return;
    assert.ok(reasons.every((r) => r === reasons[0]), 'one failed batch, one error');
    out.failure ??= { phase: 'append', err: reasons[0] };
    if (ffs.fired.slice(writesBefore).some((f) => f.kind === 'write')) {
      settled.forEach((r, i) => r.status === 'rejected' && out.rejected.add(batch[i]!));
    }
    if (log.failure === undefined) {
      // Cut back after ENOSPC, not sticky (writer.ts): the next appends must be acknowledged.
      assert.equal(((reasons[0] as Error).cause as { code?: string }).code, 'ENOSPC', 'a non-sticky failure other than ENOSPC');
      return;
    }
    writerError = reasons[0];
  };

  for (let batch = 0; batch < 3 && !writerError; batch++) {
    await appendAll(10);
    if (batch !== 1 || writerError) continue;
    try {
      await log.checkpoint(Buffer.from('state'));
    } catch (err) {
      out.failure ??= { phase: 'checkpoint', err };
      const onLog = ffs.fired[0]?.path?.startsWith(path.join(path.resolve(dir), 'log'));
      if (onLog) writerError = err;
      else indexFailed = true;
    }
  }
  for (let i = 0; i < 2 && !writerError; i++) await appendAll(1);
  if (indexFailed) assert.equal(writerError, undefined, 'appends failed after a failed index write');

  if (writerError) {
    // Sticky: every later call gets the same error, and nothing more is written.
    nextId = REFUSED_ID;
    for (let i = 0; i < 3; i++) await assert.rejects(log.append(1, payloadOf(nextId++)), (e) => e === writerError);
    await assert.rejects(log.checkpoint(Buffer.from('state')), (e) => e === writerError);
    await assert.rejects(log.close(), (e) => e === writerError);
    return out;
  }
  try {
    await log.close();
  } catch (err) {
    out.failure ??= { phase: 'close', err };
  }
  return out;
}

/** Reopens with the real fs and checks what survived against what the run was told. */
async function reopenAndCheck(dir: string, out: Outcome): Promise<void> {
  const log = await Log.open(dir);
  await log.close();
  const found = new Map<number, number>(); // seq -> id
  let lastId = -1;
  readLog(dir, {
    onEntry: (e) => {
      const payload = e.payload();
      const id = payload.readUInt32LE(0);
      assert.deepEqual(payload, payloadOf(id), `seq ${e.seq} holds a damaged payload`);
      assert.ok(id < EARLIER_RECORDS - 1 || out.attempted.has(id), `seq ${e.seq} holds id ${id}, never appended before the failure`);
      assert.ok(!out.rejected.has(id), `seq ${e.seq} holds id ${id}, whose append a failed write rejected`);
      assert.ok(id > lastId, `seq ${e.seq} (id ${id}) is out of order`);
      lastId = id;
      found.set(e.seq, id);
    },
  });
  const ids = new Set(found.values());
  for (let id = 0; id < EARLIER_RECORDS - 1; id++) assert.ok(ids.has(id), `record ${id} of the earlier run was lost`);
  for (const [seq, id] of out.acked) assert.equal(found.get(seq), id, `acknowledged seq ${seq} (id ${id}) was lost`);
  const report = verifyLog(dir);
  assert.equal(report.ok, true, JSON.stringify(report.damage));
}

// The template every run copies, and the counting run over it.
const template = fs.mkdtempSync(path.join(os.tmpdir(), 'spoolq-fault-template-'));
after(() => fs.rmSync(template, { recursive: true, force: true }));
await makeEarlierLog(template);

function copyOfTemplate(t: Parameters<typeof tempDir>[0]): string {
  const dir = tempDir(t);
  fs.cpSync(template, dir, { recursive: true });
  return dir;
}

const counting = new FaultFs();
const countingDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spoolq-fault-count-'));
fs.cpSync(template, countingDir, { recursive: true });
const baseline = await runWorkload(counting, countingDir);
fs.rmSync(countingDir, { recursive: true, force: true });

const VARIANTS: Array<{ kind: FaultKind; opts: FaultOptions; label: string }> = [
  { kind: 'write', opts: {}, label: 'write (EIO)' },
  { kind: 'write', opts: { code: 'ENOSPC', torn: true }, label: 'write (ENOSPC after half the bytes)' },
  { kind: 'fsync', opts: {}, label: 'fsync' },
  { kind: 'rename', opts: {}, label: 'rename' },
  { kind: 'open', opts: {}, label: 'open' },
  { kind: 'ftruncate', opts: {}, label: 'ftruncate' },
  { kind: 'unlink', opts: {}, label: 'unlink' },
];

describe('fault injection: the workload without faults', () => {
  it('succeeds and makes calls of every kind', async (t) => {
    assert.equal(baseline.failure, undefined);
    assert.equal(baseline.acked.size, 32);
    for (const v of VARIANTS) assert.ok(counting.counts[v.kind] > 0, `the workload makes no ${v.kind} call`);
    const dir = copyOfTemplate(t);
    await reopenAndCheck(dir, await runWorkload(new FaultFs(), dir));
  });
});

for (const v of VARIANTS) {
  describe(`fault injection: ${v.label}`, () => {
    for (let n = 1; n <= counting.counts[v.kind]; n++) {
      it(`surfaces ERR_IO and loses nothing acknowledged when ${v.kind} #${n} fails`, async (t) => {
        const dir = copyOfTemplate(t);
        const ffs = new FaultFs();
        ffs.failNth(v.kind, n, v.opts);
        const out = await runWorkload(ffs, dir);
        assert.equal(ffs.fired.length, 1, 'the fault did not fire');
        if (out.absorbedAtOpen && v.opts.code === 'ENOSPC') {
          // No room for the fresh head at open: the log opened without it and the first flush created it.
          assert.equal(out.failure, undefined, String(out.failure?.err));
          return reopenAndCheck(dir, out);
        }
        assert.ok(out.failure, `${v.kind} #${n} (on ${ffs.fired[0]!.path}) failed silently`);
        assert.equal((out.failure.err as { code?: string }).code, 'ERR_IO', String(out.failure.err));
        assert.equal(((out.failure.err as Error).cause as { code?: string }).code, v.opts.code ?? 'EIO');
        await reopenAndCheck(dir, out);
      });
    }
  });
}
