/**
 * QueueEvents in a process of its own (children/events-printer.ts) beside an owner in another
 * (children/events-owner.ts: a Queue adding and a Worker running), three processes with the test's:
 *   - it sees every completed job of a run exactly once, in log order, each event's id naming its record;
 *   - the owner is killed (-9) and reopened several times while it runs: it keeps going across the new heads and
 *     the cut tails, with no duplicates and no gaps: what it printed equals what a fresh QueueEvents reading the
 *     whole log from the start reports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { QueueEvents, readLog } from '../../lib/index.js';
import { REC, decodeEvent } from '../../lib/store/events.js';
import { runAndKill } from '../helpers/child.js';
import { until } from '../helpers/queue.js';
import { tempDir } from '../helpers/tmp.js';

const owner = fileURLToPath(new URL('./children/events-owner.js', import.meta.url));
const printer = fileURLToPath(new URL('./children/events-printer.js', import.meta.url));
const KILLS = Number(process.env.SPOOLQ_EVENTS_KILLS ?? 4);
const BOUND_MS = 20_000;

/** A child whose stdout lines are collected as they come; killed (if still running) when the test ends. */
function startChild(t: { after(fn: () => Promise<void>): void }, script: string, args: string[]): { lines: string[]; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    const parts = (rest + c).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { lines, stderr: () => err, exited };
}

/** The events of the whole log, from a fresh QueueEvents in this process, as the printer prints them. */
async function fromStart(dir: string): Promise<string[]> {
  const qe = new QueueEvents('q', { dir, lastEventId: '0', autorun: false });
  const out: string[] = [];
  for (const event of ['added', 'waiting', 'delayed', 'active', 'progress', 'completed', 'failed', 'retries-exhausted', 'stalled', 'removed', 'paused', 'resumed', 'drained'] as const) {
    (qe as unknown as NodeJS.EventEmitter).on(event, (...args: unknown[]) => {
      const id = args[args.length - 1] as string;
      const p = (args.length > 1 ? args[0] : {}) as { jobId?: string; returnvalue?: unknown; failedReason?: string; prev?: string };
      const detail = event === 'completed' ? JSON.stringify(p.returnvalue) : event === 'failed' ? JSON.stringify(p.failedReason) : (p.prev ?? '-');
      out.push(`${id} ${event} ${p.jobId ?? '-'} ${detail}`);
    });
  }
  void qe.run();
  await qe.waitUntilReady();
  await qe.close();
  return out;
}

describe('QueueEvents in another process', () => {
  it('sees every completed job of a run exactly once, in log order', { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const jobs = 300;
    // Started before the queue exists (lastEventId '$', the default): it waits for it, then reads it from its first
    // record, since everything in it was appended after the reader started.
    const events = startChild(t, printer, [dir]);
    await until(() => events.lines.includes('started'), `the printer has started (stderr: ${events.stderr()})`, BOUND_MS);
    const run = startChild(t, owner, [dir, String(jobs)]);
    assert.equal(await run.exited, 0, run.stderr());
    const completed = (): string[] => events.lines.filter((l) => l.split(' ')[1] === 'completed');
    await until(() => completed().length >= jobs, `the printer has printed ${jobs} completions (stderr: ${events.stderr()})`, BOUND_MS);

    const printed = completed().map((l) => l.split(' '));
    assert.equal(printed.length, jobs, 'no completion twice');
    assert.equal(new Set(printed.map((p) => p[2])).size, jobs, 'every job once');
    for (const [, , jobId, rv] of printed) assert.equal(rv, JSON.stringify(`r${jobId}`));
    // In log order: the COMPLETE records of the log, in seq order, are the completions printed, in order.
    const log: Array<{ seq: number; id: string }> = [];
    readLog(path.join(dir, 'q'), {
      onEntry: (e) => {
        if (e.type === REC.COMPLETE) log.push({ seq: e.seq, id: decodeEvent<{ id: string }>(e.payload(), e.seq).id });
      },
    });
    assert.deepEqual(printed.map(([id, , jobId]) => `${id!.split('-')[0]} ${jobId}`), log.map((r) => `${r.seq} ${r.id}`));
    assert.equal(events.stderr(), '');
  });

  it(`keeps going across ${KILLS} kill -9s and reopens of the owner: no duplicates, no gaps`, { timeout: 180_000 }, async (t) => {
    const dir = tempDir(t);
    const events = startChild(t, printer, [dir, '0']);
    for (let kill = 1; kill <= KILLS; kill++) {
      const child = await runAndKill(owner, [dir, '0'], { afterLines: 20 + kill * 37, countLinesStarting: 'ack ' });
      assert.equal(child.signal, 'SIGKILL', `owner run ${kill} ended by itself: ${child.stderr}`);
    }
    // A last owner settles what the killed ones left and finishes every job.
    const last = startChild(t, owner, [dir, '50']);
    assert.equal(await last.exited, 0, last.stderr());

    const expected = await fromStart(dir);
    // What the new owners settled: jobs started by a killed one stalled, claimed and unstarted ones released.
    assert.ok(expected.some((l) => / stalled \S+ -$| waiting \S+ active$/.test(l)), "the kills left active jobs to settle");
    const seen = (): string[] => events.lines.filter((l) => l !== 'ready' && l !== 'started');
    await until(() => seen().length >= expected.length, `the printer has caught up (${seen().length} of ${expected.length})`, BOUND_MS);
    const printed = seen();
    assert.deepEqual(printed, expected);
    assert.equal(new Set(printed.map((l) => l.split(' ')[0])).size, printed.length, 'no id twice');
    assert.equal(events.stderr(), '');
  });
});
