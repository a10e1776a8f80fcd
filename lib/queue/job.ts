/**
 * Job: a job as users see it, BullMQ-shaped. A snapshot of the job's fields when it was read, plus methods that
 * act through the queue's backend (backend.ts: progress, log lines, removal, retry). Data, results and stack traces live in the log
 * and are read when the Job is built: the owner replies a JobRecord (owner/commands.ts), or, for a job just added or
 * handed to a processor, its fields (a JobFields) beside the data already in hand.
 *
 * A job in a dead-letter queue (job option deadLetter) arrives with the attemptsMade, failedReason and stacktrace
 * it had when it failed for good in the queue it came from, and `origin` says which queue and id that was (read
 * from its ADD record, so set by fromRecord(): getJob, getJobs; a processor's Job does not have it).
 *
 * A damaged record (ERR_CORRUPT_RECORD: it fails its checksum, or was quarantined) does not stop a listing: the
 * Job is built from what the table knows (id, name, options, state, times, failedReason), the part that record
 * held is left empty (data undefined, returnvalue undefined, stacktrace []), and `unreadable` holds the error.
 * Only reading the data itself, a worker running the job, fails with ERR_CORRUPT_RECORD.
 */
import { SpoolError, type SpoolErrorCode } from '../errors.js';
import type { StoredJobOpts } from '../store/events.js';
import type { JobBackend, JobFields, JobRecord, PublicJobState } from './backend.js';
import type { JobsOptions } from './options.js';

export type { PublicJobState };

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
  readonly #backend: JobBackend;
  readonly #logsWhenRead: number;

  private constructor(backend: JobBackend, fields: JobFields, data: DataType) {
    this.#backend = backend;
    this.#logsWhenRead = fields.logCount;
    this.id = fields.id;
    this.name = fields.name;
    this.data = data;
    this.opts = publicOpts(fields.opts, fields.numericId === undefined ? fields.id : undefined);
    this.queueName = backend.queueName;
    this.timestamp = fields.timestamp;
    this.attemptsMade = fields.attemptsMade;
    this.progress = fields.progress;
    this.returnvalue = undefined;
    this.failedReason = fields.failedReason;
    this.stacktrace = [];
    this.processedOn = fields.processedOn || undefined;
    this.finishedOn = fields.finishedOn || undefined;
    this.origin = undefined;
    this.unreadable = undefined;
  }

  /** Builds a Job from the owner's record of it (getJob, getJobs); see the header on damage. */
  static fromRecord<D, R>(backend: JobBackend, rec: JobRecord): Job<D, R> {
    const job = new Job<D, R>(backend, rec, rec.data as D);
    job.origin = rec.origin;
    job.returnvalue = rec.returnvalue as R | undefined;
    job.stacktrace = rec.stacktrace;
    job.unreadable = rec.unreadable ? new SpoolError(rec.unreadable.code as SpoolErrorCode, rec.unreadable.message) : undefined;
    return job;
  }

  /** For a job just added or handed to a processor: its fields and the data already in hand. */
  static forRun<D>(backend: JobBackend, fields: JobFields, data: D): Job<D> {
    return new Job<D>(backend, fields, data);
  }

  async getState(): Promise<PublicJobState> {
    return this.#backend.getState(this.id);
  }

  /** Records progress (a number or an object) and emits 'progress'. */
  async updateProgress(progress: number | object): Promise<void> {
    if (typeof progress !== 'number' && (typeof progress !== 'object' || progress === null)) {
      throw new SpoolError('ERR_INVALID_ARG', 'progress must be a number or an object');
    }
    this.progress = progress;
    await this.#backend.updateProgress(this.id, progress);
  }

  /** Adds a line to the job's log; resolves with the number of lines. */
  async log(line: string): Promise<number> {
    if (typeof line !== 'string') throw new SpoolError('ERR_INVALID_ARG', 'a log line must be a string');
    return this.#backend.log(this.id, line);
  }

  /** Lines in the job's log when this Job was read (a thread's job.log() counts up from it); no table lookup. */
  get logCountWhenRead(): number {
    return this.#logsWhenRead;
  }

  /** Lines in the job's log now (what log() resolves with). */
  get logCount(): number {
    return this.#backend.logCount(this.id);
  }

  /** The job's log lines, oldest first. */
  async getLogs(): Promise<string[]> {
    return this.#backend.getLogs(this.id);
  }

  /** Removes the job. ERR_JOB_ACTIVE while it is being processed. */
  async remove(): Promise<void> {
    await this.#backend.removeJob(this.id);
  }

  /** Sends a failed (or completed) job back to waiting with its attempts reset. */
  async retry(): Promise<void> {
    await this.#backend.retryJob(this.id);
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
