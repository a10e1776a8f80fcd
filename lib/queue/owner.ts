/**
 * Owner: the one process-wide authority over a queue directory (DESIGN §2). Every Queue and Worker on the same
 * directory in this process shares it (ownerRegistry below): one log writer, one fold, one scheduler.
 *
 * Owns: opening (log, replay into the job table (fold.ts, which also names jobs whose ADD is damaged), stalling
 * what the previous owner left active), every append
 * (each record is folded into the table at the moment it is appended, so the table is always the fold of the
 * log in log order), the scheduler (delays, retries, retention by age), ticket cutting and lease checks
 * (desk.ts), checkpoints, and the queue-level events. Does not own: validation of public input (queue.ts and
 * options.ts do it before calling in), running jobs (worker/), or file formats (log/, store/).
 *
 * Failed writes (issue 9). A batch the log could not write is cut back (log/writer.ts: Failed writes) and the
 * table rebuilt as an open builds it, from the index (#refold). The table and the desk then agree: every job the
 * rebuilt table says is active is tracked by a live ticket (its lease and outcome follow the usual rules) or is
 * handed back once the owner stops cooling. A job whose ACTIVE was cut never left: it is waiting again and its
 * ticket was never offered. A job whose COMPLETE or FAIL was cut ran and its outcome is lost: it is RELEASEd,
 * nothing counted, and runs again (at least once). A cut RELEASE is released again; a cut STALL is stalled
 * again. A START cut with its batch leaves its jobs counted as unstarted (the safe side, as Starts says below).
 * While cooling (COOL_MS after a cut) nothing is written: adds and every other append are refused at once
 * with ERR_IO, before the disk is touched, and outcomes workers report then are handed back as if cut.
 * Queue-level 'waiting' and 'delayed' events of an add fire once its record is durable: a rejected add has none.
 *
 * Time: every timestamp it writes and every timer it schedules by (the tick: delays, retries, retention by age,
 * lease checks; `cooling`) is read from `clock` (clock.ts), which a test replaces (INTERNAL_CLOCK).
 *
 * Durability: an operation resolves when its record is as durable as the queue's mode promises. State changes
 * are visible in memory at once (a later operation sees them), which is safe because nothing leaves the owner
 * before it is durable: a job is handed to a worker only after the ACTIVE record that covers it (and so the ADD
 * before it) is durable.
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
 *     prefix. The worker counts the starts of each ticket in a tally it hands to started() once per flush; the
 *     owner reads the tallies and appends one START per ticket right before the log writer's next flush
 *     (#flushStarts, the writer's beforeFlush hook; it asks for a flush if none is coming), so they join the batch
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
 * not write.
 * Power loss may lose the rename of a claim (ticket files are not fsynced) or unsynced STARTs: those jobs are
 * released, which charges nobody for the power cut. A STALL or RELEASE written by an expiry whose ticket file was
 * already recycled but not yet in the log when the process died is decided again by the next owner, which sees no
 * claim and releases the claimed prefix.
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { SpoolError } from '../errors.js';
import { Log } from '../log/log.js';
import type { RecordPointer } from '../log/writer.js';
import type { Payload, PayloadDecoder } from '../codec/record-codec.js';
import { REC, decodeAddData, decodeEvent, encodeAdd, encodeComplete, encodeEvent, type AddEvent, type FailEvent, type StoredJobOpts, type WireError } from '../store/events.js';
import { STALLED_TOO_OFTEN, type JobTable, type JobMeta } from '../store/job-table.js';
import { QueueLiveness } from '../store/liveness.js';
import { encodeSnapshot } from '../store/snapshot.js';
import type { CompactionResult } from '../log/compactor.js';
import { TicketDesk, type WorkerPort } from './desk.js';
import { foldLog, type DamagedJob, type LostSeqs } from './fold.js';
import { INTERNAL_CLOCK, NO_JOB_OPTS as NO_OPTS, resolveQueueOptions, type ResolvedQueueOptions } from './options.js';
import type { Clock, ClockTimer } from './clock.js';

export interface OwnerEvents {
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

/** How far a worker has got into one ticket (Owner.started). */
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

