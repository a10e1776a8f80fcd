/**
 * Issue 9, review bug 6, for real: a job claimed ahead (beyond its ticket's claim prefix, lookahead) that ends the
 * process running it, by process.exit(1) or by blocking the event loop until it is killed -9. Its START is not in
 * the log yet, so the next owner releases it uncounted, but orphaned (queue/owner/starts.ts, "Starts"), and the desk
 * then hands it out only in a claim prefix: every later run is known to have started, each restart stalls it, and
 * after at most maxStalledCount + 2 runs it fails ("job stalled more than allowable limit") and the queue drains.
 * Before, it was released at every restart with nothing counted and ran again forever.
 * The child (children/queue-poison-process.ts) runs until the process ends; the parent restarts it, a bounded
 * number of times, until it reports that every job is final. "Through the index": between runs the parent opens
 * and closes the queue, so the orphan mark reaches the next child in a checkpoint covering the whole log, not by
 * replay (store/snapshot.ts, flag 64).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue, logStats, readLog, verifyLog } from '../../lib/index.js';
import { REC, decodeEvent, type ActiveEvent } from '../../lib/store/events.js';
import { STALLED_TOO_OFTEN } from '../../lib/store/job-table.js';
import { runAndKill } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const JOBS = 1_000;
const POISON = 500;
const MAX_STALLED = 1; // the default maxStalledCount
const child = fileURLToPath(new URL('./children/queue-poison-process.js', import.meta.url));

/** Every record of the queue's log, decoded, in log order. */
function records(dir: string): Array<{ type: number; ev: Record<string, unknown> }> {
  const out: Array<{ type: number; ev: Record<string, unknown> }> = [];
  readLog(path.join(dir, 'q'), { onEntry: (e) => void out.push({ type: e.type, ev: decodeEvent<Record<string, unknown>>(e.payload(), e.seq) }) });
  return out;
}

for (const [mode, viaIndex] of [['exit', false], ['spin', false], ['exit', true]] as const) {
  describe(`a claimed-ahead job that ends its process (${mode === 'exit' ? 'process.exit(1)' : 'blocks the event loop, then kill -9'}${viaIndex ? ', the queue reopened through the index between runs' : ''})`, () => {
    it('is released uncounted at most once, then stalled at each restart, and fails after at most maxStalledCount + 2 runs; every other job completes once, none is charged', { timeout: 120_000 }, async (t) => {
      const dir = tempDir(t);
      const q = new Queue('q', { dir, durability: 'batch' });
      const added = await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'j', data: i === POISON ? { i, poison: true } : { i } })));
      await q.close();
      const ids = added.map((j) => j.id);
      const poison = ids[POISON]!;

      const poisonRuns: string[] = [];
      let drained = false;
      // A bound, not a timing assumption: the poison needs at most MAX_STALLED + 2 runs, then one more drains the queue.
      for (let run = 0; run < MAX_STALLED + 4 && !drained; run++) {
        const c = await runAndKill(child, [dir, mode], mode === 'spin' ? { afterLines: 1, countLinesStarting: 'poison ' } : {});
        const starts = c.lines.filter((l) => l.startsWith(`start ${poison} `));
        poisonRuns.push(...starts);
        drained = c.lines.includes('final');
        if (drained) assert.equal(c.code, 0, `the child failed: ${c.stderr}`);
        else if (mode === 'exit') assert.equal(c.code, 1, `the child did not end by the poison job (code ${c.code}, signal ${c.signal}): ${c.stderr}`);
        else assert.equal(c.signal, 'SIGKILL', `the child did not end by the kill (code ${c.code}): ${c.stderr}`);
        if (!drained) assert.ok(c.lines.includes(`poison ${poison}`), `a run ended without the poison job: ${c.stderr}`);
        if (!drained && viaIndex) {
          const between = new Queue('q', { dir, durability: 'batch' });
          await between.waitUntilReady(); // settles what the dead child left active (the orphan mark, or a stall)
          await between.close(); // and checkpoints it
          const index = verifyLog(path.join(dir, 'q')).index;
          assert.equal(index.usable, true);
          assert.equal(index.nextSeq, logStats(path.join(dir, 'q')).lastSeq + 1, 'the next child would replay records after the index');
        }
      }
      assert.ok(drained, `the queue did not drain in ${MAX_STALLED + 4} runs; the poison job ran ${poisonRuns.length} times: ${JSON.stringify(poisonRuns)}`);
      // Each run found it with no attempt made (stalls count none): MAX_STALLED + 1 stalled runs, and at most one
      // before them that the log could not know had started (released orphaned).
      assert.ok(poisonRuns.length <= MAX_STALLED + 2, `the poison job ran ${poisonRuns.length} times`);
      assert.deepEqual(poisonRuns, Array.from({ length: poisonRuns.length }, () => `start ${poison} 0`));

      const log = records(dir);
      // The poison job was claimed ahead in its first run (beyond its ticket's claim prefix `s`): what this tests.
      const first = log.find((r) => r.type === REC.ACTIVE && (r.ev as unknown as ActiveEvent).j.some(([id]) => id === poison))!.ev as unknown as ActiveEvent & { s: number };
      const slot = first.j.findIndex(([id]) => id === poison);
      assert.ok(slot >= first.s, `the poison job was in its ticket's claim prefix (slot ${slot}, s ${first.s}), not claimed ahead`);

      // Released uncounted by a crash at most once: orphaned, and from then on handed out only in a claim prefix.
      const released = log.filter((r) => r.type === REC.RELEASE && r.ev.id === poison);
      assert.equal(released.length, poisonRuns.length - (MAX_STALLED + 1), 'the poison job was released uncounted more than once');
      for (const r of released) assert.equal(r.ev.o, 1, 'the poison job was released without the orphan mark');
      const actives = log.filter((r) => r.type === REC.ACTIVE).map((r) => r.ev as unknown as ActiveEvent & { s: number });
      const later = actives.filter((a) => a.j.some(([id]) => id === poison)).slice(1);
      assert.equal(later.length, MAX_STALLED + 1);
      for (const a of later) {
        const at = a.j.findIndex(([id]) => id === poison);
        assert.ok(at < a.s, `the orphaned poison job was claimed ahead again (slot ${at}, s ${a.s})`);
      }

      // Only the poison job was ever stalled: unstarted claimed-ahead jobs were released, never charged.
      const stalled = log.filter((r) => r.type === REC.STALL).map((r) => r.ev.id);
      assert.deepEqual(stalled, Array.from({ length: MAX_STALLED + 1 }, () => poison));
      const completes = new Map<string, number>();
      for (const r of log) if (r.type === REC.COMPLETE) completes.set(r.ev.id as string, (completes.get(r.ev.id as string) ?? 0) + 1);
      for (const id of ids) assert.equal(completes.get(id) ?? 0, id === poison ? 0 : 1, `job ${id} completed ${completes.get(id) ?? 0} times`);
      assert.equal(log.some((r) => r.type === REC.FAIL), false, 'a job has a FAIL record: stalls count no attempt');

      const after = new Queue('q', { dir, durability: 'batch' });
      try {
        assert.deepEqual(await after.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: JOBS - 1, failed: 1 });
        const job = (await after.getJob(poison))!;
        assert.equal(await job.getState(), 'failed');
        assert.equal(job.failedReason, STALLED_TOO_OFTEN);
        assert.equal(job.attemptsMade, 0);
        for (const id of ids) {
          if (id === poison) continue;
          assert.equal((await after.getJob(id))!.attemptsMade, 1, `job ${id} was charged`);
        }
      } finally {
        await after.close();
      }
    });
  });
}
