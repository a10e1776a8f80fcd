/**
 * Job: a job as users see it, BullMQ-shaped. A snapshot of the job's fields when it was read, plus methods that
 * act through the owner (progress, log lines, removal, retry). Data, results and stack traces live in the log
 * and are read when the Job is built.
 *
 * A job in a dead-letter queue (job option deadLetter) arrives with the attemptsMade, failedReason and stacktrace
 * it had when it failed for good in the queue it came from, and `origin` says which queue and id that was (read
 * from its ADD record, so set by load(): getJob, getJobs; a processor's Job does not have it).
 *
 * A damaged record (ERR_CORRUPT_RECORD: it fails its checksum, or was quarantined) does not stop a listing: the
 * Job is built from what the table knows (id, name, options, state, times, failedReason), the part that record
 * held is left empty (data undefined, returnvalue undefined, stacktrace []), and `unreadable` holds the error.
 * Only reading the data itself, a worker running the job, fails with ERR_CORRUPT_RECORD.
 */
import { SpoolError } from '../errors.js';
import { REC, type CompleteEvent, type FailEvent, type StoredJobOpts } from '../store/events.js';
import type { JobMeta, JobState } from '../store/job-table.js';
import type { JobsOptions } from './options.js';
import type { Owner } from './owner.js';

export type PublicJobState = JobState | 'paused' | 'unknown';

export class Job<DataType = unknown, ReturnType = unknown> {
  readonly id: string;
  readonly name: string;
  readonly data: DataType;
  readonly opts: JobsOptions;
  readonly queueName: string;
  readonly timestamp: number;
  attemptsMade: number;
  progress: unknown;
  returnvalue: ReturnType | undefined;
  failedReason: string | undefined;
  stacktrace: string[];
  processedOn: number | undefined;
  finishedOn: number | undefined;
  /** For a dead letter: the queue it failed in and its id there (what a redrive sends it back to). */
  origin: { queue: string; jobId: string } | undefined;
  /**
   * Set when a record of this job could not be read because it is damaged (ERR_CORRUPT_RECORD): its message says
   * which (the data, the return value or the failure). What that record held is left empty. Undefined otherwise.
   */
  unreadable: SpoolError | undefined;
  readonly #owner: Owner;
  readonly #logsWhenRead: number;

  private constructor(owner: Owner, meta: JobMeta, data: DataType) {
    this.#owner = owner;
    this.#logsWhenRead = meta.logPtrs?.length ?? 0;
    this.id = meta.id;
    this.name = meta.name;
    this.data = data;
    this.opts = publicOpts(meta.opts, meta.numericId === undefined ? meta.id : undefined);
    this.queueName = owner.name;
    this.timestamp = meta.timestamp;
    this.attemptsMade = meta.attemptsMade;
    this.progress = meta.progress;
    this.returnvalue = undefined;
    this.failedReason = meta.failedReason;
    this.stacktrace = [];
    this.processedOn = meta.processedOn || undefined;
    this.finishedOn = meta.finishedOn || undefined;
    this.origin = undefined;
    this.unreadable = undefined;
  }

  /** Builds a Job from the table entry, reading its data (and result or failure) from the log; see the header on damage. */
  static async load<D, R>(owner: Owner, meta: JobMeta): Promise<Job<D, R>> {
    let unreadable: SpoolError | undefined;
    const damaged = (what: string) => (err: unknown): undefined => {
      if (!(err instanceof SpoolError) || err.code !== 'ERR_CORRUPT_RECORD') throw err;
      unreadable ??= new SpoolError('ERR_CORRUPT_RECORD', `job ${meta.id}: its ${what} cannot be read: ${err.message}`, { cause: err });
      return undefined;
    };
    const add = await owner.readAdd(meta).catch(damaged('data'));
    const job = new Job<D, R>(owner, meta, add?.d as D);
    if (add?.dl) {
      job.origin = { queue: add.dl.q, jobId: add.dl.id };
      if (add.dl.e.stack && meta.failedReason !== undefined) job.stacktrace = [add.dl.e.stack]; // not once retried
    }
    if (meta.resultPtr) {
      const complete = await owner.readEvent<CompleteEvent>(() => meta.resultPtr!).catch(damaged('return value'));
      job.returnvalue = complete?.rv as R | undefined;
    }
    if (meta.failPtr && meta.failPtr.seq) {
      const fail = await owner.readEvent<FailEvent>(() => meta.failPtr!).catch(damaged('failure record'));
      if (fail?.e?.stack) job.stacktrace = [fail.e.stack];
    }
    job.unreadable = unreadable;
    return job;
  }