export class Owner extends EventEmitter<OwnerEvents> {
  readonly name: string;
  readonly dir: string;
  readonly opts: ResolvedQueueOptions;
  /** Every time the owner reads or schedules by (clock.ts): opts.clock, read from this field on the per-job path. */
  readonly clock: Clock;
  #table: JobTable;
  readonly desk: TicketDesk;
  /** Until when the owner writes nothing on its own (dispatch, retention, leases): a failed write was cut back. */
  #coolUntil = 0;
  readonly #log: Log;
  #lastPtr: RecordPointer | undefined;
  #sinceCheckpoint = 0;
  #checkpointing: Promise<void> | undefined;
  #compacting: Promise<CompactionResult | undefined> | undefined;
  #deletionsAtCompaction = 0;
  #timer: ClockTimer | undefined;
  #closed = false;

  private constructor(name: string, dir: string, opts: ResolvedQueueOptions, log: Log, table: JobTable) {
    super();
    this.name = name;
    this.dir = dir;
    this.opts = opts;
    this.clock = opts.clock;
    this.#log = log;
    this.#table = table;
    this.desk = new TicketDesk(this, dir, log.epoch);
    this.setMaxListeners(0); // every Queue and Worker on this directory in the process listens here
    log.beforeFlush = this.#flushStarts;
    log.on('damage', (d) => this.emit('error', new SpoolError('ERR_CORRUPT_RECORD', `damaged log range quarantined: segment ${d.segmentId} [${d.offset}, ${d.end}) ${d.reason}${this.#jobsIn(d)}`)));
    log.on('cut', () => this.#refold());
  }

  /**
   * Damaged ADD records the fold found at open, and seqs whose records cannot be read at all (fold.ts): named in the
   * report of the range that holds them.
   */
  #damaged: DamagedJob[] = [];
  #lost: LostSeqs[] = [];

  #jobsIn(range: { segmentId: number; offset: number; end: number }): string {
    const within = (segmentId: number, offset: number): boolean => segmentId === range.segmentId && offset >= range.offset && offset < range.end;
    const held = this.#damaged.filter((d) => within(d.ptr.segmentId, d.ptr.offset));
    const names = held.map((d) => (d.id !== undefined ? `job ${d.id}` : `the ADD of seq ${d.seq} (its job id cannot be read)`));
    const lost = this.#lost.filter((l) => within(l.segmentId, l.offset)).map((l) => (l.from === l.to ? `seq ${l.from}` : `seqs ${l.from} to ${l.to}`));
    let out = names.length > 0 ? `; it held ${names.join(', ')}` : '';
    if (lost.length > 0) out += `; the records of ${lost.join(', ')} cannot be read at all: a job added by one of them is lost unless a later record names it`;
    return out;
  }

  /** The fold of the log: replaced, never edited from outside, when a failed write is cut back (#refold). */
  get table(): JobTable {
    return this.#table;
  }

  /**
   * A failed batch was cut back (log 'cut', writer.ts: Failed writes): its records were folded into the table
   * when they were appended, and they are not in the log. The table is rebuilt as an open builds it: from the
   * index file, read again, then the records after it (Log.reloadCheckpoint: an index never covers a record a cut
   * removed), so it costs what an open costs and gives the table an open would. Synchronously, before the batch's
   * appends are rejected, so that a caller that sees the rejection sees a table without them. What derives from
   * the table is reset: tickets cut in the batch are dropped by the desk when their ACTIVE record's promise rejects,
   * the delay timer is re-armed from the new table, and the owner cools for COOL_MS (Cooling, below).
   *
   * The table and the desk agree again (issue 9): every job the rebuilt table says is active is either tracked by
   * a live ticket of the desk (its lease lapses, or its outcome comes, by the usual rules) or handed back when
   * cooling ends (#handBackLost). By the record the cut took from it:
   *   - ACTIVE: the job never left. The rebuilt table has it waiting; the ticket was never offered to a worker
   *     (offers wait for the ACTIVE to be durable) and the desk drops it.
   *   - COMPLETE or FAIL: the job ran and its outcome is lost. The desk had settled it (and may have recycled the
   *     ticket), so it is RELEASEd with nothing counted and runs again: at least once, honestly.
   *   - RELEASE: released again, the same decision.
   *   - STALL (the old table counted one more stall than the rebuilt one): stalled again, the same decision.
   * A job a worker reports on while cooling is treated as if its record had been written and cut (finish, release).
   *
   * Cooling. For COOL_MS after a cut the owner writes nothing, so that a disk that stays full costs one failed
   * write and one rebuild per cooling period, never one per add: its own appends wait (dispatch, retention, lease
   * checks, START records), and every other append (adds, removals, progress…) is refused at once, before the
   * disk is touched, with ERR_IO saying the disk is full and when the queue tries again (#refuseWhileCooling).
   */
  #refold(): void {
    if (this.#closed) return; // closing: the log is closed already, and nothing reads the table any more
    const old = this.#table;
    this.#log.reloadCheckpoint();
    const { table, last, replayed } = foldLog(this.#log, false);
    this.#table = table;
    this.#lastPtr = last;
    this.#sinceCheckpoint = replayed;
    this.refolds++;
    for (const job of table.byState.active) {
      if (this.desk.tracks(job.ticket!, job.id, job.attemptsMade + 1)) continue;
      const before = old.jobs.get(job.id);
      this.#handBack.set(job.id, this.#handBack.get(job.id) ?? (before !== undefined && before.stalls > job.stalls));
    }
    this.#coolUntil = this.clock.now() + COOL_MS;
    this.#coolCause = undefined;
    // The batch's own error, to give as the cause of the refusals while cooling: this joins the batch being cut
    // (writer.ts: it settles as the last record appended does), and settles before any caller sees a rejection.
    this.#log.whenAppendedDurable().catch((err: SpoolError) => {
      this.#coolCause ??= err;
    });
    this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armTimer(this.#coolUntil);
  }

