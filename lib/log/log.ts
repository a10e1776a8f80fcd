/**
 * Log: the public face of one queue directory's segmented log, for the process that owns it.
 *
 * Owns opening (manifest, owner lock, recovery, a fresh head segment), and hands the work to the modules below:
 * writer.ts appends, record-reader.ts reads by pointer, log-scan.ts replays, checkpoint-store.ts keeps the index,
 * compactor.ts reclaims space, verify.ts checks. It knows nothing of jobs: record types and payloads belong to the
 * layer above.
 *
 * Opening, in order: validate options; check an existing manifest (and the encryption keys against it), or make
 * sure a new queue's directory exists; take the owner lock (proper-lockfile on `<dir>/owner`; a second owner gets
 * ERR_LOCKED); create a new queue's manifest, under the lock; recover (recovery.ts);
 * choose the epoch one above any seen; start a fresh head segment at the next seq (an empty old head is removed
 * first, since it would have the same name; on a disk with no room the writer creates it at its first write). Readers never open a Log: they use the read-only functions.
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { SpoolError, invalidArg, ioError } from '../errors.js';
import { INDEX_FILE, LOG_DIR } from '../format/names.js';
import { SEGMENT_HEADER_BYTES } from '../format/segment-header.js';
import { MAX_PAYLOAD_BYTES, RECORD_HEADER_BYTES } from '../format/record.js';
import type { LogPosition } from '../format/checkpoint.js';
import { RecordCodec, type Payload, type PayloadDecoder } from '../codec/record-codec.js';
import { keySpecs, type EncryptionOptions } from '../codec/keyring.js';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint-store.js';
import { compactLog, type CompactOptions, type CompactionResult } from './compactor.js';
import { nodeFs, type Fs } from './fs.js';
import { readDamagedStretch, type DamagedStretch } from './damaged-stretch.js';
import { scanLog, type LogEntry, type LogScanSummary } from './log-scan.js';
import { checkKeys, openManifest, prepareQueueDir, writeManifest, type StoredManifest } from './manifest-store.js';
import { RecordReader } from './record-reader.js';
import { takeOwnerLock } from './owner-lock.js';
import { checkpointMismatch, recoverLog, type RecoveryReport } from './recovery.js';
import { createSegment, segmentPath } from './segment-files.js';
import type { DamagedRange } from './segment-scanner.js';
import { verifyLog, type VerifyReport } from './verify.js';
import { LogWriter, isNoSpace, type Durability, type RecordPointer } from './writer.js';

export interface LogOptions {
  /** When append() resolves; see writer.ts. Default 'fsync'. */
  durability?: Durability;
  /** Roll segments at this size. Fixed when the log is created. Default 64 MiB. */
  maxSegmentBytes?: number;
  /** Longest time written records stay unsynced in 'batch' mode. Default 5 ms. */
  batchIntervalMs?: number;
  /** LZ4 for payloads of at least `threshold` bytes (true: 256). Default off. */
  compression?: boolean | { threshold: number };
  encryption?: EncryptionOptions;
  /** Create the directory when missing. Default true. */
  create?: boolean;
  /** Take the owner lock. Default true; tests of two owners turn it off to exercise fencing. */
  lock?: boolean;
  /** 'fsync' mode: bytes of zeros kept ahead of the data in the head segment (writer.ts). Default 1 MiB; 0: none. */
  preallocateBytes?: number;
  /** The file-system seam; tests pass one that injects faults. */
  fs?: Fs;
}

export interface ResolvedLogOptions {
  durability: Durability;
  maxSegmentBytes: number;
  batchIntervalMs: number;
  compressThreshold: number | false;
  encryption: EncryptionOptions | undefined;
  create: boolean;
  lock: boolean;
  preallocateBytes: number;
  fs: Fs;
}

export const DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const MIN_SEGMENT_BYTES = 4096;
const DEFAULT_COMPRESS_THRESHOLD = 256;
const DEFAULT_PREALLOCATE_BYTES = 1 << 20;

