/**
 * Runners: where a Worker's jobs execute. The inline runner calls the processor on this thread; the pool runner
 * hands jobs to worker_threads (thread-pool.ts). Both settle every run with a RunOutcome and never reject, so the
 * Worker has one path for every way a job can end.
 *
 * Processors are called as BullMQ calls them, (job, token, signal): `token` is the id of the ticket that holds the
 * job's lease (worker.ts), a string the Worker already has. A processor that declares fewer than three parameters
 * (and, inline, has no timeout) gets the shared NEVER_ABORTED signal instead of an AbortController of its own.
 *
 * Loading: run() waits for load() before it claims anything. Inline there is nothing to load; the pool runner
 * starts one thread and waits for the processor module to import in it (ThreadPool.load), so a module that throws
 * at import, or exports no processor, is found before any job is spent on it.
 *
 * Inline timeouts: a job past its timeout has its signal aborted and is settled at once as 'timeout'. A processor
 * on this thread cannot be stopped by force, so if it ignores the signal it runs on in the background and its
 * eventual result is dropped. Processors that may hang belong in threads, where the pool terminates them.
 */
import { SpoolError } from '../errors.js';
import type { PoolJob } from './thread-protocol.js';
import { ThreadPool, type RunHooks, type RunOutcome } from './thread-pool.js';
import type { Job } from '../queue/job.js';
import { NEVER_ABORTED, takesSignal } from './never-signal.js';
import type { Clock, ClockTimer } from '../queue/clock.js';

/** As BullMQ's: `token` is the id of the ticket holding the job's lease; `signal` aborts on timeout, lease loss, close. */
export type Processor<D = unknown, R = unknown> = (job: Job<D, R>, token: string, signal: AbortSignal) => Promise<R> | R;
export type ProcessorMap = Record<string, Processor>;

export interface Runner {
  readonly capacity: number;
  /** Resolves once jobs can run (the processor module has loaded); rejects with ERR_PROCESSOR_LOAD if they never can. */
  load(): Promise<void>;
  /** Runs one job; `token` is the processor's second argument, `runKey` names this run for abort(). */
  run(job: Job, token: string, runKey: string, timeoutMs: number | undefined, hooks: RunHooks): Promise<RunOutcome>;
  /** Aborts one run, by the runKey its PoolJob carried (or its job id when it had none). */
  abort(runKey: string, reason: Error): void;
  close(graceMs: number): Promise<void>;
}

export class InlineRunner implements Runner {
  readonly capacity: number;
  readonly #processor: Processor | ProcessorMap;
  readonly #controllers = new Map<string, AbortController>();
  /** Job timeouts are on this clock (queue/clock.ts). */
  readonly #clock: Clock;

  constructor(processor: Processor | ProcessorMap, concurrency: number, clock: Clock) {
    this.#processor = processor;
    this.capacity = concurrency;
    this.#clock = clock;
  }

  load(): Promise<void> {
    return Promise.resolve();
  }

  run(job: Job, token: string, runKey: string, timeoutMs: number | undefined): Promise<RunOutcome> {
    const fn = typeof this.#processor === 'function' ? this.#processor : this.#processor[job.name];
    // A processor that takes no signal and has no timeout gets the shared NEVER_ABORTED (never-signal.ts).
    const controller = fn && (takesSignal(fn) || timeoutMs !== undefined) ? new AbortController() : undefined;
    // Nothing to abort and no timer: one async call, a fraction of the promises and closures of the path below
    // (the common case; it runs once per job).
    if (fn && !controller && timeoutMs === undefined) return callQuietly(fn, job, token);
    if (controller) this.#controllers.set(runKey, controller);
    return new Promise<RunOutcome>((resolve) => {
      let timer: ClockTimer | undefined;
      const settle = (o: RunOutcome): void => {
        if (timer) this.#clock.clearTimeout(timer);
        if (controller && this.#controllers.get(runKey) === controller) this.#controllers.delete(runKey);
        resolve(o);
      };
      if (timeoutMs !== undefined) {
        timer = this.#clock.setTimeout(() => {
          const err = new SpoolError('ERR_JOB_TIMEOUT', `job ${job.id} timed out after ${timeoutMs} ms`);
          controller?.abort(err);
          settle({ kind: 'timeout', error: err });
        }, timeoutMs);
      }
      if (!fn) {
        return settle({ kind: 'failed', error: new SpoolError('ERR_NO_HANDLER', `no processor for jobs named '${job.name}'`) });
      }
      Promise.resolve()
        .then(() => fn(job, token, controller?.signal ?? NEVER_ABORTED))
        .then(
          (result) => settle({ kind: 'completed', result }),
          (err: unknown) => settle({ kind: 'failed', error: asError(err) }),
        );
    });
  }

  abort(runKey: string, reason: Error): void {
    this.#controllers.get(runKey)?.abort(reason);
  }

  async close(): Promise<void> {
    // Nothing to tear down: jobs still running were handed back by the Worker and their results are ignored.
  }
}

export class PoolRunner implements Runner {
  readonly #pool: ThreadPool;

  constructor(pool: ThreadPool) {
    this.#pool = pool;
  }

  get capacity(): number {
    return this.#pool.capacity;
  }

  load(): Promise<void> {
    return this.#pool.load();
  }

  run(job: Job, token: string, runKey: string, timeoutMs: number | undefined, hooks: RunHooks): Promise<RunOutcome> {
    // Every field is structured-cloned per job: the queue's name goes to each thread once (ThreadData), and the
    // log line count only when there are lines (it is 0 for nearly every job).
    const wire: PoolJob = {
      id: job.id,
      runKey,
      token,
      name: job.name,
      data: job.data,
      opts: { ...job.opts },
      attemptsMade: job.attemptsMade,
      timestamp: job.timestamp,
      processedOn: job.processedOn ?? 0,
      progress: job.progress as number | object,
    };
    const lines = job.logCountWhenRead;
    if (lines > 0) wire.logCount = lines;
    return this.#pool.run(wire, timeoutMs, hooks);
  }

  abort(runKey: string, reason: Error): void {
    this.#pool.abort(runKey, reason.message);
  }

  close(graceMs: number): Promise<void> {
    return this.#pool.close({ graceMs });
  }
}

/** Runs the processor in a later microtask (never inside the caller's loop, as the path with a timer does). */
async function callQuietly(fn: Processor, job: Job, token: string): Promise<RunOutcome> {
  await undefined;
  try {
    return { kind: 'completed', result: await fn(job, token, NEVER_ABORTED) };
  } catch (err) {
    return { kind: 'failed', error: asError(err) };
  }
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  const e = new Error(typeof err === 'string' ? err : `non-error thrown: ${safeString(err)}`);
  e.name = 'NonError';
  return e;
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v); // a value JSON cannot show (cyclic, BigInt): its plain string form will do for a message
  }
}
