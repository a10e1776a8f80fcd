/**
 * Damaged records under a queue, with real byte flips: a listing still reads (the damaged job's data marked
 * unreadable), and damage found by replay gives the same job as damage under the index: there, failed with
 * ERR_CORRUPT_RECORD once it can be decided, and named in the report.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Queue, Worker, readLog } from '../../lib/index.js';
import { REC } from '../../lib/store/events.js';
import { SAFETY, until } from '../helpers/queue.js';
import { flipByte, segmentFiles, tempDir } from '../helpers/tmp.js';
import { RECORD_HEADER_BYTES } from '../../lib/format/record.js';
import { randomBytes } from 'node:crypto';

const OPTS = { durability: 'none' } as const;

/** Flips a byte inside the payload of the ADD record of job `id` (found by reading the log). */
function damageAdd(queueDir: string, id: string): void {
  let at: { segmentId: number; offset: number; size: number } | undefined;
  readLog(queueDir, {
    onEntry: (e) => {
      if (e.type === REC.ADD && (JSON.parse(e.payload().toString()) as { id: string }).id === id) at = e;
    },
  });
  assert.ok(at, `no ADD for job ${id}`);
  const file = segmentFiles(queueDir).find((f) => Number(path.basename(f, '.seg')) === at!.segmentId)!;
  flipByte(file, at.offset + at.size - 3); // in the data, near its end: the header stays whole
}

/**
 * Flips one byte of the ADD record of seq `seq` (a generated id's job is its seq): at `at` bytes into the record
 * (the header is RECORD_HEADER_BYTES long; its magic is at 4).
 */
function damageSeq(queueDir: string, seq: number, at: number): void {
  let rec: { segmentId: number; offset: number; size: number } | undefined;
  readLog(queueDir, { onEntry: (e) => void (e.seq === seq && e.type === REC.ADD && (rec = e)) });
  assert.ok(rec, `no ADD of seq ${seq}`);
  const file = segmentFiles(queueDir).find((f) => Number(path.basename(f, '.seg')) === rec!.segmentId)!;
  flipByte(file, rec.offset + at);
}

function openQueue(root: string, errors: Error[] = [], extra: object = {}): Queue {
  const q = new Queue('q', { dir: root, ...OPTS, ...extra });
  q.on('error', (err: Error) => errors.push(err));
  return q;
}

/** Runs a worker that completes every job until nothing waits; returns once counts settle. */
async function processAll(root: string, q: Queue, extra: object = {}): Promise<void> {
  const w = new Worker('q', async () => 'done', { dir: root, ...OPTS, concurrency: 8, ...extra });
  w.on('error', () => undefined);
  try {
    await until(async () => {
      const c = await q.getJobCounts();
      return c.waiting === 0 && c.active === 0 && c.delayed === 0;
    }, 'the worker has taken every job', 20_000);
  } finally {
    await w.close();
  }
}

describe('a damaged record under a failed job', () => {
  it('leaves getJob and getJobs(failed) readable, the job marked unreadable; only its data read fails', SAFETY, async (t) => {
    const root = tempDir(t);
    const q = openQueue(root);
    await q.addBulk([1, 2, 3].map((i) => ({ name: `n${i}`, data: { i } })));
    const w = new Worker('q', async () => { throw new Error('boom'); }, { dir: root, ...OPTS });
    w.on('error', () => undefined);
    await until(async () => (await q.getJobCounts()).failed === 3, 'three jobs failed');
    await w.close();
    await q.close();
    damageAdd(path.join(root, 'q'), '2');

    const again = openQueue(root);
    t.after(() => again.close());
    const failed = await again.getJobs(['failed'], 0, -1, true);
    assert.deepEqual(failed.map((j) => j.id), ['1', '2', '3']);
    const [one, two, three] = failed;
    assert.deepEqual([one!.data, three!.data], [{ i: 1 }, { i: 3 }]);
    assert.equal(two!.data, undefined);
    assert.equal(two!.unreadable?.code, 'ERR_CORRUPT_RECORD');
    assert.match(two!.unreadable!.message, /job 2: its data/);
    assert.equal(two!.name, 'n2');
    assert.equal(two!.failedReason, 'boom');
    assert.equal(one!.unreadable, undefined);
    const got = await again.getJob('2');
    assert.equal(got?.unreadable?.code, 'ERR_CORRUPT_RECORD');
    assert.equal(got?.toJSON().unreadable, got?.unreadable?.message);
  });
});

