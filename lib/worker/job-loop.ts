/**
 * JobLoop: a Worker's run and report logic (worker.ts has its lifecycle: options, run, close, events). It asks the
 * owner for work through its port, claims the tickets offered by rename, starts what it holds as slots free,
 * renews the leases it holds, and reports each outcome to the owner through the queue's backend (backend.ts),
 * which is all it knows of the owner. The protocol (tickets, leases, lookahead, starts) is described in
 * worker.ts's header, which says what each step means; this file is where the steps are.
 *
 * The per-job path is #pump → #start → #process → #report: no allocation, await or syscall per job beyond what
 * each step needs (a Running entry, the Job, the processor's run, the outcome), as measured by the benchmarks.
 */
import { SpoolError, invalidArg } from '../errors.js';
import type { EventEmitter } from 'node:events';
import type { WireError } from '../store/events.js';
import { backoffDelay, type BackoffStrategy } from '../queue/backoff.js';
import { Job } from '../queue/job.js';
import type { Clock } from '../queue/clock.js';
import type { BackoffOptions } from '../queue/options.js';
import type { JobFields, StartTally, WorkerBackend, WorkerPort } from '../queue/backend.js';
import type { TicketContent, TicketJob } from '../queue/tickets.js';
import { toWire } from './error-wire.js';
import { InlineRunner, type Runner } from './runners.js';
import type { RunHooks, RunOutcome } from './thread-pool.js';

/** How much work, in ms of measured run time per slot, the worker may claim beyond its free slots. */
const LOOKAHEAD_MS = 4;
const MAX_LOOKAHEAD = 256;

const NO_HOOKS: RunHooks = { onProgress: () => undefined, onLog: () => undefined };

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

/** What the loop uses of its Worker: its events (the Worker itself), its id, and its lifecycle's state. */
export interface LoopHost {
  readonly id: string;
  /** close() has begun. */
  readonly closing: boolean;
  /** Why the Worker cannot go on (worker.ts: Failure to start), once it is so. */
  readonly failure: Error | undefined;
  /** 'error' to the listeners, or stderr (worker.ts). */
  emitError(err: Error): void;
}

export class JobLoop<DataType = unknown> {
  /** The queue's backend once open. */
  backend: WorkerBackend | undefined;
  readonly port: WorkerPort;
  readonly #host: LoopHost;
  /** The Worker: the emitter of its events. */
  readonly #events: EventEmitter;
  readonly #runner: Runner;
  readonly #strategies: Record<string, BackoffStrategy> | undefined;
  /** Lease renewal and finish times (clock.ts). */
  readonly #clock: Clock;
  readonly #inbox: Array<{ ticket: string; tj: TicketJob; held: Held }> = [];
  readonly #running = new Map<string, Running>();
  readonly #held = new Map<string, Held>();
  #idleWaiters: Array<() => void> = [];
  /** The promises of outcomes' events still waiting for durability (#afterDurable); close() waits for them. */
  readonly pendingEvents = new Set<Promise<unknown>>();
  /** Moving average of a job's run time in ms (processor start to outcome); undefined until one has run. */
  #avgRunMs: number | undefined;
  /** The outcomes whose events wait for the same durability promise (#afterDurable). */
  #batch: { done: Promise<unknown>; then: Array<() => void> } | undefined;

  constructor(host: LoopHost, events: EventEmitter, runner: Runner, clock: Clock, strategies: Record<string, BackoffStrategy> | undefined) {
    this.#host = host;
    this.#events = events;
    this.#runner = runner;
    this.#clock = clock;
    this.#strategies = strategies;
    this.port = { id: host.id, want: 0, free: 0, inFlight: 0, offer: this.onOffer };
  }

  /** Runs in progress. */
  get running(): number {
    return this.#running.size;
  }

