/**
 * A failed fsync / fdatasync (writer.ts: Failed fsyncs), through the Fs seam (spec/helpers/fault-fs.ts): sticky in
 * every mode; in fsync mode the batch it covered was never acknowledged and is cut back (absent from the Queue's
 * table and from the log after a reopen); in batch and none mode the records it covered were acknowledged and stay,
 * and the error says their outcome is unknown.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Queue } from '../../lib/index.js';
import { INTERNAL_FS } from '../../lib/queue/options.js';
import { Log } from '../../lib/log/log.js';
import { readLog } from '../../lib/log/read-log.js';
import { FaultFs } from '../helpers/fault-fs.js';
import type { Fs } from '../../lib/log/fs.js';
import { logDir } from '../helpers/log-fixtures.js';
import { payloadFor, tempDir } from '../helpers/tmp.js';

type Coded = Error & { code?: string; cause?: { code?: string } };

function open(dir: string, ffs: FaultFs | undefined): Queue {
  const q = new Queue('q', { dir, durability: 'fsync', ...(ffs ? { [INTERNAL_FS]: ffs } : {}) } as never);
  q.on('error', () => undefined); // background errors (a refused checkpoint) are not what these tests check
  return q;
}

/**
 * `ffs` with its methods bound, whose fdatasync (the writer's thread-pool sync) can be made to fail once with EIO
 * (`failNextFdatasync`) and can be held until `release()` (`hold`), without counting the fsyncSync calls before it.
 */
