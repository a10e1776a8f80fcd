/**
 * QueueEvents: BullMQ's class for listening to a queue's events from anywhere, here a reader of the queue's log
 * (DESIGN §2, Readers). It takes no lock and never writes (no file, no directory, not the index): it works in a
 * process that only reads, beside an owner in this process or another, and across the owner's restarts and
 * failovers.
 *
 * How. It tails the log (log/tailer.ts, woken by fs.watch) and folds every record into a JobTable of its own, as
 * the owner does, starting from the index file's checkpoint when that serves (below) or from the first record;
 * each transition gives the events (store/transitions.ts, the one place they are derived). So it knows each
 * job's previous state, and completed's returnvalue is read from the COMPLETE record itself (decrypted with the
 * key given). The owner's scheduler promotes a due delayed job by its clock, which no record shows; a reader's
 * clock is the log's: before a record carrying a time (ts), delayed jobs due by then are promoted (waiting with
 * prev 'delayed'), so the job that the owner handed out once due is seen waiting, then active, as the owner saw it.
 *
 * Ids. Every event carries an id, BullMQ's second listener argument (drained's only one): `<seq>-<n>`, the seq of
 * the record it was derived from and its place among that record's events (Redis stream ids have this shape).
 * Ids grow in log order; the same log gives the same events with the same ids to every reader. `lastEventId`
 * resumes after one: '$' (the default, as BullMQ) only events of records appended after the reader started, that
 * is by the time waitUntilReady() resolves (await it before adding, as with BullMQ), or all of them when the queue
 * did not exist yet when the constructor looked (it looks once synchronously); '0' everything from the first record; '<seq>-<n>' the events after
 * that one; '<seq>' those of records after seq. Resuming folds from the index when its position is at or
 * before the id, from the first record otherwise; in one corner the two folds differ (a delayed job that the
 * owner's clock had promoted before it wrote the index, and that no timed record promoted since, has no
 * waiting event of its own when folded from the index), so a resumed reader may lack that one event.
 *
 * What it sees. Records as they are in the files: whole ones, in log order, each once (the tailer's rules),
 * fenced by epoch like any reader, following a new owner's head and the torn tail it cut. In fsync mode a record
 * is seen once written, which may be just before the fsync that makes its append resolve; in batch and none mode
 * once written, within a turn of the event loop of its append: records that survive a crash of the owner's
 * process, not necessarily a power loss (batch: the last batchIntervalMs; none: since the last roll or close).
 * A write that the owner's writer cuts back (writer.ts, Failed writes) may have been seen in the moment before
 * the cut; its seqs are then reused by later records, which this reader skips (a known limit: only after a
 * failed write, e.g. a full disk). Jobs whose ADD lies in a damaged range are not named as the owner's fold
 * names them (queue/fold.ts): records about them are ignored; damage is reported as 'error' (ERR_CORRUPT_RECORD).
 *
 * Encryption. The log of an encrypted queue is read with the keys given; without them the reader does not
 * start: run() rejects with ERR_KEY_MISSING ('error' with autorun), a wrong key with ERR_DECRYPT (the manifest's
 * key checks, before any record is read). A record sealed with a key id not given is reported as 'error'
 * (ERR_KEY_MISSING) and skipped.
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { SpoolError, invalidArg } from '../errors.js';
import { RecordCodec } from '../codec/record-codec.js';
import { keySpecs, type EncryptionOptions } from '../codec/keyring.js';
import { INDEX_FILE, LOG_DIR } from '../format/names.js';
import { readCheckpointFile } from '../log/checkpoint-store.js';
import { closeQuietly, nodeFs, openOrThrow, type Fs } from '../log/fs.js';
import type { LogEntry } from '../log/log-scan.js';
import { checkKeys, readManifest } from '../log/manifest-store.js';
import { checkpointMismatch, type SegmentInfo } from '../log/recovery.js';
import { listSegmentIds, readSegmentHeader, segmentPath } from '../log/segment-files.js';
import type { DamagedRange } from '../log/segment-scanner.js';
import { tailLog, type Tailer, type TailOptions } from '../log/tailer.js';
import { decodeEvent } from '../store/events.js';
import { JobTable, TRANSITION } from '../store/job-table.js';
import { decodeSnapshot } from '../store/snapshot.js';
import { deriveEvents, type QueueEventName, type QueueEventPayloads } from '../store/transitions.js';
import { validateQueueName } from './options.js';

export interface QueueEventsOptions {
  /** The root directory, as given to Queue: the queue lives in <dir>/<name>. */
  dir: string;
  /** The queue's keys, when it is encrypted. */
  encryption?: EncryptionOptions;
  /** Where to resume (header: Ids): '$' (default), '0', '<seq>' or '<seq>-<n>'. */
  lastEventId?: string;
  /** Start reading in the constructor (default true, as BullMQ); false: call run(). */
  autorun?: boolean;
}

