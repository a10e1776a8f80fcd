/**
 * Faults in claims and leases (lib/queue/tickets.ts over the Fs seam): a FaultFs handed to the queue (INTERNAL_FS)
 * fails one ticket call, and the queue must report it and lose nothing. Time is a TestClock (INTERNAL_CLOCK): a
 * lease or an unclaimed ticket ages by advancing it, never by sleeping.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readLog } from '../../lib/index.js';
import { TestClock } from '../../lib/queue/clock.js';
import { INTERNAL_FS } from '../../lib/queue/options.js';
import { REC } from '../../lib/store/events.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { SAFETY, advanceUntil, deferred, setup, waitFor } from '../helpers/queue.js';

/** Record types in the queue's log, in order. */
function types(dir: string): number[] {
  const out: number[] = [];
  readLog(path.join(dir, 'q'), { onEntry: (e) => void out.push(e.type) });
  return out;
}

describe('ticket faults', () => {
  it('reports a claim whose rename fails with EIO, and leaves the job claimable: it runs once, nothing counted', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    const ffs = new FaultFs();
    const q = s.queue('q', { [INTERNAL_FS]: ffs } as object);
    const errors: Array<{ code?: string; message: string }> = [];
    let runs = 0;
    const w = s.worker('q', async () => ++runs);
    w.on('error', (err: Error & { code?: string }) => errors.push(err));
    await w.waitUntilReady();
    // The job's ticket: a rename into ready/ (publish), then the claim's rename out of it.
    ffs.failNth('rename', 2);
    const completed = waitFor(w, 'completed');
    const job = await q.add('j', null);
    const [done] = await advanceUntil(clock, completed, 1_000, 'the job ran after the failed claim');
    assert.equal(ffs.fired.length, 1);
    assert.match(ffs.fired[0]!.path!, /tickets[\\/]ready[\\/]/, 'the claim\'s rename is the call that failed');
    assert.deepEqual(errors.map((e) => e.code), ['ERR_IO']);
    assert.match(errors[0]!.message, /claim a ticket/);
    assert.equal(done.id, job.id);
    assert.equal(runs, 1);
    assert.equal((await q.getJob(job.id))!.attemptsMade, 1);
    const log = types(s.dir);
    assert.equal(log.filter((x) => x === REC.RELEASE).length, 1, 'the unclaimed ticket\'s job was released');
    assert.equal(log.filter((x) => x === REC.STALL).length, 0);
  });

  it('reports a renewal that fails with EIO and keeps the lease: the next renewal holds it, no stall', SAFETY, async (t) => {
    const clock = new TestClock();
    const s = setup(t, { clock });
    const ffs = new FaultFs();
    const q = s.queue('q', { [INTERNAL_FS]: ffs, leaseMs: 3_000 } as object);
    const gate = deferred();
    const w = s.worker('q', async () => {
      await gate.promise;
      return 'kept';
    }, { leaseMs: 3_000 });
    const errors: Array<{ code?: string; message: string }> = [];
    const stalls: string[] = [];
    w.on('error', (err: Error & { code?: string }) => errors.push(err));
    w.on('stalled', (id: string) => stalls.push(id));
    q.on('stalled', ({ jobId }) => stalls.push(jobId));
    const active = waitFor(w, 'active');
    const job = await q.add('j', null);
    await active;
    ffs.failNth('utimes', 1);
    await clock.advance(1_000); // the first renewal (every leaseMs/3): it fails
    assert.deepEqual(errors.map((e) => e.code), ['ERR_IO']);
    assert.match(errors[0]!.message, /renew a lease/);
    await clock.advance(2_500); // past leaseMs from the claim: only the second renewal holds the lease
    const completed = waitFor(w, 'completed');
    gate.resolve();
    const [done, result] = await completed;
    assert.equal(done.id, job.id);
    assert.equal(result, 'kept');
    assert.deepEqual(stalls, []);
    assert.equal(ffs.fired.length, 1);
  });
});