function asyncSyncFaults(ffs: FaultFs): { fs: Fs; failNextFdatasync: () => void; hold: boolean; held: () => number; release: () => void } {
  let fail = false;
  let queue: Array<() => void> = [];
  const ctl = {
    fs: new Proxy(ffs, {
      get: (target, key) => {
        if (key === 'fdatasync') {
          return (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
            const eio = fail ? Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }) : null;
            fail = false;
            target.fdatasync(fd, (err) => {
              const done = (): void => cb(eio ?? err);
              if (ctl.hold) queue.push(done);
              else done();
            });
          };
        }
        const v = (target as unknown as Record<PropertyKey, unknown>)[key];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as unknown as Fs,
    failNextFdatasync: () => void (fail = true),
    hold: false,
    held: () => queue.length,
    release: () => {
      const run = queue;
      queue = [];
      for (const fn of run) fn();
    },
  };
  return ctl;
}

/** The first u32 of every record's payload, in log order (payloadFor writes its number there). */
function numbers(dir: string): number[] {
  const seen: number[] = [];
  readLog(dir, { onEntry: (e) => void seen.push(e.payload().readUInt32LE(0)) });
  return seen;
}

describe('a failed fsync (fsync mode)', () => {
  it('cuts the batch back: a rejected add is absent from the table and, after a reopen, from the log', async (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const q = open(dir, ffs);
    await q.add('ok', { n: 1 }, { jobId: 'good' });
    ffs.failNth('fsync', 1, { code: 'EIO' });
    const settled = await Promise.allSettled([
      q.add('bad', { n: 2 }, { jobId: 'bad1' }),
      q.add('bad', { n: 3 }, { jobId: 'bad2' }),
    ]);
    for (const s of settled) {
      assert.equal(s.status, 'rejected');
      const err = (s as PromiseRejectedResult).reason as Coded;
      assert.equal(err.code, 'ERR_IO');
      assert.equal(err.cause?.code, 'EIO');
      assert.match(err.message, /^fsync the log failed \(EIO\); the records of this batch were cut back$/);
    }
    assert.equal(await q.getJob('bad1'), undefined);
    assert.equal(await q.getJob('bad2'), undefined);
    assert.equal((await q.getJobCounts()).waiting, 1);
    await assert.rejects(q.add('later', {}), { code: 'ERR_IO' }); // sticky: never retried
    await q.close().catch(() => undefined);

    const again = open(dir, undefined);
    t.after(() => again.close());
    assert.equal(await again.getJob('bad1'), undefined);
    assert.equal(await again.getJob('bad2'), undefined);
    assert.deepEqual((await again.getJob('good'))?.data, { n: 1 });
    assert.equal((await again.getJobCounts()).waiting, 1);
  });

  it('cuts back a batch synced on the thread pool, and the segment it rolled into', async (t) => {
    const dir = logDir(t);
    const faults = asyncSyncFaults(new FaultFs());
    const log = await Log.open(dir, { fs: faults.fs, durability: 'fsync', maxSegmentBytes: 4096 });
    for (let i = 0; i < 3; i++) await log.append(1, payloadFor(i));
    const cuts: number[] = [];
    log.on('cut', (seq) => cuts.push(seq));
    // 60 records of 136 bytes: more than INLINE_SYNC_MAX_RECORDS (synced by an fdatasync), and past 4096 bytes.
    const batch = Array.from({ length: 60 }, (_, i) => log.append(1, payloadFor(100 + i)));
    faults.failNextFdatasync();
    const settled = await Promise.allSettled(batch);
    assert.ok(settled.every((s) => s.status === 'rejected'), 'an append of the failed batch was acknowledged');
    assert.match(((settled[0] as PromiseRejectedResult).reason as Error).message, /fdatasync the log failed \(EIO\); the records of this batch were cut back/);
    assert.deepEqual(cuts, [4]);
    await log.close().catch(() => undefined);
    assert.deepEqual(numbers(dir), [0, 1, 2]);
  });
});

for (const durability of ['batch', 'none'] as const) {
  describe(`a failed fsync (${durability} mode)`, () => {
    it('keeps the acknowledged records, says their outcome is unknown, and stays failed', async (t) => {
      const dir = logDir(t);
      const ffs = new FaultFs();
      const log = await Log.open(dir, { fs: ffs, durability, batchIntervalMs: 60_000 });
      await log.append(1, payloadFor(1));
      await log.append(1, payloadFor(2)); // acknowledged at write(), not synced yet
      const cuts: number[] = [];
      log.on('cut', (seq) => cuts.push(seq));
      ffs.failNth('fsync', 1, { code: 'EIO' });
      const err = await log.sync().then(() => undefined, (e: Coded) => e);
      assert.equal(err?.code, 'ERR_IO');
      assert.equal(err?.cause?.code, 'EIO');
      assert.match(err!.message, /outcome is unknown until the queue is reopened/);
      assert.equal(log.failure, err);
      await assert.rejects(log.append(1, payloadFor(3)), (e) => e === err);
      assert.deepEqual(cuts, [], 'acknowledged records were cut');
      await log.close().catch(() => undefined);
      assert.deepEqual(numbers(dir), [1, 2]);
    });

    it('rejects the appends not yet written and tells the layer above they are not in the log', async (t) => {
      const dir = logDir(t);
      const gate = asyncSyncFaults(new FaultFs());
      const log = await Log.open(dir, { fs: gate.fs, durability, maxSegmentBytes: 4096, batchIntervalMs: 60_000 });
      for (let i = 0; i < 20; i++) await log.append(1, payloadFor(i)); // 20 × 136 bytes
      const cuts: number[] = [];
      log.on('cut', (seq) => cuts.push(seq));
      gate.failNextFdatasync();
      gate.hold = true;
      const synced = log.sync();
      await new Promise((resolve) => setImmediate(resolve)); // sync() has started its fdatasync
      // These would roll into a new segment, which waits for the sync in flight: they are not written yet.
      const late = Array.from({ length: 20 }, (_, i) => log.append(1, payloadFor(100 + i)));
      for (const until = Date.now() + 20_000; gate.held() === 0; ) {
        assert.ok(Date.now() < until, 'the fdatasync never returned');
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      gate.release();
      await assert.rejects(synced, /outcome is unknown/);
      const settled = await Promise.allSettled(late);
      assert.ok(settled.every((s) => s.status === 'rejected'), 'an unwritten append was acknowledged');
      assert.deepEqual(cuts, [21]);
      await log.close().catch(() => undefined);
      assert.deepEqual(numbers(dir), Array.from({ length: 20 }, (_, i) => i));
    });
  });
}
