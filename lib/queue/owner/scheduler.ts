/**
 * The owner's scheduler: one timer, on the owner's clock (clock.ts), armed for the earliest of the next delayed
 * job's run time (delays, retries with backoff) and the next periodic tick. A tick promotes due delayed jobs,
 * applies retention by age (removeOnComplete / removeOnFail { age }), takes back expired leases (desk.ts) and
 * dispatches ready jobs to workers. While the owner is cooling after a failed write was cut back (cut-back.ts)
 * a tick only promotes: it appends nothing on its own; the first tick after hands back what the cut left.
 *
 * Nothing here is durable state: the timer is derived from the table, re-armed from it at open and after a cut back.
 */
import type { JobMeta, JobTable } from '../../store/job-table.js';
import type { Clock, ClockTimer } from '../clock.js';
import type { ResolvedQueueOptions } from '../options.js';
import type { OwnerEventMap } from '../backend.js';

/** What the scheduler uses of its owner (owner.ts). */
export interface ScheduleHost {
  readonly closed: boolean;
  readonly cooling: boolean;
  readonly clock: Clock;
  readonly opts: ResolvedQueueOptions;
  readonly table: JobTable;
  readonly desk: { dispatch(): void; checkLeases(now: number): void };
  heard(event: keyof OwnerEventMap): boolean;
  emit<K extends keyof OwnerEventMap>(event: K, ...args: OwnerEventMap[K]): boolean;
  removeJobs(ids: string[]): unknown;
  /** Each tick once not cooling: what a cut back left to do (cut-back.ts, starts.ts). */
  afterCooling(): void;
}

export class Scheduler {
  readonly #host: ScheduleHost;
  #timer: ClockTimer | undefined;
  #timerAt = 0;

  constructor(host: ScheduleHost) {
    this.#host = host;
  }

  /** A job became ready (added, retried, released, promoted): wake the desk, or the delay timer. */
  afterReady(job: JobMeta | undefined): void {
    if (job?.state === 'delayed') this.arm(job.runAt);
    this.#host.desk.dispatch();
  }

  /**
   * Jobs just added (addBulk, or one add, retry, promote) whose last record settles `done`: one dispatch for all,
   * and their 'waiting' and 'delayed' events once `done` says their records are durable, so that a rejected add
   * emits none. Nobody listening costs nothing: no promise reaction is made.
   */
  jobsAdded(jobs: JobMeta[], done: Promise<unknown>): void {
    const host = this.#host;
    const waiting = host.heard('waiting');
    const delayed = host.heard('delayed');
    const now = host.clock.now();
    let events: Array<[job: JobMeta, delay: number]> | undefined;
    for (const job of jobs) {
      if (job.state === 'delayed') {
        this.arm(job.runAt);
        if (delayed) (events ??= []).push([job, job.runAt - now]);
      } else if (waiting) {
        (events ??= []).push([job, -1]);
      }
    }
    if (events) {
      const ready = events;
      done.then(() => {
        for (const [job, delay] of ready) {
          if (delay < 0) host.emit('waiting', { jobId: job.id });
          else host.emit('delayed', { jobId: job.id, delay });
        }
      }, () => undefined); // rejected: the caller of the add gets the error; no event
    }
    host.desk.dispatch();
  }

  /** Promotes due delayed jobs, applies retention by age, checks leases; re-arms itself. */
  readonly tick = (): void => {
    const host = this.#host;
    this.#timer = undefined;
    if (host.closed) return;
    const now = host.clock.now();
    for (const job of host.table.promoteDue(now)) host.emit('waiting', { jobId: job.id });
    if (!host.cooling) {
      host.afterCooling();
      this.#removeByAge(now);
      host.desk.checkLeases(now);
      host.desk.dispatch();
    }
    this.arm(now + Math.min(1_000, Math.max(20, host.opts.leaseMs / 4)));
  };

  /** Arms the timer for `at`, or for the next delayed job if that is sooner (never later than it is armed for). */
  arm(at: number): void {
    const host = this.#host;
    const next = Math.min(at, host.table.nextRunAt() ?? Infinity);
    if (host.closed || !Number.isFinite(next)) return;
    if (this.#timer && this.#timerAt <= next) return;
    host.clock.clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = host.clock.setTimeout(this.tick, Math.max(0, Math.min(next - host.clock.now(), 2 ** 31 - 1)));
    this.#timer.unref();
  }

  /** The table was rebuilt (owner.ts, #refold): forget the timer and arm it afresh for `at`. */
  rearm(at: number): void {
    this.stop();
    this.arm(at);
  }

  stop(): void {
    this.#host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #removeByAge(now: number): void {
    const ids: string[] = [];
    for (const state of ['completed', 'failed'] as const) {
      for (const job of this.#host.table.byState[state]) {
        const rule = state === 'completed' ? job.opts.removeOnComplete : job.opts.removeOnFail;
        if (rule && typeof rule === 'object' && rule.age !== undefined && job.finishedOn + rule.age * 1000 <= now) {
          ids.push(job.id);
        }
      }
    }
    if (ids.length) this.#host.removeJobs(ids);
  }
}
