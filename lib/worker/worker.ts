/**
 * Worker: runs a queue's jobs, inline or in worker_threads, claiming them only through tickets (DESIGN §4,
 * protocol in queue/tickets.ts). BullMQ-shaped: new Worker(name, processor, opts), events, close().
 *
 * The loop: the worker tells the owner's desk how many jobs it could start (its free slots); the desk cuts a
 * ticket of at most that many and offers it; the worker claims it by rename, which makes the taken file its lease,
 * renews every lease it holds every leaseMs/3, and runs the jobs. Each outcome goes back to the owner, which logs
 * it only if the lease still holds. A lease found gone on renewal (the owner took it back) aborts that ticket's
 * running jobs: their results would be ignored anyway, and their signals tell them to stop. All the Worker uses of
 * the owner is the queue's WorkerBackend (queue/backend.ts: attach its port, claim and renew by rename, read job
 * data from the segments, report outcomes, progress, logs and start tallies), so the same loop can run beside an
 * owner in another process. This file is the lifecycle; the loop's steps are in job-loop.ts.
 *
 * Outcomes: completed; failed (retried after the job's backoff while attempts remain, unless the processor threw
 * an UnrecoverableError); timed out (failed with ERR_JOB_TIMEOUT, retried like a failure); crashed (the thread
 * died under it, and the pool found this job to be the cause: a failure of the attempt, ERR_THREAD_CRASHED);
 * interrupted (its thread was terminated for another job's fault: released with nothing counted, 'stalled'
 * emitted). Jobs re-run by the pool to find which of them crashed a thread get 'stalled' too (thread-pool.ts).
 *
 * Processors are called as BullMQ calls them, (job, token, signal). The token is the id of the ticket that holds
 * the job's lease (the `ticket` the owner logged in the job's ACTIVE record, shared by the jobs claimed together,
 * the same for the whole run while the lease file is renewed); the signal aborts on timeout, lease loss and close.
 *
 * Lifecycle: constructed → run() (autorun calls it) → starting: the queue opens (its owner, and the backend to it) and the runner loads (a
 * module processor imports in one thread, ThreadPool.load) → running: attached to the owner's desk (its port), claiming →
 * close() → closed. From run() until close() resolves the Worker holds exactly one ref'd handle (an idle timer),
 * so a process with nothing but a Worker waits for work, and delayed and backed-off jobs run, as BullMQ users
 * expect; a Queue alone holds nothing, and a closed Worker lets the process exit. Nothing is claimed before both
 * the queue is open and the processor has loaded.
 *
 * Failure to start (the queue cannot open: ERR_LOCKED, ERR_IO…; the module does not exist, throws at import,
 * exports no processor, or no thread can be spawned: ERR_PROCESSOR_LOAD) is fatal: the Worker claims nothing,
 * rejects run() and waitUntilReady(), emits 'error' once, and closes itself (isRunning false, the process may
 * exit). A pool that fails for good later (a replacement thread cannot be spawned, its module no longer loads) is
 * handled the same way, and the jobs that failed only because of it are handed back, no attempt counted. Errors
 * with no 'error' listener are written to stderr (console.error) instead of thrown from a timer.
 *
 * Time: lease renewal, the close timeout, job timeouts (inline and in the pool) and finish times are on the clock
 * the Worker is given (INTERNAL_CLOCK, queue/clock.ts; the owner's), so a test advances them; the keep-alive handle
 * and the measured run times of jobs (lookahead) are real time.
 *
 * close() is graceful: stop asking for work, hand back claimed jobs that have not started (RELEASE: no attempt
 * counts), let running ones finish until closeTimeoutMs, then abort and hand back the rest.
 *
 * Lookahead: every ticket costs an ACTIVE record and a few file operations (write, renames), far more than a
 * short job. So, when jobs are short, the worker claims ahead of its free slots: as many jobs as its slots would
 * get through in about LOOKAHEAD_MS at the average run time measured so far (at most MAX_LOOKAHEAD), and it
 * refills in chunks rather than one slot at a time. The desk hands out lookahead only while the queue has a
 * backlog (desk.ts), so a worker busy with a long job does not take the next one that arrives. Long jobs get no
 * lookahead at all: a worker never holds more work
 * than it could start within a few milliseconds, so a job of higher priority added meanwhile waits at most that
 * long behind claimed work, and another worker is not starved of jobs this one could not start soon. Claimed jobs
 * are active in the log; if the process dies, those not yet started are released with nothing counted, because
 * the log says which started (Starts, queue/owner/starts.ts): the ticket's claim covers the jobs started as it is
 * claimed, and for the rest the worker counts how far into each ticket it has got in a tally the owner reads
 * before each log flush (Owner.started: one START record per ticket per batch, an increment per job).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpoolError, invalidArg } from '../errors.js';
import type { BackoffStrategy } from '../queue/backoff.js';
import type { Job } from '../queue/job.js';
import type { Clock, ClockTimer } from '../queue/clock.js';
import { INTERNAL_CLOCK, INTERNAL_FS, WORKER_KEYS, intIn, resolveQueueOptions, validateQueueName, type QueueOptions } from '../queue/options.js';
import type { WorkerBackend } from '../queue/backend.js';
import { acquireBackend, releaseOwner } from '../queue/owner/registry.js';
import { InlineRunner, PoolRunner, type Processor, type ProcessorMap, type Runner } from './runners.js';
import { ThreadPool } from './thread-pool.js';
import { JobLoop, type LoopHost } from './job-loop.js';

export interface WorkerOptions extends Omit<QueueOptions, 'defaultJobOptions'> {
  /** Jobs at once (per thread, with threads). Default 1. */
  concurrency?: number;
  /** worker_threads to run a module processor in. Default 1 (only with a module processor). */
  threads?: number;
  maxJobsPerThread?: number;
  maxHeapMb?: number;
  /** After a timeout aborts a job's signal, how long before its thread is terminated. Default 1000 ms. */
  abortGraceMs?: number;
  /** Start processing at once. Default true; otherwise call run(). */
  autorun?: boolean;
  /** How long close() lets running jobs finish before handing them back. Default 30 s. */
  closeTimeoutMs?: number;
  settings?: { backoffStrategies?: Record<string, BackoffStrategy> };
}