/**
 * Each event's listener arguments: the payload (with completed's returnvalue typed as ResultType), then the
 * event's id; drained has the id only. 'error' carries what went wrong while reading.
 */
export type QueueEventsEventMap<ResultType = unknown> = {
  [E in QueueEventName]: E extends 'drained'
    ? [id: string]
    : [payload: E extends 'completed' ? Omit<QueueEventPayloads['completed'], 'returnvalue'> & { returnvalue: ResultType } : QueueEventPayloads[E], id: string];
} & { error: [Error] };

type Listener<R, E extends keyof QueueEventsEventMap<R>> = (...args: QueueEventsEventMap<R>[E]) => void;

/** Typed listeners, as Queue's (queue.ts): a misspelled event name or a wrong listener does not compile. */
export interface QueueEvents<ResultType = unknown> {
  on<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
  once<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
  off<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
  addListener<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
  removeListener<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
  prependListener<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
  prependOnceListener<E extends keyof QueueEventsEventMap<ResultType>>(event: E, listener: Listener<ResultType, E>): this;
}

const KEYS = new Set(['dir', 'encryption', 'lastEventId', 'autorun']);
const EVENT_ID = /^(0|[1-9]\d{0,15})(?:-(0|[1-9]\d{0,8}))?$/;
/** How often the log is looked at when no change was seen (fs.watch does the rest). */
const POLL_MS = 100;
/** An id after every event of a record: events of one record number far fewer. */
const ALL_OF_RECORD = Number.MAX_SAFE_INTEGER;

/** A position among events: after event n of record seq (n = ALL_OF_RECORD: after all of them). */
interface After {
  seq: number;
  n: number;
}

export class QueueEvents<ResultType = unknown> extends EventEmitter {
  readonly name: string;
  readonly opts: Readonly<QueueEventsOptions>;
  readonly #dir: string;
  readonly #codec: RecordCodec;
  readonly #fs: Fs = nodeFs;
  /** undefined: '$', resolved when the reader starts. */
  readonly #resume: After | undefined;
  #after: After = { seq: 0, n: -1 };
  #table = new JobTable();
  #tailer: Tailer | undefined;
  #running: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  #stop: (() => void) | undefined;
  readonly #ready: Promise<void>;
  #readyOk!: () => void;
  #readyFail!: (err: Error) => void;

