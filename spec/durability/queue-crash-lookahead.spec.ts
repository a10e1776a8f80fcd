/**
 * Issue 9, for real: kill -9 of a process whose Worker holds a lookahead backlog (jobs claimed ahead of its slots,
 * not started), with the default attempts (1). A crash must not fail jobs that did not cause it:
 *   - jobs that never started are released with nothing counted (attemptsMade 0, no STALL record);
 *   - jobs that were running are stalled by BullMQ's rule: back to waiting, failed only once they have stalled
 *     more than maxStalledCount times (default 1), never for want of attempts;
 *   - after the restart every job completes exactly once (one COMPLETE record each).
 * The child (children/queue-lookahead.ts) kills itself from the processor of one job (data.kill), between turns
 * of its event loop, while its 3 other slots hold jobs that never return and its lookahead stays claimed; the parent opens the queue after each kill (its open settles what the dead owner left) and
 * reads the journal and the log. "Started" below means the journal has a `start` line for the job in that run;
 * a job that had started may be stalled or, if its START record had not reached the log yet, released orphaned
 * (queue/owner/starts.ts "Starts"; its next run is then tracked exactly); a job that had not started must never be stalled.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue, readLog } from '../../lib/index.js';
import { REC, decodeEvent } from '../../lib/store/events.js';
import { runAndKill } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const JOBS = 2_000;
const KILLER = 600;
const child = fileURLToPath(new URL('./children/queue-lookahead.js', import.meta.url));

interface Run {
  started: Set<string>;
  killed: boolean;
}

/** Fills the queue: JOBS no-op jobs, the KILLER-th of which kills the process running it. Returns the ids. */
async function fill(dir: string): Promise<{ ids: string[]; killer: string }> {
  const q = new Queue('q', { dir, durability: 'batch' });
  const added = await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'j', data: i === KILLER ? { i, kill: true } : { i } })));
  await q.close();
  return { ids: added.map((j) => j.id), killer: added[KILLER]!.id };
}

/** Runs the child once in `mode`; returns which jobs it entered. A journal line is whole or absent. */
async function runChild(dir: string, journal: string, mode: 'kill' | 'run'): Promise<Run> {
  const before = fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').length : 0;
  const c = await runAndKill(child, [dir, journal, mode, String(KILLER)], {});
  const lines = fs.readFileSync(journal, 'utf8').slice(before).split('\n');
  const killed = lines.some((l) => l.startsWith('kill '));
  if (killed) assert.equal(c.signal, 'SIGKILL', `the child noted its kill but ended with ${c.code}: ${c.stderr}`);
  else assert.equal(c.code, 0, `the child failed (signal ${c.signal}): ${c.stderr}`);
  return { started: new Set(lines.filter((l) => l.startsWith('start ')).map((l) => l.slice(6))), killed };
}

/** Records of the given types in the queue's log, by job id. */
function recordsById(dir: string, type: number): Map<string, Array<Record<string, unknown>>> {
  const out = new Map<string, Array<Record<string, unknown>>>();
  readLog(path.join(dir, 'q'), {
    onEntry: (e) => {
      if (e.type !== type) return;
      const ev = decodeEvent<Record<string, unknown>>(e.payload(), e.seq);
      const id = ev.id as string;
      out.set(id, [...(out.get(id) ?? []), ev]);
    },
  });
  return out;
}

/** Opens the queue in this process (its open settles what the killed owner left), checks, closes. */
async function inspect(dir: string, opts: { maxStalledCount?: number }, check: (q: Queue) => Promise<void>): Promise<void> {
  const q = new Queue('q', { dir, durability: 'batch', ...opts });
  try {
    await q.waitUntilReady();
    await check(q);
  } finally {
    await q.close();
  }
}

/** The jobs that never started in any of `runs` have no STALL record and no attempt, and are not failed. */
async function assertUnstartedUntouched(q: Queue, dir: string, ids: string[], runs: Run[]): Promise<number> {
  const stalls = recordsById(dir, REC.STALL);
  let unstarted = 0;
  for (const id of ids) {
    if (runs.some((r) => r.started.has(id))) continue;
    unstarted++;
    const job = (await q.getJob(id))!;
    assert.equal(stalls.has(id), false, `job ${id} never started, yet was stalled`);
    assert.equal(job.attemptsMade, 0, `job ${id} never started, yet has attemptsMade ${job.attemptsMade}`);
    assert.notEqual(await job.getState(), 'failed', `job ${id} never started, yet failed`);
  }
  return unstarted;
}

