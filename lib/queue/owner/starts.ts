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
 *     Nothing waits: a claimed-ahead job starts at once, and its START follows at most a turn later.
 *   - orphaned. A job of a claimed ticket that the log does not know as started when its lease is taken back
 *     (a new owner at open, or an expiry) is RELEASEd with `o: 1`: it may have started in the turn before the
 *     process died, its START not yet written. The mark is folded into the job (JobMeta.orphaned) and kept by
 *     checkpoints. The desk never puts a marked job beyond a ticket's claim prefix (desk.ts): it cuts the ticket
 *     before it, so its next run starts in the claim's own code and is tracked exactly.
 * Crash story. A claimed-at-once job is counted as started from the rename on, before its processor runs; a
 * claimed-ahead job once its START is written (at most a turn of the event loop after its start; in fsync mode
 * it may also wait behind a sync in flight). A claimed-ahead job whose processor ended the process, or blocked its
 * event loop until it was killed, before that has no START: it is released uncounted, but orphaned, so its next
 * run is in a claim prefix and a crash there stalls it (after maxStalledCount stalls it fails). A job is released
 * uncounted by a crash at most once in a row: a poison job runs at most maxStalledCount + 2 times, and the
 * innocent jobs claimed ahead beside it are released orphaned, never charged. The mark stays through stalls and
 * releases and is cleared when an attempt settles by its processor (COMPLETE, FAIL): that run returned, so the
 * job is no longer suspected of taking the process down. A batch cut back takes its STARTs with it: those jobs
 * count as unstarted (the safe side: orphaned at the next crash), as do those whose START a closing owner did
 * not write, and those started while the owner cools after a cut back (cut-back.ts: no START is written then;
 * the tallies are logged by the first flush after it).
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

/** The tallies told since the last log flush, and the flush hook that logs them (header). */
export class StartLog {
  readonly #host: StartsHost;
  readonly #requestFlush: () => void;
  #starts: StartTally[] = [];

  /** `requestFlush`: asks the log writer for a flush soon (Log.requestFlushSoon) when none may be coming. */
  constructor(host: StartsHost, requestFlush: () => void) {
    this.#host = host;
    this.#requestFlush = requestFlush;
  }

  /**
   * A worker has started the first `tally.started` jobs of `tally.ticket` (header), and will go on raising that
   * count. The owner reads it as the log writer's next flush begins and logs one START per ticket then, so a worker
   * calls this once per ticket per flush: when `tally.told` is false, which this sets and the flush clears. (A
   * worker in another process will send the count in a request; the owner keeps a tally for it.)
   */
  started(tally: StartTally): void {
    if (this.#starts.length === 0) this.#requestFlush();
    tally.told = true;
    this.#starts.push(tally);
  }

  /** Cooling is over (the scheduler's tick): the tallies it kept ask for the flush that logs them. */
  flushSoon(): void {
    if (this.#starts.length > 0) this.#requestFlush();
  }

  /** The log writer's beforeFlush: the starts told since the last flush join the batch about to be written. */
  readonly flush = (): void => {
    if (this.#starts.length === 0 || this.#host.cooling) return; // cooling: kept (still told) for the flush after it (flushSoon)
    const starts = this.#starts;
    this.#starts = [];
    for (const tally of starts) tally.told = false;
    const host = this.#host;
    if (host.closed) return;
    try {
      for (const { ticket: t, started: n } of starts) {
        const run = host.table.tickets.get(t);
        // A ticket already settled, or whose prefix is already known (the claim covers it), needs no record.
        if (run && n > run.started && n > run.atClaim) host.recordUntracked(REC.START, { t, n });
      }
    } catch (err) {
      host.emit('error', err as Error); // the log refuses records: the jobs count as unstarted, the safe side
    }
  };
}