/** The keep-alive timer's period: it only holds the process, so as long as a timer may be. */
const KEEP_ALIVE_MS = 2 ** 31 - 1;
const noop = (): void => undefined;

/**
 * A Worker's events and their arguments, as BullMQ's where they exist. `job` is the Job this worker ran;
 * `prev` is the state the job left. A job's 'failed' follows its FAIL (or STALL) record being durable, as does
 * 'completed'; 'stalled' is this worker finding its lease on the job taken back.
 */
export interface WorkerEventMap<DataType = unknown, ResultType = unknown> {
  /** run() has attached to the owner: claiming starts. */
  ready: [];
  active: [job: Job<DataType, ResultType>, prev: 'waiting'];
  progress: [job: Job<DataType, ResultType>, progress: number | object];
  completed: [job: Job<DataType, ResultType>, result: ResultType, prev: 'active'];
  failed: [job: Job<DataType, ResultType>, error: Error, prev: 'active'];
  stalled: [jobId: string, prev: 'active'];
  /** The queue has no waiting job left, after the events of the outcomes that emptied it. */
  drained: [];
  error: [error: Error];
  /** close() is done. */
  closed: [];
}

type WorkerListener<D, R, E extends keyof WorkerEventMap<D, R>> = (...args: WorkerEventMap<D, R>[E]) => void;

/** Typed listeners: a misspelled event name, or a listener that takes the wrong arguments, does not compile. */
export interface Worker<DataType = unknown, ResultType = unknown> {
  on<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
  once<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
  off<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
  addListener<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
  removeListener<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
  prependListener<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
  prependOnceListener<E extends keyof WorkerEventMap<DataType, ResultType>>(event: E, listener: WorkerListener<DataType, ResultType, E>): this;
}

export class Worker<DataType = unknown, ResultType = unknown> extends EventEmitter {
  readonly name: string;
  readonly id = randomBytes(6).toString('hex');
  readonly #key: string;
  readonly #ownerP: Promise<WorkerBackend>;
  readonly #runner: Runner;
  readonly #closeTimeoutMs: number;
  /** Lease renewal, close timeouts, job timeouts and finish times (clock.ts); the owner's (registry.ts). */
  readonly #clock: Clock;
  /** The run and report logic (job-loop.ts). */
  readonly #loop: JobLoop<DataType>;
  #renewTimer: ClockTimer | undefined;
  /** The one ref'd handle of a running Worker (header: Lifecycle): set by run(), cleared when close() ends. */
  #keepAlive: NodeJS.Timeout | undefined;
  #started = false;
  /** run()'s start: open, load, attach. */
  #starting: Promise<void> | undefined;
  /** Why the Worker could not start or go on (header: Failure to start); set once. */
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;

