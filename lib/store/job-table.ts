/**
 * The job table: the fold of a queue's log into its jobs and their indexes. Synchronous, in memory, no I/O and
 * no clock: everything it knows comes from records (events.ts), so replaying the same log always gives the same
 * table, and the owner applies each record here at the moment it appends it, in the same order.
 *
 * Owns: the table (id → JobMeta), the ready heap (priority, then order added), the delayed heap (run time, then
 * order), and sets of active, completed and failed jobs in insertion order (so they list oldest first). Job data is NOT
 * here: each job points at its ADD record, and results and failures point at theirs (DESIGN §3), so memory grows
 * with the number of live jobs, not their size.
 *
 * A delayed job whose time has come stays 'delayed' in the table until the scheduler calls promoteDue(now): the
 * clock is the scheduler's, never the fold's. The rows it folds into are in job-meta.ts, the transition it reports in
 * transition.ts (both re-exported here for the layers above).
 *
 * Starts. Which active jobs have started is folded too (protocol: queue/owner/starts.ts): a tracked ticket
 * (its ACTIVE carried `s`) gets a TicketRun that its active jobs point at, with their position in the ticket; START
 * records raise the run's started prefix. isStarted() answers for one job, given whether its ticket was claimed.
 * A ticket's run lives while one of its jobs is active in it (tickets below), so memory follows running work.
 * A RELEASE with `o: 1` marks its job orphaned (it may have started unseen before a crash); the mark lasts until
 * an attempt of the job completes or fails, and the desk never hands a marked job out beyond a claim prefix.
 */
import type { RecordPointer } from '../log/writer.js';
import { LazyHeap } from './heap.js';
import { JobIndex } from './job-index.js';
import {
  REC,
  type ActiveEvent,
  type AddEvent,
  type CompleteEvent,
  type FailEvent,
  type ReleaseEvent,
  type StallEvent,
  type StartEvent,
  type StoredJobOpts,
} from './events.js';

export { JOB_STATES, JobMeta, TicketRun, type JobState } from './job-meta.js';
import { JobMeta, TicketRun, type JobState } from './job-meta.js';

/** A stall record's final reason (BullMQ's wording). */
export const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

export { TRANSITION, Transition, type TransitionKind } from './transition.js';
import { TRANSITION, Transition, type TransitionKind } from './transition.js';


export class JobTable {
  readonly jobs = new JobIndex<JobMeta>();
  readonly ready = new LazyHeap<JobMeta>((j) => j.priority, (j) => j.order);
  readonly delayed = new LazyHeap<JobMeta>((j) => j.runAt, (j) => j.order);
  /**
   * Active, completed and failed jobs in insertion order. Waiting and delayed jobs are not kept in sets too: the
   * heaps hold exactly them (their live entries), and a million waiting jobs should cost one index, not two.
   */
  readonly byState: Record<'active' | 'completed' | 'failed', Set<JobMeta>> = {
    active: new Set(),
    completed: new Set(),
    failed: new Set(),
  };
  #waiting = 0;
  #delayed = 0;
  paused = false;
  /** Tracked tickets with a job active in them (header: Starts). */
  readonly tickets = new Map<string, TicketRun>();
  /** Jobs deleted since the table was made: what makes records dead, so what makes compaction worth running. */
  deletions = 0;
  /** Identical option objects are shared between jobs (addBulk gives thousands the same options). */
  readonly #interned = new Map<string, StoredJobOpts>();
  /** Job names too: JSON.parse makes a new string per record. */
  readonly #names = new Map<string, string>();

  /** What the last apply() or promoteDue() did (header: Transitions): refilled by each, read it before the next. */
  readonly transition = new Transition();
  /** Nothing waiting and nothing active after the last change (for Transition.drained). */
  #idle = true;

  /**
   * Folds one record. Returns the job it changed (for events), or undefined when it changed none: a record for
   * an unknown job, or one that no longer applies (a result for an attempt that is no longer active). What it did
   * is in `transition`.
   */
  apply(type: number, ev: unknown, ptr: RecordPointer): JobMeta | undefined {
    const t = this.transition;
    t.kind = TRANSITION.NONE;
    t.seq = ptr.seq;
    t.event = ev;
    t.ptr = ptr;
    t.job = undefined;
    t.from = undefined;
    t.to = undefined;
    t.attempt = 0;
    t.retryAt = null;
    const job = this.#fold(type, ev, ptr, t);
    const idle = this.#waiting === 0 && this.byState.active.size === 0;
    t.drained = idle && !this.#idle;
    this.#idle = idle;
    return job;
  }

