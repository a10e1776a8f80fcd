/**
 * Owner: the one process-wide authority over a queue directory (DESIGN §2). Every Queue and Worker on the same
 * directory in this process shares it (registry.ts): one log writer, one fold, one scheduler.
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
 * again. A START cut with its batch leaves its jobs counted as unstarted (the safe side, starts.ts).
 * While cooling (COOL_MS after a cut) nothing is written: adds and every other append are refused at once
 * with ERR_IO, before the disk is touched, and outcomes workers report then are handed back as if cut. The rules
 * are cut-back.ts's. Queue-level 'waiting' and 'delayed' events of an add fire once its record is durable: a
 * rejected add has none (scheduler.ts).
 *
 * Time: every timestamp it writes and every timer it schedules by (the tick: delays, retries, retention by age,
 * lease checks; `cooling`) is read from `clock` (clock.ts), which a test replaces (INTERNAL_CLOCK).
 *
 * Durability: an operation resolves when its record is as durable as the queue's mode promises. State changes
 * are visible in memory at once (a later operation sees them), which is safe because nothing leaves the owner
 * before it is durable: a job is handed to a worker only after the ACTIVE record that covers it (and so the ADD
 * before it) is durable.
 *
 * The owner's parts, one concept a file (lib/queue/owner/): this file opens, appends and folds (and rebuilds the
 * fold when a failed write is cut back), holds the queue-level events and closes; reads.ts reads job contents from
 * the log; cut-back.ts is what follows a cut back (hand-backs, cooling); maintenance.ts checkpoints and compacts; outcomes.ts logs the ends of attempts (finish, stall, release); starts.ts is
 * the START tally protocol (which claimed jobs had started) and its crash story; scheduler.ts the timer (delays,
 * retries, retention by age, lease checks); desk.ts cuts tickets and takes back leases; dead-letter.ts moves jobs
 * that failed for good; commands.ts is every operation callers reach (LocalBackend in this process, socket
 * requests from others); registry.ts hands out the process's one owner per directory.
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { SpoolError } from '../../errors.js';
import { Log } from '../../log/log.js';
import type { RecordPointer } from '../../log/writer.js';
import type { Payload } from '../../codec/record-codec.js';
import { REC, encodeEvent, type StoredJobOpts } from '../../store/events.js';
import { type JobTable, type JobMeta } from '../../store/job-table.js';
import type { CompactionResult } from '../../log/compactor.js';
import { TicketDesk } from './desk.js';
import type { Outcome, OwnerEventMap, StartTally, WorkerPort } from '../backend.js';
import { foldLog, type DamagedJob, type LostSeqs } from '../fold.js';
import type { ResolvedQueueOptions } from '../options.js';
import { DeadLetters, NO_OWNERS, type OwnerSource } from './dead-letter.js';
import type { Clock } from '../clock.js';
import { finish, release, settleOrphan, stall } from './outcomes.js';
import { Scheduler } from './scheduler.js';
import { JobReads } from './reads.js';
import { Maintenance } from './maintenance.js';
import { StartLog } from './starts.js';
import { CutBack } from './cut-back.js';

/** The queue-level events (backend.ts), emitted by the owner to every Queue and Worker here. */
export type OwnerEvents = OwnerEventMap;

export class Owner extends EventEmitter<OwnerEvents> {
  readonly name: string;
  readonly dir: string;
  readonly opts: ResolvedQueueOptions;
  /** Every time the owner reads or schedules by (clock.ts): opts.clock, read from this field on the per-job path. */
  readonly clock: Clock;
  #table: JobTable;
  readonly desk: TicketDesk;
  /** Job contents, read from the log's records (reads.ts). */
  readonly reads: JobReads;
  /** What follows a cut back: hand-backs and cooling (cut-back.ts); the outcomes read it per record. */
  readonly cutBack: CutBack;
  readonly #log: Log;
  readonly #maint: Maintenance;
  #closed = false;
  readonly #deadLetters: DeadLetters;
  readonly #schedule: Scheduler;
  readonly #starts: StartLog;

