/**
 * Worker: runs a queue's jobs, inline or in worker_threads, claiming them only through tickets (DESIGN §4,
 * protocol in queue/tickets.ts). BullMQ-shaped: new Worker(name, processor, opts), events, close().
 *
 * The loop: the worker tells the owner's desk how many jobs it could start (its free slots); the desk cuts a
 * ticket of at most that many and offers it; the worker claims it by rename, which makes the taken file its lease,
 * renews every lease it holds every leaseMs/3, and runs the jobs. Each outcome goes back to the owner, which logs
 * it only if the lease still holds. A lease found gone on renewal (the owner took it back) aborts that ticket's
 * running jobs: their results would be ignored anyway, and their signals tell them to stop.
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
 * Lifecycle: constructed → run() (autorun calls it) → starting: the queue opens (Owner) and the runner loads (a
 * module processor imports in one thread, ThreadPool.load) → running: attached to the owner's desk, claiming →
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
 * the log says which started (Starts, queue/owner.ts): the ticket's claim covers the jobs started as it is
 * claimed, and for the rest the worker counts how far into each ticket it has got in a tally the owner reads
 * before each log flush (Owner.started: one START record per ticket per batch, an increment per job).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpoolError, invalidArg } from '../errors.js';
import type { WireError } from '../store/events.js';
import type { JobMeta } from '../store/job-table.js';
import { backoffDelay, type BackoffStrategy } from '../queue/backoff.js';
import type { WorkerPort } from '../queue/desk.js';
import { Job } from '../queue/job.js';
import type { Clock, ClockTimer } from '../queue/clock.js';
import { INTERNAL_CLOCK, INTERNAL_FS, WORKER_KEYS, intIn, resolveQueueOptions, validateQueueName, type BackoffOptions, type QueueOptions } from '../queue/options.js';
import type { Owner, StartTally } from '../queue/owner.js';
import { acquireOwner, releaseOwner } from '../queue/registry.js';
import type { TicketContent, TicketJob } from '../queue/tickets.js';
import { toWire } from './error-wire.js';
import { InlineRunner, PoolRunner, type Processor, type ProcessorMap, type Runner } from './runners.js';
import { ThreadPool, type RunHooks, type RunOutcome } from './thread-pool.js';

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

/** How much work, in ms of measured run time per slot, the worker may claim beyond its free slots. */
const LOOKAHEAD_MS = 4;
const MAX_LOOKAHEAD = 256;

const NO_HOOKS: RunHooks = { onProgress: () => undefined, onLog: () => undefined };

/** The keep-alive timer's period: it only holds the process, so as long as a timer may be. */
const KEEP_ALIVE_MS = 2 ** 31 - 1;
const noop = (): void => undefined;

/** A claimed ticket; also its start tally for the owner (Owner.started: ticket, started, told). */
interface Held extends StartTally {
  takenName: string;
  /** Jobs of the ticket not yet settled here. */
  open: Set<string>;
  lost: boolean;
  /** How many of its jobs its claim covers (they start as it is claimed). */
  atClaim: number;
}

/**
 * A run in progress, keyed by runKey(ticket, job id): the same job can run twice in one Worker at once (its lease
 * was taken back and it was cut again to this Worker), and the two runs must not be mistaken for each other.
 */
