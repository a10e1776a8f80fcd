/**
 * Without crashes, every job runs and completes exactly once: 20,000 jobs through a module processor in 4
 * worker_threads × 16 concurrency (durability 'batch'). Counted three ways, each of which must show every id once
 * and none twice: the processor's side effect (it appends its job id to a file, from whichever thread), the
 * Worker's 'completed' events (each with the id as its result), and the log's COMPLETE records. The counts
 * must add up to 20,000 completed and nothing else.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readLog, type Job } from '../../lib/index.js';
import { REC, decodeEvent, type CompleteEvent } from '../../lib/store/events.js';
import { setup, waitForCount } from '../helpers/queue.js';

const JOBS = 20_000;
const processor = new URL('../worker/fixtures/dq-echo.js', import.meta.url);

describe('exactly once without crashes', () => {
  it(`completes each of ${JOBS} jobs exactly once in 4 threads × 16 concurrency`, { timeout: 60_000 }, async (t) => {
    const s = setup(t);
    const side = path.join(s.dir, 'side-effects');
    process.env.SPOOLQ_DQ_SIDE = side; // threads copy process.env when they start
    t.after(() => delete process.env.SPOOLQ_DQ_SIDE);

    const queue = s.queue('q', { durability: 'batch' });
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i += 2_000) {
      const jobs = await queue.addBulk(Array.from({ length: 2_000 }, (_, k) => ({ name: 'echo', data: { n: i + k } })));
      ids.push(...jobs.map((j) => j.id));
    }
    assert.equal(new Set(ids).size, JOBS);

    const completedByQueue = new Map<string, number>();
    queue.on('completed', ({ jobId }: { jobId: string }) => completedByQueue.set(jobId, (completedByQueue.get(jobId) ?? 0) + 1));
    const failures: string[] = [];
    const worker = s.worker('q', processor, { durability: 'batch', threads: 4, concurrency: 16 });
    worker.on('failed', (job: Job, err: Error) => failures.push(`${job.id}: ${err.message}`));
    worker.on('error', (err: Error) => failures.push(`worker error: ${err.message}`));
    const completed = await waitForCount<[Job, unknown]>(worker, 'completed', JOBS, 50_000);

    assert.deepEqual(failures, []);
    const byEvent = new Map<string, number>();
    for (const [job, result] of completed) {
      assert.equal(result, job.id, `job ${job.id} returned ${String(result)}`);
      byEvent.set(job.id, (byEvent.get(job.id) ?? 0) + 1);
    }
    const bySideEffect = new Map<string, number>();
    const lines = fs.readFileSync(side, 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'the side-effect file ends with a whole line');
    for (const id of lines) bySideEffect.set(id, (bySideEffect.get(id) ?? 0) + 1);
    const byLog = new Map<string, number>();
    readLog(path.join(s.dir, 'q'), {
      onEntry: (e) => {
        if (e.type !== REC.COMPLETE) return;
        const ev = decodeEvent<CompleteEvent>(e.payload(), e.seq);
        assert.equal(ev.rv, ev.id);
        byLog.set(ev.id, (byLog.get(ev.id) ?? 0) + 1);
      },
    });
    for (const [what, counts] of [['side effects', bySideEffect], ["Worker 'completed' events", byEvent], ["Queue 'completed' events", completedByQueue], ['COMPLETE records', byLog]] as const) {
      assert.equal(counts.size, JOBS, `${what}: ${counts.size} distinct jobs, not ${JOBS}`);
      const twice = [...counts].filter(([, n]) => n !== 1);
      assert.deepEqual(twice, [], `${what}: jobs seen more than once`);
      for (const id of ids) assert.equal(counts.get(id), 1, `${what}: job ${id}`);
    }

    assert.deepEqual(await queue.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: JOBS, failed: 0 });
    for (const id of [ids[0]!, ids[JOBS >> 1]!, ids[JOBS - 1]!]) {
      const job = await queue.getJob(id);
      assert.equal(job?.returnvalue, id);
      assert.equal(job?.attemptsMade, 1);
    }
  });
});