/** After the final run: every job that should complete did, exactly once, and none failed but `failing`. */
function assertCompletedOnce(dir: string, ids: string[], failing: string[] = []): void {
  const completes = recordsById(dir, REC.COMPLETE);
  const fails = recordsById(dir, REC.FAIL);
  for (const id of ids) {
    const n = completes.get(id)?.length ?? 0;
    assert.equal(n, failing.includes(id) ? 0 : 1, `job ${id} has ${n} COMPLETE records`);
    assert.equal(fails.has(id), false, `job ${id} has a FAIL record`);
  }
}

function setupDir(t: TestContext): { dir: string; journal: string } {
  const dir = tempDir(t);
  return { dir, journal: path.join(dir, 'journal') };
}

describe('kill -9 of a Worker holding a lookahead backlog (issue 9)', () => {
  it('fails no job with the default attempts: unstarted ones come back untouched, and every job completes once', { timeout: 120_000 }, async (t) => {
    const { dir, journal } = setupDir(t);
    const { ids, killer } = await fill(dir);
    const first = await runChild(dir, journal, 'kill');
    assert.ok(first.killed, 'the killer job ran');

    await inspect(dir, {}, async (q) => {
      const counts = await q.getJobCounts();
      assert.equal(counts.failed, 0, `a crash failed jobs: ${JSON.stringify(counts)}`);
      assert.equal(counts.active, 0);
      const unstarted = await assertUnstartedUntouched(q, dir, ids, [first]);
      assert.ok(unstarted > 0, 'some jobs never started');
      const job = (await q.getJob(killer))!;
      assert.equal(await job.getState(), 'waiting', 'the job running at the kill is back, stalled once');
      assert.equal(job.attemptsMade, 0);
      assert.equal(recordsById(dir, REC.STALL).get(killer)?.length, 1);
    });
    // The lookahead was exercised: jobs claimed but not started at the kill were released.
    const released = [...recordsById(dir, REC.RELEASE).keys()].filter((id) => !first.started.has(id));
    assert.ok(released.length > 0, 'no claimed-but-unstarted job was released: the kill caught no lookahead');

    const last = await runChild(dir, journal, 'run');
    assert.equal(last.killed, false);
    assertCompletedOnce(dir, ids);
    await inspect(dir, {}, async (q) => {
      assert.deepEqual(await q.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: JOBS, failed: 0 });
    });
  });

  it('fails a job that was running at two crashes in a row (maxStalledCount 1), and no job that had not started', { timeout: 120_000 }, async (t) => {
    const { dir, journal } = setupDir(t);
    const { ids, killer } = await fill(dir);
    const runs: Run[] = [];
    runs.push(await runChild(dir, journal, 'kill'));
    await inspect(dir, {}, async (q) => {
      assert.equal((await q.getJobCounts()).failed, 0);
    });
    runs.push(await runChild(dir, journal, 'kill'));
    assert.ok(runs.every((r) => r.killed && r.started.has(killer)), 'the killer ran, and killed, in both runs');
    await inspect(dir, {}, async (q) => {
      const job = (await q.getJob(killer))!;
      assert.equal(await job.getState(), 'failed');
      assert.equal(job.failedReason, 'job stalled more than allowable limit');
      assert.equal(job.attemptsMade, 0, 'stalls count no attempt');
      assert.equal(recordsById(dir, REC.STALL).get(killer)?.length, 2);
      await assertUnstartedUntouched(q, dir, ids, runs);
      const failed = await q.getJobs(['failed'], 0, -1);
      for (const f of failed) {
        assert.ok(runs.every((r) => r.started.has(f.id)), `job ${f.id} failed, yet was not running at both kills`);
      }
    });
    const last = await runChild(dir, journal, 'run');
    assert.equal(last.killed, false);
    await inspect(dir, {}, async (q) => {
      const failed = (await q.getJobs(['failed'], 0, -1)).map((j) => j.id);
      assertCompletedOnce(dir, ids, failed);
      assert.ok(failed.includes(killer));
      assert.equal((await q.getJobCounts()).completed, JOBS - failed.length);
    });
  });

  it('fails a job running at a crash on its first stall with maxStalledCount 0, and no job that had not started', { timeout: 120_000 }, async (t) => {
    const { dir, journal } = setupDir(t);
    const { ids, killer } = await fill(dir);
    const first = await runChild(dir, journal, 'kill');
    assert.ok(first.killed);
    await inspect(dir, { maxStalledCount: 0 }, async (q) => {
      const job = (await q.getJob(killer))!;
      assert.equal(await job.getState(), 'failed');
      assert.equal(job.failedReason, 'job stalled more than allowable limit');
      assert.equal(job.attemptsMade, 0);
      await assertUnstartedUntouched(q, dir, ids, [first]);
      for (const f of await q.getJobs(['failed'], 0, -1)) assert.ok(first.started.has(f.id), `job ${f.id} failed, yet never started`);
    });
  });
});
