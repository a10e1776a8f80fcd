/**
 * The start tally protocol: which claimed jobs had started, told by workers and logged by the owner.
 *
 * Starts (issue 9: a crash must not fail jobs that did not cause it). A worker claims more jobs than it runs at
 * once (lookahead, worker.ts), so an active job may never have started. Whether it had is what decides, when its
 * lease is taken back (expiry, or a new owner at open), between
 *   - RELEASE, nothing counted: it never started, it goes back to waiting as it was;
 *   - STALL (BullMQ's rule): back to waiting with one more stall; past maxStalledCount stalls it fails ("job
 *     stalled more than allowable limit"). Stalls never count an attempt: attempts count processor failures.
 * What started is in the log, so that any owner knows it after replay, and a worker in another process can tell it
 * through a request like any other outcome:
 *   - the claim. A ticket's ACTIVE carries `s`: its first s jobs are the ones the worker had free slots for at the
 *     cut (desk.ts), and the worker starts them in the same synchronous code that claims the ticket (the rename
 *     into tickets/taken). So a ticket whose file is in taken/ had its first s jobs started (claimed before the
 *     processors ran: exact); one still in ready/, or never published, was never claimed and started nothing.
 *   - START {t, n}: the rest of a ticket (claimed ahead, lookahead) starts later, in ticket order, so "started" is a
 *     prefix. The worker counts the starts of each ticket in a tally it hands to started() (Owner.started) once per
 *     flush; the owner reads the tallies and appends one START per ticket right before the log writer's next flush
 *     (StartLog.flush, the writer's beforeFlush hook; it asks for a flush if none is coming), so they join the batch
 *     of the turn's outcomes: a busy worker costs one small record per ticket per batch, and per job an increment.
 *     A claimed-ahead job is counted before its processor is called, and is not called until its START is written
 *     to the OS: the worker holds the jobs it counted in a turn (in their slots) and asks afterStartsWritten() for
 *     one callback, which comes in a microtask after the write() of the batch holding their STARTs (StartLog.written,
 *     the writer's onWrite), so they wait about a turn, all together, and no syscall is added for them. (In fsync
 *     mode that write may wait behind a sync in flight. A worker running one job at a time and finishing each within
 *     the turn pays a turn and a write() per claimed-ahead job: the price of knowing which one was running.)
 * Crash story. A claimed-at-once job is counted as started from the rename on, before its processor runs; a
 * claimed-ahead job from the write() of its START on, before its processor runs. So a job that kills the process,
 * or blocks its event loop until it is killed, has its start in the log whatever it does: the next owner stalls it
 * (after maxStalledCount stalls it fails) rather than releasing it to run again, uncounted, forever. Remaining
 * window, on the side of counting a start that did not happen: a process that dies between the write() of a START
 * and the microtask that calls the processors (nothing but microtasks runs there) stalls jobs that never ran. A
 * batch cut back takes its STARTs with it: those jobs run as unstarted (the safe side), as do those whose START a
 * closing owner did not write, and those waiting while the owner cools after a cut back (cut-back.ts: no START is
 * written then; the tallies are logged by the first flush after it). A log failed for good refuses STARTs and outcomes alike: the jobs waiting run as
 * unstarted, or wait until close() hands them back.
 * Power loss may lose the rename of a claim (ticket files are not fsynced) or unsynced STARTs: those jobs are
 * released, which charges nobody for the power cut. A STALL or RELEASE written by an expiry whose ticket file was
 * already recycled but not yet in the log when the process died is decided again by the next owner, which sees no
 * claim and releases the claimed prefix.
 */
import { REC } from '../../store/events.js';
import type { JobTable } from '../../store/job-table.js';
import type { StartTally } from '../backend.js';

/** What the start log uses of its owner (owner.ts). */
export interface StartsHost {
  readonly closed: boolean;
  /** After a cut back the owner writes nothing for a while (cut-back.ts: Cooling). */
  readonly cooling: boolean;
  readonly table: JobTable;
  recordUntracked(type: number, event: object): unknown;
  emit(event: 'error', err: Error): boolean;
}

