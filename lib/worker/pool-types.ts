/**
 * The pool's bookkeeping types, shared by thread-pool.ts (dispatch, threads, outcomes) and crash-isolation.ts
 * (re-running the suspects of a crash): a Run is one job's passage through the pool, a PoolThread one thread.
 */
import type { Worker } from 'node:worker_threads';
import type { SpoolError } from '../errors.js';
import type { ClockTimer } from '../queue/clock.js';
import type { PoolJob } from './thread-protocol.js';

export interface RunHooks {
  /** job.updateProgress() inside the thread. Called in order, before the run's outcome. Must not throw. */
  onProgress(progress: number | object): void;
  /** job.log() inside the thread. Same ordering as onProgress. Must not throw. */
  onLog(line: string): void;
  /** The run's thread crashed under it and others, and it is run again alone (thread-pool.ts header: Crashes). Must not throw. */
  onRestart?(): void;
}

export type RunOutcome =
  | { kind: 'completed'; result: unknown }
  | { kind: 'failed'; error: Error }
  | { kind: 'crashed'; error: Error }
  | { kind: 'interrupted'; error: Error }
  | { kind: 'timeout'; error: Error };

export interface Run {
  readonly id: number;
  readonly job: PoolJob;
  readonly hooks: RunHooks;
  readonly timeoutMs: number | undefined;
  readonly resolve: (outcome: RunOutcome) => void;
  thread?: PoolThread;
  /** Posted to its thread: from here it runs, and its timeout clock runs. */
  posted: boolean;
  settled: boolean;
  timer?: ClockTimer;
  graceTimer?: ClockTimer;
  /** The reason its signal was aborted with, once it was (by its timeout or by abort()). */
  signalled?: SpoolError;
  timedOut: boolean;
}

export interface PoolThread {
  readonly worker: Worker;
  readonly exited: Promise<void>;
  /** Runs assigned to it and not settled, posted or waiting for `ready`. */
  readonly runs: Map<number, Run>;
  /** Runs ever assigned, for maxJobsPerThread. */
  assigned: number;
  ready: boolean;
  /** Has had its maxJobsPerThread: finishes its runs, gets no new ones. Does not count against `threads`. */
  retiring: boolean;
  /** Runs crash suspects one at a time (crash-isolation.ts); gets no other runs. Does not count against `threads`. */
  isolating: boolean;
  /** Given up by the pool (terminated, shut down) or exited: its messages and its exit are ignored from here. */
  dead: boolean;
  /** Its last 'error' event (uncaught exception, out of memory), reported as the cause when it exits. */
  error?: unknown;
  /** Runs posted in this turn of the event loop, sent as one `runs` message when its microtasks are done. */
  outbox: Run[];
  flushQueued: boolean;
}

/** Calls a caller's hook; one that throws is a warning (SPOOLQ_HOOK_THREW), never the pool's failure. */
export function callHook(call: () => void): void {
  try {
    call();
  } catch (err) {
    process.emitWarning(err instanceof Error ? err : String(err), { code: 'SPOOLQ_HOOK_THREW' });
  }
}
