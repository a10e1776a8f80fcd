/**
 * Queue: the public facade for adding and managing jobs, with BullMQ's names and meanings where they fit.
 * Validates everything at the boundary (options.ts), encodes job data once (its JSON, checked against
 * maxDataBytes), then delegates to the queue's backend (backend.ts): in this process, the LocalBackend of the
 * process's Owner of the queue directory (owner/registry.ts), which every Queue and Worker on it shares.
 *
 * Differences from BullMQ are listed in the README (no connection; a directory; priority 0 first;
 * removeOnComplete ages in seconds as BullMQ; no 'prioritized' or 'waiting-children' states).
 */
import { EventEmitter } from 'node:events';
import { SpoolError, invalidArg } from '../errors.js';
import { JOB_STATES, type JobState } from '../store/job-table.js';
import { Job } from './job.js';
import { resolveDefaultJobOptions, resolveJobOptions, resolveQueueOptions, validateQueueName, type JobDefaults, type JobsOptions, type QueueOptions, type ResolvedQueueOptions } from './options.js';
import type { AddRequest, JobFields, JobRecord, JobType, QueueBackend, OwnerEventMap as OwnerEvents } from './backend.js';
import { acquireBackend, releaseOwner } from './owner/registry.js';

export type { JobType };

/**
 * A Queue's events and their arguments: the owner's events (OwnerEventMap, backend.ts), forwarded as they are, with
 * the job's result typed as the Queue's ResultType. Each job event has one argument, `{ jobId, … }`.
 */
export type QueueEventMap<ResultType = unknown> = {
  [E in keyof OwnerEvents]: E extends 'completed' ? [{ jobId: string; returnvalue: ResultType }] : OwnerEvents[E];
};

type QueueListener<R, E extends keyof QueueEventMap<R>> = (...args: QueueEventMap<R>[E]) => void;

/** Typed listeners: a misspelled event name, or a listener that takes the wrong arguments, does not compile. */
export interface Queue<DataType = unknown, ResultType = unknown> {
  on<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
  once<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
  off<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
  addListener<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
  removeListener<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
  prependListener<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
  prependOnceListener<E extends keyof QueueEventMap<ResultType>>(event: E, listener: QueueListener<ResultType, E>): this;
}

const FORWARDED = ['waiting', 'delayed', 'active', 'progress', 'completed', 'failed', 'stalled', 'removed', 'paused', 'resumed', 'drained', 'error'] as const;

export class Queue<DataType = unknown, ResultType = unknown> extends EventEmitter {
  readonly name: string;
  readonly opts: ResolvedQueueOptions;
  /** The Queue's defaultJobOptions as given (frozen), {} without any. */
  readonly defaultJobOptions: Readonly<JobsOptions>;
  /** The defaults resolved once; undefined without any, so that add() pays nothing for them. */
  readonly #defaults: JobDefaults | undefined;
  readonly #key: string;
  readonly #backend: Promise<QueueBackend>;
  /** The backend once open, so that add() does not pay an await for it on every call. */
  #opened: QueueBackend | undefined;
  #closing: Promise<void> | undefined;
  readonly #listeners: Array<[keyof OwnerEvents, (...a: unknown[]) => void]> = [];

  constructor(name: string, opts: QueueOptions) {
    super();
    this.name = validateQueueName(name);
    this.opts = resolveQueueOptions(opts);
    this.#defaults = resolveDefaultJobOptions(opts.defaultJobOptions);
    if (this.#defaults?.stored.deadLetter === this.name) throw invalidArg(`defaultJobOptions.deadLetter is this queue (${this.name})`);
    this.defaultJobOptions = this.#defaults?.given ?? Object.freeze({});
    const { key, backend } = acquireBackend(this.name, this.opts);
    this.#key = key;
    this.#backend = backend.then((b) => {
      this.#opened = b;
      // An owner's event is forwarded only once this Queue has a listener for it: the owner emits several per
      // job, and forwarding each to nobody costs measurably at tens of thousands of jobs a second. 'error' is
      // always taken, so an owner's error never goes unhandled because of this Queue.
      for (const ev of FORWARDED) if (ev === 'error' || this.listenerCount(ev) > 0) this.#forward(b, ev);
      (this as EventEmitter).on('newListener', (ev: string | symbol) => {
        if (this.#opened && (FORWARDED as readonly (string | symbol)[]).includes(ev)) this.#forward(this.#opened, ev as keyof OwnerEvents);
      });
      return b;
    });
    this.#backend.catch(() => undefined); // surfaced by the first call that awaits it
  }

  #forward(b: QueueBackend, ev: keyof OwnerEvents): void {
    if (this.#listeners.some(([e]) => e === ev)) return;
    const fn = (...args: unknown[]): void => {
      if (ev === 'error' && this.listenerCount('error') === 0) return;
      (this as EventEmitter).emit(ev, ...args);
    };
    b.on(ev, fn as never);
    this.#listeners.push([ev, fn]);
  }

  /** Resolves once the queue is open (its directory locked and recovered). */
  async waitUntilReady(): Promise<void> {
    await this.#ready();
  }