  #fold(type: number, ev: unknown, ptr: RecordPointer, t: Transition): JobMeta | undefined {
    switch (type) {
      case REC.ADD: {
        const job = this.#add(ev as AddEvent, ptr);
        if (job) this.#single(t, TRANSITION.ADDED, job, undefined);
        return job;
      }
      case REC.ACTIVE: {
        const e = ev as ActiveEvent;
        const run = e.s === undefined ? undefined : new TicketRun(e.t, e.s);
        let last: JobMeta | undefined;
        let slot = -1;
        t.jobs.length = 0;
        t.froms.length = 0;
        for (const [id, attempt] of e.j) {
          slot++;
          const job = this.jobs.get(id);
          if (!job || (job.state !== 'waiting' && job.state !== 'delayed') || attempt !== job.attemptsMade + 1) continue;
          t.jobs.push(job);
          t.froms.push(job.state);
          job.ticket = e.t;
          job.processedOn = e.ts;
          this.#move(job, 'active');
          if (run) {
            job.run = run;
            job.slot = slot;
            run.open++;
          }
          last = job;
        }
        if (run && run.open > 0) this.tickets.set(e.t, run);
        if (last) {
          t.kind = TRANSITION.ACTIVATED;
          t.job = last;
          t.from = t.froms[t.froms.length - 1];
          t.to = 'active';
          t.attempt = last.attemptsMade + 1;
        }
        return last;
      }
      case REC.START: {
        const e = ev as StartEvent;
        const run = this.tickets.get(e.t);
        if (run && e.n > run.started) run.started = e.n;
        return undefined;
      }
      case REC.COMPLETE: {
        const e = ev as CompleteEvent;
        const job = this.#activeAttempt(e.id, e.a);
        if (!job) return undefined;
        job.attemptsMade++;
        job.finishedOn = e.ts;
        job.resultPtr = ptr;
        job.ticket = undefined;
        job.orphaned = false; // its run returned (header)
        this.#move(job, 'completed');
        this.#single(t, TRANSITION.COMPLETED, job, 'active');
        t.attempt = e.a;
        this.#retain(job, job.opts.removeOnComplete, 'completed');
        return job;
      }
      case REC.FAIL:
      case REC.STALL: {
        const e = ev as FailEvent | StallEvent;
        const job = this.#activeAttempt(e.id, e.a);
        if (!job) return undefined;
        job.ticket = undefined;
        if (type === REC.STALL) {
          // A stall of the new kind counts against maxStalledCount only; an older writer's also counted an attempt.
          const stallOnly = (e as StallEvent).s === 1;
          if (!stallOnly) job.attemptsMade++;
          job.stalls++;
          job.failedReason = stallOnly && e.r === null ? STALLED_TOO_OFTEN
            : (e as StallEvent).why ?? 'job stalled: its lease expired before it finished';
        } else {
          job.attemptsMade++;
          job.failedReason = (e as FailEvent).e.message;
          job.orphaned = false; // its run returned (header)
        }
        job.failPtr = ptr;
        if (e.r !== null) {
          const later = e.r > e.ts;
          job.runAt = later ? e.r : 0; // a waiting job has no run time: RELEASE reads runAt > 0 as delayed
          this.#move(job, later ? 'delayed' : 'waiting');
          this.#single(t, type === REC.STALL ? TRANSITION.STALLED : TRANSITION.FAILED, job, 'active');
        } else {
          job.finishedOn = e.ts;
          this.#move(job, 'failed');
          this.#single(t, type === REC.STALL ? TRANSITION.STALLED : TRANSITION.FAILED, job, 'active');
          this.#retain(job, job.opts.removeOnFail, 'failed');
        }
        t.attempt = e.a;
        t.retryAt = e.r;
        return job;
      }
      case REC.PROGRESS: {
        const e = ev as { id: string; p: unknown };
        const job = this.jobs.get(e.id);
        if (job) {
          job.progress = e.p;
          this.#single(t, TRANSITION.PROGRESS, job, job.state);
        }
        return job;
      }
      case REC.LOG: {
        const job = this.jobs.get((ev as { id: string }).id);
        if (job) {
          job.logPtrs = [...(job.logPtrs ?? []), ptr];
          this.#single(t, TRANSITION.LOGGED, job, job.state);
        }
        return job;
      }
      case REC.REMOVE: {
        let last: JobMeta | undefined;
        t.jobs.length = 0;
        t.froms.length = 0;
        for (const id of (ev as { ids: string[] }).ids) {
          const job = this.jobs.get(id);
          if (job) {
            t.jobs.push(job);
            t.froms.push(job.state);
            this.#delete(job);
          }
          last = job ?? last;
        }
        if (last) {
          t.kind = TRANSITION.REMOVED;
          t.job = last;
          t.from = t.froms[t.froms.length - 1];
        }
        return last;
      }
      case REC.PROMOTE: {
        const job = this.jobs.get((ev as { id: string }).id);
        if (!job || job.state !== 'delayed') return undefined;
        job.runAt = 0;
        this.#move(job, 'waiting');
        this.#single(t, TRANSITION.PROMOTED, job, 'delayed');
        t.jobs.length = 0;
        t.froms.length = 0;
        t.jobs.push(job);
        t.froms.push('delayed');
        return job;
      }
      case REC.PAUSE:
      case REC.RESUME:
        this.paused = type === REC.PAUSE;
        t.kind = type === REC.PAUSE ? TRANSITION.PAUSED : TRANSITION.RESUMED;
        return undefined;
      case REC.RETRY: {
        const e = ev as { id: string; ts: number };
        const job = this.jobs.get(e.id);
        if (!job || (job.state !== 'failed' && job.state !== 'completed')) return undefined;
        const from = job.state;
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
        this.#single(t, TRANSITION.RETRIED, job, from);
        return job;
      }
      case REC.RELEASE: {
        const e = ev as ReleaseEvent;
        const job = this.#activeAttempt(e.id, e.a);
        if (!job) return undefined;
        job.ticket = undefined;
        if (e.o === 1) job.orphaned = true;
        this.#move(job, job.runAt > 0 ? 'delayed' : 'waiting');
        this.#single(t, TRANSITION.RELEASED, job, 'active');
        t.attempt = e.a;
        return job;
      }
      default:
        return undefined; // a record type from a newer writer: not ours to fold
    }
  }

  #single(t: Transition, kind: TransitionKind, job: JobMeta, from: JobState | undefined): void {
    t.kind = kind;
    t.job = job;
    t.from = from;
    t.to = job.state;
  }

  /**
   * Fills an empty table from a snapshot (snapshot.ts): jobs in each state's set order. The heaps are built in
   * one O(n) pass rather than n pushes, which matters at a million waiting jobs.
   */
  loadAll(jobs: JobMeta[]): void {
    const waiting: JobMeta[] = [];
    const delayed: JobMeta[] = [];
    for (const job of jobs) {
      this.jobs.set(job.id, job);
      if (job.state === 'waiting') waiting.push(job);
      else if (job.state === 'delayed') delayed.push(job);
      else this.byState[job.state].add(job);
    }
    this.ready.rebuild(waiting);
    this.delayed.rebuild(delayed);
    this.#waiting = waiting.length;
    this.#delayed = delayed.length;
    this.#idle = this.#waiting === 0 && this.byState.active.size === 0;
  }

  /**
   * Fails a waiting job whose ADD record is damaged (queue/fold.ts): it can never run, as its data cannot be read.
   * Not a record: the fold of the same damaged log makes the same decision every time.
   */
  failDamaged(job: JobMeta, reason: string): void {
    if (job.state !== 'waiting') return;
    job.failedReason = reason;
    this.#move(job, 'failed');
  }

  /**
   * Whether the active job has started, as far as the log says (header: Starts): `claimed` says whether its ticket
   * was claimed (a lease file in tickets/taken). A job of an untracked ticket (written before starts were
   * tracked, or restored from a version 1 checkpoint) counts as started.
   */
  isStarted(job: JobMeta, claimed: boolean): boolean {
    const run = job.run;
    if (!run) return true;
    return job.slot < run.started || (claimed && job.slot < run.atClaim);
  }

  /** A checkpoint's active job back in its tracked ticket (snapshot.ts); runs are shared by ticket id. */
  restoreRun(job: JobMeta, ticket: string, slot: number, atClaim: number, started: number): void {
    let run = this.tickets.get(ticket);
    if (!run) this.tickets.set(ticket, (run = new TicketRun(ticket, atClaim, started)));
    job.run = run;
    job.slot = slot;
    run.open++;
  }

  /**
   * Moves delayed jobs whose run time is ≤ now to waiting; returns them. Not a record (the clock is the caller's):
   * the transition is PROMOTED with seq 0 and no event, or NONE when nothing was due.
   */
  promoteDue(now: number): JobMeta[] {
    const due: JobMeta[] = [];
    for (let job = this.delayed.peek(); job && job.runAt <= now; job = this.delayed.peek()) {
      this.delayed.pop();
      job.runAt = 0;
      this.#move(job, 'waiting');
      due.push(job);
    }
    const t = this.transition;
    t.kind = due.length > 0 ? TRANSITION.PROMOTED : TRANSITION.NONE;
    t.seq = 0;
    t.event = undefined;
    t.ptr = undefined;
    t.job = due[due.length - 1];
    t.from = due.length > 0 ? 'delayed' : undefined;
    t.to = due.length > 0 ? 'waiting' : undefined;
    t.attempt = 0;
    t.retryAt = null;
    t.jobs.length = 0;
    t.froms.length = 0;
    for (const job of due) {
      t.jobs.push(job);
      t.froms.push('delayed');
    }
    t.drained = false; // jobs became waiting: the queue cannot have gone idle
    this.#idle = this.#idle && due.length === 0;
    return due;
  }

  /** The next run time among delayed jobs, if any. */
  nextRunAt(): number | undefined {
    return this.delayed.peek()?.runAt;
  }

  count(state: JobState): number {
    if (state === 'waiting') return this.#waiting;
    if (state === 'delayed') return this.#delayed;
    return this.byState[state].size;
  }

  /** The jobs in a state: waiting and delayed in no particular order, the others in insertion order. */
  jobsIn(state: JobState): Iterable<JobMeta> {
    if (state === 'waiting') return this.ready.items();
    if (state === 'delayed') return this.delayed.items();
    return this.byState[state];
  }

  #add(e: AddEvent, ptr: RecordPointer): JobMeta | undefined {
    if (this.jobs.has(e.id)) return undefined;
    const delay = e.o.delay ?? 0;
    const runAt = delay > 0 ? e.ts + delay : 0;
    const job = new JobMeta(e.id, this.#name(e.n), this.#intern(e.o), 'waiting', ptr.seq, runAt, e.ts, ptr);
    if (e.dl !== undefined) {
      // A dead letter arrives as it left its queue: its attempts and the reason of its last failure.
      job.attemptsMade = e.dl.a;
      job.failedReason = e.dl.e.message;
    }
    this.jobs.set(job.id, job);
    this.#enter(job, job.runAt > 0 ? 'delayed' : 'waiting');
    return job;
  }

  #activeAttempt(id: string, attempt: number): JobMeta | undefined {
    const job = this.jobs.get(id);
    return job && job.state === 'active' && attempt === job.attemptsMade + 1 ? job : undefined;
  }

  #move(job: JobMeta, to: JobState): void {
    this.#leave(job);
    this.#enter(job, to);
  }

  #enter(job: JobMeta, state: JobState): void {
    job.state = state;
    if (state === 'waiting') {
      this.#waiting++;
      this.ready.push(job);
    } else if (state === 'delayed') {
      this.#delayed++;
      this.delayed.push(job);
    } else {
      this.byState[state].add(job);
    }
  }

  /** Takes the job out of its state's index; any heap entry it had is stale from here. */
  #leave(job: JobMeta): void {
    if (job.state === 'waiting') this.#waiting--;
    else if (job.state === 'delayed') this.#delayed--;
    else {
      if (job.state === 'active') this.#leaveRun(job);
      this.byState[job.state].delete(job);
    }
    job.stamp++;
  }

  #leaveRun(job: JobMeta): void {
    const run = job.run;
    if (!run) return;
    job.run = undefined;
    if (--run.open === 0) this.tickets.delete(run.id);
  }

  #delete(job: JobMeta): void {
    this.#leave(job);
    this.jobs.delete(job.id);
    this.deletions++;
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

  #name(n: string): string {
    const known = this.#names.get(n);
    if (known !== undefined) return known;
    if (this.#names.size < 10_000) this.#names.set(n, n);
    return n;
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