  /** For a job handed to a processor: built from what the worker already read. */
  static forRun<D>(owner: Owner, meta: JobMeta, data: D): Job<D> {
    return new Job<D>(owner, meta, data);
  }

  async getState(): Promise<PublicJobState> {
    const meta = this.#owner.table.jobs.get(this.id);
    if (!meta) return 'unknown';
    if (meta.state === 'waiting' && this.#owner.table.paused) return 'paused';
    return meta.state;
  }

  /** Records progress (a number or an object) and emits 'progress'. */
  async updateProgress(progress: number | object): Promise<void> {
    if (typeof progress !== 'number' && (typeof progress !== 'object' || progress === null)) {
      throw new SpoolError('ERR_INVALID_ARG', 'progress must be a number or an object');
    }
    this.progress = progress;
    await this.#owner.progress(this.id, progress);
  }

  /** Adds a line to the job's log; resolves with the number of lines. */
  async log(line: string): Promise<number> {
    if (typeof line !== 'string') throw new SpoolError('ERR_INVALID_ARG', 'a log line must be a string');
    await this.#owner.log(this.id, line);
    return this.logCount;
  }

  /** Lines in the job's log when this Job was read (a thread's job.log() counts up from it); no table lookup. */
  get logCountWhenRead(): number {
    return this.#logsWhenRead;
  }

  /** Lines in the job's log now (what log() resolves with). */
  get logCount(): number {
    return this.#owner.table.jobs.get(this.id)?.logPtrs?.length ?? 0;
  }

  /** The job's log lines, oldest first. */
  async getLogs(): Promise<string[]> {
    const meta = this.#owner.table.jobs.get(this.id);
    const lines: string[] = [];
    for (let i = 0; i < (meta?.logPtrs?.length ?? 0); i++) {
      lines.push((await this.#owner.readEvent<{ l: string }>(() => meta!.logPtrs![i]!)).l);
    }
    return lines;
  }

  /** Removes the job. ERR_JOB_ACTIVE while it is being processed. */
  async remove(): Promise<void> {
    const meta = this.#owner.table.jobs.get(this.id);
    if (!meta) return;
    if (meta.state === 'active') throw new SpoolError('ERR_JOB_ACTIVE', `job ${this.id} is being processed`);
    await this.#owner.removeJobs([this.id]).done;
  }

  /** Sends a failed (or completed) job back to waiting with its attempts reset. */
  async retry(): Promise<void> {
    const meta = this.#owner.table.jobs.get(this.id);
    if (!meta || (meta.state !== 'failed' && meta.state !== 'completed')) {
      throw new SpoolError('ERR_INVALID_ARG', `job ${this.id} is not failed or completed`);
    }
    const { job, done } = this.#owner.record(REC.RETRY, { id: this.id, ts: this.#owner.clock.now() });
    if (job) this.#owner.jobAdded(job, done);
    await done;
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id, name: this.name, data: this.data, opts: this.opts, progress: this.progress,
      attemptsMade: this.attemptsMade, returnvalue: this.returnvalue, failedReason: this.failedReason,
      stacktrace: this.stacktrace, timestamp: this.timestamp, processedOn: this.processedOn, finishedOn: this.finishedOn,
      ...(this.origin ? { origin: this.origin } : {}),
      ...(this.unreadable ? { unreadable: this.unreadable.message } : {}),
    };
  }
}

/** The options as BullMQ shows them; `customId` is the job's id when it is not a generated one. */
function publicOpts(o: StoredJobOpts, customId: string | undefined): JobsOptions {
  const out: JobsOptions = { ...(o as JobsOptions), attempts: o.attempts ?? 1, priority: o.priority ?? 0, delay: o.delay ?? 0 };
  if (o.jobId === undefined && customId !== undefined) out.jobId = customId;
  return out;
}
