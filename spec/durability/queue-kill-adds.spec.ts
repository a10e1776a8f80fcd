/**
 * kill -9 while adding jobs (fsync): a child opens a Queue and adds jobs from several concurrent loops (add and
 * addBulk, custom ids, delays, priorities, repeated ids) and reports every job it was given back; it is
 * SIGKILLed at random moments, during open too, over and over on the same queue. After each kill the parent
 * reopens the queue and checks, against jobFor(run, i) which both sides compute:
 *   - every acknowledged job is there, under its id, with exactly its name, data and options, in its state;
 *   - every job there was really added (its data is jobFor's for its (run, i), its id fits), and only once;
 *   - jobs found after an earlier kill are all still there; a job not acknowledged can only be from the run
 *     just killed (its add was in flight);
 *   - the log holds one ADD record per job and nothing else (a re-added id wrote nothing), and the counts add up.
 *
 * SPOOLQ_QUEUE_KILLS sets the number of kills (default 20), SPOOLQ_QUEUE_SEED the seed.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue, readLog, verifyLog } from '../../lib/index.js';
import { REC, decodeEvent, type AddEvent } from '../../lib/store/events.js';
import { prng, runAndKill } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { LONG_DELAY_MS, customId, fingerprint, jobFor } from './children/queue-jobs.js';

const KILLS = Number(process.env.SPOOLQ_QUEUE_KILLS ?? 20);
const SEED = Number(process.env.SPOOLQ_QUEUE_SEED ?? 20261123);
const SEGMENT_BYTES = 32 * 1024;
const adder = fileURLToPath(new URL('./children/queue-adder.js', import.meta.url));

describe('kill -9 while adding jobs (fsync)', () => {
  it(`keeps every acknowledged job, exactly as added, across ${KILLS} kills (seed ${SEED})`, { timeout: 600_000 }, async (t) => {
    const dir = tempDir(t);
    const queueDir = path.join(dir, 'q');
    const rand = prng(SEED);
    const acked = new Map<string, string>(); // job id -> "run:i"
    const found = new Map<string, string>(); // every job seen after a kill: id -> "run:i"
    let killedBeforeOpen = 0;
    for (let run = 1; run <= KILLS; run++) {
      const lanes = [1, 2, 4, 8][Math.floor(rand() * 4)]!;
      const plan =
        rand() < 0.25
          ? { fromSpawn: true, afterMs: Math.floor(rand() * 150) }
          : { afterLines: 1 + Math.floor(rand() * 300), countLinesStarting: 'ack ' };
      const args = [dir, String(run), String(Math.floor(rand() * 2 ** 31)), String(lanes), String(SEGMENT_BYTES)];
      const child = await runAndKill(adder, args, plan);
      assert.equal(child.signal, 'SIGKILL', `run ${run} ended by itself (code ${child.code}): ${child.stderr}`);
      if (!child.lines.includes('open')) killedBeforeOpen++;
      for (const line of child.lines) {
        const [kind, id, r, i, fp] = line.split(' ');
        if (kind !== 'ack') continue;
        assert.equal(fp, fingerprint(Number(r), Number(i)), `run ${run} acknowledged ${id} with a foreign fingerprint`);
        const key = `${r}:${i}`;
        const before = acked.get(id!);
        assert.ok(before === undefined || before === key, `job ${id} acknowledged as ${before} and as ${key}`);
        acked.set(id!, key);
      }

      const now = await checkQueue(dir, run, acked);
      for (const [id, key] of acked) assert.equal(now.get(id), key, `acknowledged job ${id} (${key}) is missing or changed after kill ${run}`);
      for (const [id, key] of found) assert.equal(now.get(id), key, `job ${id} (${key}), present after an earlier kill, is gone after kill ${run}`);
      for (const [id, key] of now) {
        if (found.has(id) || acked.has(id)) continue;
        assert.equal(Number(key.split(':')[0]), run, `job ${id} (${key}) was never acknowledged, yet appeared only after kill ${run}`);
      }
      for (const [id, key] of now) found.set(id, key);
      checkLogRecords(queueDir, now);
    }
    assert.ok(acked.size > KILLS * 10, `only ${acked.size} acknowledged jobs over ${KILLS} runs`);
    assert.equal(verifyLog(queueDir).ok, true);
    t.diagnostic(`${acked.size} acknowledged jobs (${found.size} present); ${killedBeforeOpen} kills landed before the queue was open`);
  });
});

/** Reopens the queue, checks every job in it against jobFor and finds each acknowledged one, and returns them all as id -> "run:i". */
async function checkQueue(dir: string, run: number, acked: Map<string, string>): Promise<Map<string, string>> {
  const queue = new Queue('q', { dir, durability: 'fsync', maxSegmentBytes: SEGMENT_BYTES });
  try {
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'], 0, -1, true);
    const out = new Map<string, string>();
    const keys = new Set<string>();
    let delayed = 0;
    for (const job of jobs) {
      const d = job.data as { r: number; i: number; fp: string };
      const where = `job ${job.id} after kill ${run}`;
      assert.ok(d && Number.isInteger(d.r) && Number.isInteger(d.i), `${where} holds data that was never added: ${JSON.stringify(d)}`);
      assert.equal(d.fp, fingerprint(d.r, d.i), `${where}: fingerprint of ${d.r}:${d.i}`);
      const planned = jobFor(d.r, d.i);
      const key = `${d.r}:${d.i}`;
      assert.equal(keys.has(key), false, `${where}: job ${key} is in the queue twice`);
      keys.add(key);
      assert.deepEqual(job.data, planned.data, `${where}: data`);
      assert.equal(job.name, planned.name, `${where}: name`);
      if (planned.opts.jobId !== undefined) assert.equal(job.id, customId(d.r, d.i), `${where}: custom id`);
      else assert.match(job.id, /^\d+$/, `${where}: a generated id`);
      assert.equal(job.opts.priority, planned.opts.priority ?? 0, `${where}: priority`);
      assert.equal(job.opts.delay, planned.opts.delay ?? 0, `${where}: delay`);
      assert.equal(job.opts.attempts, planned.opts.attempts ?? 1, `${where}: attempts`);
      const state = await job.getState();
      assert.equal(state, planned.opts.delay === LONG_DELAY_MS ? 'delayed' : 'waiting', `${where}: state`);
      if (state === 'delayed') delayed++;
      assert.equal(job.attemptsMade, 0, `${where}: attemptsMade`);
      out.set(job.id, key);
    }
    for (const [id, key] of acked) {
      // Each acknowledged job, looked up by its id as a user would.
      const job = await queue.getJob(id);
      const [r, i] = key.split(':').map(Number) as [number, number];
      assert.ok(job, `acknowledged job ${id} (${key}) is missing after kill ${run}`);
      assert.deepEqual(job.data, jobFor(r, i).data, `acknowledged job ${id} (${key}) after kill ${run}`);
    }
    const counts = await queue.getJobCounts();
    assert.deepEqual(counts, { waiting: jobs.length - delayed, paused: 0, delayed, active: 0, completed: 0, failed: 0 }, `counts after kill ${run}`);
    assert.equal(await queue.count(), jobs.length);
    return out;
  } finally {
    await queue.close();
  }
}

/** The log holds one ADD per job, for exactly the jobs found, and nothing else: a repeated id wrote nothing. */
function checkLogRecords(queueDir: string, jobs: Map<string, string>): void {
  const ids = new Set<string>();
  const summary = readLog(queueDir, {
    onEntry: (e) => {
      assert.equal(e.type, REC.ADD, `record ${e.seq} has type ${e.type}; only adds were made`);
      const ev = decodeEvent<AddEvent>(e.payload(), e.seq);
      assert.equal(ids.has(ev.id), false, `job ${ev.id} has two ADD records`);
      ids.add(ev.id);
      const d = ev.d as { r: number; i: number };
      assert.equal(jobs.get(ev.id), `${d.r}:${d.i}`, `ADD record ${e.seq} (job ${ev.id}) is not a job of the queue`);
    },
  });
  assert.equal(summary.damage.length, 0, `damage: ${JSON.stringify(summary.damage)}`);
  assert.equal(ids.size, jobs.size, 'one ADD record per job');
}