  constructor(name: string, processor: Processor<DataType, ResultType> | ProcessorMap | string | URL, opts: WorkerOptions) {
    super();
    this.name = validateQueueName(name);
    if (!opts || typeof opts !== 'object') throw invalidArg('options with a `dir` are required');
    // The Worker's own keys apart, the rest are the queue's (and must agree with its owner's: registry.ts); a
    // key that is neither is refused as a worker option, with what to use instead for BullMQ's (options.ts).
    const queueOpts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(opts)) if (!WORKER_KEYS.has(k)) queueOpts[k] = v;
    // The internal seams (options.ts), under symbols that Object.entries does not list.
    const given = opts as unknown as Record<symbol, unknown>;
    for (const k of [INTERNAL_FS, INTERNAL_CLOCK]) if (given[k] !== undefined) (queueOpts as Record<symbol, unknown>)[k] = given[k];
    const resolved = resolveQueueOptions(queueOpts, 'worker');
    this.#clock = resolved.clock;
    const concurrency = intIn(opts.concurrency, 'concurrency', 1, 10_000, 1);
    this.#closeTimeoutMs = intIn(opts.closeTimeoutMs, 'closeTimeoutMs', 0, 24 * 3600_000, 30_000);
    if (typeof processor === 'string' || processor instanceof URL) {
      const threads = intIn(opts.threads, 'threads', 1, 1024, 1);
      // A relative path is taken from the current directory, as node would for a script path.
      const module = typeof processor === 'string' && !processor.startsWith('file:') ? path.resolve(processor) : processor;
      refuseMissingModule(module);
      this.#runner = new PoolRunner(
        new ThreadPool({
          processor: module,
          queueName: this.name,
          threads,
          concurrency,
          maxJobsPerThread: opts.maxJobsPerThread,
          maxHeapMb: opts.maxHeapMb,
          abortGraceMs: opts.abortGraceMs,
          clock: this.#clock,
          onLoadFailure: (err) => this.#fail(err),
        }),
      );
    } else if (typeof processor === 'function' || (processor && typeof processor === 'object')) {
      if (opts.threads !== undefined) throw invalidArg('threads needs a processor module (a path or URL), not a function');
      if (typeof processor === 'object') {
        for (const [k, fn] of Object.entries(processor)) if (typeof fn !== 'function') throw invalidArg(`processor for '${k}' is not a function`);
      }
      this.#runner = new InlineRunner(processor as Processor | ProcessorMap, concurrency, this.#clock);
    } else {
      throw invalidArg('processor must be a function, a map of functions by job name, or a module path/URL');
    }
    const worker = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the loop reads the lifecycle's state
    const host: LoopHost = {
      id: this.id,
      get closing() { return worker.#closing !== undefined; },
      get failure() { return worker.#failure; },
      emitError: (err) => this.#emitError(err),
    };
    this.#loop = new JobLoop<DataType>(host, this, this.#runner, this.#clock, opts.settings?.backoffStrategies);
    const { key, backend: owner } = acquireBackend(this.name, resolved);
    this.#key = key;
    this.#ownerP = owner.then((o) => {
      this.#loop.backend = o; // all the Worker uses of the owner (backend.ts)
      o.on('drained', this.#onDrained);
      o.on('progress', this.#loop.onProgress);
      o.on('error', this.#onOwnerError);
      return o;
    });
    // A queue that cannot open (ERR_LOCKED…) is fatal whether or not run() was called: reported once (#fail).
    this.#ownerP.catch((err: Error) => this.#fail(err));
    // The autorun's rejection is the failure #fail has reported; unhandled, it would end the process.
    if (opts.autorun !== false) this.run().catch(() => undefined);
  }

  /**
   * Resolves once the queue is open and, after run(), the processor has loaded. Rejects with the reason the Worker
   * cannot start (header: Failure to start).
   */
  async waitUntilReady(): Promise<void> {
    await this.#ownerP;
    if (this.#starting) await this.#starting;
    if (this.#failure) throw this.#failure;
  }

  /**
   * Starts claiming and processing (autorun does this for you). Resolves once the Worker is claiming (at once if
   * it already is, or is closing); rejects if it cannot start, with the reason it also emitted as 'error'.
   */
  run(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.resolve();
    if (!this.#started) {
      this.#started = true;
      this.#keepAlive = setInterval(noop, KEEP_ALIVE_MS);
      this.#starting = this.#begin();
    }
    return this.#starting!;
  }

  async #begin(): Promise<void> {
    let owner: WorkerBackend;
    try {
      // Both before the first claim: a module that cannot load must not spend an attempt of any job.
      [owner] = await Promise.all([this.#ownerP, this.#runner.load()]);
    } catch (err) {
      if (this.#closing && !this.#failure) return; // closed while starting: the pool's ERR_CLOSED is no failure
      this.#fail(err as Error);
      throw this.#failure;
    }
    if (this.#closing) return;
    owner.attach(this.#loop.port);
    const leaseMs = owner.leaseMs;
    this.#renewTimer = this.#clock.setInterval(() => this.#loop.renew(), Math.max(10, Math.floor(leaseMs / 3)));
    this.#renewTimer.unref();
    this.emit('ready');
    this.#loop.pump();
  }

  /** Fatal (header: Failure to start): reported once, then the Worker closes itself. */
  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#emitError(err);
    void this.close().catch((closeErr: Error) => this.#emitError(closeErr));
  }

  get isRunning(): boolean {
    return this.#started && !this.#closing;
  }

  /**
   * The owner's errors (damage quarantined at open, a failed checkpoint…) reach the worker's 'error' listeners.
   * Listening also keeps them from being thrown as unhandled 'error' events when no Queue is open beside the
   * worker, which would end a worker-only process over a report that spoolq has already dealt with.
   */
  #onOwnerError = (err: Error): void => {
    this.#emitError(err);
  };

  #onDrained = (): void => {
    if (!this.#started || this.#closing) return;
    // After the 'completed'/'failed' events still waiting for durability: drained comes last, as in BullMQ.
    const pending = this.#loop.pendingEvents;
    if (pending.size === 0) this.emit('drained');
    else void Promise.all(pending).then(() => this.emit('drained'));
  };

  /**
   * 'error' to the listeners; with none, one line on stderr: an error must not vanish, and must not be thrown from
   * a timer (an EventEmitter's default) and end the app over something spoolq has dealt with.
   */
  #emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else console.error(`spoolq: worker on queue '${this.name}': ${(err as { code?: unknown }).code ?? err.name}: ${err.message}`);
  }

  /** Graceful: stop claiming, hand back unstarted jobs, let running ones finish until closeTimeoutMs. */
  close(force = false): Promise<void> {
    this.#closing ??= (async () => {
      this.#loop.port.want = 0;
      this.#clock.clearInterval(this.#renewTimer);
      const owner = await this.#ownerP.catch(() => undefined);
      if (owner) {
        owner.detach(this.#loop.port);
        owner.off('drained', this.#onDrained);
        await this.#loop.handBackInbox();
        if (this.#loop.running > 0 && !force) {
          // Keep leases alive while jobs finish.
          const clock = this.#clock;
          const renew = clock.setInterval(() => this.#loop.renew(), Math.max(10, Math.floor(owner.leaseMs / 3)));
          let timer: ClockTimer | undefined;
          const deadline = new Promise<void>((r) => {
            timer = clock.setTimeout(r, this.#closeTimeoutMs);
            timer.unref();
          });
          await Promise.race([this.#loop.whenIdle(), deadline]);
          clock.clearTimeout(timer);
          clock.clearInterval(renew);
        }
        const reason = new SpoolError('ERR_LEASE_LOST', 'the worker is closing');
        await this.#loop.abortRunning(reason);
      }
      owner?.off('progress', this.#loop.onProgress);
      owner?.off('error', this.#onOwnerError);
      await this.#runner.close(0);
      await Promise.all(this.#loop.pendingEvents);
      await releaseOwner(this.#key);
      this.emit('closed');
    })().finally(() => clearInterval(this.#keepAlive)); // last, whatever happened: the process may exit from here
    return this.#closing;
  }
}

/**
 * A processor module that does not exist is refused when the Worker is made (ERR_PROCESSOR_LOAD), not found out at
 * run(). Only file: URLs are checked here; ThreadPool refuses other schemes.
 */
function refuseMissingModule(module: string | URL): void {
  let file: string;
  try {
    file = module instanceof URL || module.startsWith('file:') ? fileURLToPath(module) : module;
  } catch {
    return; // not a file: URL (http:…): ThreadPool refuses it with ERR_INVALID_ARG, the clearer error
  }
  if (!existsSync(file)) throw new SpoolError('ERR_PROCESSOR_LOAD', `processor module ${file} does not exist`);
}