  /** Resolves once nothing runs (close() waits for this, up to closeTimeoutMs). */
  whenIdle(): Promise<void> {
    return new Promise<void>((r) => this.#idleWaiters.push(r));
  }

  /** close(): stops asking for work and hands back, unstarted (no attempt counts), every job in hand. */
  handBackInbox(): Promise<unknown> {
    this.port.want = 0;
    const released: Array<Promise<unknown> | undefined> = [];
    const backend = this.backend!;
    for (const { ticket, tj } of this.#inbox.splice(0)) {
      released.push(backend.release(ticket, tj.id, tj.attempt));
      this.settleLocal(ticket, tj.id);
    }
    return Promise.all(released);
  }

  /** close(), past its timeout: aborts what still runs and hands it back. */
  async abortRunning(reason: Error): Promise<void> {
    for (const [key, r] of [...this.#running]) {
      this.#runner.abort(key, reason);
      await this.backend!.release(r.ticket, r.jobId, r.attempt);
    }
  }

  /** Asks for as much work as there are free slots, and starts what is in hand. */
  pump(): void {
    const owner = this.backend;
    if (!owner || this.#host.closing) return;
    while (this.#inbox.length > 0 && this.#running.size < this.#runner.capacity) {
      const { ticket, tj, held } = this.#inbox.shift()!;
      // Past the claimed prefix a start must be told (worker.ts header: Lookahead); counted before the processor
      // is called.
      if (++held.started > held.atClaim && !held.told) owner.started(held);
      this.#start(owner, ticket, tj);
    }
    const lookahead = this.#lookahead();
    const free = this.#runner.capacity - this.#running.size - this.#inbox.length - this.port.inFlight;
    const want = free + lookahead;
    // A free slot with nothing to start and nothing on the way asks at once; otherwise ask in chunks, so that
    // tickets carry many jobs. The desk hands out the lookahead only when the queue is busy (desk.ts).
    this.port.free = Math.max(0, free);
    this.port.want = want > 0 && (free > 0 || want >= Math.ceil(lookahead / 2)) ? want : 0;
    if (this.port.want > 0) owner.dispatch();
  }

  /** Jobs to claim beyond the free slots (worker.ts header: Lookahead). */
  #lookahead(): number {
    const avg = this.#avgRunMs;
    if (avg === undefined) return 0;
    const perSlot = Math.floor(LOOKAHEAD_MS / Math.max(avg, 0.001));
    return Math.min(MAX_LOOKAHEAD, perSlot * this.#runner.capacity);
  }

  readonly onOffer = (name: string, content: TicketContent): void => {
    const owner = this.backend;
    if (!owner) return;
    let takenName: string | undefined;
    try {
      takenName = owner.claim(name, this.#host.id);
    } catch (err) {
      // The rename failed (ERR_IO): the ticket is still in ready/, unclaimed, and nothing of it ran. The desk takes
      // back a ticket left there for leaseMs and releases its jobs with nothing counted: they are claimable again.
      this.#host.emitError(err as Error);
      return this.pump();
    }
    if (takenName === undefined) return this.pump(); // somebody else claimed it
    owner.claimed(content.ticket, takenName);
    if (this.#host.closing) {
      // A ticket cut before close() began that arrives after it handed back its inbox: hand these back too,
      // unstarted, so no attempt counts (left in the inbox they would sit there until the lease expired and stall).
      for (const tj of content.jobs) owner.release(content.ticket, tj.id, tj.attempt)?.catch((err: Error) => this.#host.emitError(err));
      return;
    }
    const held: Held = {
      ticket: content.ticket, takenName, open: new Set(content.jobs.map((j) => j.id)), lost: false,
      started: 0, atClaim: content.atClaim, told: false,
    };
    this.#held.set(content.ticket, held);
    for (const tj of content.jobs) this.#inbox.push({ ticket: content.ticket, tj, held });
    this.pump();
  };

  #start(owner: WorkerBackend, ticket: string, tj: TicketJob): void {
    const key = runKey(ticket, tj.id);
    const running: Running = { key, ticket, jobId: tj.id, attempt: tj.attempt, job: undefined };
    this.#running.set(key, running);
    void this.#process(owner, ticket, tj, key, running).then(this.#ended);
  }

  /** After #process, in a later microtask: one handler for every run, no closure per job. */
  readonly #ended = (running: Running): void => {
    this.#running.delete(running.key);
    this.settleLocal(running.ticket, running.jobId);
    if (this.#running.size === 0) for (const fn of this.#idleWaiters.splice(0)) fn();
    this.pump();
  };

  /** Runs one job and reports its outcome. Never rejects (an error is emitted); resolves with its `running`. */
  async #process(owner: WorkerBackend, ticket: string, tj: TicketJob, key: string, running: Running): Promise<Running> {
    try {
      const meta = owner.runnable(ticket, tj);
      if (!meta) return running;
      let data: DataType;
      try {
        data = (owner.dataWritten(meta, tj) ? owner.readDataNow(meta, tj) : await owner.readData(meta, tj)) as DataType;
      } catch (err) {
        // Its record cannot be read (quarantined as damaged, its key missing…): fail the attempt with the reason,
        // rather than leave the job active until its lease expires and then stall it, again and again.
        this.#report(owner, ticket, tj, meta, Job.forRun<DataType>(owner, meta, undefined as DataType), { kind: 'failed', error: err as Error });
        return running;
      }
      const job = Job.forRun<DataType>(owner, meta, data);
      running.job = job as Job;
      this.#events.emit('active', job, 'waiting');
      const t0 = performance.now();
      // Progress and log lines from a thread come back through these hooks; an inline processor calls the owner
      // itself (job.updateProgress()), so it gets none.
      const hooks: RunHooks = this.#runner instanceof InlineRunner ? NO_HOOKS : {
        onProgress: (p) => {
          job.progress = p;
          void owner.updateProgress(job.id, p).catch((err: Error) => this.#host.emitError(err)); // 'progress' via #onProgress
        },
        onLog: (line) => void owner.log(job.id, line).catch((err: Error) => this.#host.emitError(err)),
        onRestart: () => void this.#events.emit('stalled', job.id, 'active'),
      };
      // The token is the ticket's id (worker.ts header): a string already in hand.
      const outcome = await this.#runner.run(job as Job, ticket, key, meta.opts.timeout, hooks);
      const ran = performance.now() - t0;
      this.#avgRunMs = this.#avgRunMs === undefined ? ran : this.#avgRunMs * 0.9 + ran * 0.1;
      if (this.#held.get(ticket)?.lost) return running; // the lease was taken back: the owner has already moved on
      if (this.#host.failure !== undefined && outcome.kind === 'failed' && (outcome.error as { code?: unknown }).code === 'ERR_PROCESSOR_LOAD') {
        // The pool failed for good under it (worker.ts header: Failure to start): the job never ran, hand it back
        // unspent.
        this.settleLocal(ticket, tj.id);
        await owner.release(ticket, tj.id, tj.attempt);
        return running;
      }
      this.#report(owner, ticket, tj, meta, job, outcome);
    } catch (err) {
      this.#host.emitError(err as Error);
    }
    return running;
  }

  /** Logs the outcome, synchronously. */
  #report(owner: WorkerBackend, ticket: string, tj: TicketJob, meta: JobFields, job: Job<DataType>, outcome: RunOutcome): void {
    // The outcome goes to the owner below, synchronously, and settles the job at its desk, which recycles the
    // ticket's file once every job of it is settled. Settle it here first: renewing that lease while the outcome
    // is made durable would find the file gone and report a spurious stall (and abort the ticket's other jobs).
    this.settleLocal(ticket, tj.id);
    let resultJson: string | undefined;
    if (outcome.kind === 'completed') {
      // A result the log cannot hold fails the attempt here; thrown from Owner.finish it would leave the job
      // active until its lease expired, and then stall it under a misleading reason.
      const checked = checkResult(outcome.result ?? null, owner.maxDataBytes);
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
      this.#afterDurable(done, () => this.#events.emit('completed', job, outcome.result, 'active'));
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
      if (owner.release(ticket, tj.id, tj.attempt, `interrupted: ${err.message}`)) this.#events.emit('stalled', tj.id, 'active');
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
        this.#host.emitError(invalidArg(`job ${job.id} asks for backoff strategy '${backoff.type}', which this worker does not have (settings.backoffStrategies); retrying at once`));
      }
      try {
        retryDelay = backoffDelay(backoff, tj.attempt, err, { id: job.id, name: job.name, data: job.data }, this.#strategies);
      } catch (strategyErr) {
        this.#host.emitError(strategyErr as Error);
        retryDelay = undefined;
      }
    }
    const wire: WireError = toWire(err);
    const done = owner.finish(ticket, tj.id, tj.attempt, { kind: 'failed', error: wire, retryDelay });
    if (!done) return;
    this.#afterDurable(done, () => this.#events.emit('failed', job, err, 'active'));
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
      (err: Error) => this.#host.emitError(err),
    );
    this.pendingEvents.add(p);
    void p.finally(() => {
      this.pendingEvents.delete(p);
      if (this.#batch === batch) this.#batch = undefined;
    });
  }


  settleLocal(ticket: string, id: string): void {
    const held = this.#held.get(ticket);
    if (!held) return;
    held.open.delete(id);
    if (held.open.size === 0) this.#held.delete(ticket);
  }

  /** Renews every lease held; a lease found gone aborts its ticket's running jobs. */
  renew(): void {
    const owner = this.backend;
    if (!owner) return;
    for (const [ticket, held] of this.#held) {
      if (held.lost) continue;
      let ok: boolean;
      try {
        ok = owner.renew(held.takenName, this.#clock.now());
      } catch (err) {
        this.#host.emitError(err as Error);
        continue;
      }
      if (ok) continue;
      held.lost = true;
      const reason = new SpoolError('ERR_LEASE_LOST', `the lease on ticket ${ticket} was taken back`);
      for (const [key, r] of this.#running) if (r.ticket === ticket) this.#runner.abort(key, reason);
      for (let i = this.#inbox.length - 1; i >= 0; i--) if (this.#inbox[i]!.ticket === ticket) this.#inbox.splice(i, 1);
      for (const id of held.open) this.#events.emit('stalled', id, 'active');
    }
  }

  /**
   * Progress of a job this worker runs, however it was reported: job.updateProgress() in an inline processor goes
   * straight to the owner, a thread's report comes through the pool's hook; both end in the owner's event.
   */
  readonly onProgress = ({ jobId, data }: { jobId: string; data: unknown }): void => {
    const ticket = this.backend?.ticketOf(jobId);
    const job = ticket !== undefined ? this.#running.get(runKey(ticket, jobId))?.job : undefined;
    if (job) this.#events.emit('progress', job, data);
  };
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

/** The key of one run of a job: its ticket and its id. */
function runKey(ticket: string, jobId: string): string {
  return `${ticket}\u0000${jobId}`;
}
