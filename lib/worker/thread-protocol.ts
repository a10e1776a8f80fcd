/**
 * thread-protocol: every message between the ThreadPool (main thread) and thread-entry (each worker_thread),
 * written as types, and the job object a processor module is handed.
 *
 * Conversation of one thread
 *   spawn, workerData = ThreadData   the first thread at load() (Worker.run), before any job is claimed
 *   thread → ready                   the processor module imported and exports a processor
 *          | load-failed             it did not; the pool terminates the thread, rejects load() and fails every job
 *   main   → runs [(runId, job)…]    only after ready; many may be in flight, up to the pool's concurrency
 *   thread → progress / log (runId)  in the order the processor called them, always before that run's end
 *   thread → ends [done | failed…]   exactly one end per run, the last message about that run
 *   main   → abort (runId, reason)   the run's AbortSignal fires with the rebuilt reason; unknown runIds are ignored
 *   main   → shutdown                only to a thread with no runs: it exits at once, code 0
 *
 * Runs and ends travel in batches: each side collects them during one turn of its event loop and posts them as
 * one message when its microtasks are done (a postMessage costs microseconds each way; a no-op job costs less). A
 * message of another kind is posted only after the batch collected before it, so the order each side sees is the
 * order the other produced: an abort never overtakes its run, a progress line never its run's end. A batch that
 * structured clone refuses is posted again one entry at a time, so the one job with the bad data or result is the
 * one that fails (DataCloneError).
 *
 * Runs are named by a runId the pool allocates, never by job id: the same job may be run twice at once (a lease
 * lost, the job re-claimed while its first run still winds down) and the two must not be confused. One port
 * carries everything, so messages arrive in the order they were posted; the pool relies on that to deliver all of
 * a run's progress and log lines before its outcome.
 *
 * Everything here must survive structured clone: errors travel as WireError (error-wire.ts), never as Error.
 */
import type { WireError } from './error-wire.js';

/** A job as the pool receives it and posts it to a thread. Structured-clonable. */
export interface PoolJob {
  id: string;
  /** Names this run for abort() when one job may run twice at once (the Worker's ticket + id); default: id. */
  runKey?: string;
  /** The processor's second argument, BullMQ's token: the Worker passes the id of the ticket holding the job's
   *  lease (worker.ts). Default ''. */
  token?: string;
  /** The job's queue, for `job.queueName` in the thread. Default: ThreadData's, else ''. */
  queueName?: string;
  /** Lines already in the job's log; the thread's `job.log()` counts up from it (default 0). */
  logCount?: number;
  name: string;
  data: unknown;
  opts: Record<string, unknown>;
  attemptsMade: number;
  timestamp: number;
  processedOn: number;
  /** Progress reported by an earlier attempt; the thread's `job.progress` starts from it (default 0). */
  progress?: number | object;
}

/** The thread's workerData. */
export interface ThreadData {
  /** The processor module, as a file: URL href (the pool resolves paths before spawning). */
  processorUrl: string;
  /** The queue's name, for `job.queueName` (sent once per thread rather than with every job). */
  queueName?: string;
}

// main → thread

export interface RunEntry { runId: number; job: PoolJob }
export interface RunsMessage { type: 'runs'; runs: RunEntry[] }
export interface AbortMessage { type: 'abort'; runId: number; reason: WireError }
export interface ShutdownMessage { type: 'shutdown' }
export type MainToThread = RunsMessage | AbortMessage | ShutdownMessage;

// thread → main

export interface ReadyMessage { type: 'ready' }
export interface LoadFailedMessage { type: 'load-failed'; error: WireError }
export interface ProgressMessage { type: 'progress'; runId: number; progress: number | object }
export interface LogMessage { type: 'log'; runId: number; line: string }
export interface DoneEnd { type: 'done'; runId: number; result: unknown }
export interface FailedEnd { type: 'failed'; runId: number; error: WireError }
export type RunEnd = DoneEnd | FailedEnd;
export interface EndsMessage { type: 'ends'; ends: RunEnd[] }
export type ThreadToMain = ReadyMessage | LoadFailedMessage | ProgressMessage | LogMessage | EndsMessage;

// what a processor module sees

/** The job a processor running in a thread receives. `updateProgress` and `log` post to the main thread. */
export interface ThreadJob {
  readonly id: string;
  readonly name: string;
  readonly queueName: string;
  readonly data: unknown;
  readonly opts: Record<string, unknown>;
  readonly attemptsMade: number;
  readonly timestamp: number;
  readonly processedOn: number;
  /** The last value given to updateProgress (or the progress of an earlier attempt). */
  progress: number | object;
  updateProgress(progress: number | object): Promise<void>;
  /** Adds a line to the job's log; resolves with the job's number of lines, as the inline Job's log() does. */
  log(line: string): Promise<number>;
}

/**
 * What a processor module exports: a default export or a named export `process` that is a ThreadProcessor, or a
 * default export that is a map of them by job name. Called as BullMQ calls a processor, (job, token, signal); one
 * that declares fewer than three parameters gets the shared NEVER_ABORTED signal (never-signal.ts).
 */
export type ThreadProcessor = (job: ThreadJob, token: string, signal: AbortSignal) => unknown;
export type ThreadProcessorMap = Record<string, ThreadProcessor>;