  private constructor(name: string, dir: string, opts: ResolvedQueueOptions, log: Log, table: JobTable, owners: OwnerSource) {
    super();
    this.name = name;
    this.dir = dir;
    this.opts = opts;
    this.clock = opts.clock;
    this.#log = log;
    this.#table = table;
    this.desk = new TicketDesk(this, dir, log.epoch);
    this.reads = new JobReads(log);
    this.#maint = new Maintenance(log, this);
    this.#deadLetters = new DeadLetters(this, owners);
    this.#schedule = new Scheduler(this);
    this.#starts = new StartLog(this, () => log.requestFlushSoon());
    this.cutBack = new CutBack(this, log);
    this.setMaxListeners(0); // every Queue and Worker on this directory in the process listens here
    log.beforeFlush = this.#starts.flush;
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
   * the delay timer is re-armed from the new table, the jobs the rebuilt table has active that no live ticket
   * tracks are noted to be handed back, and the owner cools for COOL_MS (cut-back.ts).
   */
  #refold(): void {
    if (this.#closed) return; // closing: the log is closed already, and nothing reads the table any more
    const old = this.#table;
    this.#log.reloadCheckpoint();
    const { table, replayed } = foldLog(this.#log, false);
    this.#table = table;
    this.#maint.since = replayed;
    this.#schedule.rearm(this.cutBack.rebuilt(old, table));
  }

  /** How many times a cut back rebuilt the table (#refold): for tests. */
  get refolds(): number {
    return this.cutBack.refolds;
  }

  /** True while the owner holds back its appends after a cut back (cut-back.ts: Cooling). */
  get cooling(): boolean {
    return this.cutBack.cooling;
  }

  /** After cooling (the scheduler's tick): hands back what a cut left active, and flushes START tallies it kept. */
  afterCooling(): void {
    this.cutBack.handBackLost();
    this.#starts.flushSoon();
  }

  /**
   * `owners`: where the owners of dead-letter queues come from (the registry, registry.ts); left out (a test that
   * drives an Owner directly), none: a move to a dead-letter queue fails (dead-letter.ts, NO_OWNERS).
   */
  static async open(name: string, opts: ResolvedQueueOptions, owners: OwnerSource = NO_OWNERS): Promise<Owner> {
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
      const { table, replayed, damaged, lost } = foldLog(log, false);
      const owner = new Owner(name, dir, opts, log, table, owners);
      owner.#damaged = damaged;
      owner.#lost = lost;
      owner.#maint.since = replayed;
      const claimed = owner.desk.reset();
      // Jobs the previous owner left active are settled now (started: stalled; not: released), so the state is
      // settled when open resolves; their events are held until the Queues and Workers that asked for this owner
      // have attached their listeners.
      owner.#held = [];
      owner.#settleOrphans([...table.byState.active], claimed);
      setImmediate(() => owner.#release());
      owner.#schedule.tick();
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
    if (this.cutBack.until !== 0) this.cutBack.refuse();
    const { ptr, done } = this.#log.appendTracked(type, payload ?? encodeEvent(event));
    return { job: this.#folded(type, event, ptr), done };
  }

  /** record() with no promise: for all but the last of many records appended together (log.appendUntracked). */
  recordUntracked(type: number, event: object, payload?: Payload): JobMeta | undefined {
    if (this.#closed) throw new SpoolError('ERR_CLOSED', `queue ${this.name} is closed`);
    if (this.cutBack.until !== 0) this.cutBack.refuse();
    return this.#folded(type, event, this.#log.appendUntracked(type, payload ?? encodeEvent(event)));
  }

  #folded(type: number, event: object, ptr: RecordPointer): JobMeta | undefined {
    const job = this.#table.apply(type, event, ptr);
    // Every max(checkpointEvery, jobs) records a checkpoint or a compaction (maintenance.ts).
    if (++this.#maint.since >= Math.max(this.opts.checkpointEvery, this.table.jobs.size)) this.#maint.due();
    return job;
  }

  /** The seq the next record gets: generated job ids are this number. */
  get nextSeq(): number {
    return this.#log.nextSeq;
  }

  // ---- outcomes reported by workers (outcomes.ts)

  /** Logs the outcome of an attempt; undefined when it no longer holds (outcomes.ts). */
  finish(ticket: string, id: string, attempt: number, outcome: Outcome): Promise<unknown> | undefined {
    return finish(this, ticket, id, attempt, outcome);
  }

  /** Logs a stall of the job's current, started attempt (outcomes.ts). */
  stall(job: JobMeta, why?: string): Promise<unknown> {
    return stall(this, job, why);
  }

  /** A lease taken back: stall if started, release if not (outcomes.ts, starts.ts). */
  settleOrphan(job: JobMeta, claimed: boolean, why?: string): void {
    settleOrphan(this, job, claimed, why);
  }

  /** Hands an attempt back without counting anything; `orphaned`: it may have started unseen (outcomes.ts, starts.ts). */
  release(ticket: string, id: string, attempt: number, why?: string, orphaned = false): Promise<unknown> | undefined {
    return release(this, ticket, id, attempt, why, orphaned);
  }

  /** A worker's start tally, once per flush (starts.ts). */
  started(tally: StartTally): void {
    this.#starts.started(tally);
  }

  progress(id: string, data: unknown): Promise<unknown> {
    const { done } = this.record(REC.PROGRESS, { id, p: data });
    this.emit('progress', { jobId: id, data });
    return done;
  }

  log(id: string, line: string): Promise<unknown> {
    return this.record(REC.LOG, { id, l: line }).done;
  }

  whenAppendedDurable(): Promise<unknown> {
    return this.#log.whenAppendedDurable();
  }

  moveToDeadLetter(job: JobMeta): Promise<void> {
    return this.#deadLetters.move(job);
  }

  // ---- scheduling (scheduler.ts)

  /** A job became ready (added, retried, released, promoted): wake the desk, or the delay timer. */
  afterReady(job: JobMeta | undefined): void {
    this.#schedule.afterReady(job);
  }

  /** A job just added (or retried, promoted) whose record settles `done`: jobsAdded. */
  jobAdded(job: JobMeta, done: Promise<unknown>): void {
    this.#schedule.jobsAdded([job], done);
  }

  /** Jobs just added (addBulk) whose last record settles `done`: one dispatch, their events once durable (scheduler.ts). */
  jobsAdded(jobs: JobMeta[], done: Promise<unknown>): void {
    this.#schedule.jobsAdded(jobs, done);
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

  /** On open: attempts the previous owner left active have no valid lease now (starts.ts). */
  #settleOrphans(orphans: JobMeta[], claimed: Set<string>): void {
    for (const job of orphans) {
      if (this.#closed || job.state !== 'active') continue;
      const ticket = job.ticket;
      this.settleOrphan(job, ticket !== undefined && claimed.has(ticket), 'job stalled: the process running it stopped before it finished');
    }
  }

  // ---- workers

  attach(port: WorkerPort): void {
    this.desk.attach(port);
  }

  detach(port: WorkerPort): void {
    this.desk.detach(port);
  }

  // ---- checkpoints, compaction (maintenance.ts) and closing

  /** Reclaims the log space of deleted jobs now, then checkpoints (maintenance.ts). */
  compact(): Promise<CompactionResult | undefined> {
    return this.#maint.compact();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#schedule.stop();
    this.cutBack.close();
    this.desk.close();
    await this.#deadLetters.close();
    await this.#maint.close();
    this.#closed = true;
    await this.#log.close();
  }
}

export type { Outcome, StartTally, WorkerPort, StoredJobOpts };
