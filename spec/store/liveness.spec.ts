/**
 * Queue compaction end to end: the log of deleted jobs is reclaimed, pointers of moved records follow, and the
 * compacted log replays (with or without the index) to exactly the table the owner had.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Queue, Worker, logStats, type Job } from '../../lib/index.js';
import type { LogEntry } from '../../lib/log/log-scan.js';
import { REC } from '../../lib/store/events.js';
import { JobTable } from '../../lib/store/job-table.js';
import { QueueLiveness } from '../../lib/store/liveness.js';
import { tempDir } from '../helpers/tmp.js';

const SEG = 16 * 1024;

async function snapshotOf(q: Queue): Promise<Record<string, unknown>> {
  const jobs = await q.getJobs(['waiting', 'delayed', 'completed', 'failed'], 0, -1, true);
  const rows = jobs.map((j: Job) => [j.id, j.name, JSON.stringify(j.data), j.returnvalue ?? null, j.attemptsMade, j.failedReason ?? null]);
  rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  return { counts: await q.getJobCounts(), rows };
}

describe('queue compaction', () => {
  it('reclaims the records of removed jobs and replays to the same table, with or without the index', async (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'q');
    const opts = { dir: root, durability: 'none' as const, maxSegmentBytes: SEG, checkpointEvery: 500 };
    const q = new Queue('q', opts);
    // 3,000 jobs; every third keeps its result (completed), the rest are removed on completion.
    for (let i = 0; i < 3_000; i += 300) {
      await q.addBulk(Array.from({ length: 300 }, (_, k) => ({
        name: 'job',
        data: { n: i + k, pad: 'x'.repeat(40) },
        opts: (i + k) % 3 === 0 ? {} : { removeOnComplete: true },
      })));
    }
    const w = new Worker('q', async (job) => (job.data as { n: number }).n * 2, { ...opts, concurrency: 20 });
    await new Promise<void>((resolve) => w.on('drained', resolve));
    await w.close();
    // A few more adds and removals so compaction runs again with fresh deletions in sealed segments.
    const extra = await q.addBulk(Array.from({ length: 1_200 }, (_, k) => ({ name: 'late', data: { k } })));
    for (const j of extra.slice(0, 1_100)) await q.remove(j.id);
    await q.add('tail', { last: true }); // lands in the head segment, which compaction never touches
    const before = logStats(dir).bytes;
    const result = await q.compact();
    const after = logStats(dir).bytes;
    assert.ok(result.segmentsRewritten + result.segmentsDeleted > 0, 'some segment was rewritten or deleted');
    assert.ok(after < before * 0.8, `log should shrink by compaction: ${before} -> ${after} bytes`);
    const live = await snapshotOf(q);
    await q.close();
    assert.equal((live.counts as Record<string, number>).completed, 1_000);
    assert.equal((live.counts as Record<string, number>).waiting, 101);

    const again = new Queue('q', opts);
    assert.deepEqual(await snapshotOf(again), live, 'reopened from the index');
    await again.close();

    fs.rmSync(path.join(dir, 'index'));
    const replayed = new Queue('q', opts);
    assert.deepEqual(await snapshotOf(replayed), live, 'replayed from the start, without the index');
    await replayed.close();
  });

  it('replays the same table after compaction with count retention and re-added custom ids', async (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'r');
    const opts = { dir: root, durability: 'none' as const, maxSegmentBytes: SEG, checkpointEvery: 300 };
    const q = new Queue('r', opts);
    const w = new Worker('r', async (job) => `done ${job.id}`, { ...opts, concurrency: 8 });
    for (let round = 0; round < 6; round++) {
      // Keep only the newest 40 completed jobs: each completion trims other, older jobs.
      await q.addBulk(Array.from({ length: 200 }, (_, k) => ({ name: 'c', data: { round, k }, opts: { removeOnComplete: 40 } })));
      // Custom ids removed and added again: a new incarnation each round.
      for (let k = 0; k < 20; k++) {
        const id = `custom-${k}`;
        const existing = await q.getJob(id);
        if (existing && (await existing.getState()) !== 'active') await existing.remove();
        await q.add('x', { round, k }, { jobId: id, delay: 60_000 });
      }
      await new Promise<void>((resolve) => {
        const check = async (): Promise<void> => ((await q.getJobCounts()).waiting === 0 ? resolve() : void setTimeout(check, 10));
        void check();
      });
      await q.compact();
    }
    await w.close();
    const live = await snapshotOf(q);
    await q.close();
    assert.equal((live.counts as Record<string, number>).completed, 40);
    assert.equal((live.counts as Record<string, number>).delayed, 20);

    fs.rmSync(path.join(dir, 'index'));
    const replayed = new Queue('r', opts);
    assert.deepEqual(await snapshotOf(replayed), live);
    await replayed.close();
  });

  it('keeps a START record while its ticket has a job active in it, and drops it once none has', () => {
    const table = new JobTable();
    let seq = 0;
    const apply = (type: number, ev: object): void => void table.apply(type, ev, { seq: ++seq, segmentId: 1, offset: seq * 80, size: 60 });
    for (const id of ['a', 'b']) apply(REC.ADD, { id, n: 'j', d: null, o: {}, ts: 1 });
    apply(REC.ACTIVE, { t: '1x0', j: [['a', 1], ['b', 1]], ts: 2, s: 0 });
    const entry = (ev: object): LogEntry => {
      const payload = Buffer.from(JSON.stringify(ev));
      return { seq: 4, type: REC.START, epoch: 1, segmentId: 1, offset: 0, size: 60, flags: 0, keyId: 0, payload: () => payload, raw: () => payload };
    };
    const liveness = new QueueLiveness(table);
    apply(REC.START, { t: '1x0', n: 1 });
    assert.equal(liveness.isLive(entry({ t: '1x0', n: 1 })), true);
    apply(REC.COMPLETE, { id: 'a', a: 1, rv: null, ts: 3 });
    assert.equal(liveness.isLive(entry({ t: '1x0', n: 1 })), true, 'b is still active in the ticket');
    apply(REC.RELEASE, { id: 'b', a: 1 });
    assert.equal(liveness.isLive(entry({ t: '1x0', n: 1 })), false);
    assert.equal(liveness.isLive(entry({ t: '9x9', n: 1 })), false, 'a ticket the table does not know');
  });
});
