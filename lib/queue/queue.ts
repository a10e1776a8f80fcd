/**
 * Queue: the public facade for adding and managing jobs, with BullMQ's names and meanings where they fit.
 * Validates everything at the boundary (options.ts), then delegates to the process's Owner of the queue
 * directory (registry.ts), which every Queue and Worker on that directory in this process shares.
 *
 * Differences from BullMQ are listed in the README (no connection; a directory; priority 0 first;
 * removeOnComplete ages in seconds as BullMQ; no 'prioritized' or 'waiting-children' states).
 */
import { EventEmitter } from 'node:events';
import { SpoolError, invalidArg } from '../errors.js';
import { REC, encodeAdd, type AddEvent, type StoredJobOpts } from '../store/events.js';
import { JOB_STATES, JobMeta, type JobState } from '../store/job-table.js';
import { Job } from './job.js';
import { NO_JOB_OPTS, resolveDefaultJobOptions, resolveJobOptions, resolveQueueOptions, validateQueueName, type JobDefaults, type JobsOptions, type QueueOptions, type ResolvedQueueOptions } from './options.js';
import type { Owner, OwnerEvents } from './owner.js';
import type { Payload } from '../codec/record-codec.js';
import { acquireOwner, releaseOwner } from './registry.js';

export type JobType = JobState | 'paused';

