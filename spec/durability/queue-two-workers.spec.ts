/**
 * Claims are exclusive: two Workers in one process and a claimant in another process race for the same tickets,
 * and no ticket is won twice and no job runs twice.
 *
 * Design. The owner's desk cuts each ticket for one worker and offers it to that worker alone, which would make
 * the rename uncontested. The test makes every claim a race:
 *   - It wraps the ports of both Workers as they attach to the desk (through the process's one Owner, from the
 *     registry), so that every ticket cut for either worker is offered to both, in an order drawn from a
 *     seeded PRNG: the first at once (as the desk does) or, one time in four, a turn of the event loop later; the
 *     second a turn later. Both try the rename; exactly one may succeed, the other must see ENOENT
 *     (TicketFiles.claim → undefined) and carry on.
 *   - An intruder in a child process (children/queue-intruder.ts) watches tickets/ready and renames every ticket
 *     it sees into tickets/taken with the same claim call, really concurrently with the two Workers. It never
 *     runs or renews what it wins, so the owner must notice the foreign claim, let its lease expire, settle the
 *     jobs and cut them again: a claim counts as the start of the ticket's first `s` jobs (ACTIVE's s, the ones
 *     a Worker starts as it claims), so those are stalled (a stall, no attempt) and the rest released. To be
 *     sure that path runs, every 8th ticket (up to HOLD) is held back from the Workers until the intruder has
 *     taken it. It stops claiming after MAX_INTRUDER_WINS.
 *     (This path once hung: the desk took a ticket gone from ready/ without a claim it had heard of for "claimed
 *     just now" and never looked again, so those jobs stayed active forever. TicketDesk.checkLeases now finds the
 *     foreign claimant's taken file and expires it like any lease.)
 * leaseMs is 500, not less: the Workers renew every leaseMs/3, and a lease of theirs expiring under load would
 * rightly run a job twice and fail the test for the wrong reason.
 * Every claim call of the Workers is recorded (by wrapping the desk's TicketFiles.claim); the intruder reports
 * its wins. Then, for every ticket the log says was cut (ACTIVE records):
 *   - exactly one claim succeeded (Workers' and intruder's together), and both Workers tried it;
 *   - every job ran exactly once (never twice, never two runs at once) and completed once;
 *   - a job's attemptsMade is 1, and its stalls are the intruder-won tickets that held it in their claimed prefix.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { readLog, type Job } from '../../lib/index.js';
import type { WorkerPort } from '../../lib/queue/backend.js';
import { resolveQueueOptions } from '../../lib/queue/options.js';
import { acquireOwner, releaseOwner } from '../../lib/queue/owner/registry.js';
import { REC, decodeEvent, type ActiveEvent } from '../../lib/store/events.js';
import { prng } from '../helpers/child.js';
import { setup, waitForCount } from '../helpers/queue.js';

const JOBS = 400;
const LEASE_MS = 500;
const HOLD = 6;
/** The intruder stops claiming after this many wins: each costs its jobs a lease expiry (bounds the test's time). */
const MAX_INTRUDER_WINS = 40;
const SEED = 20261125;
const intruderScript = fileURLToPath(new URL('./children/queue-intruder.js', import.meta.url));
const OPTS = { durability: 'batch', leaseMs: LEASE_MS, maxStalledCount: 1_000 } as const;

/** The ticket id inside a ticket file name: <prio>-<order>-<ticket>.t */
function ticketOf(name: string): string {
  const m = /-(\d+x[0-9a-z]+)\.t$/.exec(name);
  assert.ok(m, `not a ticket file name: ${name}`);
  return m[1]!;
}