export function resolveLogOptions(opts: LogOptions = {}): ResolvedLogOptions {
  if (opts === null || typeof opts !== 'object') throw invalidArg('options must be an object');
  const durability = opts.durability ?? 'fsync';
  if (durability !== 'fsync' && durability !== 'batch' && durability !== 'none') {
    throw invalidArg(`durability must be 'fsync', 'batch' or 'none', got ${String(durability)}`);
  }
  const maxSegmentBytes = opts.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES;
  if (!Number.isSafeInteger(maxSegmentBytes) || maxSegmentBytes < MIN_SEGMENT_BYTES) {
    throw invalidArg(`maxSegmentBytes must be an integer of at least ${MIN_SEGMENT_BYTES}`);
  }
  const batchIntervalMs = opts.batchIntervalMs ?? 5;
  if (!Number.isFinite(batchIntervalMs) || batchIntervalMs < 0 || batchIntervalMs > 60_000) {
    throw invalidArg('batchIntervalMs must be a number of milliseconds from 0 to 60000');
  }
  const preallocateBytes = opts.preallocateBytes ?? DEFAULT_PREALLOCATE_BYTES;
  if (!Number.isSafeInteger(preallocateBytes) || preallocateBytes < 0 || preallocateBytes > 64 * 1024 * 1024) {
    throw invalidArg('preallocateBytes must be an integer from 0 to 64 MiB');
  }
  let compressThreshold: number | false = false;
  if (opts.compression === true) compressThreshold = DEFAULT_COMPRESS_THRESHOLD;
  else if (opts.compression && typeof opts.compression === 'object') {
    const t = opts.compression.threshold;
    if (!Number.isSafeInteger(t) || t < 0) throw invalidArg('compression.threshold must be a non-negative integer');
    compressThreshold = t;
  } else if (opts.compression !== undefined && opts.compression !== false) {
    throw invalidArg('compression must be true, false or { threshold }');
  }
  if (opts.encryption !== undefined && (opts.encryption === null || typeof opts.encryption !== 'object')) {
    throw invalidArg('encryption must be { key } or { keys, currentKeyId }');
  }
  return {
    durability,
    maxSegmentBytes,
    batchIntervalMs,
    compressThreshold,
    encryption: opts.encryption,
    create: opts.create ?? true,
    lock: opts.lock ?? true,
    preallocateBytes,
    fs: opts.fs ?? nodeFs,
  };
}

export interface LogEvents {
  /** Damage found by recovery (already quarantined); emitted once, just after open. */
  damage: [DamagedRange];
  /**
   * A failed batch was cut back (writer.ts, Failed writes): records from `nextSeq` on, appended since the last
   * successful write, are not in the log. Emitted synchronously, before those appends are rejected.
   */
  cut: [nextSeq: number];
  error: [Error];
}

export class Log extends EventEmitter<LogEvents> {
  readonly dir: string;
  readonly epoch: number;
  /** What recovery found and did when this log was opened. */
  readonly recovery: RecoveryReport;
  readonly #opts: ResolvedLogOptions;
  readonly #logDir: string;
  readonly #codec: RecordCodec;
  readonly #writer: LogWriter;
  readonly #reader: RecordReader;
  readonly #generations: Map<number, number>;
  readonly #unlock: (() => Promise<void>) | undefined;
  #compacting: Promise<CompactionResult> | undefined;
  /** The checkpoint being written: one at a time, they share index.tmp. */
  #checkpointing: Promise<void> | undefined;
  #closed = false;

