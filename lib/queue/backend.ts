/**
 * Backend: everything Queue, Job and Worker use of a queue's owner, and nothing else (issue 10, STYLE "One command
 * path"). In the owner's process it is LocalBackend (owner/local-backend.ts), which calls the owner's command
 * functions (owner/commands.ts) directly, without serializing anything; in a client process it will be a socket
 * transport to the same commands in the owning process (queue/remote/). The facades validate public input before
 * calling in; the owner refuses only what it alone can check (an unknown job, an active one), with the same
 * SpoolError codes either way.
 *
 * Replies are plain values: job records (JobFields, JobRecord), ids, counts. A Job is built on the facade side from
 * a record. In process, a JobMeta of the owner's table is handed over as the JobFields it already is (no copy on the
 * per-job path); it is read at once, while the Job is built, and never kept.
 *
 * Every call resolves once the owner's records for it are as durable as the queue's mode promises.
 */
import type { StoredJobOpts, WireError } from '../store/events.js';
import type { JobState } from '../store/job-table.js';
import type { Clock } from './clock.js';
import type { TicketContent, TicketJob } from './tickets.js';

export type JobType = JobState | 'paused';
export type PublicJobState = JobState | 'paused' | 'unknown';

/** A job's fields as the owner's table has them: what a Job is built from (a JobMeta is one). */
export interface JobFields {
  readonly id: string;
  readonly name: string;
  readonly opts: StoredJobOpts;
  /** The id as a number when it is a generated (canonical integer) id, else undefined. */
  readonly numericId: number | undefined;
  readonly timestamp: number;
  readonly attemptsMade: number;
  readonly progress: unknown;
  readonly failedReason: string | undefined;
  /** 0 when not yet. */
  readonly processedOn: number;
  readonly finishedOn: number;
  /** Lines in the job's log. */
  readonly logCount: number;
}

/** A whole job as getJob and getJobs reply it: its fields and what the log holds of it. */
export interface JobRecord extends JobFields {
  readonly data: unknown;
  readonly returnvalue: unknown;
  readonly stacktrace: string[];
  readonly origin: { queue: string; jobId: string } | undefined;
  /** Why a record of the job could not be read (ERR_CORRUPT_RECORD, job.ts); undefined when all could. */
  readonly unreadable: { code: string; message: string } | undefined;
}

/**
 * One job to add, resolved and encoded by the facade (Queue): its options, and its data and name already as JSON
 * (checked against maxDataBytes there). `data` is the value itself, for the Job the facade builds; a transport
 * sends `json` instead.
 */
export interface AddRequest {
  readonly name: string;
  readonly data: unknown;
  readonly o: StoredJobOpts;
  /** JSON.stringify(data); undefined when JSON has no text for it. */
  readonly json: string | undefined;
  /** JSON.stringify(name). */
  readonly nameJson: string;
}

/**
 * addBulk's reply, in request order: `added[k]` is the fields of the k-th job added (jobs with an id that exists, or
 * repeats one earlier in the batch, add nothing); `others[i]`, for request i that added nothing, is the existing
 * job's record, or the index of the earlier request with its id. `others` is left out when every job was added.
 */
export interface AddBulkReply {
  readonly added: JobFields[];
  readonly others: Array<JobRecord | number | undefined> | undefined;
}

/** The queue-level events (OwnerEvents in owner/owner.ts): one argument each, `{ jobId, … }`. */
export interface OwnerEventMap {
  waiting: [{ jobId: string }];
  delayed: [{ jobId: string; delay: number }];
  active: [{ jobId: string }];
  progress: [{ jobId: string; data: unknown }];
  completed: [{ jobId: string; returnvalue: unknown }];
  failed: [{ jobId: string; failedReason: string; final: boolean }];
  stalled: [{ jobId: string }];
  removed: [{ jobId: string }];
  paused: [];
  resumed: [];
  drained: [];
  error: [Error];
}

export type OwnerEventName = keyof OwnerEventMap;

/** The owner's queue-level events, as a Queue forwards them and a Worker listens to some. */
export interface EventSource {
  on<E extends OwnerEventName>(event: E, listener: (...args: OwnerEventMap[E]) => void): void;
  off<E extends OwnerEventName>(event: E, listener: (...args: OwnerEventMap[E]) => void): void;
}

/** What a Job uses. */
export interface JobBackend {
  readonly queueName: string;
  getState(id: string): Promise<PublicJobState>;
  updateProgress(id: string, progress: unknown): Promise<void>;
  /** Appends a line; resolves with the number of lines then. */
  log(id: string, line: string): Promise<number>;
  /** Lines in the job's log as far as this process knows now (in process: the table's). */
  logCount(id: string): number;
  getLogs(id: string): Promise<string[]>;
  removeJob(id: string): Promise<void>;
  retryJob(id: string): Promise<void>;
}

