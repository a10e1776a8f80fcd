/**
 * ThreadPool: runs job processors given as a module in a pool of worker_threads, and turns whatever happens in a
 * thread into exactly one RunOutcome per job.
 *
 * Owns: the threads (spawn, dispatch, recycle, replace), each run's timeout and abort, close. Does not own
 * queues, logs, leases or retries: the Worker above decides what an outcome means. The thread side is
 * thread-entry.ts; the messages between the two are thread-protocol.ts.
 *
 * Threads start on demand: load() (which Worker.run calls before it claims anything) starts the first thread and
 * resolves once the processor module has imported in it, so a module that fails to load is found before any job is
 * spent on it; without load() the first job starts it. A job that finds every live thread busy spawns another while
 * there are fewer than `threads`. Dispatch goes to the least-loaded live thread. At most `capacity` (threads ×
 * concurrency) runs are assigned at once; further run() calls wait in a FIFO until a slot frees.
 *
 * A run: run() → queued (only when the pool is full) → assigned to a thread → posted once the thread is ready,
 * which starts its timeout clock, so thread start-up and the module's import never count against a job →
 * settled exactly once, by the first of: done, failed, the thread's death, close.
 *
 * Outcomes
 *   completed  the processor resolved in time.
 *   failed     it threw or rejected (also after an abort(): the error is what it threw, usually the ERR_JOB_ABORTED
 *              reason); or the module did not load (ERR_PROCESSOR_LOAD, cause: the import error).
 *   timeout    the timeout fired, the job's signal was aborted with an ERR_JOB_TIMEOUT reason, and the processor
 *              settled within abortGraceMs. error: ERR_JOB_TIMEOUT, cause: what it threw. A processor that
 *              *resolves* after its timeout fired is a timeout too: a late result is not a success.
 *   crashed    the thread died under the job and the job is the cause: it was alone on the thread, or it crashed
 *              again when re-run alone (ERR_THREAD_CRASHED, cause: the thread's error, e.g. an Error with code
 *              ERR_WORKER_OUT_OF_MEMORY; see Crashes below); or the job ignored its signal for abortGraceMs after a
 *              timeout / abort() and its thread was terminated (ERR_JOB_TIMEOUT / ERR_JOB_ABORTED); or close() ran
 *              out of grace, or the job was still queued at close (ERR_CLOSED). A `while (true) {}` cannot reject,
 *              so a timed-out loop always ends here.
 *   interrupted  the job shared a thread with one that ignored its signal, and went down with the thread when it
 *              was terminated (ERR_THREAD_CRASHED): a victim, not at fault; the Worker retries it uncounted.
 *
 * Crashes. A thread that dies by itself (process.exit() in a processor, an uncaught error, out of memory) with
 * one posted run tells whose fault it was. With several, any of them may be the cause: each becomes a suspect and
 * is run again, one at a time, alone in a thread of its own inside the pool (an "isolation" thread, beside the
 * `threads` others, which go on with new work). A suspect that crashes its thread alone is the cause: 'crashed'.
 * The others end as their re-run ends, their first run forgotten (hooks.onRestart tells the caller). Runs that
 * were assigned to the dead thread but not yet posted never ran: they go back to the front of the queue. The
 * suspects and their thread are crash-isolation.ts.
 *
 * Replacement and loading: a dead or recycled thread is dropped and the next dispatch spawns a new one, so there is
 * no respawn without a job to run. A module that fails to load (the thread says `load-failed`, or dies before
 * `ready` while no thread ever got ready), or a thread that cannot be spawned at all (new Worker throws), fails the
 * pool for good: load() rejects, `onLoadFailure` is called once, every queued and later job fails with
 * ERR_PROCESSOR_LOAD at once, and no thread is started again. A thread that dies before `ready` after others have
 * loaded the same module is treated as a crash instead.
 *
 * Flags: threads start under whatever flags this process was started with (thread-flags.ts).
 *
 * Idle threads are unref()'d, so a pool with nothing to run does not keep the process alive (a running Worker
 * holds the process itself); close() to end them. A thread is ref'd while it loads, so `await pool.load()` is
 * seen through even in a process with nothing else to do.
 * Thread lists are scanned linearly: they hold at most about `threads` entries, a handful.
 */