  async #ready(): Promise<QueueBackend> {
    if (this.#closing) throw new SpoolError('ERR_CLOSED', `queue ${this.name} is closed`);
    return this.#backend;
  }

  /** The Job of a job just added: a long-lived builder handed to the backend (no closure per job). */
  readonly #added = (fields: JobFields, req: AddRequest): Job<DataType, ResultType> =>
    Job.forRun(this.#opened!, fields, req.data) as Job<DataType, ResultType>;

  #fromRecord(b: QueueBackend, rec: JobRecord): Job<DataType, ResultType> {
    return Job.fromRecord<DataType, ResultType>(b, rec);
  }

  /** Adds a job. With an existing jobId, resolves with the existing job and writes nothing. */
  add(name: string, data: DataType, opts?: JobsOptions): Promise<Job<DataType, ResultType>> {
    let req: AddRequest;
    try {
      req = this.#request({ name, data, opts });
    } catch (err) {
      return Promise.reject(err);
    }
    // The common case, one job with a generated id, on an open queue: one call, whose promise is the one this
    // returns (backend.ts: the in-process add costs what it did before the seam: an async command and its await).
    if (this.#opened !== undefined && !this.#closing && req.o.jobId === undefined) return this.#opened.add(req, this.#added);
    return this.#addSlowly(req);
  }

  async #addSlowly(req: AddRequest): Promise<Job<DataType, ResultType>> {
    const b = await this.#ready();
    if (req.o.jobId === undefined) return b.add(req, this.#added);
    const [job] = await this.#appendBulk(b, [req]);
    return job!;
  }

  /** Adds jobs together: all are validated first (one bad job adds none), then written in one group commit. */
  async addBulk(jobs: Array<{ name: string; data: DataType; opts?: JobsOptions }>): Promise<Array<Job<DataType, ResultType>>> {
    if (!Array.isArray(jobs)) throw invalidArg('addBulk takes an array of { name, data, opts }');
    const names = new Map<string, string>();
    const reqs = jobs.map((j) => this.#request(j, names));
    const b = await this.#ready();
    return this.#appendBulk(b, reqs);
  }

  async #appendBulk(b: QueueBackend, reqs: AddRequest[]): Promise<Array<Job<DataType, ResultType>>> {
    const { added, others } = await b.addBulk(reqs);
    const out = new Array<Job<DataType, ResultType>>(reqs.length);
    for (let i = 0, k = 0; i < reqs.length; i++) {
      if (others?.[i] === undefined) out[i] = Job.forRun(b, added[k++]!, reqs[i]!.data) as Job<DataType, ResultType>;
    }
    if (others) {
      for (let i = 0; i < reqs.length; i++) {
        const o = others[i];
        if (o === undefined) continue;
        // A repeated id: the same Job object as the first of its id in this batch.
        out[i] = typeof o === 'number' ? out[o]! : this.#fromRecord(b, o);
      }
    }
    return out;
  }

  /**
   * A job as the backend takes it: checked, its options resolved, its data's JSON made and checked
   * (ERR_INVALID_ARG when the data is not JSON, ERR_TOO_LARGE when over maxDataBytes). The job name's JSON is made
   * once per batch (`names`).
   */
  #request(j: { name: string; data: unknown; opts?: JobsOptions }, names?: Map<string, string>): AddRequest {
    if (!j || typeof j !== 'object') throw invalidArg('each job must be { name, data, opts }');
    if (typeof j.name !== 'string' || j.name.length > 1024) throw invalidArg('a job name must be a string of at most 1024 characters');
    if (typeof j.data === 'function' || typeof j.data === 'symbol') throw invalidArg('job data must be serializable as JSON');
    // Without defaults this is what it always was; with them, a job that gives no options shares their one frozen
    // resolved object, and only a job that gives some pays for a merge (options.ts, resolveJobOptions).
    const o = resolveJobOptions(j.opts, this.#defaults);
    // A job moved to its own queue would be added back under another id, and that queue would hold its own owner
    // open: refused (a property read; most jobs have no deadLetter).
    if (o.deadLetter === this.name) throw invalidArg(`deadLetter is this queue (${this.name}); name another queue`);
    let json: string | undefined;
    let nameJson: string | undefined;
    try {
      json = JSON.stringify(j.data);
      nameJson = names?.get(j.name);
      if (nameJson === undefined) {
        nameJson = JSON.stringify(j.name);
        names?.set(j.name, nameJson);
      }
    } catch (cause) {
      throw new SpoolError('ERR_INVALID_ARG', `job data is not serializable as JSON: ${(cause as Error).message}`, { cause });
    }
    // maxDataBytes is the data's JSON in UTF-8, as documented, not the record around it (name, options, times).
    // Counting the bytes costs a pass over the string: only when its length says it could be over the limit (a
    // UTF-16 unit is at most 3 bytes of UTF-8).
    if (json !== undefined && json.length * 3 > this.opts.maxDataBytes) {
      const bytes = Buffer.byteLength(json);
      if (bytes > this.opts.maxDataBytes) {
        throw new SpoolError('ERR_TOO_LARGE', `job data of ${bytes} bytes as JSON is over maxDataBytes (${this.opts.maxDataBytes})`);
      }
    }
    return { name: j.name, data: j.data, o, json, nameJson };
  }

  async getJob(id: string): Promise<Job<DataType, ResultType> | undefined> {
    const b = await this.#ready();
    const rec = await b.getJob(String(id));
    return rec ? this.#fromRecord(b, rec) : undefined;
  }

  /**
   * Jobs in the given states. As in BullMQ, [start, end] applies to each state's list (in its order: waiting by
   * priority, delayed by run time, the others oldest first, reversed unless asc) and the slices are concatenated.
   * 'paused' lists the waiting jobs while the queue is paused, and 'waiting' lists them only while it is not.
   */
  async getJobs(types: JobType | JobType[] = [...JOB_STATES, 'paused'], start = 0, end = -1, asc = false): Promise<Array<Job<DataType, ResultType>>> {
    const b = await this.#ready();
    const list = Array.isArray(types) ? types : [types];
    statesOf(list); // ERR_INVALID_ARG for an unknown state
    const recs = await b.getJobs(list, start, end, asc);
    return recs.map((r) => this.#fromRecord(b, r));
  }

  async getJobCounts(...types: JobType[]): Promise<Record<string, number>> {
    return (await this.#ready()).getJobCounts(types);
  }

  async count(): Promise<number> {
    const c = await this.getJobCounts('waiting', 'paused', 'delayed');
    return c.waiting! + c.paused! + c.delayed!;
  }

  async pause(): Promise<void> {
    await (await this.#ready()).pause();
  }

  async resume(): Promise<void> {
    await (await this.#ready()).resume();
  }

  async isPaused(): Promise<boolean> {
    return (await this.#ready()).isPaused();
  }

  /** Removes a job; false when there was none. ERR_JOB_ACTIVE while it is being processed. */
  async remove(id: string): Promise<boolean> {
    return (await this.#ready()).remove(String(id));
  }

  /**
   * Sends every failed (or completed) job back to waiting, oldest first; with `timestamp`, only those that finished
   * before it. As in BullMQ, `count` is how many go per batch (each batch one group commit), not a limit.
   */
  async retryJobs(opts: { state?: 'failed' | 'completed'; count?: number; timestamp?: number } = {}): Promise<number> {
    const state = opts.state ?? 'failed';
    if (state !== 'failed' && state !== 'completed') throw invalidArg("retryJobs state must be 'failed' or 'completed'");
    const batch = opts.count ?? 1000;
    if (!Number.isInteger(batch) || batch < 1) throw invalidArg('retryJobs count must be an integer ≥ 1');
    const b = await this.#ready();
    return b.retryJobs(state, batch, opts.timestamp ?? Infinity);
  }

  /** Makes a delayed job ready now. ERR_INVALID_ARG when it is not delayed. */
  async promote(id: string): Promise<void> {
    await (await this.#ready()).promote(String(id));
  }

  /** Removes every waiting job (and delayed ones too with delayed = true). Active and finished jobs stay. */
  async drain(delayed = false): Promise<void> {
    await (await this.#ready()).drain(delayed);
  }

  /** Removes up to `limit` jobs of `state` older than `grace` ms (by finish time, or add time). Returns their ids. */
  async clean(grace: number, limit: number, state: JobType = 'completed'): Promise<string[]> {
    if (!Number.isFinite(grace) || grace < 0) throw invalidArg('grace must be a number of ms ≥ 0');
    if (!Number.isInteger(limit) || limit < 0) throw invalidArg('limit must be an integer ≥ 0 (0: no limit)');
    if (typeof state !== 'string') throw invalidArg('clean takes one state');
    const [target] = statesOf(state); // ERR_INVALID_ARG for an unknown state; 'paused' is 'waiting'
    return (await this.#ready()).clean(grace, limit, target!);
  }

  /** Removes every job. Refuses while jobs are active unless force. */
  async obliterate(opts: { force?: boolean } = {}): Promise<void> {
    await (await this.#ready()).obliterate(opts.force === true);
  }

  /**
   * Gives back the disk space of deleted jobs now (not in BullMQ: its storage is Redis's). The owner also does
   * this by itself as jobs are deleted; call it after removing many jobs at once, e.g. before a backup.
   */
  async compact(): Promise<{ bytesBefore: number; bytesAfter: number; segmentsRewritten: number; segmentsDeleted: number }> {
    return (await this.#ready()).compact();
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      const b = await this.#backend.catch(() => undefined);
      for (const [ev, fn] of this.#listeners) b?.off(ev, fn as never);
      await releaseOwner(this.#key);
    })();
    return this.#closing;
  }
}

function statesOf(types: JobType | JobType[]): JobState[] {
  const list = Array.isArray(types) ? types : [types];
  const out: JobState[] = [];
  for (const t of list) {
    const s = t === 'paused' ? 'waiting' : t;
    if (!JOB_STATES.includes(s)) throw invalidArg(`unknown job state '${String(t)}'`);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
