/**
 * Crash isolation in the thread pool (thread-pool.ts header: Crashes). A thread that dies by itself with one posted
 * run tells whose fault it was: that run crashed it. With several posted runs any of them may be the cause: each
 * becomes a suspect, and the suspects are run again one at a time, each alone in the pool's "isolation" thread
 * (beside the `threads` others, which go on with new work; it takes no other runs). A suspect that crashes its
 * thread alone is the cause ('crashed'); the others end as their re-run ends, their first run forgotten
 * (hooks.onRestart tells the caller, and the Worker emits 'stalled'). Runs assigned to the dead thread but not yet
 * posted never ran: they go back to the front of the queue. Closing, or a thread that died while starting up after
 * others had loaded the module, re-runs nothing: every run on it crashed (so that such a thread cannot loop).
 * When no suspect is left, the isolation thread is shut down.
 */
import { poolError } from './error-wire.js';
import { callHook, type PoolThread, type Run, type RunOutcome } from './pool-types.js';

/** What isolation uses of its pool (thread-pool.ts). */
export interface IsolationHost {
  /** A new thread; undefined when none can be started (the pool has then failed for good). */
  spawn(): PoolThread | undefined;
  assign(run: Run, thread: PoolThread): void;
  settle(run: Run, outcome: RunOutcome): void;
  /** Takes a run off its dead thread, unsettled, to be assigned again. */
  detach(run: Run): void;
  /** Puts a run that never ran back at the front of the pool's queue. */
  requeue(run: Run): void;
  /** Ends a thread with no runs. */
  shutdown(thread: PoolThread): void;
  /** The outcome of a run once the pool has failed for good (ERR_PROCESSOR_LOAD). */
  loadFailure(): RunOutcome;
}

export class CrashIsolation {
  /** Runs to re-run alone because a thread crashed under them and others (header), oldest first. */
  readonly suspects: Run[] = [];
  /** The thread running suspects, while there are any. */
  thread: PoolThread | undefined;
  readonly #host: IsolationHost;

  constructor(host: IsolationHost) {
    this.#host = host;
  }

  /**
   * A thread died by itself (not by the pool's hand) after the processor had loaded: settles its runs that are the
   * cause, makes suspects of the others (header), and runs the next suspect. `cause` is the thread's error.
   */
  threadDied(thread: PoolThread, code: number, cause: unknown, closing: boolean): void {
    const h = this.#host;
    const what = thread.error instanceof Error ? `: ${thread.error.message}` : ` with code ${code}`;
    if (thread === this.thread) this.thread = undefined;
    const runs = [...thread.runs.values()];
    const posted = runs.filter((run) => run.posted);
    for (const run of runs) {
      // Alone, it is the cause; closing, nothing is re-run; a thread that died starting up (after others loaded the
      // module) is a crash of the runs waiting for it, as it always was, so that such a thread cannot loop.
      if ((posted.length === 1 && run.posted) || closing || !thread.ready) {
        h.settle(run, { kind: 'crashed', error: poolError('ERR_THREAD_CRASHED', `the worker thread running job ${run.job.id} died${what}`, { cause }) });
      } else {
        h.detach(run);
        if (run.posted) {
          this.suspects.push(run);
          callHook(() => run.hooks.onRestart?.());
        } else {
          h.requeue(run); // never ran: first in line again
        }
        run.posted = false;
      }
    }
    this.next();
  }

  /** Runs the next suspect alone in the isolation thread, spawning it if needed; ends it when none is left. */
  next(): void {
    const h = this.#host;
    const thread = this.thread;
    if (thread && thread.runs.size > 0) return;
    const run = this.suspects.shift();
    if (run === undefined) {
      if (thread) {
        this.thread = undefined;
        h.shutdown(thread);
      }
      return;
    }
    let iso = thread;
    if (!iso) {
      iso = h.spawn();
      if (!iso) {
        // No thread can be started any more (spawn failed the load for good): the suspects end as queued runs do.
        for (const r of [run, ...this.suspects.splice(0)]) h.settle(r, h.loadFailure());
        return;
      }
      iso.isolating = true;
      this.thread = iso;
    }
    h.assign(run, iso);
  }

  /** The pool terminated a thread with runs (settled by it): if it was the isolation thread, go on with the next. */
  killed(thread: PoolThread): void {
    if (thread !== this.thread) return;
    this.thread = undefined;
    this.next();
  }
}
