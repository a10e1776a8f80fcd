/**
 * kill -9 of the process running the Worker, while it processes: the parent fills a queue (attempts: 5) and
 * closes it; a child opens a Queue and an inline Worker and journals, with one synchronous append per line, each
 * processor entry (`start id attempt run`), each processor return (`end`) and each 'completed' event (`done`,
 * after the COMPLETE record is written). The child is SIGKILLed at random moments (during open too), again and
 * again, and a last child runs until every job is final. Then, from the journal, the log and the queue:
 *   - every job is completed: a stall counts no attempt (only maxStalledCount, 1,000 here), and no processor
 *     fails, so nothing can fail a job;
 *   - a job ran again only if it was running at a kill: each of its starts but the last is in a killed run in
 *     which it has no `done`, and the next start is in a later run, with the same attempt (1: stalls count no
 *     attempt; the new run is a new ticket). Running means until `done`, not `end`: a job whose processor had
 *     returned but whose result was not yet in the log when the process died is rightly run again;
 *   - no job completed twice: at most one `done` per job, and the log holds exactly one COMPLETE record per
 *     completed job and none for failed ones;
 *   - the result kept is the last start's (`id:attempt:run`), and attemptsMade is 1.
 *
 * SPOOLQ_WORKER_KILLS sets the number of kills (default 12), SPOOLQ_WORKER_SEED the seed.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue, readLog, verifyLog } from '../../lib/index.js';
import { REC, decodeEvent, type CompleteEvent } from '../../lib/store/events.js';
import { prng, runAndKill } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const KILLS = Number(process.env.SPOOLQ_WORKER_KILLS ?? 12);
const SEED = Number(process.env.SPOOLQ_WORKER_SEED ?? 20261124);
const JOBS = Math.max(300, KILLS * 25);
const ATTEMPTS = 5;
const CONCURRENCY = 8;
const workerChild = fileURLToPath(new URL('./children/queue-worker.js', import.meta.url));

interface Start {
  attempt: number;
  run: number;
}

describe('kill -9 of the process running a Worker', () => {
  it(`runs a job again only if it was running at a kill, and completes none twice (${KILLS} kills, seed ${SEED})`, { timeout: 300_000 }, async (t) => {
    const dir = tempDir(t);
    const journal = path.join(dir, 'journal');
    const rand = prng(SEED);

    const filler = new Queue('q', { dir, durability: 'batch' });
    const added = await filler.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'j', data: { i }, opts: { attempts: ATTEMPTS } })));
    await filler.close();
    const ids = added.map((j) => j.id);

    const killed = new Set<number>();
    let killedBeforeWork = 0;
    let run = 0;
    for (;;) {
      run++;
      const last = killed.size >= KILLS;
      const plan = last
        ? {}
        : rand() < 0.2
          ? { fromSpawn: true, afterMs: Math.floor(rand() * 150) }
          : { afterLines: 1 + Math.floor(rand() * 20), countLinesStarting: 'start ' };
      const child = await runAndKill(workerChild, [dir, String(run), journal, String(CONCURRENCY)], plan);
      if (child.signal === 'SIGKILL' && !last) {
        killed.add(run);
        if (!child.lines.some((l) => l.startsWith('start '))) killedBeforeWork++;
        continue;
      }
      assert.equal(child.code, 0, `run ${run} failed (signal ${child.signal}): ${child.stderr}`);
      break; // every job is final (a child that got there before its kill ends the loop too)
    }
    assert.ok(killed.size >= Math.min(KILLS, 10), `only ${killed.size} kills landed before the jobs were done`);

    // The journal, line by line. A line is one write() with O_APPEND, so it is whole or absent.
    const starts = new Map<string, Start[]>();
    const done = new Map<string, Start[]>();
    const ends = new Set<string>();
    let finals = 0;
    for (const line of fs.readFileSync(journal, 'utf8').split('\n')) {
      const [kind, id, attempt, runOf] = line.split(' ');
      if (kind === 'final') finals++;
      if (kind === 'end') ends.add(`${id} ${attempt} ${runOf}`);
      if (kind !== 'start' && kind !== 'done') continue;
      const map = kind === 'start' ? starts : done;
      const list = map.get(id!) ?? [];
      list.push({ attempt: Number(attempt), run: Number(runOf) });
      map.set(id!, list);
    }
    assert.equal(finals, 1, 'exactly one run saw every job final');

    const completes = new Map<string, CompleteEvent[]>();
    readLog(path.join(dir, 'q'), {
      onEntry: (e) => {
        if (e.type !== REC.COMPLETE) return;
        const ev = decodeEvent<CompleteEvent>(e.payload(), e.seq);
        completes.set(ev.id, [...(completes.get(ev.id) ?? []), ev]);
      },
    });

    const queue = new Queue('q', { dir, durability: 'batch' });
    t.after(() => queue.close());
    let reruns = 0;
    let failedJobs = 0;
    for (const id of ids) {
      const job = await queue.getJob(id);
      assert.ok(job, `job ${id} is gone`);
      const state = await job.getState();
      const s = starts.get(id) ?? [];
      const d = done.get(id) ?? [];
      assert.ok(d.length <= 1, `job ${id} completed ${d.length} times: ${JSON.stringify(d)}`);
      for (let k = 0; k + 1 < s.length; k++) {
        const [a, b] = [s[k]!, s[k + 1]!];
        assert.ok(killed.has(a.run), `job ${id} started again (run ${b.run}) after a start in run ${a.run}, which was not killed`);
        assert.equal(d.some((x) => x.run <= a.run), false, `job ${id} ran again after it completed: ${JSON.stringify({ s, d })}`);
        assert.ok(b.run > a.run, `job ${id} started twice in run ${a.run}`);
        assert.equal(b.attempt, 1, `job ${id} ran attempt ${b.attempt} after attempt ${a.attempt}: a stall counted an attempt`);
        reruns++;
      }
      const logged = completes.get(id) ?? [];
      if (state === 'completed') {
        const lastStart = s.at(-1);
        assert.ok(lastStart, `job ${id} completed without ever starting`);
        assert.equal(job.returnvalue, `${id}:${lastStart.attempt}:${lastStart.run}`, `job ${id}: the result kept is the last start's`);
        assert.equal(job.attemptsMade, 1, `job ${id}: attemptsMade`);
        assert.ok(ends.has(`${id} ${lastStart.attempt} ${lastStart.run}`), `job ${id} completed, yet its processor never returned`);
        assert.equal(logged.length, 1, `job ${id} has ${logged.length} COMPLETE records`);
        assert.equal(logged[0]!.a, lastStart.attempt);
        if (d.length === 1) assert.deepEqual(d[0], lastStart, `job ${id}: 'completed' came from its last start`);
      } else {
        assert.fail(`job ${id} is ${state}: a crash failed a job (or left it unfinished)`);
        failedJobs++;
      }
    }
    const counts = await queue.getJobCounts();
    assert.equal(counts.completed! + counts.failed!, JOBS, `counts: ${JSON.stringify(counts)}`);
    assert.equal(counts.failed, failedJobs);
    assert.ok(reruns > 0, 'no job was ever running at a kill: the kills proved nothing');
    assert.equal(verifyLog(path.join(dir, 'q')).ok, true);
    t.diagnostic(`${killed.size} kills in ${run} runs (${killedBeforeWork} before any job started); ${reruns} reruns after kills; ${failedJobs} jobs failed by stalls`);
  });
});
