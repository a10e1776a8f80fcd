/**
 * After a cut back (issue 9): what the owner does once a batch the log could not write was cut back (log/writer.ts:
 * Failed writes) and its table rebuilt as an open builds it, from the index (owner.ts, #refold): the table and the
 * desk are made to agree again, and the owner cools.
 *
 * The table and the desk agree again: every job the rebuilt table says is active is either tracked by a live
 * ticket of the desk (its lease lapses, or its outcome comes, by the usual rules) or handed back when cooling ends
 * (handBackLost). By the record the cut took from it:
 *   - ACTIVE: the job never left. The rebuilt table has it waiting; the ticket was never offered to a worker
 *     (offers wait for the ACTIVE to be durable) and the desk drops it.
 *   - COMPLETE or FAIL: the job ran and its outcome is lost. The desk had settled it (and may have recycled the
 *     ticket), so it is RELEASEd with nothing counted and runs again: at least once, honestly.
 *   - RELEASE: released again, the same decision.
 *   - STALL (the old table counted one more stall than the rebuilt one): stalled again, the same decision.
 *   - START: its jobs count as unstarted (the safe side, starts.ts).
 * A job a worker reports on while cooling is treated as if its record had been written and cut (lost: the
 * outcomes' finish and release call it). After a sticky failure nothing is handed back: the log writes nothing any
 * more, and the next owner settles those jobs at open.
 *
 * Cooling. For COOL_MS after a cut the owner writes nothing, so that a disk that stays full costs one failed write
 * and one rebuild per cooling period, never one per add: its own appends wait (dispatch, retention, lease checks,
 * START records: scheduler.ts, starts.ts), and every other append (adds, removals, progress…) is refused at once,
 * before the disk is touched, with ERR_IO saying the disk is full and when the queue tries again (refuse, which
 * Owner.record calls while `until` is set).
 */
import { SpoolError } from '../../errors.js';
import type { JobMeta, JobTable } from '../../store/job-table.js';
import type { Clock } from '../clock.js';

/** How long the owner appends nothing after a failed write was cut back (header: Cooling). */
export const COOL_MS = 1_000;

/** What the cut-back rules use of their owner (owner.ts). */
export interface CutBackHost {
  readonly clock: Clock;
  readonly table: JobTable;
  readonly desk: { tracks(ticket: string, id: string, attempt: number): boolean; settled(ticket: string, id: string): void };
  stall(job: JobMeta, why?: string): Promise<unknown>;
  release(ticket: string, id: string, attempt: number, why?: string): Promise<unknown> | undefined;
  emit(event: 'error', err: Error): boolean;
}

/** What they use of the owner's log (log.ts). */
export interface CutBackLog {
  readonly failure: SpoolError | undefined;
  whenAppendedDurable(): Promise<unknown>;
}

export class CutBack {
  /**
   * Until when the owner writes nothing (header: Cooling); 0 when no cut back is pending, or once refuse() found
   * the time past. A plain field: Owner.record and the outcomes read it per record.
   */
  until = 0;
  /** How many times a cut back rebuilt the table: for tests. */
  refolds = 0;
  readonly #host: CutBackHost;
  readonly #log: CutBackLog;
  /** Active jobs the desk does not track after a cut back, to hand back when cooling ends: id → stall (else release). */
  readonly #handBack = new Map<string, boolean>();
  /** The error of the cut batch (rebuilt). */
  #cause: SpoolError | undefined;

  constructor(host: CutBackHost, log: CutBackLog) {
    this.#host = host;
    this.#log = log;
  }

  /**
   * The table was rebuilt after a cut back (owner.ts, #refold), from `old` to `table` (the host's now): notes the
   * active jobs no live ticket tracks (header), and starts cooling. Returns when cooling ends.
   */
  rebuilt(old: JobTable, table: JobTable): number {
    this.refolds++;
    const desk = this.#host.desk;
    for (const job of table.byState.active) {
      if (desk.tracks(job.ticket!, job.id, job.attemptsMade + 1)) continue;
      const before = old.jobs.get(job.id);
      this.#handBack.set(job.id, this.#handBack.get(job.id) ?? (before !== undefined && before.stalls > job.stalls));
    }
    this.until = this.#host.clock.now() + COOL_MS;
    this.#cause = undefined;
    // The batch's own error, to give as the cause of the refusals while cooling: this joins the batch being cut
    // (writer.ts: it settles as the last record appended does), and settles before any caller sees a rejection.
    this.#log.whenAppendedDurable().catch((err: SpoolError) => {
      this.#cause ??= err;
    });
    return this.until;
  }

  /** True while the owner holds back its appends after a cut back (header: Cooling). */
  get cooling(): boolean {
    return this.until !== 0 && this.#host.clock.now() < this.until;
  }

  /** Throws the cooling refusal while cooling (header: Cooling); past it, clears `until` so later calls skip it. */
  refuse(): void {
    if (this.#host.clock.now() >= this.until) {
      this.until = 0;
      return;
    }
    if (this.#log.failure) return; // sticky: the log refuses with its own error
    throw this.#error();
  }

  #error(): SpoolError {
    const cause = this.#cause?.cause ?? this.#cause;
    return new SpoolError(
      'ERR_IO',
      `write to the log refused: the disk is full (a write failed for want of room${cause ? `: ${(cause as Error).message}` : ''}); ` +
        `the queue writes nothing until ${new Date(this.until).toISOString()}, then tries again`,
      { cause },
    );
  }

  /**
   * While cooling, a worker's outcome is not written: as if its record had been written and cut (header), the job
   * is settled at the desk and released, nothing counted, when cooling ends; the caller gets the refusal.
   */
  lost(ticket: string, id: string): Promise<never> {
    this.#host.desk.settled(ticket, id);
    this.#handBack.set(id, this.#handBack.get(id) ?? false);
    return Promise.reject(this.#error());
  }

  /** After cooling (the scheduler's tick): the jobs a cut left active and untracked are stalled or released. */
  handBackLost(): void {
    if (this.#handBack.size === 0) return;
    const lost = [...this.#handBack];
    this.#handBack.clear();
    if (this.#log.failure) return; // the log writes nothing any more (sticky): the next owner settles them at open
    const host = this.#host;
    for (const [id, stalled] of lost) {
      const job = host.table.jobs.get(id);
      if (!job || job.state !== 'active' || host.desk.tracks(job.ticket!, id, job.attemptsMade + 1)) continue;
      try {
        if (stalled) void host.stall(job, 'job stalled (its stall was lost to a failed write)').catch((err: Error) => host.emit('error', err));
        else void host.release(job.ticket!, id, job.attemptsMade + 1, 'its outcome was lost to a failed write')?.catch((err: Error) => host.emit('error', err));
      } catch (err) {
        host.emit('error', err as Error); // the log refuses records (failed, closed): the next owner settles it at open
      }
    }
  }

  /** Closing: the last chance for jobs a cut left active (unsettled, the next owner would stall the started ones). */
  close(): void {
    if (this.#handBack.size === 0) return;
    this.until = 0;
    this.handBackLost();
  }
}
