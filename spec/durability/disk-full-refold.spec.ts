/**
 * After a failed write is cut back (owner.ts, #refold), through the Fs seam (INTERNAL_FS, FaultFs) and a test clock
 * (INTERNAL_CLOCK): jobs whose outcome the cut took are handed back and run again, no job stays active; the rebuild
 * happens once per cooling period however many adds a full disk refuses; it gives the table an open with the index
 * gives; and a rejected add emits no event.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Queue, Worker } from '../../lib/index.js';
import { INTERNAL_CLOCK, INTERNAL_FS } from '../../lib/queue/options.js';
import { TestClock } from '../../lib/queue/clock.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';
import { SAFETY, advanceUntil, deferred, until } from '../helpers/queue.js';

const MODES = ['fsync', 'batch', 'none'] as const;
type Mode = (typeof MODES)[number];

function internals(ffs: FaultFs, clock: TestClock): object {
  return { [INTERNAL_FS]: ffs, [INTERNAL_CLOCK]: clock };
}

function openQueue(dir: string, durability: Mode, ffs: FaultFs, clock: TestClock): Queue {
  const q = new Queue('q', { dir, durability, ...internals(ffs, clock) } as never);
  q.on('error', () => undefined); // background refusals while the disk is full are expected here
  return q;
}

async function table(q: Queue): Promise<Array<[string, string]>> {
  const jobs = await q.getJobs(undefined, 0, -1, true);
  const out: Array<[string, string]> = [];
  for (const j of jobs) out.push([j.id, await j.getState()]);
  return out.sort((a, b) => Number(a[0]) - Number(b[0]));
}

for (const mode of MODES) {
  describe(`after a cut back (${mode})`, () => {
    it('runs again, uncounted, the jobs whose COMPLETE a full disk refused, and leaves none active', SAFETY, async (t) => {
      const dir = tempDir(t);
      const ffs = new FaultFs();
      const clock = new TestClock();
      const q = openQueue(dir, mode, ffs, clock);
      t.after(() => q.close());
      const N = 12;
      await q.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'j', data: { i } })));
      const gate = deferred();
      const runs = new Map<string, number>();
      let running = 0;
      const w = new Worker('q', async (job) => {
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
        running++;
        await gate.promise;
        return 'ok';
      }, { dir, durability: mode, concurrency: 4, ...internals(ffs, clock) } as never);
      const errors: Array<Error & { code?: string }> = [];
      w.on('error', (err) => errors.push(err));
      t.after(() => w.close(true));
      await until(() => running === 4, 'four jobs run');
      ffs.full = true;
      gate.resolve(); // their COMPLETE records go to a disk with no room: cut back, the table rebuilt
      await until(() => errors.some((e) => e.code === 'ERR_IO'), 'the worker hears its outcomes were refused');
      assert.equal((await q.getJobCounts()).completed, 0);
      ffs.full = false;
      const drained = until(async () => (await q.getJobCounts()).completed === N, 'every job completed', 15_000);
      await advanceUntil(clock, drained, 100, 'the queue drains after the cooling period');
      const counts = await q.getJobCounts();
      assert.deepEqual(counts, { waiting: 0, paused: 0, delayed: 0, active: 0, completed: N, failed: 0 });
      const again = [...runs].filter(([, n]) => n > 1).map(([id]) => id);
      assert.ok(again.length > 0, `no job ran twice: ${JSON.stringify([...runs])}`);
      for (const id of again) {
        const job = (await q.getJob(id))!;
        assert.equal(job.attemptsMade, 1, `job ${id} was charged for its lost outcome`);
      }
    });

    it('hands back, uncounted and without touching the disk, an outcome a worker reports while the owner cools', SAFETY, async (t) => {
      const dir = tempDir(t);
      const ffs = new FaultFs();
      const clock = new TestClock();
      const q = openQueue(dir, mode, ffs, clock);
      t.after(() => q.close());
      const stalled: string[] = [];
      q.on('stalled', ({ jobId }) => stalled.push(jobId));
      await q.addBulk([{ name: 'a', data: {} }, { name: 'b', data: {} }]);
      const gates = new Map([['a', deferred()], ['b', deferred()]]);
      const runs: string[] = [];
      const w = new Worker('q', async (job) => {
        runs.push(job.name);
        await gates.get(job.name)!.promise;
        return 'ok';
      }, { dir, durability: mode, concurrency: 2, ...internals(ffs, clock) } as never);
      const errors: Array<Error & { code?: string }> = [];
      w.on('error', (err) => errors.push(err));
      t.after(() => w.close(true));
      await until(() => runs.length === 2, 'both jobs run');
      ffs.full = true;
      gates.get('a')!.resolve(); // its COMPLETE is cut: the owner cools
      await until(() => errors.length > 0, 'the worker hears the outcome of a was refused');
      ffs.full = false;
      const writes = ffs.counts.write;
      gates.get('b')!.resolve(); // while cooling: not written, handed back
      await until(() => errors.some((e) => /writes nothing until/.test(e.message)), 'the outcome of b is refused while cooling');
      assert.equal(ffs.counts.write, writes, 'the disk was touched while cooling');
      const drained = until(async () => (await q.getJobCounts()).completed === 2, 'both jobs completed', 15_000);
      await advanceUntil(clock, drained, 100, 'the jobs run again after the cooling period');
      assert.deepEqual(runs.sort(), ['a', 'a', 'b', 'b']);
      assert.deepEqual(stalled, []);
      for (const j of await q.getJobs(['completed'])) assert.equal(j.attemptsMade, 1, `job ${j.name} was charged`);
    });

    it('rebuilds the table once per cooling period during a burst of adds on a full disk, refusing the rest at once', SAFETY, async (t) => {
      const dir = tempDir(t);
      const ffs = new FaultFs();
      const clock = new TestClock();
      const q = openQueue(dir, mode, ffs, clock);
      t.after(() => q.close());
      await q.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'ok', data: { i } })));
      ffs.full = true;
      const burst = async (): Promise<PromiseSettledResult<unknown>[]> => {
        const out: PromiseSettledResult<unknown>[] = [];
        for (let i = 0; i < 50; i++) out.push(...(await Promise.allSettled([q.add('refused', { i }), q.add('refused', { i })])));
        return out;
      };
      for (let period = 1; period <= 3; period++) {
        const writes = ffs.counts.write;
        const settled = await burst();
        assert.ok(settled.every((s) => s.status === 'rejected'), 'an add was acknowledged on a full disk');
        // Each write the log tries fails (full) and is cut back, with one rebuild: one try per period.
        assert.equal(ffs.counts.write - writes, 1, `period ${period}: writes tried`);
        const refused = (settled.at(-1) as PromiseRejectedResult).reason as Error & { code?: string; cause?: { code?: string } };
        assert.equal(refused.code, 'ERR_IO');
        assert.equal(refused.cause?.code, 'ENOSPC');
        assert.match(refused.message, /disk is full.*until \d{4}-\d\d-\d\dT[\d:.]+Z, then tries again/);
        await clock.advance(1_000);
      }
      assert.equal((await q.getJobCounts()).waiting, 20);
      ffs.full = false;
      await q.add('after', {});
      assert.equal((await q.getJobCounts()).waiting, 21);
    });

    it('emits no waiting or delayed event for a rejected add', async (t) => {
      const dir = tempDir(t);
      const ffs = new FaultFs();
      const clock = new TestClock();
      const q = openQueue(dir, mode, ffs, clock);
      t.after(() => q.close());
      const events: string[] = [];
      q.on('waiting', ({ jobId }) => events.push(`waiting ${jobId}`));
      q.on('delayed', ({ jobId }) => events.push(`delayed ${jobId}`));
      const first = await q.add('ok', {});
      const delayed = await q.add('later', {}, { delay: 60_000 });
      assert.deepEqual(events, [`waiting ${first.id}`, `delayed ${delayed.id}`]);
      ffs.full = true;
      await assert.rejects(q.add('refused', {}), { code: 'ERR_IO' });
      await clock.advance(1_000);
      await assert.rejects(q.addBulk([{ name: 'refused', data: {} }, { name: 'refused', data: {}, opts: { delay: 5_000 } }]), { code: 'ERR_IO' });
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(events, [`waiting ${first.id}`, `delayed ${delayed.id}`]);
    });
  });
}

describe('the rebuild after a cut back', () => {
  it('gives the table an open with the index gives, a waiting job with a damaged ADD header included', async (t) => {
    const dir = tempDir(t);
    const first = new Queue('q', { dir });
    await first.addBulk(Array.from({ length: 30 }, (_, i) => ({ name: 'j', data: { marker: `MARK${String(i).padStart(3, '0')}` } })));
    await first.close(); // writes the index, covering every record
    const seg = path.join(dir, 'q', 'log', fs.readdirSync(path.join(dir, 'q', 'log')).filter((f) => f.endsWith('.seg')).sort()[0]!);
    const bytes = fs.readFileSync(seg);
    const payload = bytes.lastIndexOf('{"id":"', bytes.indexOf('MARK014'));
    bytes[payload - 10]! ^= 0xff; // inside the record header of job 15's ADD
    fs.writeFileSync(seg, bytes);

    const ffs = new FaultFs();
    const clock = new TestClock();
    const q = openQueue(dir, 'fsync', ffs, clock);
    t.after(() => q.close());
    const opened = await table(q);
    assert.equal(opened.length, 30);
    assert.deepEqual(opened.find(([id]) => id === '15'), ['15', 'waiting']);
    ffs.failNth('write', 1, { code: 'ENOSPC' });
    await assert.rejects(q.add('refused', {}), { code: 'ERR_IO' });
    assert.deepEqual(await table(q), opened);
  });
});