/** What the start log uses of the owner's log (log.ts). */
export interface StartsLog {
  readonly nextSeq: number;
  isWritten(seq: number): boolean;
  /** Asks the log writer for a flush soon, when none may be coming. */
  requestFlushSoon(): void;
}

/**
 * The tallies told since the last log flush, the flush hook that logs them, and the callbacks waiting for their
 * write (header). Hooks: `flush` is the log writer's beforeFlush, `written` its onWrite (and the owner calls it
 * after a cut back).
 */
export class StartLog {
  readonly #host: StartsHost;
  readonly #log: StartsLog;
  #starts: StartTally[] = [];
  /** afterStartsWritten's callers whose STARTs have not yet joined a batch. */
  #waiters: Array<() => void> = [];
  /** Those whose STARTs joined the batch being written: called after its write() (written). */
  #writing: Array<() => void> = [];

  constructor(host: StartsHost, log: StartsLog) {
    this.#host = host;
    this.#log = log;
  }

  /**
   * A worker has started the first `tally.started` jobs of `tally.ticket` (header), and will go on raising that
   * count. The owner reads it as the log writer's next flush begins and logs one START per ticket then, so a worker
   * calls this once per ticket per flush: when `tally.told` is false, which this sets and the flush clears. (A
   * worker in another process will send the count in a request; the owner keeps a tally for it.)
   */
  started(tally: StartTally): void {
    if (this.#starts.length === 0) this.#log.requestFlushSoon();
    tally.told = true;
    this.#starts.push(tally);
  }

  /**
   * Calls `fn` once the STARTs of every tally told so far (started()) are written to the OS (header: Starts), or
   * the log refused them. A worker calls it once per turn in which it holds back claimed-ahead jobs.
   */
  afterStartsWritten(fn: () => void): void {
    if (this.#waiters.length === 0) this.#log.requestFlushSoon();
    this.#waiters.push(fn);
  }

  /** Cooling is over (the scheduler's tick): the tallies it kept ask for the flush that logs them. */
  flushSoon(): void {
    if (this.#starts.length > 0) this.#log.requestFlushSoon();
  }

  /** The log writer's beforeFlush: the starts told since the last flush join the batch about to be written. */
  readonly flush = (): void => {
    if (this.#starts.length === 0 && this.#waiters.length === 0) return;
    if (this.#host.cooling) {
      // Cooling (cut-back.ts): no START is written now. The tallies stay told, for the first flush after it
      // (flushSoon); jobs waiting for theirs run as unstarted, as when the log refuses a START (the safe side).
      for (const fn of this.#waiters) this.#writing.push(fn);
      this.#waiters.length = 0;
      this.written();
      return;
    }
    const starts = this.#starts;
    this.#starts = [];
    for (const tally of starts) tally.told = false;
    for (const fn of this.#waiters) this.#writing.push(fn);
    this.#waiters.length = 0;
    const host = this.#host;
    let now = host.closed;
    if (!now) {
      try {
        for (const { ticket: t, started: n } of starts) {
          const run = host.table.tickets.get(t);
          // A ticket already settled, or whose prefix is already known (the claim covers it), needs no record.
          if (run && n > run.started && n > run.atClaim) host.recordUntracked(REC.START, { t, n });
        }
      } catch (err) {
        host.emit('error', err as Error); // the log refuses records: the jobs count as unstarted, the safe side
        now = true;
      }
    }
    // Nothing of theirs left to write (no record was needed, and earlier ones are written): no write will follow.
    if (now || this.#log.isWritten(this.#log.nextSeq - 1)) this.written();
  };

  /**
   * The writer's onWrite (and a cut back): the batch holding the waiters' STARTs is written. They are called in a
   * microtask, once the writer's flush has returned: they start processors, which must not run inside it.
   */
  readonly written = (): void => {
    if (this.#writing.length > 0) queueMicrotask(this.#callWaiters);
  };

  readonly #callWaiters = (): void => {
    const waiters = this.#writing;
    this.#writing = [];
    for (const fn of waiters) fn();
  };
}