  /** How many times a cut back rebuilt the table (#refold): for tests. */
  refolds = 0;
  /** Active jobs the desk does not track after a cut back, to hand back when cooling ends: id → stall (else release). */
  readonly #handBack = new Map<string, boolean>();
  /** The error of the cut batch (#refold). */
  #coolCause: SpoolError | undefined;

  /** True while the owner holds back its own appends after a cut back (#refold). */
  get cooling(): boolean {
    return this.#coolUntil !== 0 && this.clock.now() < this.#coolUntil;
  }

  /** Throws the cooling refusal while cooling (#refold: Cooling); past it, clears #coolUntil so later calls skip it. */
  #refuseWhileCooling(): void {
    if (this.clock.now() >= this.#coolUntil) {
      this.#coolUntil = 0;
      return;
    }
    if (this.#log.failure) return; // sticky: the log refuses with its own error
    throw this.#coolingError();
  }

  #coolingError(): SpoolError {
    const cause = this.#coolCause?.cause ?? this.#coolCause;
    return new SpoolError(
      'ERR_IO',
      `write to the log refused: the disk is full (a write failed for want of room${cause ? `: ${(cause as Error).message}` : ''}); ` +
        `the queue writes nothing until ${new Date(this.#coolUntil).toISOString()}, then tries again`,
      { cause },
    );
  }

  /** After cooling: the jobs a cut left active and untracked are stalled or released (#refold). */
  #handBackLost(): void {
    const lost = [...this.#handBack];
    this.#handBack.clear();
    if (this.#log.failure) return; // the log writes nothing any more (sticky): the next owner settles them at open
    for (const [id, stalled] of lost) {
      const job = this.table.jobs.get(id);
      if (!job || job.state !== 'active' || this.desk.tracks(job.ticket!, id, job.attemptsMade + 1)) continue;
      try {
        if (stalled) void this.stall(job, 'job stalled (its stall was lost to a failed write)').catch((err: Error) => this.emit('error', err));
        else void this.release(job.ticket!, id, job.attemptsMade + 1, 'its outcome was lost to a failed write')?.catch((err: Error) => this.emit('error', err));
      } catch (err) {
        this.emit('error', err as Error); // the log refuses records (failed, closed): the next owner settles it at open
      }
    }
  }

  static async open(name: string, opts: ResolvedQueueOptions): Promise<Owner> {
    const dir = path.resolve(opts.dir, name);
    const log = await Log.open(dir, {
      durability: opts.durability,
      encryption: opts.encryption,
      compression: opts.compression,
      maxSegmentBytes: opts.maxSegmentBytes,
      batchIntervalMs: opts.batchIntervalMs,
      fs: opts.fs,
    });
    try {
      const { table, last, replayed, damaged, lost } = foldLog(log, false);
      const owner = new Owner(name, dir, opts, log, table);
      owner.#damaged = damaged;
      owner.#lost = lost;
      owner.#lastPtr = last;
      owner.#sinceCheckpoint = replayed;
      const claimed = owner.desk.reset();
      // Jobs the previous owner left active are settled now (started: stalled; not: released), so the state is
      // settled when open resolves; their events are held until the Queues and Workers that asked for this owner
      // have attached their listeners.
      owner.#held = [];
      owner.#settleOrphans([...table.byState.active], claimed);
      setImmediate(() => owner.#release());
      owner.#tick();
      return owner;
    } catch (err) {
      await log.close().catch(() => undefined);
      throw err;
    }
  }

  /** Events emitted while opening, held for listeners that attach once open resolves. */
  #held: Array<[keyof OwnerEvents, unknown[]]> | undefined;

  override emit<K extends keyof OwnerEvents>(event: K, ...args: OwnerEvents[K]): boolean {
    if (this.#held) {
      this.#held.push([event, args]);
      return true;
    }
    // A background error with nobody listening (every Queue and Worker here forwards 'error', so only in the
    // moment between their close and ours) must not throw from a timer and end the process.
    if (event === 'error' && this.listenerCount('error') === 0) return false;
    return (super.emit as (e: K, ...a: OwnerEvents[K]) => boolean)(event, ...args);
  }

  /** Whether an event would reach anybody: per-job events skip building their argument when not. */
  heard(event: keyof OwnerEvents): boolean {
    return this.#held !== undefined || this.listenerCount(event) > 0;
  }

  #release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const [event, args] of held) (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get epoch(): number {
    return this.#log.epoch;
  }

  /**
   * Appends a record and folds it. Throws (not rejects) when the log refuses it; the fold has then not happened.
   * The promise says when the record is durable.
   */
  record(type: number, event: object, payload?: Payload): { job: JobMeta | undefined; done: Promise<RecordPointer> } {
    if (this.#closed) throw new SpoolError('ERR_CLOSED', `queue ${this.name} is closed`);
    if (this.#coolUntil !== 0) this.#refuseWhileCooling();
    const { ptr, done } = this.#log.appendTracked(type, payload ?? encodeEvent(event));
    return { job: this.#folded(type, event, ptr), done };
  }

  /** record() with no promise: for all but the last of many records appended together (log.appendUntracked). */
  recordUntracked(type: number, event: object, payload?: Payload): JobMeta | undefined {
    if (this.#closed) throw new SpoolError('ERR_CLOSED', `queue ${this.name} is closed`);
    if (this.#coolUntil !== 0) this.#refuseWhileCooling();
    return this.#folded(type, event, this.#log.appendUntracked(type, payload ?? encodeEvent(event)));
  }

  #folded(type: number, event: object, ptr: RecordPointer): JobMeta | undefined {
    this.#lastPtr = ptr;
    const job = this.#table.apply(type, event, ptr);
    // A checkpoint costs O(jobs); taking one every max(checkpointEvery, jobs) records keeps its cost per record
    // constant however large the queue grows, and bounds replay on open to about as many records as there are jobs.
    if (++this.#sinceCheckpoint >= Math.max(this.opts.checkpointEvery, this.table.jobs.size)) this.#maintain();
    return job;
  }

  /** The seq the next record gets: generated job ids are this number. */
  get nextSeq(): number {
    return this.#log.nextSeq;
  }

  // ---- reading job contents (they live in the log, not in memory)

  readAdd(job: JobMeta): Promise<AddEvent> {
    return this.readEvent<AddEvent>(() => job.ptr);
  }

  /** True when the job's ADD record has been written, so readDataNow() can read it. */
  addWritten(job: JobMeta): boolean {
    return this.#log.isWritten(job.ptr.seq);
  }

  /** The job's data, read from its ADD record without decoding the rest of it (once addWritten(job)). */
  readDataNow(job: JobMeta): unknown {
    return this.#readNow(() => job.ptr, decodeAddData);
  }

  /** readDataNow() once the record is written. */
  readData(job: JobMeta): Promise<unknown> {
    return this.#read(() => job.ptr, decodeAddData);
  }

  /** Reads and decodes the event in the record that `where()` points at (see #read). */
  readEvent<T>(where: () => RecordPointer): Promise<T> {
    return this.#read<T>(where, decodeEvent);
  }

  /**
   * Reads the record that `where()` points at, once written, and decodes its payload. A getter, not a pointer:
   * compaction may move the record while this waits for it to be written, and then the job's pointer is updated
   * (store/liveness.ts); one retry covers a read that raced with the rename of a rewritten segment.
   */
  #read<T>(where: () => RecordPointer, decode: PayloadDecoder<T>): Promise<T> {
    try {
      // Almost always the record was written long ago: read it now, without a turn of the event loop.
      if (this.#log.isWritten(where().seq)) return Promise.resolve(this.#readNow<T>(where, decode));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#log.whenWritten(where().seq).then(() => this.#readNow<T>(where, decode));
  }

  #readNow<T>(where: () => RecordPointer, decode: PayloadDecoder<T>): T {
    const ptr = where();
    try {
      return this.#log.decode(ptr, decode);
    } catch (err) {
      const moved = where();
      if (moved.segmentId === ptr.segmentId && moved.offset === ptr.offset) throw err;
      return this.#log.decode(moved, decode);
    }
  }

  // ---- outcomes reported by workers

  /**
   * Logs the outcome of attempt `attempt` of job `id` held in ticket `ticket`. Returns undefined when it no
   * longer applies (the lease was taken back, the job removed): a late result is ignored, never logged.
   */
  finish(ticket: string, id: string, attempt: number, outcome: Outcome): Promise<unknown> | undefined {
    const job = this.table.jobs.get(id);
    if (!job || job.state !== 'active' || job.ticket !== ticket || job.attemptsMade + 1 !== attempt) return undefined;
    if (this.#coolUntil !== 0 && this.cooling) return this.#lostWhileCooling(ticket, id);
    const ts = this.clock.now();
    let done: Promise<unknown>;
    if (outcome.kind === 'completed') {
      const event = { id, a: attempt, rv: outcome.result, ts };
      // The same bytes encodeEvent would make, without serializing the result a second time.
      const payload = outcome.resultJson === undefined ? undefined : encodeComplete(id, attempt, outcome.resultJson, ts);
      // One promise for all the outcomes logged in this batch, rather than one per job.
      this.recordUntracked(REC.COMPLETE, event, payload);
      done = this.#log.whenAppendedDurable();
      if (this.heard('completed')) this.emit('completed', { jobId: id, returnvalue: outcome.result });
    } else {
      const maxAttempts = job.opts.attempts ?? 1;
      const retry = outcome.retryDelay !== undefined && attempt < maxAttempts;
      const r = retry ? ts + outcome.retryDelay! : null;
      done = this.record(REC.FAIL, { id, a: attempt, e: outcome.error, r, ts }).done;
      this.emit('failed', { jobId: id, failedReason: outcome.error.message, final: !retry });
      if (!retry && job.opts.deadLetter) done = done.then(() => this.#moveToDeadLetter(job));
      if (retry) this.#afterReady(job);
    }
    this.desk.settled(ticket, id);
    return done;
  }

  /**
   * While cooling, a worker's outcome is not written: as if its record had been written and cut (#refold), the job
   * is settled at the desk and released, nothing counted, when cooling ends; the caller gets the refusal.
   */
  #lostWhileCooling(ticket: string, id: string): Promise<never> {
    this.desk.settled(ticket, id);
    this.#handBack.set(id, this.#handBack.get(id) ?? false);
    return Promise.reject(this.#coolingError());
  }

  /**
   * Logs a stall of the job's current, started attempt (its lease expired or its owner died), BullMQ's rule: back
   * to waiting, or failed once it has stalled more than maxStalledCount times. No attempt counts (header: Starts).
   */
  stall(job: JobMeta, why?: string): Promise<unknown> {
    const ts = this.clock.now();
    const attempt = job.attemptsMade + 1;
    const retry = job.stalls + 1 <= this.opts.maxStalledCount;
    const r = retry ? ts : null;
    const { done } = this.record(REC.STALL, why === undefined ? { id: job.id, a: attempt, r, ts, s: 1 } : { id: job.id, a: attempt, r, ts, why, s: 1 });
    this.emit('stalled', { jobId: job.id });
    if (!retry) this.emit('failed', { jobId: job.id, failedReason: job.failedReason ?? STALLED_TOO_OFTEN, final: true });
    else this.#afterReady(job);
    return done;
  }

  /**
   * A lease taken back (expired, or left by a dead owner): stalls the job if it had started, releases it if not
   * (header: Starts), orphaned if its ticket was claimed (`claimed`: its holder may have started it unseen).
   * Errors go to 'error' (the log refused the record).
   */
  settleOrphan(job: JobMeta, claimed: boolean, why?: string): void {
    try {
      if (this.table.isStarted(job, claimed)) {
        void this.stall(job, why).catch((err: Error) => this.emit('error', err));
      } else {
        void this.release(job.ticket!, job.id, job.attemptsMade + 1, 'not started when its lease was taken back', claimed)?.catch((err: Error) => this.emit('error', err));
      }
    } catch (err) {
      this.emit('error', err as Error); // the log refused the record (closed, or failed): nothing was changed
    }
  }

  /**
   * Hands an attempt back without counting anything: it never started (a worker closing gracefully, a lease taken
   * back before the start), or it was the victim of a neighbour in its thread (`why` says so in the log).
   * `orphaned`: unstarted in a claimed ticket whose holder died, so it may have started unseen (header: Starts).
   */
  release(ticket: string, id: string, attempt: number, why?: string, orphaned = false): Promise<unknown> | undefined {
    const job = this.table.jobs.get(id);
    if (!job || job.state !== 'active' || job.ticket !== ticket || job.attemptsMade + 1 !== attempt) return undefined;
    if (this.#coolUntil !== 0 && this.cooling) {
      // Written when cooling ends (#handBackLost); nothing the caller does waits on its durability.
      this.#lostWhileCooling(ticket, id).catch(() => undefined);
      return Promise.resolve();
    }
    const ev = why === undefined ? { id, a: attempt } : orphaned ? { id, a: attempt, why, o: 1 } : { id, a: attempt, why };
    const { done } = this.record(REC.RELEASE, ev);
    this.desk.settled(ticket, id);
    this.#afterReady(job);
    return done;
  }

  /**
   * A worker has started the first `tally.started` jobs of `tally.ticket` (header: Starts), and will go on raising
   * that count. The owner reads it as the log writer's next flush begins and logs one START per ticket then, so a
   * worker calls this once per ticket per flush: when `tally.told` is false, which this sets and the flush clears.
   * (A worker in another process will send the count in a request; the owner keeps a tally for it.)
   */
  started(tally: StartTally): void {
    if (this.#starts.length === 0) this.#log.requestFlushSoon();
    tally.told = true;
    this.#starts.push(tally);
  }
  #starts: StartTally[] = [];

  /** The log writer's beforeFlush: the starts told since the last flush join the batch about to be written. */
  readonly #flushStarts = (): void => {
    if (this.#starts.length === 0 || this.cooling) return; // cooling: kept (still told) for the flush after it
    const starts = this.#starts;
    this.#starts = [];
    for (const tally of starts) tally.told = false;
    if (this.#closed) return;
    try {
      for (const { ticket: t, started: n } of starts) {
        const run = this.table.tickets.get(t);
        // A ticket already settled, or whose prefix is already known (the claim covers it), needs no record.
        if (run && n > run.started && n > run.atClaim) this.recordUntracked(REC.START, { t, n });
      }
    } catch (err) {
      this.emit('error', err as Error); // the log refuses records: the jobs count as unstarted, the safe side
    }
  };

  progress(id: string, data: unknown): Promise<unknown> {
    const { done } = this.record(REC.PROGRESS, { id, p: data });
    this.emit('progress', { jobId: id, data });
    return done;
  }

  log(id: string, line: string): Promise<unknown> {
    return this.record(REC.LOG, { id, l: line }).done;
  }

  // ---- scheduling

  /** A job became ready (added, retried, released, promoted): wake the desk, or the delay timer. */
  #afterReady(job: JobMeta | undefined): void {
    if (job?.state === 'delayed') this.#armTimer(job.runAt);
    this.desk.dispatch();
  }

  jobAdded(job: JobMeta, done: Promise<unknown>): void {
    this.jobsAdded([job], done);
  }

  /**
   * Jobs just added (addBulk) whose last ADD settles `done`: one dispatch for all, and their 'waiting' and
   * 'delayed' events once `done` says their records are durable, so that a rejected add emits none. Nobody
   * listening costs nothing: no promise reaction is made.
   */
  jobsAdded(jobs: JobMeta[], done: Promise<unknown>): void {
    const waiting = this.heard('waiting');
    const delayed = this.heard('delayed');
    const now = this.clock.now();
    let events: Array<[job: JobMeta, delay: number]> | undefined;
    for (const job of jobs) {
      if (job.state === 'delayed') {
        this.#armTimer(job.runAt);
        if (delayed) (events ??= []).push([job, job.runAt - now]);
      } else if (waiting) {
        (events ??= []).push([job, -1]);
      }
    }
    if (events) {
      const ready = events;
      done.then(() => {
        for (const [job, delay] of ready) {
          if (delay < 0) this.emit('waiting', { jobId: job.id });
          else this.emit('delayed', { jobId: job.id, delay });
        }
      }, () => undefined); // rejected: the caller of the add gets the error; no event
    }
    this.desk.dispatch();
  }

  /** Promotes due delayed jobs, applies retention by age, checks leases; re-arms itself. */
  #tick = (): void => {
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.clock.now();
    for (const job of this.table.promoteDue(now)) this.emit('waiting', { jobId: job.id });
    if (!this.cooling) {
      if (this.#handBack.size > 0) this.#handBackLost();
      if (this.#starts.length > 0) this.#log.requestFlushSoon();
      this.#removeByAge(now);
      this.desk.checkLeases(now);
      this.desk.dispatch();
    }
    this.#armTimer(now + Math.min(1_000, Math.max(20, this.opts.leaseMs / 4)));
  };

  #armTimer(at: number): void {
    const next = Math.min(at, this.table.nextRunAt() ?? Infinity);
    if (this.#closed || !Number.isFinite(next)) return;
    if (this.#timer && this.#timerAt <= next) return;
    this.clock.clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = this.clock.setTimeout(this.#tick, Math.max(0, Math.min(next - this.clock.now(), 2 ** 31 - 1)));
    this.#timer.unref();
  }
  #timerAt = 0;

  #removeByAge(now: number): void {
    const ids: string[] = [];
    for (const state of ['completed', 'failed'] as const) {
      for (const job of this.table.byState[state]) {
        const rule = state === 'completed' ? job.opts.removeOnComplete : job.opts.removeOnFail;
        if (rule && typeof rule === 'object' && rule.age !== undefined && job.finishedOn + rule.age * 1000 <= now) {
          ids.push(job.id);
        }
      }
    }
    if (ids.length) this.removeJobs(ids);
  }

  /** Logs the removal of jobs (any state but active; active ones are skipped). Returns the ids removed. */
  removeJobs(ids: string[]): { removed: string[]; done: Promise<unknown> } {
    const removed = ids.filter((id) => {
      const j = this.table.jobs.get(id);
      return j !== undefined && j.state !== 'active';
    });
    if (removed.length === 0) return { removed, done: Promise.resolve() };
    let done: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < removed.length; i += 10_000) {
      done = this.record(REC.REMOVE, { ids: removed.slice(i, i + 10_000) }).done;
    }
    for (const id of removed) this.emit('removed', { jobId: id });
    return { removed, done };
  }

  /** On open: attempts the previous owner left active have no valid lease now (header: Starts). */
  #settleOrphans(orphans: JobMeta[], claimed: Set<string>): void {
    for (const job of orphans) {
      if (this.#closed || job.state !== 'active') continue;
      const ticket = job.ticket;
      this.settleOrphan(job, ticket !== undefined && claimed.has(ticket), 'job stalled: the process running it stopped before it finished');
    }
  }

  /**
   * Moves a job whose attempts are exhausted to its dead-letter queue (same root directory), once its FAIL is
   * durable: added there with its name and data under the id "<queue>:<id>", its ADD keeping where it came from,
   * its attempts and its last error (DeadLetterOrigin, store/events.ts); then, once that ADD is durable, removed
   * here. A crash between the two leaves it in both, never in neither; a repeat of the move (the same job id) adds
   * nothing there, as the id exists. Nothing repeats a move cut off by a crash: the job then stays failed here
   * beside its copy there. A job retried or removed here while the move waited is left alone.
   */
  async #moveToDeadLetter(job: JobMeta): Promise<void> {
    try {
      const failed = (): boolean => this.table.jobs.get(job.id) === job && job.state === 'failed';
      const [add, fail] = await Promise.all([
        this.readAdd(job),
        job.failPtr ? this.readEvent<FailEvent>(() => job.failPtr!) : undefined,
      ]);
      const dlq = await this.#deadLetterOwner(job.opts.deadLetter!);
      if (!failed()) return;
      const id = `${this.name}:${job.id}`;
      if (!dlq.table.jobs.has(id)) {
        const e: WireError = fail?.e ?? { name: 'Error', message: job.failedReason ?? 'job failed' };
        // d last, as Queue.add writes it (decodeAddData reads only the data).
        const ev: AddEvent = { id, n: add.n, o: NO_OPTS, ts: this.clock.now(), dl: { q: this.name, id: job.id, a: job.attemptsMade, e }, d: add.d };
        const { job: added, done } = dlq.record(REC.ADD, ev, encodeAdd(ev, JSON.stringify(ev.d)));
        if (added) dlq.jobAdded(added, done);
        await done;
      }
      if (failed()) await this.removeJobs([job.id]).done;
    } catch (err) {
      this.emit('error', err as Error);
    }
  }

  /**
   * The process's owner of a dead-letter queue, acquired on first use and released when this owner closes. One
   * already open here (the user's own Queue on it) is shared as it is; one that is not is opened with this queue's
   * durability, encryption and compression (a handle the user opens on it later must agree: registry.ts). An
   * encrypted queue's jobs are never moved into one that is not encrypted: ERR_OPTIONS_CONFLICT, reported as
   * 'error', and the job stays failed here.
   */
  async #deadLetterOwner(name: string): Promise<Owner> {
    let held = this.#deadLetters.get(name);
    if (!held) {
      const { acquireOwner } = await import('./registry.js');
      held = this.#deadLetters.get(name); // another move may have acquired it meanwhile
      if (!held) {
        const o = this.opts;
        const opts = resolveQueueOptions({ dir: o.dir, durability: o.durability, encryption: o.encryption, compression: o.compression, [INTERNAL_CLOCK]: o.clock });
        const acquired = acquireOwner(name, opts, true);
        held = acquired;
        this.#deadLetters.set(name, acquired);
        // A queue that failed to open (ERR_LOCKED…) is reported by the move that awaits it; the next move tries
        // afresh. It needs no release: the registry has dropped it.
        acquired.owner.catch(() => {
          if (this.#deadLetters.get(name) === acquired) this.#deadLetters.delete(name);
        });
      }
    }
    const dlq = await held.owner;
    if (this.opts.encryption && !dlq.opts.encryption) {
      throw new SpoolError('ERR_OPTIONS_CONFLICT', `queue ${this.name} is encrypted and its dead-letter queue ${name} is open without encryption: its failed jobs stay here`);
    }
    return dlq;
  }
  readonly #deadLetters = new Map<string, { key: string; owner: Promise<Owner> }>();

  // ---- workers

  attach(port: WorkerPort): void {
    this.desk.attach(port);
  }

  detach(port: WorkerPort): void {
    this.desk.detach(port);
  }

  // ---- checkpoints, compaction and closing

  /**
   * Every max(checkpointEvery, jobs) records: a checkpoint, or, when enough jobs were deleted since the last
   * compaction for their records to be worth reclaiming, a compaction (which ends with a checkpoint).
   */
  #maintain(): void {
    const deleted = this.table.deletions - this.#deletionsAtCompaction;
    if (deleted >= Math.max(1_000, this.table.jobs.size / 4)) void this.compact();
    else void this.#checkpoint();
  }

  /**
   * Reclaims the log space of deleted jobs (store/liveness.ts says which records may go; log/compactor.ts does
   * it in sealed segments while appends go on), then checkpoints: a rewritten segment's new generation makes the
   * old index unusable. Runs one at a time; resolves undefined when it could not run or failed (reported).
   */
  compact(): Promise<CompactionResult | undefined> {
    if (this.#compacting) return this.#compacting;
    if (this.#closed) return Promise.resolve(undefined);
    this.#deletionsAtCompaction = this.table.deletions;
    const liveness = new QueueLiveness(this.table);
    this.#compacting = (async () => {
      try {
        return await this.#log.compact((e) => liveness.isLive(e), {
          onSegment: (_id, action, moved) => liveness.segmentDone(action, moved),
          mustRewrite: () => liveness.mustRewrite(),
        });
      } catch (err) {
        this.emit('error', err as Error); // relocations already made were applied segment by segment
        return undefined;
      } finally {
        await this.#checkpointing;
        await this.#checkpoint();
        this.#compacting = undefined;
      }
    })();
    return this.#compacting;
  }

  #checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing;
    this.#sinceCheckpoint = 0;
    // The snapshot and the position (taken inside checkpoint() before its first await) describe the same moment.
    const state = encodeSnapshot(this.table);
    this.#checkpointing = this.#log
      .checkpoint(state)
      .catch((err) => void this.emit('error', err))
      .finally(() => {
        this.#checkpointing = undefined;
      });
    return this.#checkpointing;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.clock.clearTimeout(this.#timer);
    // Last chance for jobs a cut left active: unsettled, the next owner would stall the started ones at its open.
    if (this.#handBack.size > 0) {
      this.#coolUntil = 0;
      this.#handBackLost();
    }
    this.desk.close();
    if (this.#deadLetters.size > 0) {
      const { releaseOwner } = await import('./registry.js');
      for (const { key } of this.#deadLetters.values()) await releaseOwner(key);
    }
    await this.#compacting;
    await this.#checkpointing;
    if (this.#sinceCheckpoint > 0 && !this.#log.failure) await this.#checkpoint();
    this.#closed = true;
    await this.#log.close();
  }
}

/** How long the owner appends nothing on its own after a failed write was cut back (#refold). */
const COOL_MS = 1_000;

export type { WorkerPort, StoredJobOpts };