describe('damage found on reopen', () => {
  for (const index of [true, false]) {
    it(`keeps the job whose ADD is damaged, failed with ERR_CORRUPT_RECORD once processed (${index ? 'with' : 'without'} the index)`, { timeout: 60_000 }, async (t) => {
      const root = tempDir(t);
      const q = openQueue(root);
      await q.addBulk(Array.from({ length: 2000 }, (_, i) => ({ name: 'n', data: { i } })));
      await q.close();
      damageAdd(path.join(root, 'q'), '777');
      if (!index) fs.rmSync(path.join(root, 'q', 'index'));

      const errors: Error[] = [];
      const again = openQueue(root, errors);
      t.after(() => again.close());
      await again.waitUntilReady();
      const counts = await again.getJobCounts();
      assert.equal(counts.waiting + counts.failed, 2000, JSON.stringify(counts));
      await processAll(root, again);
      assert.deepEqual(await again.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 1999, failed: 1 });
      const job = await again.getJob('777');
      assert.ok(job, 'job 777 vanished');
      assert.equal(await job.getState(), 'failed');
      assert.match(job.failedReason ?? '', /no valid record 777 /);
      assert.equal(job.unreadable?.code, 'ERR_CORRUPT_RECORD');
      if (!index) {
        await until(() => errors.length > 0, "the 'error' event reporting the damage");
        assert.ok(errors.some((e) => (e as { code?: string }).code === 'ERR_CORRUPT_RECORD' && /\bjob 777\b/.test(e.message)), errors.map((e) => e.message).join('\n'));
      }
    });
  }

  it('names a damaged custom-id job by its later records and keeps its state (without the index)', SAFETY, async (t) => {
    const root = tempDir(t);
    const q = openQueue(root);
    await q.addBulk(Array.from({ length: 50 }, (_, i) => ({ name: 'n', data: { i }, opts: { jobId: `job-${i}` } })));
    await processAll(root, q);
    assert.equal((await q.getJobCounts()).completed, 50);
    await q.close();
    damageAdd(path.join(root, 'q'), 'job-7');
    fs.rmSync(path.join(root, 'q', 'index'));

    const errors: Error[] = [];
    const again = openQueue(root, errors);
    t.after(() => again.close());
    assert.equal((await again.getJobCounts()).completed, 50);
    const job = await again.getJob('job-7');
    assert.equal(await job?.getState(), 'completed');
    assert.equal(job?.returnvalue, 'done');
    assert.equal(job?.unreadable?.code, 'ERR_CORRUPT_RECORD');
    await until(() => errors.length > 0, "the 'error' event reporting the damage");
    assert.ok(errors.some((e) => /\bjob job-7\b/.test(e.message)), errors.map((e) => e.message).join('\n'));
  });

  const KEY = randomBytes(32);
  for (const codec of ['plain', 'encrypted'] as const) {
    const extra = codec === 'encrypted' ? { encryption: { key: KEY } } : {};
    for (const index of [true, false]) {
      it(`keeps a job whose ADD header is whole but whose id cannot be read, as String(seq): same counts (${codec}, ${index ? 'with' : 'without'} the index)`, SAFETY, async (t) => {
        const root = tempDir(t);
        const q = openQueue(root, [], extra);
        await q.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: 'n', data: { i } })));
        await q.close();
        // Plain: the payload's first byte, so the id cannot be read from it; encrypted: any byte of the ciphertext.
        damageSeq(path.join(root, 'q'), 17, codec === 'plain' ? RECORD_HEADER_BYTES : RECORD_HEADER_BYTES + 5);
        if (!index) fs.rmSync(path.join(root, 'q', 'index'));

        const errors: Error[] = [];
        const again = openQueue(root, errors, extra);
        t.after(() => again.close());
        const counts = await again.getJobCounts();
        assert.equal(counts.waiting + counts.failed, 40, JSON.stringify(counts));
        await processAll(root, again, extra);
        assert.deepEqual(await again.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: 39, failed: 1 });
        const job = await again.getJob('17');
        assert.equal(await job?.getState(), 'failed');
        assert.equal(job?.unreadable?.code, 'ERR_CORRUPT_RECORD');
        if (!index) assert.ok(errors.some((e) => /\bjob 17\b/.test(e.message)), errors.map((e) => e.message).join('\n'));
      });
    }
  }

  it('names the seqs lost in its report when a damaged ADD header hides the job (without the index)', SAFETY, async (t) => {
    const root = tempDir(t);
    const q = openQueue(root);
    await q.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: 'n', data: { i } })));
    await q.close();
    damageSeq(path.join(root, 'q'), 17, 4); // the record's magic: nothing of it can be read
    fs.rmSync(path.join(root, 'q', 'index'));
    const errors: Error[] = [];
    const again = openQueue(root, errors);
    t.after(() => again.close());
    await again.waitUntilReady();
    await until(() => errors.length > 0, "the 'error' event reporting the damage");
    assert.ok(errors.some((e) => /the records of seq 17 cannot be read/.test(e.message)), errors.map((e) => e.message).join('\n'));
  });

  it('keeps a job whose ADD header is damaged when a later record names it (without the index)', SAFETY, async (t) => {
    const root = tempDir(t);
    const q = openQueue(root);
    await q.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'n', data: { i } })));
    await processAll(root, q);
    await q.close();
    damageSeq(path.join(root, 'q'), 7, 4);
    fs.rmSync(path.join(root, 'q', 'index'));
    const again = openQueue(root);
    t.after(() => again.close());
    assert.equal((await again.getJobCounts()).completed, 20);
    const job = await again.getJob('7');
    assert.equal(await job?.getState(), 'completed');
    assert.equal(job?.unreadable?.code, 'ERR_CORRUPT_RECORD');
  });
});