interface Running {
  key: string;
  ticket: string;
  jobId: string;
  attempt: number;
  /** The Job handed to the processor, once built: what 'progress' events carry. */
  job: Job | undefined;
}

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
  readonly #ownerP: Promise<Owner>;
  #owner: Owner | undefined;
  readonly #runner: Runner;
  readonly #strategies: Record<string, BackoffStrategy> | undefined;
  readonly #closeTimeoutMs: number;
  /** Lease renewal, close timeouts, job timeouts and finish times (clock.ts); the owner's (registry.ts). */
  readonly #clock: Clock;
  readonly #inbox: Array<{ ticket: string; tj: TicketJob; held: Held }> = [];
  readonly #running = new Map<string, Running>();
  readonly #held = new Map<string, Held>();
  readonly #port: WorkerPort;
  #renewTimer: ClockTimer | undefined;
  /** The one ref'd handle of a running Worker (header: Lifecycle): set by run(), cleared when close() ends. */
  #keepAlive: NodeJS.Timeout | undefined;
  #started = false;
  /** run()'s start: open, load, attach. */
  #starting: Promise<void> | undefined;
  /** Why the Worker could not start or go on (header: Failure to start); set once. */
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;
  #idleWaiters: Array<() => void> = [];
  readonly #pendingEvents = new Set<Promise<unknown>>();
  /** Moving average of a job's run time in ms (processor start to outcome); undefined until one has run. */
  #avgRunMs: number | undefined;
  /** The outcomes whose events wait for the same durability promise (#afterDurable). */
  #batch: { done: Promise<unknown>; then: Array<() => void> } | undefined;

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
    this.#strategies = opts.settings?.backoffStrategies;
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
    this.#port = { id: this.id, want: 0, free: 0, inFlight: 0, offer: (n, c) => this.#onOffer(n, c) };
    const { key, owner } = acquireOwner(this.name, resolved);
    this.#key = key;
    this.#ownerP = owner.then((o) => {
      this.#owner = o;
      o.on('drained', this.#onDrained);
      o.on('progress', this.#onProgress);
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
    let owner: Owner;
    try {
      // Both before the first claim: a module that cannot load must not spend an attempt of any job.
      [owner] = await Promise.all([this.#ownerP, this.#runner.load()]);
    } catch (err) {
      if (this.#closing && !this.#failure) return; // closed while starting: the pool's ERR_CLOSED is no failure
      this.#fail(err as Error);
      throw this.#failure;
    }
    if (this.#closing) return;
    owner.attach(this.#port);
    const leaseMs = owner.opts.leaseMs;
    this.#renewTimer = this.#clock.setInterval(() => this.#renew(), Math.max(10, Math.floor(leaseMs / 3)));
    this.#renewTimer.unref();
    this.emit('ready');
    this.#pump();
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

  /** Asks for as much work as there are free slots, and starts what is in hand. */
  #pump(): void {
    const owner = this.#owner;
    if (!owner || this.#closing) return;
    while (this.#inbox.length > 0 && this.#running.size < this.#runner.capacity) {
      const { ticket, tj, held } = this.#inbox.shift()!;
      // Past the claimed prefix a start must be told (header: Lookahead); counted before the processor is called.
      if (++held.started > held.atClaim && !held.told) owner.started(held);
      this.#start(owner, ticket, tj);
    }
    const lookahead = this.#lookahead();
    const free = this.#runner.capacity - this.#running.size - this.#inbox.length - this.#port.inFlight;
    const want = free + lookahead;
    // A free slot with nothing to start and nothing on the way asks at once; otherwise ask in chunks, so that
    // tickets carry many jobs. The desk hands out the lookahead only when the queue is busy (desk.ts).
    this.#port.free = Math.max(0, free);
    this.#port.want = want > 0 && (free > 0 || want >= Math.ceil(lookahead / 2)) ? want : 0;
    if (this.#port.want > 0) owner.desk.dispatch();
  }

  /** Jobs to claim beyond the free slots (header: Lookahead). */
  #lookahead(): number {
    const avg = this.#avgRunMs;
    if (avg === undefined) return 0;
    const perSlot = Math.floor(LOOKAHEAD_MS / Math.max(avg, 0.001));
    return Math.min(MAX_LOOKAHEAD, perSlot * this.#runner.capacity);
  }

  #onOffer(name: string, content: TicketContent): void {
    const owner = this.#owner;
    if (!owner) return;
    let takenName: string | undefined;
    try {
      takenName = owner.desk.files.claim(name, this.id);
    } catch (err) {
      // The rename failed (ERR_IO): the ticket is still in ready/, unclaimed, and nothing of it ran. The desk takes
      // back a ticket left there for leaseMs and releases its jobs with nothing counted: they are claimable again.
      this.#emitError(err as Error);
      return this.#pump();
    }
    if (takenName === undefined) return this.#pump(); // somebody else claimed it
    owner.desk.claimed(content.ticket, takenName);
    if (this.#closing) {
      // A ticket cut before close() began that arrives after it handed back its inbox: hand these back too,
      // unstarted, so no attempt counts (left in the inbox they would sit there until the lease expired and stall).
      for (const tj of content.jobs) owner.release(content.ticket, tj.id, tj.attempt)?.catch((err: Error) => this.#emitError(err));
      return;
    }
    const held: Held = {
      ticket: content.ticket, takenName, open: new Set(content.jobs.map((j) => j.id)), lost: false,
      started: 0, atClaim: content.atClaim, told: false,
    };
    this.#held.set(content.ticket, held);
    for (const tj of content.jobs) this.#inbox.push({ ticket: content.ticket, tj, held });
    this.#pump();
  }

  #start(owner: Owner, ticket: string, tj: TicketJob): void {
    const key = runKey(ticket, tj.id);
    const running: Running = { key, ticket, jobId: tj.id, attempt: tj.attempt, job: undefined };
    this.#running.set(key, running);
    void this.#process(owner, ticket, tj, key, running).then(this.#ended);
  }

  /** After #process, in a later microtask: one handler for every run, no closure per job. */
  readonly #ended = (running: Running): void => {
    this.#running.delete(running.key);
    this.#settleLocal(running.ticket, running.jobId);
    if (this.#running.size === 0) for (const fn of this.#idleWaiters.splice(0)) fn();
    this.#pump();
  };

  /** Runs one job and reports its outcome. Never rejects (an error is emitted); resolves with its `running`. */
  async #process(owner: Owner, ticket: string, tj: TicketJob, key: string, running: Running): Promise<Running> {
    try {
      const meta = owner.table.jobs.get(tj.id);
      if (!meta || meta.state !== 'active' || meta.ticket !== ticket) return running;
      let data: DataType;
      try {
        data = (owner.addWritten(meta) ? owner.readDataNow(meta) : await owner.readData(meta)) as DataType;
      } catch (err) {
        // Its record cannot be read (quarantined as damaged, its key missing…): fail the attempt with the reason,
        // rather than leave the job active until its lease expires and then stall it, again and again.
        this.#report(owner, ticket, tj, meta, Job.forRun<DataType>(owner, meta, undefined as DataType), { kind: 'failed', error: err as Error });
        return running;
      }
      const job = Job.forRun<DataType>(owner, meta, data);
      running.job = job as Job;
      this.emit('active', job, 'waiting');
      const t0 = performance.now();
      // Progress and log lines from a thread come back through these hooks; an inline processor calls the owner
      // itself (job.updateProgress()), so it gets none.
      const hooks: RunHooks = this.#runner instanceof InlineRunner ? NO_HOOKS : {
        onProgress: (p) => {
          job.progress = p;
          void owner.progress(job.id, p).catch((err: Error) => this.#emitError(err)); // 'progress' via #onProgress
        },
        onLog: (line) => void owner.log(job.id, line).catch((err: Error) => this.#emitError(err)),
        onRestart: () => void this.emit('stalled', job.id, 'active'),
      };
      // The token is the ticket's id (header): a string already in hand.
      const outcome = await this.#runner.run(job as Job, ticket, key, meta.opts.timeout, hooks);
      const ran = performance.now() - t0;
      this.#avgRunMs = this.#avgRunMs === undefined ? ran : this.#avgRunMs * 0.9 + ran * 0.1;
      if (this.#held.get(ticket)?.lost) return running; // the lease was taken back: the owner has already moved on
      if (this.#failure !== undefined && outcome.kind === 'failed' && (outcome.error as { code?: unknown }).code === 'ERR_PROCESSOR_LOAD') {
        // The pool failed for good under it (header: Failure to start): the job never ran, hand it back unspent.
        this.#settleLocal(ticket, tj.id);
        await owner.release(ticket, tj.id, tj.attempt);
        return running;
      }
      this.#report(owner, ticket, tj, meta, job, outcome);
    } catch (err) {
      this.#emitError(err as Error);
    }
    return running;
  }

  /** Logs the outcome, synchronously. */
  #report(owner: Owner, ticket: string, tj: TicketJob, meta: JobMeta, job: Job<DataType>, outcome: RunOutcome): void {
    // The outcome goes to the owner below, synchronously, and settles the job at its desk, which recycles the
    // ticket's file once every job of it is settled. Settle it here first: renewing that lease while the outcome
    // is made durable would find the file gone and report a spurious stall (and abort the ticket's other jobs).
    this.#settleLocal(ticket, tj.id);
    let resultJson: string | undefined;
    if (outcome.kind === 'completed') {
      // A result the log cannot hold fails the attempt here; thrown from Owner.finish it would leave the job
      // active until its lease expired, and then stall it under a misleading reason.
      const checked = checkResult(outcome.result ?? null, owner.opts.maxDataBytes);
      if (checked instanceof SpoolError) outcome = { kind: 'failed', error: checked };
      else resultJson = checked;
    }
    if (outcome.kind === 'completed') {
      const done = owner.finish(ticket, tj.id, tj.attempt, { kind: 'completed', result: outcome.result ?? null, resultJson });
      if (!done) return;
      job.returnvalue = outcome.result;
      job.attemptsMade = tj.attempt;
      job.finishedOn = this.#clock.now();
      // The slot frees as soon as the outcome is in the log (returning here); the event waits for durability.
      // Freeing it only after the fsync would make the next job's ACTIVE wait for a second one: at concurrency 1
      // in fsync mode that costs about a third of the throughput (benchmarks/results/peers-profile.md).
      this.#afterDurable(done, () => this.emit('completed', job, outcome.result, 'active'));
      return;
    }
    const err = outcome.error;
    job.failedReason = err.message;
    job.attemptsMade = tj.attempt;
    const code = (err as { code?: unknown }).code;
    if (outcome.kind === 'crashed' && code === 'ERR_CLOSED') {
      // Cut off or never started because the pool closed: hand it back, no attempt counted.
      if (owner.release(ticket, tj.id, tj.attempt)) return;
    }
    if (outcome.kind === 'interrupted') {
      // Its thread was terminated for a neighbour's fault (thread-pool.ts): a victim, retried with nothing counted.
      if (owner.release(ticket, tj.id, tj.attempt, `interrupted: ${err.message}`)) this.emit('stalled', tj.id, 'active');
      return;
    }
    // Anything else is a failure of the attempt, retried per its backoff: a processor that threw, a timeout
    // (also one it ignored until its thread was terminated), an abort it did not survive, a thread crash that the
    // pool traced to this job (it crashed its thread alone: as BullMQ fails a sandboxed job whose process exits).
    const unrecoverable = err.name === 'UnrecoverableError' || (err as { unrecoverable?: boolean }).unrecoverable === true;
    let retryDelay: number | undefined;
    // As BullMQ: the backoff (and a custom strategy) is consulted only when an attempt is left to retry with.
    if (!unrecoverable && tj.attempt < (meta.opts.attempts ?? 1)) {
      const backoff = meta.opts.backoff as BackoffOptions | undefined;
      if (backoff && backoff.type !== 'fixed' && backoff.type !== 'exponential' && !this.#strategies?.[backoff.type]) {
        this.#emitError(invalidArg(`job ${job.id} asks for backoff strategy '${backoff.type}', which this worker does not have (settings.backoffStrategies); retrying at once`));
      }
      try {
        retryDelay = backoffDelay(backoff, tj.attempt, err, { id: job.id, name: job.name, data: job.data }, this.#strategies);
      } catch (strategyErr) {
        this.#emitError(strategyErr as Error);
        retryDelay = undefined;
      }
    }
    const wire: WireError = toWire(err);
    const done = owner.finish(ticket, tj.id, tj.attempt, { kind: 'failed', error: wire, retryDelay });
    if (!done) return;
    this.#afterDurable(done, () => this.emit('failed', job, err, 'active'));
  }

  /**
   * Runs `then` once `done` is durable; close() waits for these, so no event fires after it resolves. Outcomes
   * logged in one batch share their `done` (Owner.finish), and so share one chain here: callbacks run in order.
   */
  #afterDurable(done: Promise<unknown>, then: () => void): void {
    if (this.#batch?.done === done) {
      this.#batch.then.push(then);
      return;
    }
    const batch = { done, then: [then] };
    this.#batch = batch;
    const p = done.then(
      () => {
        for (const fn of batch.then) fn();
      },
      (err: Error) => this.#emitError(err),
    );
    this.#pendingEvents.add(p);
    void p.finally(() => {
      this.#pendingEvents.delete(p);
      if (this.#batch === batch) this.#batch = undefined;
    });
  }


  #settleLocal(ticket: string, id: string): void {
    const held = this.#held.get(ticket);
    if (!held) return;
    held.open.delete(id);
    if (held.open.size === 0) this.#held.delete(ticket);
  }

  /** Renews every lease held; a lease found gone aborts its ticket's running jobs. */
  #renew(): void {
    const owner = this.#owner;
    if (!owner) return;
    for (const [ticket, held] of this.#held) {
      if (held.lost) continue;
      let ok: boolean;
      try {
        ok = owner.desk.files.renew(held.takenName, this.#clock.now());
      } catch (err) {
        this.#emitError(err as Error);
        continue;
      }
      if (ok) continue;
      held.lost = true;
      const reason = new SpoolError('ERR_LEASE_LOST', `the lease on ticket ${ticket} was taken back`);
      for (const [key, r] of this.#running) if (r.ticket === ticket) this.#runner.abort(key, reason);
      for (let i = this.#inbox.length - 1; i >= 0; i--) if (this.#inbox[i]!.ticket === ticket) this.#inbox.splice(i, 1);
      for (const id of held.open) this.emit('stalled', id, 'active');
    }
  }

  /**
   * Progress of a job this worker runs, however it was reported: job.updateProgress() in an inline processor goes
   * straight to the owner, a thread's report comes through the pool's hook; both end in the owner's event.
   */
  #onProgress = ({ jobId, data }: { jobId: string; data: unknown }): void => {
    const ticket = this.#owner?.table.jobs.get(jobId)?.ticket;
    const job = ticket !== undefined ? this.#running.get(runKey(ticket, jobId))?.job : undefined;
    if (job) this.emit('progress', job, data);
  };

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
    if (this.#pendingEvents.size === 0) this.emit('drained');
    else void Promise.all(this.#pendingEvents).then(() => this.emit('drained'));
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
      this.#port.want = 0;
      this.#clock.clearInterval(this.#renewTimer);
      const owner = await this.#ownerP.catch(() => undefined);
      if (owner) {
        owner.detach(this.#port);
        owner.off('drained', this.#onDrained);
        const released: Array<Promise<unknown> | undefined> = [];
        for (const { ticket, tj } of this.#inbox.splice(0)) {
          released.push(owner.release(ticket, tj.id, tj.attempt));
          this.#settleLocal(ticket, tj.id);
        }
        await Promise.all(released);
        if (this.#running.size > 0 && !force) {
          // Keep leases alive while jobs finish.
          const clock = this.#clock;
          const renew = clock.setInterval(() => this.#renew(), Math.max(10, Math.floor(owner.opts.leaseMs / 3)));
          let timer: ClockTimer | undefined;
          const deadline = new Promise<void>((r) => {
            timer = clock.setTimeout(r, this.#closeTimeoutMs);
            timer.unref();
          });
          await Promise.race([new Promise<void>((r) => this.#idleWaiters.push(r)), deadline]);
          clock.clearTimeout(timer);
          clock.clearInterval(renew);
        }
        const reason = new SpoolError('ERR_LEASE_LOST', 'the worker is closing');
        for (const [key, r] of [...this.#running]) {
          this.#runner.abort(key, reason);
          await owner.release(r.ticket, r.jobId, r.attempt);
        }
      }
      owner?.off('progress', this.#onProgress);
      owner?.off('error', this.#onOwnerError);
      await this.#runner.close(0);
      await Promise.all(this.#pendingEvents);
      await releaseOwner(this.#key);
      this.emit('closed');
    })().finally(() => clearInterval(this.#keepAlive)); // last, whatever happened: the process may exit from here
    return this.#closing;
  }
}

/**
 * A job's result as the JSON the log stores, or why it cannot be stored: it must be JSON within maxDataBytes, like
 * job data. A value JSON drops (a function, a symbol) is stored as null, as it would be inside an object.
 */
function checkResult(result: unknown, maxBytes: number): string | SpoolError {
  let json: string;
  try {
    json = JSON.stringify(result) ?? 'null';
  } catch (cause) {
    return new SpoolError('ERR_INVALID_ARG', `the job's result is not serializable as JSON: ${(cause as Error).message}`, { cause });
  }
  // Bytes are at most 3 per UTF-16 unit: count them only when the string could be over the limit.
  const bytes = json.length * 3 <= maxBytes ? json.length : Buffer.byteLength(json);
  if (bytes > maxBytes) return new SpoolError('ERR_TOO_LARGE', `the job's result of ${bytes} bytes is over maxDataBytes (${maxBytes})`);
  return json;
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

/** The key of one run of a job: its ticket and its id. */
function runKey(ticket: string, jobId: string): string {
  return `${ticket}\u0000${jobId}`;
}