  constructor(name: string, opts: QueueEventsOptions) {
    super();
    this.name = validateQueueName(name);
    if (!opts || typeof opts !== 'object') throw invalidArg('options with a `dir` are required');
    for (const k of Object.keys(opts)) if (!KEYS.has(k)) throw invalidArg(`unknown QueueEvents option ${JSON.stringify(k)}`);
    if (typeof opts.dir !== 'string' || opts.dir.length === 0) throw invalidArg('options.dir must be a non-empty string');
    if (opts.autorun !== undefined && typeof opts.autorun !== 'boolean') throw invalidArg('autorun must be a boolean');
    if (opts.encryption !== undefined && (opts.encryption === null || typeof opts.encryption !== 'object')) {
      throw invalidArg('encryption must be { key } or { keys, currentKeyId? }');
    }
    this.#resume = parseEventId(opts.lastEventId);
    // The keys are checked here (sizes, ids): a bad key is refused by the constructor, not by the first read.
    this.#codec = new RecordCodec({ compressThreshold: false, encryption: opts.encryption });
    this.opts = Object.freeze({ ...opts });
    this.#dir = path.resolve(opts.dir, this.name);
    this.#ready = new Promise<void>((ok, fail) => {
      this.#readyOk = ok;
      this.#readyFail = fail;
    });
    this.#ready.catch(() => undefined); // surfaced by run() and by waitUntilReady()
    if (opts.autorun ?? true) this.run().catch((err: Error) => this.#report(err));
  }

  /** Resolves once reading has begun: the log is caught up to where it was, and new records are being followed. */
  waitUntilReady(): Promise<void> {
    return this.#ready;
  }

  /**
   * Starts reading (autorun does it in the constructor). Resolves when the reader is closed; rejects when it
   * cannot start (ERR_KEY_MISSING, ERR_DECRYPT, ERR_IO…) or is already running (ERR_INVALID_ARG).
   */
  run(): Promise<void> {
    if (this.#closed) return Promise.reject(new SpoolError('ERR_CLOSED', `QueueEvents ${this.name} is closed`));
    if (this.#running) return Promise.reject(invalidArg(`QueueEvents ${this.name} is already running`));
    this.#running = this.#run();
    return this.#running;
  }

  async #run(): Promise<void> {
    const stopped = new Promise<void>((resolve) => (this.#stop = resolve));
    // While it runs, it keeps the process alive, as BullMQ's does (its connection): the tailer's timer and watch
    // do not, so that a QueueEvents nobody closes is this one handle.
    const alive = setInterval(() => undefined, 2 ** 30);
    void stopped.then(() => clearInterval(alive));
    try {
      const existed = await this.#waitForQueue();
      if (this.#closed) return;
      this.#start(existed);
      this.#readyOk();
    } catch (err) {
      this.#readyFail(err as Error);
      this.#stop?.();
      throw err;
    }
    await stopped;
  }

  /** Waits for the queue's manifest (a QueueEvents may start before anybody created the queue); true if it was there. */
  async #waitForQueue(): Promise<boolean> {
    for (let first = true; ; first = false) {
      if (this.#closed) return first;
      try {
        const manifest = readManifest(this.#fs, this.#dir);
        if (manifest.encrypted && !this.opts.encryption) {
          throw new SpoolError('ERR_KEY_MISSING', `queue ${this.name} is encrypted: pass its encryption keys to QueueEvents`);
        }
        if (this.opts.encryption) checkKeys(manifest, keySpecs(this.opts.encryption)); // ERR_DECRYPT: a wrong key
        return first;
      } catch (err) {
        if (!(err instanceof SpoolError) || err.code !== 'ERR_NOT_A_LOG') throw err;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  #start(existed: boolean): void {
    const resume = this.#resume ?? (existed ? undefined : { seq: 0, n: -1 });
    const from = this.#checkpoint(resume);
    const opts: TailOptions = {
      fs: this.#fs,
      codec: this.#codec,
      from,
      intervalMs: POLL_MS,
      watch: true,
      onEntry: (e) => this.#onEntry(e),
      onDamage: (d: DamagedRange) => this.#report(new SpoolError('ERR_CORRUPT_RECORD', `damaged log range: segment ${d.segmentId} [${d.offset}, ${d.end}) ${d.reason}`)),
      onError: (err) => this.#report(err),
    };
    // '$': catch up without emitting, then emit everything after. Otherwise emit what follows the id from the start.
    this.#after = resume ?? { seq: Infinity, n: 0 };
    this.#tailer = tailLog(this.#dir, opts);
    this.#tailer.poll();
    if (resume === undefined) this.#after = { seq: 0, n: -1 };
  }

  /**
   * The index's table and position when folding from there serves: for '$', always; for an id, when the position
   * is at or before it (its records before need no events). Anything wrong with the index (missing, damaged,
   * stale, a segment gone meanwhile) means folding from the first record, which is always right.
   */
  #checkpoint(resume: After | undefined): TailOptions['from'] {
    try {
      const { checkpoint: cp } = readCheckpointFile(this.#fs, path.join(this.#dir, INDEX_FILE));
      if (!cp || (resume !== undefined && cp.position.nextSeq - 1 > resume.seq)) return undefined;
      const logDir = path.join(this.#dir, LOG_DIR);
      const segments: SegmentInfo[] = [];
      for (const id of listSegmentIds(this.#fs, logDir)) {
        const fd = openOrThrow(this.#fs, segmentPath(logDir, id), 'r');
        try {
          segments.push({ segmentId: id, generation: readSegmentHeader(this.#fs, fd, id).generation });
        } finally {
          closeQuietly(this.#fs, fd);
        }
      }
      if (checkpointMismatch(cp, segments, this.#fs, logDir) !== undefined) return undefined;
      const table = cp.state.length > 0 ? decodeSnapshot(cp.state) : new JobTable();
      this.#table = table;
      const generation = cp.segments.find((s) => s.segmentId === cp.position.segmentId)?.generation;
      return { position: cp.position, generation, epoch: cp.epoch };
    } catch {
      this.#table = new JobTable(); // any failure here only costs a fold from the first record
      return undefined;
    }
  }

  #onEntry(e: LogEntry): void {
    let ev: Record<string, unknown>;
    try {
      ev = decodeEvent<Record<string, unknown>>(e.payload(), e.seq);
      if (typeof ev !== 'object' || ev === null) throw new SpoolError('ERR_CORRUPT_RECORD', `record ${e.seq}: payload is not a queue event`);
    } catch (err) {
      this.#report(err as Error); // a key id not given, or a record that is not a queue's: nothing to fold
      return;
    }
    const table = this.#table;
    const seq = e.seq;
    let n = 0;
    const emit = <E extends QueueEventName>(event: E, payload: QueueEventPayloads[E]): void => {
      const i = n++;
      const after = this.#after;
      if (seq < after.seq || (seq === after.seq && i <= after.n)) return;
      this.#emit(event, payload, `${seq}-${i}`);
    };
    // The log's clock (header): delayed jobs due by this record's time are waiting before it applies.
    const ts = ev.ts;
    if (typeof ts === 'number' && table.nextRunAt() !== undefined && table.nextRunAt()! <= ts) {
      table.promoteDue(ts);
      deriveEvents(table.transition, emit);
    }
    table.apply(e.type, ev, { seq, segmentId: e.segmentId, offset: e.offset, size: e.size });
    if (table.transition.kind !== TRANSITION.NONE || table.transition.drained) deriveEvents(table.transition, emit);
  }

  #emit(event: QueueEventName, payload: unknown, id: string): void {
    try {
      if (event === 'drained') super.emit(event, id);
      else super.emit(event, payload, id);
    } catch (err) {
      // A listener threw: the reading goes on (the next events must not be lost); the error is the app's.
      this.#report(err as Error);
    }
  }

  #report(err: Error): void {
    if (this.listenerCount('error') > 0) super.emit('error', err);
    else process.nextTick(() => { throw err; }); // as an unhandled 'error' would: nobody asked to hear it
  }

  /** Stops reading; run() resolves. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#tailer?.close();
      this.#stop?.();
      await this.#running?.catch(() => undefined);
    })();
    return this.#closing;
  }
}

function parseEventId(id: unknown): After | undefined {
  if (id === undefined || id === '$') return undefined;
  if (typeof id !== 'string') throw invalidArg(`lastEventId must be a string ('$', '0', '<seq>' or '<seq>-<n>'), got ${typeof id}`);
  const m = EVENT_ID.exec(id);
  if (!m) throw invalidArg(`lastEventId must be '$', '0', '<seq>' or '<seq>-<n>', got ${JSON.stringify(id)}`);
  const seq = Number(m[1]);
  if (seq === 0) return { seq: 0, n: -1 };
  return { seq, n: m[2] === undefined ? ALL_OF_RECORD : Number(m[2]) };
}
