/**
 * Helpers for the queue and worker specs: a per-test setup that opens Queues and Workers in its own temp dir and
 * closes them when the test ends (workers first, then queues, then each queue's log is verified), waiting on
 * events instead of sleeping, gates that hold a processor until the test lets it go, and record counts of a
 * queue's log for "nothing was written" checks.
 *
 * Timeouts here are safety nets for a broken queue, never measurements: a test that needs one to pass is broken.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EventEmitter } from 'node:events';
import type { TestContext } from 'node:test';
import { Queue, Worker, logStats, verifyLog, type Processor, type ProcessorMap, type QueueOptions, type WorkerOptions } from '../../lib/index.js';
import { tempDir } from './tmp.js';
import { INTERNAL_CLOCK } from '../../lib/queue/options.js';
import type { TestClock } from '../../lib/queue/clock.js';

/** Options that keep a test fast where durability is not the point. */
export const FAST = { durability: 'none' } as const;

/** Safety-net timeout for one test. */
export const SAFETY = { timeout: 20_000 };

export interface Setup {
  /** The test's own root directory (removed after the test). */
  dir: string;
  /** Opens a Queue on `dir` with FAST durability unless told otherwise; closed after the test. */
  queue<D = unknown, R = unknown>(name?: string, opts?: Partial<QueueOptions>): Queue<D, R>;
  /** Opens a Worker on `dir`; closed after the test, before the queues. */
  worker<D = unknown, R = unknown>(name: string, processor: Processor<D, R> | ProcessorMap | string | URL, opts?: Partial<WorkerOptions>): Worker<D, R>;
  /** Records in the named queue's log (every type). */
  records(name?: string): number;
}

/**
 * Copies root directory `from` into `to` as a crash would leave it: whatever the owner had written (in 'none' and
 * 'batch' mode every record is written before its call resolves), with the owner lock gone with the process.
 */
function crashCopy(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
  for (const name of fs.readdirSync(to)) fs.rmSync(path.join(to, name, 'owner'), { recursive: true, force: true });
}

/**
 * A per-test setup. With `crashCopyOf`, its directory starts as a crash copy of that root (see crashCopy); with
 * `damaged`, the test damages a log on purpose and the logs are not verified at the end. The after hook is registered before the temp dir's, so it runs first (node:test runs a
 * test's after hooks in the order they were added): everything is closed before the directory goes away.
 */
export function setup(t: TestContext, opts: { crashCopyOf?: string; damaged?: boolean; clock?: TestClock } = {}): Setup {
  // With `clock`, every Queue and Worker of the setup schedules by it (INTERNAL_CLOCK): the test advances it.
  const internal = opts.clock === undefined ? {} : { [INTERNAL_CLOCK]: opts.clock };
  const queues: Array<Queue<any, any>> = [];
  const workers: Array<Worker<any, any>> = [];
  const names = new Set<string>();
  t.after(async () => {
    for (const w of workers) await w.close(true);
    for (const q of queues) await q.close();
    for (const name of opts.damaged ? [] : names) {
      const d = path.join(dir, name);
      if (!fs.existsSync(path.join(d, 'QUEUE'))) continue;
      const report = verifyLog(d);
      assert.equal(report.ok, true, `log of queue ${name} does not verify: ${JSON.stringify(report.damage)}`);
    }
  });
  const dir = tempDir(t);
  if (opts.crashCopyOf !== undefined) crashCopy(opts.crashCopyOf, dir);
  return {
    dir,
    queue(name = 'q', opts = {}) {
      const q = new Queue<any, any>(name, { dir, ...FAST, ...opts, ...internal });
      queues.push(q);
      names.add(name);
      return q;
    },
    worker(name, processor, opts = {}) {
      const w = new Worker<any, any>(name, processor as Processor, { dir, ...FAST, ...opts, ...internal });
      workers.push(w);
      names.add(name);
      w.on('error', () => undefined); // asserted where it matters; never an unhandled 'error'
      return w;
    },
    records(name = 'q') {
      return logStats(path.join(dir, name)).records;
    },
  };
}

/**
 * Resolves with the arguments of the first `event` for which `predicate` holds. Rejects after `ms` (a safety
 * net) naming the event, so a missing event fails the test with a clear message instead of hanging it.
 */
export function waitFor<A extends unknown[] = any[]>(
  emitter: EventEmitter,
  event: string,
  predicate: (...args: A) => boolean = () => true,
  ms = 10_000,
): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out waiting for '${event}'`));
    }, ms);
    const on = (...args: unknown[]): void => {
      let ok: boolean;
      try {
        ok = predicate(...(args as A));
      } catch (err) {
        ok = false;
        clearTimeout(timer);
        emitter.off(event, on);
        reject(err as Error);
        return;
      }
      if (!ok) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args as A);
    };
    emitter.on(event, on);
  });
}

/** Resolves once `event` has been seen `n` times; with the arguments of each, in order. */
export function waitForCount<A extends unknown[] = any[]>(emitter: EventEmitter, event: string, n: number, ms = 10_000): Promise<A[]> {
  const seen: A[] = [];
  return waitFor<A>(emitter, event, (...args) => {
    seen.push(args);
    return seen.length >= n;
  }, ms).then(() => seen);
}

/** A promise with its resolve and reject handed out. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves when the signal aborts, with its reason. */
export function aborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));
}

/** Polls `check` on the event loop (setImmediate, not a clock) until it is true; for state only visible by asking. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Advances a test clock in steps of `stepMs` until `p` settles, and returns what it settles with: for a test whose
 * outcome needs clock time to pass (a lease to expire, renewals to fire) and real work between (the log's writes).
 * Each step turns the event loop (TestClock.advance); gives up after `maxSteps` with a clear failure.
 */
export async function advanceUntil<T>(clock: TestClock, p: Promise<T>, stepMs: number, what: string, maxSteps = 10_000): Promise<T> {
  let settled = false;
  const watched = p.finally(() => void (settled = true));
  watched.catch(() => undefined);
  for (let i = 0; !settled; i++) {
    if (i >= maxSteps) throw new Error(`${what}: not after ${maxSteps} steps of ${stepMs} ms of the test clock`);
    await clock.advance(stepMs);
  }
  return watched;
}
