/**
 * The job table: the fold of a queue's log into its jobs and their indexes. Synchronous, in memory, no I/O and
 * no clock: everything it knows comes from records (events.ts), so replaying the same log always gives the same
 * table, and the owner applies each record here at the moment it appends it, in the same order.
 *
 * Owns: the table (id → JobMeta), the ready heap (priority, then order added), the delayed heap (run time, then
 * order), and per-state sets in insertion order (so completed and failed list oldest first). Job data is NOT
 * here: each job points at its ADD record, and results and failures point at theirs (DESIGN §3), so memory grows
 * with the number of live jobs, not their size.
 *
 * A delayed job whose time has come stays 'delayed' in the table until the scheduler calls promoteDue(now): the
 * clock is the scheduler's, never the fold's.
 */
import type { RecordPointer } from '../log/writer.js';
import { LazyHeap, type HeapItem } from './heap.js';
import {
  REC,
  type ActiveEvent,
  type AddEvent,
  type CompleteEvent,
  type FailEvent,
  type StallEvent,
  type StoredJobOpts,
} from './events.js';

export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';
export const JOB_STATES: readonly JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed'];

export interface JobMeta extends HeapItem {
  id: string;
  name: string;
  opts: StoredJobOpts;
  state: JobState;
  priority: number;
  /** Seq of the record that last made the job wait (its ADD, or a RETRY): FIFO order among equal priorities. */
  order: number;
  /** When a delayed job becomes ready (ms since the epoch); 0 when not delayed. */
  runAt: number;
  attemptsMade: number;
  stalls: number;
  timestamp: number;
  processedOn: number;
  finishedOn: number;
  progress: unknown;
  /** The ADD record: name, data, options. */
  ptr: RecordPointer;
  resultPtr: RecordPointer | undefined;
  failedReason: string | undefined;
  failPtr: RecordPointer | undefined;
  /** The ticket holding the job while active. */
  ticket: string | undefined;
  logPtrs: RecordPointer[] | undefined;
}

export class JobTable {
  readonly jobs = new Map<string, JobMeta>();
  readonly ready = new LazyHeap<JobMeta>((j) => j.priority, (j) => j.order);
  readonly delayed = new LazyHeap<JobMeta>((j) => j.runAt, (j) => j.order);
  readonly byState: Record<JobState, Set<JobMeta>> = {
    waiting: new Set(),
    delayed: new Set(),
    active: new Set(),
    completed: new Set(),
    failed: new Set(),
  };
  paused = false;
  /** Identical option objects are shared between jobs (addBulk gives thousands the same options). */
  readonly #interned = new Map<string, StoredJobOpts>();

  /**
   * Folds one record. Returns the job it changed (for events), or undefined when it changed none: a record for
   * an unknown job, or one that no longer applies (a result for an attempt that is no longer active).
   */
  apply(type: number, ev: unknown, ptr: RecordPointer): JobMeta | undefined {
    switch (type) {
      case REC.ADD:
        return this.#add(ev as AddEvent, ptr);
      case REC.ACTIVE: {
        const e = ev as ActiveEvent;
        let last: JobMeta | undefined;
        for (const [id, attempt] of e.j) {
          const job = this.jobs.get(id);
          if (!job || (job.state !== 'waiting' && job.state !== 'delayed') || attempt !== job.attemptsMade + 1) continue;
          job.ticket = e.t;
          job.processedOn = e.ts;
          this.#move(job, 'active');
          last = job;
        }
        return last;
      }
      case REC.COMPLETE: {
        const e = ev as CompleteEvent;
        const job = this.#activeAttempt(e.id, e.a);
        if (!job) return undefined;
        job.attemptsMade++;
        job.finishedOn = e.ts;
        job.resultPtr = ptr;
        job.ticket = undefined;
        this.#move(job, 'completed');
        this.#retain(job, job.opts.removeOnComplete, 'completed');
        return job;
      }
      case REC.FAIL:
      case REC.STALL: {
        const e = ev as FailEvent | StallEvent;
        const job = this.#activeAttempt(e.id, e.a);
        if (!job) return undefined;
        job.attemptsMade++;
        job.ticket = undefined;
        if (type === REC.STALL) {
          job.stalls++;
          job.failedReason = 'job stalled: its lease expired before it finished';
        } else {
          job.failedReason = (e as FailEvent).e.message;
        }
        job.failPtr = ptr;
        if (e.r !== null) {
          job.runAt = e.r;
          this.#move(job, e.r > e.ts ? 'delayed' : 'waiting');
        } else {
          job.finishedOn = e.ts;
          this.#move(job, 'failed');
          this.#retain(job, job.opts.removeOnFail, 'failed');
        }
        return job;
      }
      case REC.PROGRESS: {
        const e = ev as { id: string; p: unknown };
        const job = this.jobs.get(e.id);
        if (job) job.progress = e.p;
        return job;
      }
      case REC.LOG: {
        const job = this.jobs.get((ev as { id: string }).id);
        if (job) (job.logPtrs ??= []).push(ptr);
        return job;
      }
      case REC.REMOVE: {
        let last: JobMeta | undefined;
        for (const id of (ev as { ids: string[] }).ids) {
          const job = this.jobs.get(id);
          if (job) this.#delete(job);
          last = job ?? last;
        }
        return last;
      }
      case REC.PROMOTE: {
        const job = this.jobs.get((ev as { id: string }).id);
        if (!job || job.state !== 'delayed') return undefined;
        job.runAt = 0;
        this.#move(job, 'waiting');
        return job;
      }
      case REC.PAUSE:
      case REC.RESUME:
        this.paused = type === REC.PAUSE;
        return undefined;
      case REC.RETRY: {
        const e = ev as { id: string; ts: number };
        const job = this.jobs.get(e.id);
        if (!job || (job.state !== 'failed' && job.state !== 'completed')) return undefined;
        job.attemptsMade = 0;
        job.stalls = 0;
        job.failedReason = undefined;
        job.failPtr = undefined;
        job.resultPtr = undefined;
        job.finishedOn = 0;
        job.processedOn = 0;
        job.runAt = 0;
        job.order = ptr.seq;
        this.#move(job, 'waiting');
        return job;
      }
      case REC.RELEASE: {
        const e = ev as { id: string; a: number };
        const job = this.#activeAttempt(e.id, e.a);
        if (!job) return undefined;
        job.ticket = undefined;
        this.#move(job, job.runAt > 0 ? 'delayed' : 'waiting');
        return job;
      }
      default:
        return undefined; // a record type from a newer writer: not ours to fold
    }
  }