import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { invalidArg, SpoolError } from '../errors.js';
import { fromWire, poolError, toWire } from './error-wire.js';
import { startThread } from './thread-flags.js';
import type { MainToThread, PoolJob, RunEnd, ThreadData, ThreadToMain } from './thread-protocol.js';
import { systemClock, type Clock } from '../queue/clock.js';
import { callHook, type PoolThread, type Run, type RunHooks, type RunOutcome } from './pool-types.js';
import { CrashIsolation } from './crash-isolation.js';

export type { PoolJob } from './thread-protocol.js';
export type { RunHooks, RunOutcome } from './pool-types.js';

export interface ThreadPoolOptions {
  /** Absolute path, file: URL string or URL of a module exporting the processor (see ThreadProcessor). */
  processor: string | URL;
  /** The queue's name, for `job.queueName` in the threads: sent once per thread, not with each job. */
  queueName?: string;
  /** Maximum threads, >= 1. */
  threads: number;
  /** Jobs per thread at once, >= 1. */
  concurrency: number;
  /** Recycle a thread after it has been given this many jobs: it finishes them, gets no more, then exits. */
  maxJobsPerThread?: number;
  /** resourceLimits.maxOldGenerationSizeMb of each thread; a thread over it dies and its jobs crash. */
  maxHeapMb?: number;
  /** How long a job whose signal was aborted (timeout or abort()) may take to stop before its thread is
   *  terminated. Default 1000. */
  abortGraceMs?: number;
  /** Called once, synchronously, when the pool fails for good (see Replacement and loading), before the runs it
   *  fails are resolved. Must not throw. */
  onLoadFailure?(error: SpoolError): void;
  /** The clock of job timeouts, abort grace and close grace (queue/clock.ts). Default: systemClock. */
  clock?: Clock;
}

const DEFAULT_ABORT_GRACE_MS = 1000;
/** setTimeout fires at once (with a warning) for delays over 2^31-1 ms, so longer timeouts are clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Where tsc puts the thread script: beside this file, in dist/lib/worker/. */
const ENTRY_URL = new URL('./thread-entry.js', import.meta.url);
interface ResolvedOptions {
  onLoadFailure: ((error: SpoolError) => void) | undefined;
  threads: number;
  concurrency: number;
  maxJobsPerThread: number | undefined;
  maxHeapMb: number | undefined;
  abortGraceMs: number;
}

export class ThreadPool {
  readonly #opts: ResolvedOptions;
  readonly #clock: Clock;
  readonly #threadData: ThreadData;
  readonly #threads = new Set<PoolThread>();
  readonly #queue: Run[] = [];
  #running = 0;
  #nextRunId = 1;
  #threadsStarted = 0;
  #anyReady = false;
  /** Why the processor module cannot be used; once set, every job fails with ERR_PROCESSOR_LOAD. */
  #loadError: { message: string; cause?: unknown } | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  #idleWaiters: Array<() => void> = [];
  /** load() callers waiting for the first `ready` (or the load failure, or close). */
  #loadWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  /** Re-runs, one at a time and alone, the suspects of a thread that crashed under several (crash-isolation.ts). */
  readonly #isolation: CrashIsolation;

