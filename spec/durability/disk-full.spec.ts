/**
 * A full disk (ENOSPC) under a Queue, through the Fs seam (INTERNAL_FS, spec/helpers/fault-fs.ts): a rejected add
 * leaves no trace in the table or the log, the queue goes on once space is back, and a queue opens and serves
 * reads on a disk with no room left.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Queue } from '../../lib/index.js';
import { INTERNAL_CLOCK, INTERNAL_FS } from '../../lib/queue/options.js';
import { TestClock } from '../../lib/queue/clock.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';

describe('Queue: the Fs seam', () => {
  it('takes an internal Fs under a symbol and makes its log calls through it', async (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const q = new Queue('q', { dir, durability: 'fsync', [INTERNAL_FS]: ffs } as never);
    await q.add('a', { x: 1 });
    await q.close();
    assert.ok(ffs.counts.write > 0 && ffs.counts.fsync > 0, JSON.stringify(ffs.counts));
  });
});

const MODES = ['fsync', 'batch', 'none'] as const;

function open(dir: string, ffs: FaultFs | undefined, durability: (typeof MODES)[number], clock?: TestClock): Queue {
  const q = new Queue('q', { dir, durability, ...(ffs ? { [INTERNAL_FS]: ffs } : {}), ...(clock ? { [INTERNAL_CLOCK]: clock } : {}) } as never);
  q.on('error', () => undefined); // background errors (a failed ACTIVE, a checkpoint) are not what these tests check
  return q;
}

async function ids(q: Queue, state: 'waiting' | 'failed' = 'waiting'): Promise<string[]> {
  return (await q.getJobs([state], 0, -1, true)).map((j) => j.id).sort((a, b) => Number(a) - Number(b));
}

for (const mode of MODES) {
  describe(`disk full (${mode})`, () => {
    for (const torn of [false, true]) {
      const how = torn ? 'a write that stops half way with ENOSPC' : 'a disk with no room at all';
      it(`rejected adds are in neither the table nor the log after ${how}, and adds work again once there is room`, async (t) => {
        const dir = tempDir(t);
        const ffs = new FaultFs();
        const clock = new TestClock();
        const q = open(dir, ffs, mode, clock);
        await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'ok', data: { i } })));
        const before = await ids(q);
        if (torn) ffs.failNth('write', 1, { code: 'ENOSPC', torn: true });
        else ffs.full = true;
        const bulk = q.addBulk(Array.from({ length: 50 }, (_, i) => ({ name: 'refused', data: { i, pad: 'x'.repeat(200) } })));
        await assert.rejects(bulk, (err: Error & { code?: string; cause?: { code?: string } }) => err.code === 'ERR_IO' && err.cause?.code === 'ENOSPC');
        if (!torn) {
          const singles = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => q.add('refused', { i })));
          assert.ok(singles.every((s) => s.status === 'rejected'), 'an add was acknowledged on a full disk');
        }
        assert.deepEqual(await q.getJobCounts(), { waiting: 10, paused: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
        assert.deepEqual(await ids(q), before);
        ffs.full = false;
        await clock.advance(1_000); // past the cooling period after the cut (owner.ts, #refold: Cooling)
        const late = await q.add('after', { room: true });
        await q.close();

        const again = open(dir, undefined, mode);
        t.after(() => again.close());
        assert.deepEqual(await ids(again), [...before, late.id].sort((a, b) => Number(a) - Number(b)));
        assert.deepEqual((await again.getJob(late.id))?.data, { room: true });
        for (const j of await again.getJobs(['waiting'])) assert.notEqual(j.name, 'refused');
      });
    }

    it('opens and serves reads on a disk with no room, and refuses adds with ENOSPC', async (t) => {
      const dir = tempDir(t);
      const first = open(dir, undefined, mode);
      await first.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: 'ok', data: { i } })));
      await first.close();
      const ffs = new FaultFs();
      ffs.full = true;
      const q = open(dir, ffs, mode);
      await q.waitUntilReady();
      assert.equal((await q.getJobCounts()).waiting, 5);
      assert.deepEqual((await q.getJob('3'))?.data, { i: 2 });
      await assert.rejects(q.add('refused', {}), (err: Error & { code?: string; cause?: { code?: string } }) => err.code === 'ERR_IO' && err.cause?.code === 'ENOSPC');
      assert.equal((await q.getJobCounts()).waiting, 5);
      await q.close();
    });

    it('says the outcome is unknown, and stays failed, when the cut back after a failed write fails too', async (t) => {
      const dir = tempDir(t);
      const ffs = new FaultFs();
      const q = open(dir, ffs, mode);
      await q.add('ok', {});
      ffs.failNth('write', 1, { code: 'ENOSPC', torn: true });
      ffs.failNth('ftruncate', 1, { code: 'EIO' });
      const err = await q.add('refused', {}).then(() => undefined, (e: Error & { code?: string }) => e);
      assert.equal(err?.code, 'ERR_IO');
      assert.match(err!.message, /unknown/);
      await assert.rejects(q.add('later', {}), (e) => e === err);
      await q.close().catch(() => undefined);
    });
  });
}