  /** Inserts a job as a snapshot holds it (snapshot.ts). */
  load(job: JobMeta): void {
    this.jobs.set(job.id, job);
    this.#enter(job, job.state);
  }

  /** Moves delayed jobs whose run time is ≤ now to waiting; returns them. */
  promoteDue(now: number): JobMeta[] {
    const due: JobMeta[] = [];
    for (let job = this.delayed.peek(); job && job.runAt <= now; job = this.delayed.peek()) {
      this.delayed.pop();
      job.runAt = 0;
      this.#move(job, 'waiting');
      due.push(job);
    }
    return due;
  }

  /** The next run time among delayed jobs, if any. */
  nextRunAt(): number | undefined {
    return this.delayed.peek()?.runAt;
  }

  count(state: JobState): number {
    return this.byState[state].size;
  }

  #add(e: AddEvent, ptr: RecordPointer): JobMeta | undefined {
    if (this.jobs.has(e.id)) return undefined;
    const delay = e.o.delay ?? 0;
    const job: JobMeta = {
      id: e.id,
      name: e.n,
      opts: this.#intern(e.o),
      state: 'waiting',
      priority: e.o.priority ?? 0,
      order: ptr.seq,
      runAt: delay > 0 ? e.ts + delay : 0,
      attemptsMade: 0,
      stalls: 0,
      timestamp: e.ts,
      processedOn: 0,
      finishedOn: 0,
      progress: 0,
      ptr,
      resultPtr: undefined,
      failedReason: undefined,
      failPtr: undefined,
      ticket: undefined,
      logPtrs: undefined,
      stamp: 0,
    };
    this.jobs.set(job.id, job);
    this.#enter(job, job.runAt > 0 ? 'delayed' : 'waiting');
    return job;
  }

  #activeAttempt(id: string, attempt: number): JobMeta | undefined {
    const job = this.jobs.get(id);
    return job && job.state === 'active' && attempt === job.attemptsMade + 1 ? job : undefined;
  }

  #move(job: JobMeta, to: JobState): void {
    this.byState[job.state].delete(job);
    job.stamp++; // any heap entry of its old state is stale now
    this.#enter(job, to);
  }

  #enter(job: JobMeta, state: JobState): void {
    job.state = state;
    this.byState[state].add(job);
    if (state === 'waiting') this.ready.push(job);
    else if (state === 'delayed') this.delayed.push(job);
  }

  #delete(job: JobMeta): void {
    this.byState[job.state].delete(job);
    job.stamp++;
    this.jobs.delete(job.id);
  }

  /** removeOnComplete / removeOnFail as true or a count (ages are applied by the owner with REMOVE records). */
  #retain(job: JobMeta, rule: StoredJobOpts['removeOnComplete'], state: 'completed' | 'failed'): void {
    if (rule === true) return this.#delete(job);
    const count = typeof rule === 'number' ? rule : typeof rule === 'object' ? rule.count : undefined;
    if (count === undefined) return;
    const set = this.byState[state];
    for (const old of set) {
      if (set.size <= count) break;
      this.#delete(old);
    }
  }

  #intern(o: StoredJobOpts): StoredJobOpts {
    const keys = Object.keys(o);
    if (keys.length === 0) return EMPTY_OPTS;
    const key = JSON.stringify(o);
    let shared = this.#interned.get(key);
    if (!shared) {
      if (this.#interned.size > 10_000) this.#interned.clear(); // unique options per job: stop caching
      shared = o;
      this.#interned.set(key, shared);
    }
    return shared;
  }
}

const EMPTY_OPTS: StoredJobOpts = Object.freeze({});