  private constructor(
    dir: string,
    opts: ResolvedLogOptions,
    codec: RecordCodec,
    report: RecoveryReport,
    writer: LogWriter,
    epoch: number,
    unlock: (() => Promise<void>) | undefined,
  ) {
    super();
    this.dir = dir;
    this.#opts = opts;
    this.#logDir = path.join(dir, LOG_DIR);
    this.#codec = codec;
    this.recovery = report;
    this.#writer = writer;
    this.epoch = epoch;
    this.#unlock = unlock;
    this.#reader = new RecordReader(opts.fs, this.#logDir, codec);
    this.#generations = new Map(report.segments.map((s) => [s.segmentId, s.generation]));
    writer.onRoll = (segmentId) => this.#generations.set(segmentId, 0);
    writer.onCutBack = (nextSeq, removed) => {
      for (const id of removed) {
        this.#generations.delete(id);
        this.#reader.invalidate(id);
      }
      this.#reader.invalidate(writer.headSegmentId); // its tail was rewritten in place: no read window may keep it
      this.emit('cut', nextSeq);
    };
    if (report.damage.length) setImmediate(() => report.damage.forEach((d) => this.emit('damage', d)));
  }

  static async open(dir: string, options?: LogOptions): Promise<Log> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArg('dir must be a non-empty string');
    const opts = resolveLogOptions(options);
    const codec = new RecordCodec({ compressThreshold: opts.compressThreshold, encryption: opts.encryption });
    const { fs } = opts;
    dir = path.resolve(dir);
    const fresh = {
      maxSegmentBytes: opts.maxSegmentBytes,
      encrypted: opts.encryption !== undefined,
      createdAt: Date.now(),
    };
    const checked = (m: StoredManifest): StoredManifest | undefined => {
      if (m.encrypted && !opts.encryption) {
        throw new SpoolError('ERR_KEY_MISSING', `${dir} is encrypted: pass encryption keys to open it`);
      }
      return opts.encryption ? checkKeys(m, keySpecs(opts.encryption)) : undefined;
    };
    // An existing queue is checked before the lock (a wrong key is refused even while another process owns it);
    // a new one is created under the lock (prepareQueueDir), so that of two processes creating it at once, the
    // one that does not get the lock gets ERR_LOCKED.
    let manifest = prepareQueueDir(fs, dir, opts.create);
    let updated = manifest && checked(manifest);