/** What a Queue uses (and, for its Jobs, a JobBackend). */
export interface QueueBackend extends JobBackend, EventSource {
  /**
   * Adds one job (AddRequest) and resolves with `reply(fields, req)` once it is durable. `reply` is the facade's
   * long-lived builder of its Job (no closure per job): the in-process add costs what it did before the seam.
   */
  add<R>(req: AddRequest, reply: (fields: JobFields, req: AddRequest) => R): Promise<R>;
  addBulk(reqs: AddRequest[]): Promise<AddBulkReply>;
  getJob(id: string): Promise<JobRecord | undefined>;
  getJobs(types: JobType[], start: number, end: number, asc: boolean): Promise<JobRecord[]>;
  getJobCounts(types: JobType[]): Promise<Record<string, number>>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  isPaused(): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  promote(id: string): Promise<void>;
  retryJobs(state: 'failed' | 'completed', batch: number, before: number): Promise<number>;
  drain(delayed: boolean): Promise<void>;
  clean(grace: number, limit: number, state: JobState): Promise<string[]>;
  obliterate(force: boolean): Promise<void>;
  compact(): Promise<{ bytesBefore: number; bytesAfter: number; segmentsRewritten: number; segmentsDeleted: number }>;
}

/** A worker as the owner's desk sees it (owner/desk.ts): how much work it wants, and where to offer tickets. */
export interface WorkerPort {
  readonly id: string;
  /** How many more jobs it would take now, lookahead included. The desk lowers it as it cuts tickets for it. */
  want: number;
  /** How many of those it could start at once (free slots with nothing to start). The desk lowers it too. */
  free: number;
  /** Jobs cut for it whose ticket has not been offered yet (its ACTIVE record is not durable yet). The desk keeps it. */
  inFlight: number;
  /** A ticket cut for this worker, already in tickets/ready: claim it by rename (tickets.ts). */
  offer(name: string, content: TicketContent): void;
}

/** How far a worker has got into one ticket (header: Starts, owner/starts.ts). */
export interface StartTally {
  readonly ticket: string;
  /** Jobs of the ticket started so far (a prefix: they start in ticket order). */
  started: number;
  /** Told to the owner since its last flush; the owner clears it. */
  told: boolean;
}

export type Outcome =
  /** `resultJson`, when given, is JSON.stringify(result) already made (the worker checks the result's size). */
  | { kind: 'completed'; result: unknown; resultJson?: string }
  | { kind: 'failed'; error: WireError; retryDelay: number | undefined };

/**
 * What a Worker uses. Claims and renewals are file operations the worker does itself (tickets.ts); the rest are
 * reports to the owner. finish and release resolve once durable, or return undefined when the attempt no longer
 * holds (its lease was taken back, the job removed): the outcome is then ignored, never logged.
 */
export interface WorkerBackend extends JobBackend, EventSource {
  readonly clock: Clock;
  readonly leaseMs: number;
  readonly maxDataBytes: number;
  attach(port: WorkerPort): void;
  detach(port: WorkerPort): void;
  /** The port wants work: cut tickets for it now if jobs are ready. */
  dispatch(): void;
  /** Renames ready/<name> into taken/ (tickets.ts): the taken name, or undefined when another claimant won. */
  claim(name: string, workerId: string): string | undefined;
  /** Tells the owner the ticket is claimed: taken/<takenName> is its lease from now on. */
  claimed(ticket: string, takenName: string): void;
  /** Renews a lease (tickets.ts): false when the owner has taken it back. */
  renew(takenName: string, now: number): boolean;
  /** The job's fields when attempt `tj` is still active in `ticket` (what to run), else undefined. */
  runnable(ticket: string, tj: TicketJob): JobFields | undefined;
  /**
   * The job's data, read from its ADD record in the segments; `job` is what runnable() gave for `tj`. dataWritten
   * says whether readDataNow can read it at once (almost always): the per-job path then awaits nothing.
   */
  dataWritten(job: JobFields, tj: TicketJob): boolean;
  readDataNow(job: JobFields, tj: TicketJob): unknown;
  readData(job: JobFields, tj: TicketJob): Promise<unknown>;
  /** The ticket that holds the job's current attempt, if it is active. */
  ticketOf(id: string): string | undefined;
  finish(ticket: string, id: string, attempt: number, outcome: Outcome): Promise<unknown> | undefined;
  release(ticket: string, id: string, attempt: number, why?: string): Promise<unknown> | undefined;
  /** The start tally of a ticket, once per flush (Starts): the owner reads it before its next log flush. */
  started(tally: StartTally): void;
}