describe('two Workers and a foreign claimant racing for tickets', () => {
  it('lets exactly one claim of each ticket succeed and runs no job twice', { timeout: 90_000 }, async (t) => {
    const s = setup(t);
    const queueDir = path.join(s.dir, 'q');
    const rand = prng(SEED);
    const queue = s.queue('q', OPTS);
    await queue.waitUntilReady();
    const { key, owner: ownerP } = acquireOwner('q', resolveQueueOptions({ dir: s.dir, ...OPTS }));
    try {
      const owner = await ownerP;
      const { desk } = owner;

      // The intruder, in its own process.
      const intruder = spawn(process.execPath, [intruderScript, queueDir, String(MAX_INTRUDER_WINS)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      intruder.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      intruder.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      const intruderWins = (): number => out.split('\n').filter((l) => l.startsWith('won ')).length;
      const intruderClosed = new Promise((resolve) => intruder.on('close', resolve));
      t.after(() => void intruder.kill('SIGKILL'));
      for (let i = 0; !out.includes('watching\n'); i++) {
        assert.ok(i < 2_000 && intruder.exitCode === null, `the intruder did not start: ${err}`);
        await sleep(5);
      }

      // Every Worker claim, recorded.
      const claims: Array<{ name: string; by: string; ok: boolean }> = [];
      const claim = desk.files.claim.bind(desk.files);
      desk.files.claim = (name, workerId) => {
        const taken = claim(name, workerId);
        claims.push({ name, by: workerId, ok: taken !== undefined });
        return taken;
      };

      // Every offer goes to both Workers; some wait until the intruder has the ticket.
      const offers: Array<WorkerPort['offer']> = [];
      let cut = 0;
      let held = 0;
      const attach = desk.attach.bind(desk);
      desk.attach = (port) => {
        offers.push(port.offer);
        port.offer = (name, content) => {
          // In a random order: the first at once (as the desk does) or, one time in four, after a turn of the event
          // loop, which gives the intruder a real chance; the second after a turn of the event loop.
          const [first, second] = rand() < 0.5 ? offers : [...offers].reverse();
          const late = rand() < 0.25;
          const offerAll = (): void => {
            if (late) setImmediate(() => first!(name, content));
            else first!(name, content);
            setImmediate(() => second!(name, content));
          };
          if (cut++ % 8 === 3 && held < HOLD) {
            held++;
            void (async () => {
              // Until the intruder has it (a safety net of 10 s: then the count of its wins fails the test).
              for (let i = 0; i < 5_000 && fs.existsSync(path.join(desk.files.ready, name)) && intruderWins() < MAX_INTRUDER_WINS; i++) {
                await sleep(2);
              }
              offerAll();
            })();
          } else {
            offerAll();
          }
        };
        attach(port);
      };

      // The Workers, and what their processors see.
      const runs = new Map<string, number>();
      const running = new Set<string>();
      const overlaps: string[] = [];
      const processor = (by: string) => async (job: Job<{ n: number }>): Promise<string> => {
        if (running.has(job.id)) overlaps.push(job.id);
        running.add(job.id);
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
        await sleep(job.data.n % 3);
        running.delete(job.id);
        return by;
      };
      const workers = ['A', 'B'].map((by) => s.worker('q', processor(by), { ...OPTS, concurrency: 4, autorun: false }));
      const completedByWorker = new Map<string, number>();
      for (const w of workers) w.on('completed', (job: Job) => completedByWorker.set(job.id, (completedByWorker.get(job.id) ?? 0) + 1));
      const stalled = new Map<string, number>();
      queue.on('stalled', ({ jobId }: { jobId: string }) => stalled.set(jobId, (stalled.get(jobId) ?? 0) + 1));
      const allDone = waitForCount(queue, 'completed', JOBS, 60_000);

      const ids: string[] = [];
      for (let i = 0; i < JOBS; i += 40) {
        const jobs = await queue.addBulk(Array.from({ length: 40 }, (_, k) => ({ name: 'j', data: { n: i + k }, opts: { attempts: 1_000 } })));
        ids.push(...jobs.map((j) => j.id));
        if (i === 0) for (const w of workers) void w.run();
      }
      await allDone;
      intruder.kill('SIGKILL');
      await intruderClosed;

      // Who won what.
      const won = out.split('\n').filter((l) => l.startsWith('won ')).map((l) => ticketOf(l.slice(4)));
      const tickets = new Map<string, string[]>(); // ticket -> job ids, from the log
      const atClaim = new Map<string, number>(); // ticket -> its claimed prefix (ACTIVE's s)
      readLog(queueDir, {
        onEntry: (e) => {
          if (e.type !== REC.ACTIVE) return;
          const ev = decodeEvent<ActiveEvent>(e.payload(), e.seq);
          assert.equal(tickets.has(ev.t), false, `ticket ${ev.t} was cut twice`);
          tickets.set(ev.t, ev.j.map(([id]) => id));
          atClaim.set(ev.t, ev.s ?? ev.j.length);
        },
      });
      const wins = new Map<string, string[]>();
      const tries = new Map<string, string[]>();
      for (const c of claims) {
        const tk = ticketOf(c.name);
        tries.set(tk, [...(tries.get(tk) ?? []), c.by]);
        if (c.ok) wins.set(tk, [...(wins.get(tk) ?? []), c.by]);
      }
      for (const tk of won) wins.set(tk, [...(wins.get(tk) ?? []), 'intruder']);
      for (const tk of wins.keys()) assert.ok(tickets.has(tk), `ticket ${tk} was claimed but never cut`);
      const workerIds = workers.map((w) => w.id).sort();
      for (const tk of tickets.keys()) {
        assert.deepEqual(wins.get(tk)?.length, 1, `ticket ${tk} was won by ${JSON.stringify(wins.get(tk) ?? [])}`);
        assert.deepEqual([...(tries.get(tk) ?? [])].sort(), workerIds, `ticket ${tk}: both Workers try every ticket once`);
      }
      assert.ok(won.length >= HOLD, `the intruder won ${won.length} tickets, fewer than the ${HOLD} held back for it`);

      // What the jobs went through.
      const intruded = new Map<string, number>();
      for (const tk of won) {
        for (const id of tickets.get(tk)!.slice(0, atClaim.get(tk))) intruded.set(id, (intruded.get(id) ?? 0) + 1);
      }
      assert.deepEqual(overlaps, [], 'jobs that ran twice at once');
      for (const id of ids) {
        assert.equal(runs.get(id), 1, `job ${id} ran ${runs.get(id) ?? 0} times`);
        assert.equal(completedByWorker.get(id), 1, `job ${id} completed ${completedByWorker.get(id) ?? 0} times`);
        const job = await queue.getJob(id);
        assert.equal(await job!.getState(), 'completed');
        assert.equal(job!.attemptsMade, 1, `job ${id}: attemptsMade (stalls count none)`);
        assert.equal(stalled.get(id) ?? 0, intruded.get(id) ?? 0, `job ${id}: stalls`);
      }
      assert.deepEqual(await queue.getJobCounts(), { waiting: 0, paused: 0, delayed: 0, active: 0, completed: JOBS, failed: 0 });
      const lost = claims.filter((c) => !c.ok).length;
      assert.ok(lost >= tickets.size, `only ${lost} Worker claims lost, for ${tickets.size} tickets each offered to both`);
      t.diagnostic(`${tickets.size} tickets; Workers won ${claims.length - lost} and lost ${lost} claims; the intruder won ${won.length} (${HOLD} held back for it)`);
    } finally {
      await releaseOwner(key);
    }
  });
});