    let unlock: (() => Promise<void>) | undefined;
    let poison: ((err: SpoolError) => void) | undefined;
    if (opts.lock) unlock = await takeOwnerLock(dir, { onLost: (err) => poison?.(err) });
    try {
      if (!manifest) {
        manifest = openManifest(fs, dir, true, fresh);
        updated = checked(manifest);
      }
      if (updated) writeManifest(fs, dir, { ...updated, encrypted: true });
      const logDir = path.join(dir, LOG_DIR);
      const durable = opts.durability !== 'none';
      const report = recoverLog(fs, dir, logDir, durable);
      const epoch = report.maxEpoch + 1;
      const headId = report.nextSeq;
      const last = report.segments[report.segments.length - 1];
      if (last && last.segmentId === headId) {
        if (report.lastSegmentEnd > SEGMENT_HEADER_BYTES) throw new Error('recovery left a non-empty head at nextSeq');
        try {
          fs.unlinkSync(segmentPath(logDir, headId));
        } catch (err) {
          throw ioError('remove the empty head segment', err);
        }
        report.segments.pop();
      }
      const fd = createHead(fs, logDir, { segmentId: headId, generation: 0, epoch, createdAt: Date.now() });
      const writer = new LogWriter(
        fs,
        logDir,
        codec,
        {
          durability: opts.durability,
          maxSegmentBytes: manifest.maxSegmentBytes,
          batchIntervalMs: opts.batchIntervalMs,
          epoch,
          preallocateBytes: opts.durability === 'fsync' ? opts.preallocateBytes : 0,
        },
        { segmentId: headId, fd, size: SEGMENT_HEADER_BYTES },
        headId,
      );
      report.segments.push({ segmentId: headId, generation: 0 });
      poison = (err) => writer.poison(err);
      return new Log(dir, opts, codec, report, writer, epoch, unlock);
    } catch (err) {
      await unlock?.().catch(() => undefined);
      throw err;
    }
  }

  get durability(): Durability {
    return this.#opts.durability;
  }

  /** The writer's sticky error, if it has failed. */
  get failure(): SpoolError | undefined {
    return this.#writer.failure;
  }

  get codec(): RecordCodec {
    return this.#codec;
  }

  /** The seq the next append gets. */
  get nextSeq(): number {
    return this.#writer.nextSeq;
  }

  /** Appends one record (a string payload is stored as its UTF-8 bytes); resolves with its pointer once it is as durable as the mode promises. */
  append(type: number, payload: Payload): Promise<RecordPointer> {
    return this.#writer.append(type, payload);
  }

  /** append() with the pointer known at once; throws when the record is refused (see writer.ts). */
  appendTracked(type: number, payload: Payload): { ptr: RecordPointer; done: Promise<RecordPointer> } {
    return this.#writer.appendTracked(type, payload);
  }

  /** Settles once every record appended so far is durable; shared by the calls of one batch (see writer.ts). */
  whenAppendedDurable(): Promise<RecordPointer> {
    return this.#writer.whenAppendedDurable();
  }

  /**
   * Calls `fn` as each batch is about to be written; records it appends join that batch (writer.ts, beforeFlush).
   * requestFlushSoon() makes sure one comes. One hook per log: the owner's.
   */
  set beforeFlush(fn: (() => void) | undefined) {
    this.#writer.beforeFlush = fn;
  }

  requestFlushSoon(): void {
    this.#writer.requestFlush();
  }

  /** appendTracked() without a promise: the caller awaits a later record's (see writer.ts). */
  appendUntracked(type: number, payload: Payload): RecordPointer {
    return this.#writer.appendUntracked(type, payload);
  }

  /**
   * Reads one record by pointer, waiting first if it was appended but not yet written (its bytes are still in
   * the writer's batch).
   */
  async readWhenWritten(ptr: RecordPointer): Promise<LogEntry> {
    await this.whenWritten(ptr.seq);
    return this.read(ptr);
  }

  /** True when record `seq` has been handed to write(), so read() finds it. */
  isWritten(seq: number): boolean {
    return seq < this.#writer.writtenSeq;
  }

  /** Resolves once record `seq` has been handed to write() (so read() finds it). */
  async whenWritten(seq: number): Promise<void> {
    if (seq >= this.#writer.writtenSeq) await this.#writer.whenIdle();
  }

  /** Reads one record by pointer (ERR_NOT_FOUND when it is not there). */
  read(ptr: RecordPointer): LogEntry {
    this.#assertOpen();
    if (!isPointer(ptr)) throw invalidArg('ptr must be a record pointer { seq, segmentId, offset, size }');
    return this.#reader.read(ptr);
  }

  /**
   * decoder(payload, seq, start, end) of the record at ptr, as read(ptr).payload() would give it but without a
   * copy when it is stored plain (see RecordReader.decode): for a caller that decodes the payload at once.
   */
  decode<T>(ptr: RecordPointer, decoder: PayloadDecoder<T>): T {
    this.#assertOpen();
    if (!isPointer(ptr)) throw invalidArg('ptr must be a record pointer { seq, segmentId, offset, size }');
    return this.#reader.decode(ptr, decoder);
  }

  /**
   * The checkpoint's state, handed over once: the log forgets it so its buffer (tens of MB for a large queue) can
   * be collected as soon as the caller has decoded it.
   */
  takeCheckpointState(): Buffer | undefined {
    const cp = this.recovery.checkpoint;
    const state = cp?.state;
    if (cp) cp.state = EMPTY;
    return state;
  }

  /**
   * Reads the index file again, for a fold rebuilt after a cut back to start from (what an open does): the next
   * takeCheckpointState() and replay() use it when it still describes the segments as they are now (a compaction
   * since may have rewritten or removed one: then they start from the first record, as an open without the index
   * would). Sound because an index never covers a record a cut removed: a checkpoint whose position was taken
   * before a cut is not written (checkpoint() below), and one written before the cut covers only records the cut
   * kept (their batch was written and synced before the checkpoint was).
   */
  reloadCheckpoint(): void {
    this.#assertOpen();
    const fs = this.#opts.fs;
    const segments = [...this.#generations].map(([segmentId, generation]) => ({ segmentId, generation })).sort((a, b) => a.segmentId - b.segmentId);
    let usable;
    try {
      const { checkpoint } = readCheckpointFile(fs, path.join(this.dir, INDEX_FILE));
      if (checkpoint && !checkpointMismatch(checkpoint, segments, fs, this.#logDir)) usable = checkpoint;
    } catch {
      // Unreadable, or its segment cannot be opened (a head not created yet on a full disk): replay it all, as an
      // open that cannot use its index does.
      usable = undefined;
    }
    this.recovery.checkpoint = usable;
  }

  /**
   * Calls onEntry for every record in log order: from the checkpoint's position when the index is usable
   * (returning its state), otherwise from the first record (state undefined). Meant to be called once, right
   * after open, before appending; or with `fromStart`, from the first record whatever the index (state undefined),
   * to rebuild a fold after a cut back. `onDamaged` is called, in log order, before the first record after each
   * stretch the scan stepped over (damage recovery quarantined), with what can be made out of it.
   */
  replay(
    onEntry: (entry: LogEntry) => boolean | void,
    fromStart = false,
    onDamaged?: (stretch: DamagedStretch) => void,
  ): { state: Buffer | undefined; summary: LogScanSummary } {
    this.#assertOpen();
    const cp = fromStart ? undefined : this.recovery.checkpoint;
    // Records follow each other without a byte between them, so a record that does not start where the previous
    // one ended (or, first in its segment, right after the header) follows a stretch the scanner stepped over.
    let segmentId = cp?.position.segmentId ?? 0;
    let offset = cp?.position.offset ?? SEGMENT_HEADER_BYTES;
    let seq = cp ? cp.position.nextSeq - 1 : 0;
    const summary = scanLog(this.#opts.fs, this.#logDir, {
      from: cp?.position,
      fromEpoch: cp?.epoch,
      codec: this.#codec,
      onEntry: onDamaged === undefined ? onEntry : (e) => {
        const start = e.segmentId === segmentId ? offset : SEGMENT_HEADER_BYTES;
        if (e.offset > start) onDamaged(readDamagedStretch(this.#opts.fs, this.#logDir, e.segmentId, start, e.offset, seq, e.seq));
        segmentId = e.segmentId;
        offset = e.offset + e.size;
        seq = e.seq;
        return onEntry(e);
      },
    });
    return { state: cp?.state, summary };
  }

  /**
   * Writes `state` as the checkpoint at `upTo` (default: after every record appended so far). Syncs the log first,
   * so the index never covers records that a power loss could still take away. Resolves without writing when a
   * failed write was cut back meanwhile (the 'cut' event): the state may hold records that are not in the log.
   */
  async checkpoint(state: Buffer, upTo?: RecordPointer): Promise<void> {
    this.#assertOpen();
    // The position is taken now, before any await: `state` describes this moment, and appends made from here on
    // come after it and must be replayed.
    const position: LogPosition = upTo
      ? { nextSeq: upTo.seq + 1, segmentId: upTo.segmentId, offset: upTo.offset + upTo.size }
      : this.#writer.position;
    const cuts = this.#writer.cuts;
    // One at a time: they share index.tmp. Each is whole on its own, so a later one simply follows.
    while (this.#checkpointing) await this.#checkpointing.catch(() => undefined);
    const run = this.#checkpointNow(state, position, cuts);
    this.#checkpointing = run;
    try {
      await run;
    } finally {
      if (this.#checkpointing === run) this.#checkpointing = undefined;
    }
  }


  async #checkpointNow(state: Buffer, position: LogPosition, cuts: number): Promise<void> {
    await this.#writer.sync();
    // A failed batch was cut back since the state was taken: it may describe records that are gone, and its
    // position may fall inside records written since. Not written; the next checkpoint covers this moment.
    if (this.#writer.cuts !== cuts) return;
    const segments = [...this.#generations]
      .filter(([id]) => id <= position.segmentId)
      .map(([segmentId, generation]) => ({ segmentId, generation }))
      .sort((a, b) => a.segmentId - b.segmentId);
    await writeCheckpointFile(this.#opts.fs, path.join(this.dir, INDEX_FILE), {
      position,
      epoch: this.epoch,
      segments,
      state,
    });
  }

  /**
   * Reclaims space in sealed segments: deletes those with no live record, rewrites sparse ones (compactor.ts).
   * Appends go on meanwhile. The caller must update pointers from `relocated` and should checkpoint after.
   */
  compact(isLive: (entry: LogEntry) => boolean, opts?: CompactOptions): Promise<CompactionResult> {
    this.#assertOpen();
    if (this.#compacting) return Promise.reject(new SpoolError('ERR_INVALID_ARG', 'a compaction is already running'));
    const sealed = [...this.#generations.keys()].filter((id) => id < this.#writer.headSegmentId).sort((a, b) => a - b);
    const run = compactLog(this.#opts.fs, this.#logDir, {
      segments: sealed.map((id) => ({ segmentId: id, generation: this.#generations.get(id)! })),
      isLive,
      codec: this.#codec,
      epoch: this.epoch,
      durable: this.#opts.durability !== 'none',
      ...opts,
      onSegmentChanged: (id, generation) => {
        this.#reader.invalidate(id);
        if (generation === undefined) this.#generations.delete(id);
        else this.#generations.set(id, generation);
      },
    });
    this.#compacting = run;
    return run.finally(() => {
      this.#compacting = undefined;
    });
  }

  /** A full read-only check of every segment (verify.ts). */
  verify(opts: { decode?: boolean } = {}): VerifyReport {
    this.#assertOpen();
    return verifyLog(this.dir, { fs: this.#opts.fs, codec: opts.decode ? this.#codec : undefined });
  }

  /** Resolves when everything appended so far is synced, whatever the durability mode. */
  sync(): Promise<void> {
    return this.#writer.sync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#compacting?.catch(() => undefined);
      await this.#checkpointing?.catch(() => undefined);
      await this.#writer.close();
    } finally {
      this.#reader.close();
      await this.#unlock?.().catch(() => undefined);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new SpoolError('ERR_CLOSED', 'the log is closed');
  }
}

/**
 * Creates the fresh head segment at open. On a disk with no room it is left for the writer's first flush to
 * create (fd -1, writer.ts: A full disk at open), so that a full disk still opens and serves reads; a half-made
 * file is removed so that the later creation (O_EXCL) finds the name free.
 */
function createHead(fs: Fs, logDir: string, header: Parameters<typeof createSegment>[2]): number {
  try {
    return createSegment(fs, logDir, header, true);
  } catch (err) {
    if (!isNoSpace(err)) throw err;
    try {
      fs.unlinkSync(segmentPath(logDir, header.segmentId));
    } catch (unlinkErr) {
      if ((unlinkErr as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('remove a half-made head segment', unlinkErr);
    }
    return -1;
  }
}

/** A pointer whose fields are integers in range: anything else is a caller's mistake, not a missing record. */
function isPointer(ptr: RecordPointer): boolean {
  if (ptr === null || typeof ptr !== 'object') return false;
  const { seq, segmentId, offset, size } = ptr;
  return Number.isSafeInteger(seq) && seq >= 1 && Number.isSafeInteger(segmentId) && segmentId >= 1 &&
    Number.isSafeInteger(offset) && offset >= SEGMENT_HEADER_BYTES &&
    Number.isSafeInteger(size) && size >= RECORD_HEADER_BYTES && size <= RECORD_HEADER_BYTES + MAX_PAYLOAD_BYTES;
}