  constructor(opts: ThreadPoolOptions) {
    this.#threadData = { processorUrl: processorHref(opts?.processor), queueName: opts?.queueName };
    this.#clock = opts.clock ?? systemClock;
    this.#opts = {
      onLoadFailure: opts.onLoadFailure,
      threads: positiveInt(opts.threads, 'threads'),
      concurrency: positiveInt(opts.concurrency, 'concurrency'),
      maxJobsPerThread: opts.maxJobsPerThread === undefined ? undefined : positiveInt(opts.maxJobsPerThread, 'maxJobsPerThread'),
      maxHeapMb: opts.maxHeapMb === undefined ? undefined : positiveNumber(opts.maxHeapMb, 'maxHeapMb'),
      abortGraceMs: opts.abortGraceMs === undefined ? DEFAULT_ABORT_GRACE_MS : nonNegative(opts.abortGraceMs, 'abortGraceMs'),
    };
    this.#isolation = new CrashIsolation({
      spawn: () => this.#spawn(),
      assign: (run, thread) => this.#assign(run, thread),
      settle: (run, outcome) => this.#settle(run, outcome),
      detach: (run) => this.#detach(run),
      requeue: (run) => void this.#queue.unshift(run),
      shutdown: (thread) => this.#shutdown(thread),
      loadFailure: () => this.#loadFailure(),
    });
  }

  /** threads × concurrency: the most runs assigned to threads at once. */
  get capacity(): number {
    return this.#opts.threads * this.#opts.concurrency;
  }

  /** Runs assigned to a thread and not settled (including those waiting for their thread to start). */
  get running(): number {
    return this.#running;
  }

  /** Runs waiting for a free slot, because run() was called with `running === capacity`. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Threads spawned over the pool's life. Climbing while jobs do not complete means a crash loop. */
  get threadsStarted(): number {
    return this.#threadsStarted;
  }

  /**
   * Starts a thread, unless one is live already, and resolves once the processor module has loaded in some thread
   * (its `ready`). Rejects with ERR_PROCESSOR_LOAD when the module does not load or no thread can be started (the
   * pool has then failed for good, header), and with ERR_CLOSED when the pool closes first.
   */
  load(): Promise<void> {
    if (this.#loadError !== undefined) return Promise.reject(this.#loadFailureError());
    if (this.#closing) return Promise.reject(new SpoolError('ERR_CLOSED', 'the thread pool is closed'));
    if (this.#anyReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#loadWaiters.push({ resolve, reject });
      let live = false;
      for (const thread of this.#threads) if (!thread.dead) live = true;
      if (!live) this.#spawn(); // a spawn that throws fails the load, which rejects this waiter
    });
  }

  /**
   * Runs one job. Resolves with its outcome and never rejects for anything the job or its thread does; rejects
   * with ERR_CLOSED only when called after close(). `timeoutMs` undefined or <= 0: no timeout.
   */
  run(job: PoolJob, timeoutMs: number | undefined, hooks: RunHooks): Promise<RunOutcome> {
    if (this.#closing) return Promise.reject(new SpoolError('ERR_CLOSED', 'the thread pool is closed'));
    return new Promise((resolve) => {
      const run: Run = {
        id: this.#nextRunId++, job, hooks, resolve, posted: false, settled: false, timedOut: false,
        timeoutMs: timeoutMs !== undefined && timeoutMs > 0 ? Math.min(timeoutMs, MAX_TIMER_MS) : undefined,
      };
      if (this.#loadError !== undefined) return this.#settle(run, this.#loadFailure());
      this.#queue.push(run);
      this.#drain();
    });
  }

  /**
   * Fires the signal of the runs whose runKey (or, without one, job id) is `key`, with an ERR_JOB_ABORTED reason
   * (message: `reason`). A run that
   * has not stopped abortGraceMs later has its thread terminated ('crashed'). A run still queued, or waiting for
   * its thread to start, ends at once as 'failed' with that reason. Unknown or finished job ids are ignored.
   */
  abort(key: string, reason?: string): void {
    const error = poolError('ERR_JOB_ABORTED', reason ?? `job ${key} was aborted`);
    const matches = (r: Run): boolean => (r.job.runKey ?? r.job.id) === key;
    for (const run of this.#queue.filter(matches)) {
      this.#queue.splice(this.#queue.indexOf(run), 1);
      this.#settle(run, { kind: 'failed', error });
    }
    for (const run of this.#isolation.suspects.filter(matches)) {
      this.#isolation.suspects.splice(this.#isolation.suspects.indexOf(run), 1);
      this.#settle(run, { kind: 'failed', error });
    }
    for (const thread of this.#threads) {
      for (const run of thread.runs.values()) {
        if (matches(run) && run.signalled === undefined) this.#signal(run, error);
      }
    }
  }

  /**
   * Stops accepting jobs; queued jobs end at once as 'crashed' (ERR_CLOSED: they never started). Waits for the
   * running jobs, up to `graceMs` (default: as long as they take), then terminates the threads; jobs still running
   * then end as 'crashed' (ERR_CLOSED). Resolves when every thread has exited. Does not abort signals: call
   * abort() first for jobs that should stop early. Idempotent.
   */
  close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.#closed) return this.#closed;
    const graceMs = opts.graceMs === undefined ? undefined : nonNegative(opts.graceMs, 'graceMs');
    this.#closing = true;
    for (const waiter of this.#loadWaiters.splice(0)) waiter.reject(new SpoolError('ERR_CLOSED', 'the thread pool closed before its processor loaded'));
    for (const run of [...this.#queue.splice(0), ...this.#isolation.suspects.splice(0)]) {
      this.#settle(run, { kind: 'crashed', error: poolError('ERR_CLOSED', `the thread pool closed before job ${run.job.id} started`) });
    }
    this.#closed = (async () => {
      for (const thread of this.#threads) thread.worker.ref(); // so their exits are seen even in an idle process
      if (this.#running > 0) await this.#idleOrAfter(graceMs);
      for (const thread of this.#threads) {
        if (thread.dead) continue;
        if (thread.runs.size === 0) this.#shutdown(thread);
        else this.#kill(thread, (run) => ({ kind: 'crashed', error: poolError('ERR_CLOSED', `the thread pool closed while job ${run.job.id} was running`) }));
      }
      await Promise.all([...this.#threads].map((thread) => thread.exited));
    })();
    return this.#closed;
  }

  // dispatch

  /** Assigns queued runs to threads while there is capacity. */
  #drain(): void {
    while (this.#queue.length > 0 && this.#running < this.capacity && !this.#closing && this.#loadError === undefined) {
      const thread = this.#pickThread();
      if (thread === undefined) return; // no thread could be spawned: #failLoad has failed the queue
      this.#assign(this.#queue.shift()!, thread);
    }
  }

  /** The least-loaded live thread with a free slot, or a new thread when none is idle and there is room (undefined
   *  when that spawn failed). */
  #pickThread(): PoolThread | undefined {
    let best: PoolThread | undefined;
    let live = 0;
    for (const thread of this.#threads) {
      if (thread.dead || thread.retiring || thread.isolating) continue;
      live++;
      if (thread.runs.size < this.#opts.concurrency && (best === undefined || thread.runs.size < best.runs.size)) best = thread;
    }
    if ((best === undefined || best.runs.size > 0) && live < this.#opts.threads) return this.#spawn();
    // Invariant: running < capacity leaves a slot. Live non-retiring threads number at most `threads`; if all
    // were full they alone would hold threads × concurrency runs.
    assert.ok(best, 'a free slot exists whenever running < capacity');
    return best;
  }

  #assign(run: Run, thread: PoolThread): void {
    run.thread = thread;
    thread.runs.set(run.id, run);
    this.#running++;
    thread.assigned++;
    if (this.#opts.maxJobsPerThread !== undefined && thread.assigned >= this.#opts.maxJobsPerThread) thread.retiring = true;
    thread.worker.ref();
    if (thread.ready) this.#post(run);
  }

  /** Puts a run in its thread's next `runs` batch (thread-protocol.ts); from here it counts as running. */
  #post(run: Run): void {
    const thread = run.thread!;
    thread.outbox.push(run);
    if (!thread.flushQueued) {
      thread.flushQueued = true;
      queueMicrotask(() => this.#flush(thread));
    }
    run.posted = true;
    if (run.timeoutMs !== undefined) run.timer = this.#clock.setTimeout(() => this.#onTimeout(run), run.timeoutMs);
  }

  #flush(thread: PoolThread): void {
    thread.flushQueued = false;
    if (thread.outbox.length === 0) return;
    const batch = thread.outbox.filter((run) => !run.settled);
    thread.outbox = [];
    if (batch.length === 0 || thread.dead) return;
    try {
      thread.worker.postMessage({ type: 'runs', runs: batch.map((run) => ({ runId: run.id, job: run.job })) } satisfies MainToThread);
    } catch {
      // Job data that structured clone refuses (a function, a socket): that job fails with the DataCloneError.
      for (const run of batch) {
        try {
          thread.worker.postMessage({ type: 'runs', runs: [{ runId: run.id, job: run.job }] } satisfies MainToThread);
        } catch (err) {
          this.#settle(run, { kind: 'failed', error: err instanceof Error ? err : fromWire(toWire(err)) });
        }
      }
    }
  }

  /** Posts a message other than runs, after the runs batched before it. */
  #send(thread: PoolThread, msg: MainToThread): void {
    this.#flush(thread);
    thread.worker.postMessage(msg);
  }

  // threads

  /** A new thread; undefined when none can be started (new Worker threw): that fails the pool like a load failure. */
  #spawn(): PoolThread | undefined {
    let worker: Worker;
    try {
      worker = startThread(ENTRY_URL, {
        workerData: this.#threadData,
        resourceLimits: this.#opts.maxHeapMb === undefined ? undefined : { maxOldGenerationSizeMb: this.#opts.maxHeapMb },
      });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.#failLoad({ message: `cannot start a worker thread for processor ${this.#threadData.processorUrl}: ${why}`, cause: err });
      return undefined;
    }
    let markExited!: () => void;
    const thread: PoolThread = {
      worker, exited: new Promise((resolve) => (markExited = resolve)), runs: new Map(), assigned: 0,
      ready: false, retiring: false, isolating: false, dead: false, outbox: [], flushQueued: false,
    };
    worker.on('message', (msg: ThreadToMain) => this.#onMessage(thread, msg));
    // Always followed by 'exit'; the listener also keeps an uncaught error in the thread from crashing this one.
    worker.on('error', (err) => (thread.error = err));
    worker.on('exit', (code) => {
      this.#threads.delete(thread);
      markExited();
      this.#onExit(thread, code);
    });
    this.#threads.add(thread);
    this.#threadsStarted++;
    return thread;
  }

  #onMessage(thread: PoolThread, msg: ThreadToMain): void {
    if (thread.dead) return; // a late message from a thread we gave up on: its runs are settled already
    if (msg.type === 'ready') {
      thread.ready = this.#anyReady = true;
      for (const run of thread.runs.values()) this.#post(run);
      if (thread.runs.size === 0 && !this.#closing) thread.worker.unref(); // started by load(): idle now
      for (const waiter of this.#loadWaiters.splice(0)) waiter.resolve();
      return;
    }
    if (msg.type === 'load-failed') {
      const error = fromWire(msg.error);
      // The thread's own ERR_PROCESSOR_LOAD (no processor export) is the whole story; anything else is the cause.
      this.#failLoad(error.code === 'ERR_PROCESSOR_LOAD'
        ? { message: error.message }
        : { message: `cannot load processor ${this.#threadData.processorUrl}: ${error.message}`, cause: error });
      return;
    }
    if (msg.type === 'ends') {
      for (const e of msg.ends) {
        const run = thread.runs.get(e.runId);
        if (run !== undefined) this.#finish(run, e);
      }
      return;
    }
    const run = thread.runs.get(msg.runId);
    if (run === undefined) return; // progress or log after the run's end: nobody is listening any more
    if (msg.type === 'progress') callHook(() => run.hooks.onProgress(msg.progress));
    else callHook(() => run.hooks.onLog(msg.line));
  }

  #onExit(thread: PoolThread, code: number): void {
    if (thread.dead) return; // we ended it, and settled its runs then
    thread.dead = true;
    const cause = thread.error ?? new Error(`exit code ${code}`);
    if (!thread.ready && !this.#anyReady && !this.#closing) {
      const message = `a worker thread exited (code ${code}) before processor ${this.#threadData.processorUrl} loaded`;
      this.#failLoad({ message: thread.error instanceof Error ? `${message}: ${thread.error.message}` : message, cause });
      for (const run of thread.runs.values()) this.#settle(run, this.#loadFailure());
      return;
    }
    this.#isolation.threadDied(thread, code, cause, this.#closing);
    this.#drain();
  }

  /** Takes a run off its dead thread, unsettled, to be assigned again (its timeout clock restarts when posted). */
  #detach(run: Run): void {
    this.#clock.clearTimeout(run.timer);
    this.#clock.clearTimeout(run.graceTimer);
    run.timer = run.graceTimer = undefined;
    run.signalled = undefined;
    run.timedOut = false;
    run.thread!.runs.delete(run.id);
    run.thread = undefined;
    this.#running--;
  }

  /** Ends a thread that still has runs, settling each with `outcomeFor(run)` now rather than at its exit. */
  #kill(thread: PoolThread, outcomeFor: (run: Run) => RunOutcome): void {
    thread.dead = true;
    void thread.worker.terminate();
    for (const run of thread.runs.values()) this.#settle(run, outcomeFor(run));
    this.#isolation.killed(thread);
  }

  /** Ends a thread with no runs: it exits by itself (shutdown), or is terminated if it is stuck. */
  #shutdown(thread: PoolThread): void {
    thread.dead = true;
    this.#send(thread, { type: 'shutdown' });
    const stuck = this.#clock.setTimeout(() => void thread.worker.terminate(), this.#opts.abortGraceMs);
    void thread.exited.then(() => this.#clock.clearTimeout(stuck));
  }

  #failLoad(why: { message: string; cause?: unknown }): void {
    if (this.#loadError === undefined) {
      this.#loadError = why;
      const error = this.#loadFailureError();
      for (const waiter of this.#loadWaiters.splice(0)) waiter.reject(error);
      if (this.#opts.onLoadFailure) callHook(() => this.#opts.onLoadFailure!(error));
    }
    for (const thread of this.#threads) {
      if (!thread.ready && !thread.dead) this.#kill(thread, () => this.#loadFailure());
    }
    for (const run of this.#queue.splice(0)) this.#settle(run, this.#loadFailure());
  }

  /** A fresh error per job (callers may decorate theirs), all with the one cause. */
  #loadFailure(): RunOutcome {
    return { kind: 'failed', error: this.#loadFailureError() };
  }

  #loadFailureError(): SpoolError {
    const { message, cause } = this.#loadError!;
    return poolError('ERR_PROCESSOR_LOAD', message, cause === undefined ? undefined : { cause });
  }

  // timeouts, aborts, outcomes

  #onTimeout(run: Run): void {
    run.timer = undefined;
    if (run.signalled !== undefined) return; // abort() came first: that is the story of this run
    run.timedOut = true;
    this.#signal(run, poolError('ERR_JOB_TIMEOUT', `job ${run.job.id} timed out after ${run.timeoutMs} ms`));
  }

  /** Aborts a run's signal, then gives it abortGraceMs to stop before its thread is terminated. */
  #signal(run: Run, reason: SpoolError): void {
    run.signalled = reason;
    if (!run.posted) return this.#settle(run, { kind: 'failed', error: reason });
    const thread = run.thread!;
    this.#send(thread, { type: 'abort', runId: run.id, reason: toWire(reason) });
    run.graceTimer = this.#clock.setTimeout(() => {
      const message = `the worker thread was terminated because job ${run.job.id} did not stop within ${this.#opts.abortGraceMs} ms of its abort`;
      // The others on the thread did nothing wrong: victims, retried uncounted by the Worker.
      this.#kill(thread, (r) => (r === run ? { kind: 'crashed', error: reason } : { kind: 'interrupted', error: poolError('ERR_THREAD_CRASHED', message) }));
    }, this.#opts.abortGraceMs);
  }

  /** A run's `done` or `failed` end. */
  #finish(run: Run, end: RunEnd): void {
    const error = end.type === 'failed' ? fromWire(end.error) : undefined;
    const result = end.type === 'done' ? end.result : undefined;
    if (run.timedOut) {
      const options = error === undefined ? undefined : { cause: error };
      this.#settle(run, { kind: 'timeout', error: poolError('ERR_JOB_TIMEOUT', run.signalled!.message, options) });
    } else if (error !== undefined) {
      this.#settle(run, { kind: 'failed', error });
    } else {
      this.#settle(run, { kind: 'completed', result });
    }
  }

  /** The one place a run ends. Frees its slot, retires or idles its thread, and dispatches the next queued run. */
  #settle(run: Run, outcome: RunOutcome): void {
    if (run.settled) return;
    run.settled = true;
    this.#clock.clearTimeout(run.timer);
    this.#clock.clearTimeout(run.graceTimer);
    const thread = run.thread;
    if (thread !== undefined) {
      thread.runs.delete(run.id);
      this.#running--;
      if (!thread.dead && thread.runs.size === 0) {
        if (thread.isolating) this.#isolation.next();
        else if (thread.retiring) this.#shutdown(thread);
        else if (!this.#closing) thread.worker.unref(); // while closing, stay ref'd so close() sees the exit
      }
    }
    run.resolve(outcome);
    if (this.#running === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    this.#drain();
  }

  /** Resolves when no run is left, or after `graceMs` (undefined: no limit). */
  #idleOrAfter(graceMs: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = graceMs === undefined ? undefined : this.#clock.setTimeout(resolve, graceMs);
      this.#idleWaiters.push(() => {
        this.#clock.clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** A throwing hook is a bug in the caller; it must not take the pool's message handling down with it. */

function processorHref(processor: unknown): string {
  if (processor instanceof URL) {
    if (processor.protocol !== 'file:') throw invalidArg(`processor must be a file: URL, got ${processor.protocol}`);
    return processor.href;
  }
  if (typeof processor === 'string' && processor.startsWith('file:')) return processorHref(new URL(processor));
  if (typeof processor === 'string' && isAbsolute(processor)) return pathToFileURL(processor).href;
  throw invalidArg('processor must be an absolute path, a file: URL string or a URL');
}

function positiveInt(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw invalidArg(`${name} must be an integer >= 1`);
  return value as number;
}

function positiveNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidArg(`${name} must be a number > 0`);
  return value;
}

function nonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalidArg(`${name} must be a number >= 0`);
  return value;
}