/**
 * A Queue's events and their arguments: the owner's events (OwnerEvents, owner.ts), forwarded as they are, with
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
  readonly #owner: Promise<Owner>;
  /** The owner once open, so that add() does not pay an await for it on every call. */
  #opened: Owner | undefined;
  #closing: Promise<void> | undefined;
  readonly #listeners: Array<[keyof OwnerEvents, (...a: unknown[]) => void]> = [];

  constructor(name: string, opts: QueueOptions) {
    super();
    this.name = validateQueueName(name);
    this.opts = resolveQueueOptions(opts);
    this.#defaults = resolveDefaultJobOptions(opts.defaultJobOptions);
    if (this.#defaults?.stored.deadLetter === this.name) throw invalidArg(`defaultJobOptions.deadLetter is this queue (${this.name})`);
    this.defaultJobOptions = this.#defaults?.given ?? Object.freeze({});
    const { key, owner } = acquireOwner(this.name, this.opts);
    this.#key = key;
    this.#owner = owner.then((o) => {
      this.#opened = o;
      // An owner's event is forwarded only once this Queue has a listener for it: the owner emits several per
      // job, and forwarding each to nobody costs measurably at tens of thousands of jobs a second. 'error' is
      // always taken, so an owner's error never goes unhandled because of this Queue.
      for (const ev of FORWARDED) if (ev === 'error' || this.listenerCount(ev) > 0) this.#forward(o, ev);
      (this as EventEmitter).on('newListener', (ev: string | symbol) => {
        if (this.#opened && (FORWARDED as readonly (string | symbol)[]).includes(ev)) this.#forward(this.#opened, ev as keyof OwnerEvents);
      });
      return o;
    });
    this.#owner.catch(() => undefined); // surfaced by the first call that awaits it
  }

  #forward(o: Owner, ev: keyof OwnerEvents): void {
    if (this.#listeners.some(([e]) => e === ev)) return;
    const fn = (...args: unknown[]): void => {
      if (ev === 'error' && this.listenerCount('error') === 0) return;
      (this as EventEmitter).emit(ev, ...args);
    };
    o.on(ev, fn as never);
    this.#listeners.push([ev, fn]);
  }

  /** Resolves once the queue is open (its directory locked and recovered). */
  async waitUntilReady(): Promise<void> {
    await this.#ready();
  }

  async #ready(): Promise<Owner> {
    if (this.#closing) throw new SpoolError('ERR_CLOSED', `queue ${this.name} is closed`);
    return this.#owner;
  }

  /** Adds a job. With an existing jobId, resolves with the existing job and writes nothing. */
  async add(name: string, data: DataType, opts?: JobsOptions): Promise<Job<DataType, ResultType>> {
    const prepared = this.#prepareOne({ name, data, opts });
    const owner = this.#opened !== undefined && !this.#closing ? this.#opened : await this.#ready();
    if (prepared.o.jobId !== undefined) {
      const [job] = await this.#append(owner, [prepared]);
      return job!;
    }
    // The common case, one job with a generated id: #append's plan without its batch bookkeeping (a Map of ids
    // seen, plan entries, Promise.all), which cost more than the append itself (benchmarks/README.md, queue-add).
    // The same steps in the same order: the id is the seq the record gets, and nothing is awaited in between.
    const ev: AddEvent = { id: String(owner.nextSeq), n: prepared.name, d: prepared.data, o: prepared.o, ts: owner.clock.now() };
    const { job, done } = owner.record(REC.ADD, ev, this.#encode(ev, true));
    owner.jobAdded(job!, done);
    await done;
    return Job.forRun(owner, owner.table.jobs.get(ev.id) ?? synthetic(ev), data) as Job<DataType, ResultType>;
  }

  /** Adds jobs together: all are validated first (one bad job adds none), then written in one group commit. */
  async addBulk(jobs: Array<{ name: string; data: DataType; opts?: JobsOptions }>): Promise<Array<Job<DataType, ResultType>>> {
    if (!Array.isArray(jobs)) throw invalidArg('addBulk takes an array of { name, data, opts }');
    const prepared = this.#prepare(jobs);
    const owner = await this.#ready();
    return this.#append(owner, prepared);
  }

  #prepare(jobs: Array<{ name: string; data: unknown; opts?: JobsOptions }>): Prepared[] {
    return jobs.map((j) => this.#prepareOne(j));
  }

  #prepareOne(j: { name: string; data: unknown; opts?: JobsOptions }): Prepared {
    if (!j || typeof j !== 'object') throw invalidArg('each job must be { name, data, opts }');
    if (typeof j.name !== 'string' || j.name.length > 1024) throw invalidArg('a job name must be a string of at most 1024 characters');
    if (typeof j.data === 'function' || typeof j.data === 'symbol') throw invalidArg('job data must be serializable as JSON');
    // Without defaults this is what it always was; with them, a job that gives no options shares their one frozen
    // resolved object, and only a job that gives some pays for a merge (options.ts, resolveJobOptions).
    const o = resolveJobOptions(j.opts, this.#defaults);
    // A job moved to its own queue would be added back under another id, and that queue would hold its own owner
    // open: refused (a property read; most jobs have no deadLetter).
    if (o.deadLetter === this.name) throw invalidArg(`deadLetter is this queue (${this.name}); name another queue`);
    return { name: j.name, data: j.data, o };
  }

  /**
   * The ADD payload (encodeAdd, store/events.ts): ERR_INVALID_ARG when the data is not JSON, ERR_TOO_LARGE when
   * over maxDataBytes. The job name's JSON is made once per batch (`names`).
   */
  #encode(ev: AddEvent, generatedId: boolean, names?: Map<string, string>): Payload {
    let payload: Payload;
    let data: string | undefined;
    try {
      data = JSON.stringify(ev.d);
      if (data === undefined) {
        payload = encodeAdd(ev, data); // no data: JSON leaves the key out
      } else {
        let name = names?.get(ev.n);
        if (name === undefined) {
          name = JSON.stringify(ev.n);
          names?.set(ev.n, name);
        }
        const id = generatedId ? `"${ev.id}"` : JSON.stringify(ev.id); // a generated id is digits only
        payload = encodeAdd(ev, data, name, id, ev.o === NO_JOB_OPTS ? '{}' : JSON.stringify(ev.o));
      }
    } catch (cause) {
      throw new SpoolError('ERR_INVALID_ARG', `job data is not serializable as JSON: ${(cause as Error).message}`, { cause });
    }
    // maxDataBytes is the data's JSON in UTF-8, as documented, not the record around it (name, options, times).
    // Counting the bytes costs a pass over the string: only when its length says it could be over the limit (a
    // UTF-16 unit is at most 3 bytes of UTF-8).
    if (data !== undefined && data.length * 3 > this.opts.maxDataBytes) {
      const bytes = Buffer.byteLength(data);
      if (bytes > this.opts.maxDataBytes) {
        throw new SpoolError('ERR_TOO_LARGE', `job data of ${bytes} bytes as JSON is over maxDataBytes (${this.opts.maxDataBytes})`);
      }
    }
    return payload;
  }

  async #append(owner: Owner, jobs: Prepared[]): Promise<Array<Job<DataType, ResultType>>> {
    // Plan first, append after: ids are fixed (a generated id is the seq its ADD record will get, known because
    // nothing else is appended until the loop below is done), every payload is encoded once and checked, and a
    // bad job stops the whole batch before anything is written.
    const ts = owner.clock.now();
    const start = owner.nextSeq;
    const plan: Array<{ existing?: JobMeta; sameAs?: number; ev?: AddEvent; payload?: Payload }> = [];
    const seen = new Map<string, number>();
    const names = new Map<string, string>();
    let appended = 0;
    for (const j of jobs) {
      const custom = j.o.jobId;
      if (custom !== undefined) {
        const existing = owner.table.jobs.get(custom);
        if (existing) {
          plan.push({ existing });
          continue;
        }
        const first = seen.get(custom);
        if (first !== undefined) {
          plan.push({ sameAs: first });
          continue;
        }
        seen.set(custom, plan.length);
      }
      const ev: AddEvent = { id: custom ?? String(start + appended), n: j.name, d: j.data, o: withoutJobId(j.o), ts };
      appended++;
      plan.push({ ev, payload: this.#encode(ev, custom === undefined, names) });
    }
    if (owner.nextSeq !== start) throw new Error('the log moved while a batch was planned'); // planning never awaits
    const added: JobMeta[] = [];
    let last: Promise<unknown> = Promise.resolve();
    for (let i = 0, left = appended; i < plan.length; i++) {
      const p = plan[i]!;
      if (!p.ev) continue;
      if (--left > 0) {
        added.push(owner.recordUntracked(REC.ADD, p.ev, p.payload)!);
        continue;
      }
      // Group commit settles records in log order: the last one's promise settles after all the others.
      const { job, done } = owner.record(REC.ADD, p.ev, p.payload);
      last = done;
      added.push(job!);
    }
    owner.jobsAdded(added, last);
    await last;
    // The metas of `added` in plan order; one that was removed meanwhile (removeOnComplete) keeps its last state.
    const out: Array<Job<DataType, ResultType> | Promise<Job<DataType, ResultType>>> = new Array(plan.length);
    let loads = false;
    for (let i = 0, k = 0; i < plan.length; i++) {
      const p = plan[i]!;
      if (p.ev) out[i] = Job.forRun(owner, added[k++]!, p.ev.d as DataType) as Job<DataType, ResultType>;
    }
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i]!;
      if (p.ev) continue;
      if (p.existing) {
        out[i] = Job.load<DataType, ResultType>(owner, p.existing);
        loads = true;
      } else {
        out[i] = out[p.sameAs!]!; // the same Job object as the first of its id in this batch
      }
    }
    return loads ? Promise.all(out) : (out as Array<Job<DataType, ResultType>>);
  }

  async getJob(id: string): Promise<Job<DataType, ResultType> | undefined> {
    const owner = await this.#ready();
    const meta = owner.table.jobs.get(String(id));
    return meta ? Job.load<DataType, ResultType>(owner, meta) : undefined;
  }

  /** Jobs in the given states, each state's list in its order (waiting by priority), newest first unless asc. */
  /**
   * Jobs in the given states. As in BullMQ, [start, end] applies to each state's list (in its order: waiting by
   * priority, delayed by run time, the others oldest first, reversed unless asc) and the slices are concatenated.
   * 'paused' lists the waiting jobs while the queue is paused, and 'waiting' lists them only while it is not.
   */
  async getJobs(types: JobType | JobType[] = [...JOB_STATES, 'paused'], start = 0, end = -1, asc = false): Promise<Array<Job<DataType, ResultType>>> {
    const owner = await this.#ready();
    const list = Array.isArray(types) ? types : [types];
    statesOf(list); // ERR_INVALID_ARG for an unknown state
    const metas: JobMeta[] = [];
    const seen = new Set<JobType>();
    for (const t of list) {
      if (seen.has(t)) continue;
      seen.add(t);
      if ((t === 'paused') !== owner.table.paused && (t === 'paused' || t === 'waiting')) continue;
      const ordered = orderedState(owner, t === 'paused' ? 'waiting' : t);
      if (!asc) ordered.reverse();
      metas.push(...ordered.slice(start, end < 0 ? undefined : end + 1));
    }
    return Promise.all(metas.map((m) => Job.load<DataType, ResultType>(owner, m)));
  }

  async getJobCounts(...types: JobType[]): Promise<Record<string, number>> {
    const owner = await this.#ready();
    const t = owner.table;
    const all: Record<string, number> = {
      waiting: t.paused ? 0 : t.count('waiting'),
      paused: t.paused ? t.count('waiting') : 0,
      delayed: t.count('delayed'),
      active: t.count('active'),
      completed: t.count('completed'),
      failed: t.count('failed'),
    };
    if (types.length === 0) return all;
    return Object.fromEntries(types.map((k) => [k, all[k] ?? 0]));
  }

  async count(): Promise<number> {
    const c = await this.getJobCounts('waiting', 'paused', 'delayed');
    return c.waiting! + c.paused! + c.delayed!;
  }

  async pause(): Promise<void> {
    const owner = await this.#ready();
    if (owner.table.paused) return;
    const { done } = owner.record(REC.PAUSE, {});
    owner.emit('paused');
    await done;
  }

  async resume(): Promise<void> {
    const owner = await this.#ready();
    if (!owner.table.paused) return;
    const { done } = owner.record(REC.RESUME, {});
    owner.emit('resumed');
    owner.desk.dispatch();
    await done;
  }

  async isPaused(): Promise<boolean> {
    return (await this.#ready()).table.paused;
  }

  /** Removes a job; false when there was none. ERR_JOB_ACTIVE while it is being processed. */
  async remove(id: string): Promise<boolean> {
    const owner = await this.#ready();
    const meta = owner.table.jobs.get(String(id));
    if (!meta) return false;
    if (meta.state === 'active') throw new SpoolError('ERR_JOB_ACTIVE', `job ${id} is being processed`);
    await owner.removeJobs([meta.id]).done;
    return true;
  }

  /** Sends failed (or completed) jobs back to waiting, oldest first, at most `count`. */
  /**
   * Sends every failed (or completed) job back to waiting, oldest first; with `timestamp`, only those that finished
   * before it. As in BullMQ, `count` is how many go per batch (each batch one group commit), not a limit.
   */
  async retryJobs(opts: { state?: 'failed' | 'completed'; count?: number; timestamp?: number } = {}): Promise<number> {
    const state = opts.state ?? 'failed';
    if (state !== 'failed' && state !== 'completed') throw invalidArg("retryJobs state must be 'failed' or 'completed'");
    const batch = opts.count ?? 1000;
    if (!Number.isInteger(batch) || batch < 1) throw invalidArg('retryJobs count must be an integer ≥ 1');
    const owner = await this.#ready();
    const before = opts.timestamp ?? Infinity;
    const ids = [...owner.table.byState[state]].filter((j) => j.finishedOn < before).map((j) => j.id);
    for (let i = 0; i < ids.length; i += batch) {
      const ts = owner.clock.now();
      let done: Promise<unknown> = Promise.resolve();
      for (const id of ids.slice(i, i + batch)) {
        const r = owner.record(REC.RETRY, { id, ts });
        done = r.done;
        if (r.job) owner.jobAdded(r.job, r.done);
      }
      await done;
    }
    return ids.length;
  }

  /** Makes a delayed job ready now. ERR_INVALID_ARG when it is not delayed. */
  async promote(id: string): Promise<void> {
    const owner = await this.#ready();
    const meta = owner.table.jobs.get(String(id));
    if (!meta || meta.state !== 'delayed') throw invalidArg(`job ${id} is not delayed`);
    const { job, done } = owner.record(REC.PROMOTE, { id: meta.id });
    if (job) owner.jobAdded(job, done);
    await done;
  }

  /** Removes every waiting job (and delayed ones too with delayed = true). Active and finished jobs stay. */
  async drain(delayed = false): Promise<void> {
    const owner = await this.#ready();
    const ids = [...owner.table.jobsIn('waiting')].map((j) => j.id);
    if (delayed) ids.push(...[...owner.table.jobsIn('delayed')].map((j) => j.id));
    await owner.removeJobs(ids).done;
  }

  /** Removes up to `limit` jobs of `state` older than `grace` ms (by finish time, or add time). Returns their ids. */
  async clean(grace: number, limit: number, state: JobType = 'completed'): Promise<string[]> {
    if (!Number.isFinite(grace) || grace < 0) throw invalidArg('grace must be a number of ms ≥ 0');
    if (!Number.isInteger(limit) || limit < 0) throw invalidArg('limit must be an integer ≥ 0 (0: no limit)');
    if (typeof state !== 'string') throw invalidArg('clean takes one state');
    const [target] = statesOf(state); // ERR_INVALID_ARG for an unknown state; 'paused' is 'waiting'
    const owner = await this.#ready();
    const cutoff = owner.clock.now() - grace;
    const ids: string[] = [];
    for (const job of orderedState(owner, target!)) {
      if (limit > 0 && ids.length >= limit) break;
      if ((job.finishedOn || job.timestamp) <= cutoff && job.state !== 'active') ids.push(job.id);
    }
    await owner.removeJobs(ids).done;
    return ids;
  }

  /** Removes every job. Refuses while jobs are active unless force. */
  async obliterate(opts: { force?: boolean } = {}): Promise<void> {
    const owner = await this.#ready();
    if (owner.table.count('active') > 0 && !opts.force) {
      throw new SpoolError('ERR_JOB_ACTIVE', `queue ${this.name} has active jobs; pass { force: true }`);
    }
    const { done } = owner.removeJobs([...owner.table.jobs.keys()]);
    // removeJobs skips active jobs; with force they go too. Their workers' outcomes then find no job and are
    // ignored (Owner.finish), and their tickets are recycled when the leases lapse.
    const active = [...owner.table.byState.active].map((j) => j.id);
    if (active.length > 0) {
      await owner.record(REC.REMOVE, { ids: active }).done;
      for (const id of active) owner.emit('removed', { jobId: id });
    }
    await done;
    if (owner.table.paused) await owner.record(REC.RESUME, {}).done;
  }

  /**
   * Gives back the disk space of deleted jobs now (not in BullMQ: its storage is Redis's). The owner also does
   * this by itself as jobs are deleted; call it after removing many jobs at once, e.g. before a backup.
   */
  async compact(): Promise<{ bytesBefore: number; bytesAfter: number; segmentsRewritten: number; segmentsDeleted: number }> {
    const owner = await this.#ready();
    const r = await owner.compact();
    if (!r) throw new SpoolError('ERR_IO', `compaction of queue ${this.name} failed (see the 'error' event)`);
    return { bytesBefore: r.bytesBefore, bytesAfter: r.bytesAfter, segmentsRewritten: r.rewritten.length, segmentsDeleted: r.deleted.length };
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      const owner = await this.#owner.catch(() => undefined);
      for (const [ev, fn] of this.#listeners) owner?.off(ev, fn as never);
      await releaseOwner(this.#key);
    })();
    return this.#closing;
  }
}

/** A job that is already gone again (removeOnComplete ran before add() resolved): its fields as added. */
function synthetic(ev: AddEvent): JobMeta {
  return new JobMeta(ev.id, ev.n, ev.o, 'completed', 0, 0, ev.ts, { seq: 0, segmentId: 0, offset: 0, size: 0 });
}

interface Prepared {
  name: string;
  data: unknown;
  o: StoredJobOpts;
}

function withoutJobId(o: StoredJobOpts): StoredJobOpts {
  if (o.jobId === undefined) return o;
  const { jobId: _omit, ...rest } = o;
  return rest;
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

/** A state's jobs in their natural order: waiting by priority then order, delayed by run time, others as kept. */
function orderedState(owner: Owner, state: JobState): JobMeta[] {
  const list = [...owner.table.jobsIn(state)];
  if (state === 'waiting') list.sort((a, b) => a.priority - b.priority || a.order - b.order);
  else if (state === 'delayed') list.sort((a, b) => a.runAt - b.runAt || a.order - b.order);
  return list;
}
