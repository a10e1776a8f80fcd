/**
 * The log's one writer: sequence numbers, group commit, durability modes, segment rolls, sticky errors.
 *
 * Owns the head segment's fd and everything appended after open. Does not own recovery (recovery.ts hands it a
 * clean head) or reading.
 *
 * Group commit. append() encodes the record at once into the pending batch buffer (so a bad payload fails its
 * own call and nothing else) and schedules a flush with setImmediate: every append made in the same turn of the
 * event loop, including those made by callbacks of the previous batch's promises, shares one write() and one
 * fdatasync(). While a sync is in flight new appends keep collecting; the next flush starts when it returns.
 * A batch of one or two records is synced inline instead (see INLINE_SYNC_MAX_RECORDS): when appends come one at
 * a time, the async hop only adds latency.
 *
 * Durability, i.e. when append() resolves:
 *   fsync  after an fdatasync that began after the record's bytes were written: survives power loss.
 *   batch  after the write() into the page cache; an fdatasync follows within batchIntervalMs. Survives a crash
 *          of the process; on power loss the last interval's records may be lost.
 *   none   after the write(); no fsync except at rolls and close. Survives a crash of the process, not of the
 *          machine.
 *
 * Rolls. A record goes to a new segment when it would push the head past maxSegmentBytes (a record larger than
 * that gets a segment to itself). The old head is fsynced in every mode, because sync(), close() and checkpoints
 * only sync the head: in fsync mode at once, in the others on the thread pool with sync() and close() waiting for
 * it. The new one is created durably (segment-files.ts). Records never span segments.
 *
 * Preallocation (fsync mode). fdatasync after an append that grows the file must also commit the new size
 * (on ext4 a journal commit: two device flushes), while one after an overwrite inside the file flushes only
 * the data: ~1.45× as many syncs a second on this machine (benchmarks/README.md). So in fsync mode the head is
 * extended ahead of the data with written zeros, preallocateBytes at a time (never past maxSegmentBytes, unless a
 * record needs it), and appends overwrite them. The format already reads an all-zero region as the end of data:
 * after a crash, recovery cuts the zeros off the last segment like any torn tail. A segment is cut back to its
 * data (ftruncate, then its fsync) when it is sealed at a roll and at close, so sealed segments never end in
 * zeros.
 *
 * Failed writes: the cut back. A batch whose write() (or segment creation, or preallocation) fails is taken
 * back whole: the segments this flush created are closed, unlinked and the directory fsynced; the head it
 * started in is reopened if a roll closed it, truncated to where the batch began and fsynced. So after the cut,
 * in every mode, the files hold exactly the records appended before the batch: a record whose append was
 * rejected is not in the log, now or after a crash or a power loss (the truncation is durable before the
 * rejection is reported). onCutBack tells the layer above, before any append is rejected, so that it can make its
 * state the fold of the log again (it folded those records when they were appended). A checkpoint whose position
 * was taken before a cut is not written (log.ts). The rejection says "…; the records of this batch were cut back".
 *
 * Seqs are never handed out twice. A reader in another process (the tailer, QueueEvents, the CLI) takes no lock
 * and reads the page cache, so it may read a record of a failed batch in the moment between its write and the cut
 * (nothing can prevent that; tailer.ts says what it does about it). If the next records reused those seqs at the
 * same offsets, it could not tell them from the ones it read: it would skip the real ones as already seen and take
 * their bytes, read from the middle of the doomed ones, for damage. So the cut keeps #nextSeq where the batch
 * left it (the batch's seqs are simply never used; seqs rise, with gaps) and the next record starts a fresh
 * segment, named by its seq as every segment is: the cut segment only ever ends, at the cut, and never grows
 * again, which is what tailers and the scanner's "a sealed segment is final" rule rely on. (A head that was never
 * created, a full disk at open, is created under the next seq's name instead.) Nothing needs seqs to be
 * contiguous: the scanner checks that they rise within a segment and stay below the next segment's id, replay and
 * checkpoints carry positions (segment, offset, next seq), recovery takes max(last seq + 1, last segment id), and
 * job ids made from seqs stay unique. A cut that empties a segment leaves it empty and sealed (readers read
 * nothing in it; compaction deletes it). One gap remains: the skip is on disk only once the fresh segment is; a
 * crash before that reopens with nextSeq at the cut, so the new owner reuses those seqs, in a new segment, under
 * a new epoch: the tailer treats a segment named at or below a seq it delivered as the sign of that (tailer.ts).
 *
 * Failed fsyncs. A failed fsync or fdatasync of the head is sticky (below: the kernel may have dropped the pages,
 * and a retry could report success for data that is gone). What it covered decides what else happens:
 *   fsync  the batch written just before it, whose appends are not acknowledged yet (their promises wait for
 *          this sync): it is cut back exactly like a failed write, with onCutBack, and rejected with "…; the
 *          records of this batch were cut back". Records appended meanwhile (not written) are rejected too; they
 *          come after the cut point, so the same onCutBack covers them. The batches before were synced by their
 *          own fsyncs, so after the cut (truncation and its fsync succeeded) the files are the acknowledged
 *          records, durably. A crash before the truncation is the crash story of a cut: unacknowledged records,
 *          present or not. If the cut fails, the error says the outcome is unknown until reopen.
 *   batch, none  records already acknowledged at write(): they are not cut (a caller was told they exist; taking
 *          them back would be a lie the other way), and the error says their outcome is unknown until the queue
 *          is reopened: they may survive, or, on a power loss, be gone. Appends not yet written are rejected and
 *          onCutBack(their first seq, []) tells the layer above they are not in the log. The same holds for the
 *          background fdatasync of a sealed segment.
 * A failed fsync inside a flush (a roll in fsync mode, a new segment's creation) is a failed write: that batch is
 * cut back, the error names the fsync.
 *
 * Errors, and when they are sticky. A write() that failed with ENOSPC or EDQUOT (no room) and was cut back cleanly
 * rejects that batch only: nothing on disk or in the page cache is lost by a refused allocation, the files are
 * exactly the acknowledged records, and a disk that was full is usually freed again, so the writer accepts the
 * next append (a queue on a full disk keeps serving and refuses adds, rather than dying until reopened). Every
 * other failure is sticky: the writer rejects that batch and every later append with the same ERR_IO and never
 * writes again; reopening recovers. That covers any failed fsync or fdatasync (whatever its errno, ENOSPC
 * included): after a failed fsync the kernel may already have dropped the dirty pages, and retrying would report
 * success for data that is gone (DESIGN §3). It covers a write error other than no-room (EIO: the device). And if
 * the cut back itself fails, the error says that the outcome of the batch is unknown (its records may or may not
 * be found by the next open) and is sticky; so is a cut after which onCutBack throws (the state above could not
 * be made to match the log). A reader in another process that tails the head (QueueEvents, the CLI) may see a
 * record of the batch in the moment between its write and the cut (above: Seqs are never handed out twice).
 *
 * Crash story of a cut: a crash before the truncation leaves the batch's bytes, whole records or a torn one; the
 * appends were not acknowledged (their promises were still pending), so either outcome is allowed, and recovery
 * truncates a torn tail as usual. A crash after the truncation and its fsync leaves the log as before the batch. A
 * segment created by the failed flush and not yet unlinked is empty or holds only the batch's records; a crash
 * leaves it as the last segment, which recovery reads (unacknowledged records, allowed) or removes (a bad header).
 *
 * A full disk at open. Opening creates a fresh head segment (log.ts); when that fails for want of room the head is
 * left uncreated (fd -1) and the first flush creates it, so a queue on a full disk opens, serves reads, and
 * refuses adds with ENOSPC until there is room again.
 */
import { SpoolError, invalidArg, ioError } from '../errors.js';
import { SEGMENT_HEADER_BYTES } from '../format/segment-header.js';
import { maxPayloadBytes, type Payload, type RecordCodec } from '../codec/record-codec.js';
import { closeQuietly, fsyncDir, writeFully, type Fs } from './fs.js';
import { createSegment, segmentPath } from './segment-files.js';

export type Durability = 'fsync' | 'batch' | 'none';

/** Where a record lies: enough to read it back without scanning. */
export interface RecordPointer {
  seq: number;
  segmentId: number;
  /** Byte offset of the record in its segment file. */
  offset: number;
  /** Whole record size on disk. */
  size: number;
}

export interface WriterOptions {
  durability: Durability;
  maxSegmentBytes: number;
  batchIntervalMs: number;
  epoch: number;
  /** Zeros kept ahead of the data in the head (header: Preallocation); 0 turns it off. */
  preallocateBytes?: number;
}

export interface WriterHead {
  segmentId: number;
  /** -1 while the head file is not created yet (a full disk at open: header, A full disk at open). */
  fd: number;
  /** Bytes in the file; appends go here. */
  size: number;
}

interface Run {
  segmentId: number;
  start: number;
  end: number;
}

/** Where a flush's batch began: the head and its size, and the batch's first seq. */
interface BatchStart {
  segmentId: number;
  size: number;
  seq: number;
}

interface Waiter {
  ptr: RecordPointer;
  resolve: (ptr: RecordPointer) => void;
  reject: (err: Error) => void;
}

const INITIAL_BATCH_BYTES = 1 << 20;
const ZEROS = Buffer.alloc(1 << 20);
/** fsync mode syncs batches of at most this many records on the calling thread; larger ones asynchronously. */
const INLINE_SYNC_MAX_RECORDS = 2;

export class LogWriter {
  readonly #fs: Fs;
  readonly #logDir: string;
  readonly #codec: RecordCodec;
  readonly #opts: WriterOptions;
  readonly #epoch: number;
  #head: WriterHead;
  /** The head file's size: past head.size it holds preallocated zeros (fsync mode). */
  #allocated: number;
  /** Segment and size the head will have once the pending batch is written. */
  #tailSegmentId: number;
  #tailSize: number;
  #nextSeq: number;

  #buf = Buffer.allocUnsafe(INITIAL_BATCH_BYTES);
  #used = 0;
  #runs: Run[] = [];
  #waiters: Waiter[] = [];
  #scheduled = false;
  /** Records encoded into the batch buffer, not yet handed to write(). */
  #pending = 0;
  /** whenAppendedDurable()'s promise for the batch being collected. */
  #shared: Promise<RecordPointer> | undefined;
  #lastPtr: RecordPointer | undefined;
  #syncing = false;
  #batchTimer: NodeJS.Timeout | undefined;
  #unsynced = false;
  #failed: SpoolError | undefined;
  #closed = false;
  /** Sealed segments whose background fdatasync has not returned yet. */
  #sealing = 0;
  #sealWaiters: Array<() => void> = [];
  #idle: Array<() => void> = [];
  /** Called after each batch is written (not necessarily synced). */
  onWrite: ((nextSeq: number) => void) | undefined;
  /** Called when a roll has created a new segment. */
  onRoll: ((segmentId: number) => void) | undefined;
  /**
   * Called when a failed batch was cut back (header: Failed writes), before its appends are rejected: records
   * from `nextSeq` on are not in the log, and the segments `removed` are gone.
   */
  onCutBack: ((nextSeq: number, removed: number[]) => void) | undefined;
  /** Cuts made so far: a checkpoint taken across one would cover records that are gone. */
  #cuts = 0;
  /** Segments the flush in progress created (rolls, or the deferred head): what a cut back removes. */
  #created: number[] = [];
  /**
   * fsync mode: the batch written and not yet synced, i.e. not yet acknowledged: where it began and the segments
   * it created. A failed fsync cuts it back (header: Failed fsyncs).
   */
  #unacked: { start: BatchStart; created: number[] } | undefined;
  /** After a cut back the next record starts a fresh segment (header: Seqs are never handed out twice). */
  #rollNext = false;
  /** True while the flush in progress is inside an fsync: a failure there is sticky, whatever its errno. */
  #inSync = false;
  /**
   * Called as a flush begins, before the batch is taken: records it appends join this batch (the queue's START
   * records, which sum up a turn of the event loop, are appended here). Must not throw.
   */
  beforeFlush: (() => void) | undefined;

  constructor(fs: Fs, logDir: string, codec: RecordCodec, opts: WriterOptions, head: WriterHead, nextSeq: number) {
    this.#fs = fs;
    this.#logDir = logDir;
    this.#codec = codec;
    this.#opts = opts;
    this.#epoch = opts.epoch;
    this.#head = head;
    this.#allocated = head.size;
    this.#tailSegmentId = head.segmentId;
    this.#tailSize = head.size;
    this.#nextSeq = nextSeq;
  }

  /** The seq the next append will get. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  get headSegmentId(): number {
    return this.#head.segmentId;
  }

  /** The position after the last record appended (written or still pending). */
  get position(): { nextSeq: number; segmentId: number; offset: number } {
    return { nextSeq: this.#nextSeq, segmentId: this.#tailSegmentId, offset: this.#tailSize };
  }

  /** How many failed batches were cut back so far. */
  get cuts(): number {
    return this.#cuts;
  }

  /** The sticky error, if the writer has failed. */
  get failure(): SpoolError | undefined {
    return this.#failed;
  }

  append(type: number, payload: Payload): Promise<RecordPointer> {
    try {
      return this.appendTracked(type, payload).done;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * append(), but the record's pointer is returned at once (seq and place are fixed when the record is encoded)
   * beside the promise of its durability. Throws, rather than rejects, when the record is refused: the layer above
   * folds the record into its state right away, in log order, and must know at once whether it exists.
   */
  appendTracked(type: number, payload: Payload): { ptr: RecordPointer; done: Promise<RecordPointer> } {
    const ptr = this.appendUntracked(type, payload);
    const done = new Promise<RecordPointer>((resolve, reject) => this.#waiters.push({ ptr, resolve, reject }));
    return { ptr, done };
  }

  /**
   * A promise that settles as appendTracked()'s would for the last record appended: once every record appended
   * so far is as durable as the mode promises. Calls between two flushes share one promise, so a caller that
   * appends many records with appendUntracked() pays for one promise per batch, not one per record.
   */
  whenAppendedDurable(): Promise<RecordPointer> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#pending === 0) return this.whenIdle().then(() => this.#lastPtr!);
    if (this.#shared) return this.#shared;
    const ptr = this.#lastPtr!;
    this.#shared = new Promise<RecordPointer>((resolve, reject) => this.#waiters.push({ ptr, resolve, reject }));
    return this.#shared;
  }

  /**
   * appendTracked() without the promise, for a caller that appends many records and awaits only the last one's
   * (group commit settles them in log order, so the last settles after all the others, and with their error).
   */
  appendUntracked(type: number, payload: Payload): RecordPointer {
    if (this.#closed) throw new SpoolError('ERR_CLOSED', 'the log is closed');
    if (this.#failed) throw this.#failed;
    if (!Number.isInteger(type) || type < 1 || type > 255) throw invalidArg(`record type must be 1..255`);
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) throw invalidArg('payload must be a Buffer or a string');
    const ptr = this.#encode(type, payload);
    this.#lastPtr = ptr;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return ptr;
  }

  /** The seq of the first record not yet handed to write() (records before it can be read back). */
  get writtenSeq(): number {
    return this.#nextSeq - this.#pending;
  }

  #encode(type: number, payload: Payload): RecordPointer {
    const max = this.#codec.maxRecordBytes(maxPayloadBytes(payload));
    // The roll is decided here but committed only once the record is encoded: a payload the codec refuses
    // (ERR_TOO_LARGE) must leave the position as it was, or a checkpoint would name a segment never created.
    const roll = this.#rollNext || (this.#tailSize + max > this.#opts.maxSegmentBytes && this.#tailSize > SEGMENT_HEADER_BYTES);
    const segmentId = roll ? this.#nextSeq : this.#tailSegmentId;
    const offset = roll ? SEGMENT_HEADER_BYTES : this.#tailSize;
    if (this.#used + max > this.#buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#used + max));
      this.#buf.copy(bigger, 0, 0, this.#used);
      this.#buf = bigger;
    }
    const seq = this.#nextSeq;
    const size = this.#codec.encodeFields(this.#buf, this.#used, type, seq, segmentId, this.#epoch, payload);
    const last = this.#runs[this.#runs.length - 1];
    if (last && last.segmentId === segmentId) last.end += size;
    else this.#runs.push({ segmentId, start: this.#used, end: this.#used + size });
    const ptr = { seq, segmentId, offset, size };
    this.#rollNext = false;
    this.#used += size;
    this.#tailSegmentId = segmentId;
    this.#tailSize = offset + size;
    this.#nextSeq = seq + 1;
    this.#pending++;
    return ptr;
  }

  /** Makes sure a flush runs soon (setImmediate), for a beforeFlush with records to add when nothing else is pending. */
  requestFlush(): void {
    if (this.#scheduled || this.#closed || this.#failed) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.beforeFlush?.(); // while #scheduled still holds, so what it appends schedules no second flush
    this.#scheduled = false;
    if (this.#used === 0 || this.#failed) return this.#maybeIdle();
    // fsync mode waits for the sync in flight: its waiters need a sync that starts after their write. The other
    // modes write on, unless a roll would close the fd that the background sync is using.
    if (this.#syncing && (this.#opts.durability === 'fsync' || this.#runs.length > 1 ||
        this.#runs[0]!.segmentId !== this.#head.segmentId)) return;
    const waiters = this.#waiters;
    const start: BatchStart = { segmentId: this.#head.segmentId, size: this.#head.size, seq: this.#nextSeq - this.#pending };
    try {
      for (const run of this.#runs) {
        if (run.segmentId !== this.#head.segmentId) this.#roll(run.segmentId);
        else if (this.#head.fd < 0) {
          this.#head.fd = this.#newSegment(run.segmentId);
          this.onRoll?.(run.segmentId); // the deferred head exists now (its generation, for checkpoints)
        }
        if (this.#opts.preallocateBytes) this.#preallocate(this.#head.size + run.end - run.start);
        writeFully(this.#fs, this.#head.fd, this.#buf, run.start, run.end - run.start, this.#head.size);
        this.#head.size += run.end - run.start;
      }
    } catch (err) {
      return this.#writeFailed(err, start);
    }
    // Not acknowledged until its sync returns in fsync mode: keep what a cut back needs. The other modes
    // acknowledge now (below), so a later failed fsync cannot take the batch back.
    if (this.#opts.durability === 'fsync') this.#unacked = { start, created: this.#created };
    this.#created = [];
    const records = this.#pending;
    this.#used = 0;
    this.#runs = [];
    this.#waiters = [];
    this.#shared = undefined;
    this.#pending = 0;
    this.#unsynced = true;
    this.onWrite?.(this.#nextSeq);
    if (this.#opts.durability === 'fsync') {
      if (records > INLINE_SYNC_MAX_RECORDS) return this.#sync(waiters);
      // A small batch means appends arrive one at a time (a lone awaiting appender): nothing would join the batch
      // while the disk works, and a thread-pool round trip costs about as much as the sync itself. Sync inline.
      this.#unsynced = false;
      try {
        this.#fs.fsyncSync(this.#head.fd);
      } catch (err) {
        return this.#syncFailed('fsync the log', err, waiters);
      }
      this.#unacked = undefined;
    }
    for (const w of waiters) w.resolve(w.ptr);
    this.#armBatchTimer();
    this.#maybeIdle();
  };

  /** In batch mode, makes sure an fdatasync follows written bytes within batchIntervalMs. */
  #armBatchTimer(): void {
    if (this.#opts.durability !== 'batch' || this.#batchTimer || !this.#unsynced || this.#failed) return;
    this.#batchTimer = setTimeout(() => {
      this.#batchTimer = undefined;
      // A sync in flight may have started before the latest write; its completion re-arms this timer.
      if (!this.#syncing && !this.#closed) this.#sync([]);
    }, this.#opts.batchIntervalMs);
    this.#batchTimer.unref();
  }

  /** One async fdatasync of the head; resolves `waiters` when it returns. */
  #sync(waiters: Waiter[]): void {
    this.#syncing = true;
    this.#unsynced = false;
    this.#fs.fdatasync(this.#head.fd, (err) => {
      this.#syncing = false;
      if (err) return this.#syncFailed('fdatasync the log', err, waiters);
      this.#unacked = undefined;
      for (const w of waiters) w.resolve(w.ptr);
      this.#armBatchTimer();
      if (this.#used > 0 && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      } else {
        this.#maybeIdle();
      }
    });
  }

  /** Makes the head file at least `end` bytes long, zeros past the data (header: Preallocation). */
  #preallocate(end: number): void {
    if (end <= this.#allocated) return;
    const target = Math.max(end, Math.min(this.#head.size + this.#opts.preallocateBytes!, this.#opts.maxSegmentBytes));
    for (let at = this.#allocated; at < target; ) {
      const n = Math.min(ZEROS.length, target - at);
      writeFully(this.#fs, this.#head.fd, ZEROS, 0, n, at);
      at += n;
    }
    this.#allocated = target;
  }

  /** Cuts preallocated zeros off the head, so that it ends with its data. */
  #trimHead(): void {
    if (this.#allocated === this.#head.size) return;
    this.#fs.ftruncateSync(this.#head.fd, this.#head.size);
    this.#allocated = this.#head.size;
  }

  #roll(segmentId: number): void {
    this.#trimHead();
    const old = this.#head;
    // fsync mode: records of this very batch may lie in the old segment, and their waiters resolve after the
    // head's sync, so the old one is synced here. Other modes acknowledge at write(): the sealed segment is synced
    // on the thread pool (a 64 MiB fsync blocks for a long time) and sync()/close() wait for it.
    if (this.#opts.durability === 'fsync') {
      this.#inSync = true;
      this.#fs.fsyncSync(old.fd);
      this.#inSync = false;
    }
    const fd = this.#newSegment(segmentId);
    if (this.#opts.durability === 'fsync') closeQuietly(this.#fs, old.fd);
    else this.#seal(old.fd);
    this.#head = { segmentId, fd, size: SEGMENT_HEADER_BYTES };
    this.#allocated = SEGMENT_HEADER_BYTES;
    this.onRoll?.(segmentId);
  }

  /** Creates segment `segmentId` durably (segment-files.ts) and returns its fd; a cut back removes it again. */
  #newSegment(segmentId: number): number {
    this.#created.push(segmentId);
    const fd = createSegment(this.#fs, this.#logDir, { segmentId, generation: 0, epoch: this.#epoch, createdAt: Date.now() }, false);
    try {
      this.#inSync = true;
      this.#fs.fsyncSync(fd);
      fsyncDir(this.#fs, this.#logDir);
      this.#inSync = false;
    } catch (err) {
      closeQuietly(this.#fs, fd);
      throw ioError(`create segment ${segmentId}`, err);
    }
    return fd;
  }

  /** A flush failed at `cause`: cut the batch back (header: Failed writes), then reject it, sticky or not. */
  #writeFailed(cause: unknown, start: BatchStart): void {
    const inSync = this.#inSync;
    this.#inSync = false;
    const created = this.#created;
    this.#created = [];
    const sticky = inSync || !isNoSpace(cause);
    this.#takeBack(inSync ? 'fsync the log' : 'write to the log', cause, start, created, sticky, []);
  }

  /**
   * An fsync or fdatasync failed (header: Failed fsyncs). Sticky in every case. In fsync mode the batch it
   * covered was not acknowledged: it is cut back like a failed write. Otherwise the records it covered were
   * acknowledged at write(): they stay, and the error says their outcome is unknown; appends not yet written are
   * rejected, and the layer above is told they are not in the log.
   */
  #syncFailed(what: string, cause: unknown, waiters: Waiter[]): void {
    const batch = this.#unacked;
    this.#unacked = undefined;
    if (batch) return this.#takeBack(what, cause, batch.start, batch.created, true, waiters);
    const unwritten = this.#pending > 0 ? this.writtenSeq : undefined;
    const inner = ioError(what, cause);
    const error = new SpoolError(
      'ERR_IO',
      `${inner.message}: records already acknowledged may not be on disk, so their outcome is ` +
        'unknown until the queue is reopened; the log refuses every append from now on',
      { cause: inner.cause ?? cause },
    );
    if (unwritten !== undefined && !this.#failed) {
      this.#used = 0;
      this.#runs = [];
      this.#pending = 0;
      this.#cuts++;
      try {
        this.onCutBack?.(unwritten, []);
      } catch {
        // The writer fails below whatever the layer above did: nothing more is appended on top of its state.
      }
    }
    this.#fail(error, waiters);
  }

  /**
   * Cuts the batch that began at `start` back (header: Failed writes), tells the layer above, and rejects the
   * batch's appends (`inFlight`, plus those waiting): with an error that says the records were cut back, or that
   * their outcome is unknown when the cut itself failed. Sticky unless `sticky` is false and all went well.
   */
  #takeBack(what: string, cause: unknown, start: BatchStart, created: number[], sticky: boolean, inFlight: Waiter[]): void {
    const inner = ioError(what, cause);
    const base = inner.message;
    let removed: number[];
    try {
      removed = this.#cutBack(start, created);
    } catch (cutErr) {
      const code = (e: unknown): string => errnoOf(e) ?? String((e as Error)?.message ?? e);
      return this.#fail(new SpoolError(
        'ERR_IO',
        `${base}, and cutting the log back to its last good end failed too (${code(cutErr)}): ` +
          'whether the records of the failed batch are in the log is unknown until the queue is reopened',
        { cause: inner.cause ?? cause },
      ), inFlight);
    }
    this.#cuts++;
    this.#lastPtr = undefined;
    try {
      this.onCutBack?.(start.seq, removed);
    } catch (foldErr) {
      // The layer above could not make its state match the log again: nothing may be appended on top of it.
      return this.#fail(ioError('rebuild the state after a failed write was cut back', foldErr), inFlight);
    }
    const error = new SpoolError('ERR_IO', `${base}; the records of this batch were cut back`, { cause: inner.cause ?? cause });
    if (sticky) return this.#fail(error, inFlight);
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#shared = undefined;
    this.#pending = 0;
    this.#used = 0;
    this.#runs = [];
    for (const w of waiters) w.reject(error);
    this.#maybeIdle();
  }

  /**
   * Puts the files back to `start` and unlinks the segments the batch `created`; returns those. Throws if it
   * cannot. The seqs of the batch are not handed out again: the next record starts a fresh segment named by its
   * seq (header: Seqs are never handed out twice).
   */
  #cutBack(start: BatchStart, created: number[]): number[] {
    const fs = this.#fs;
    const removed = created;
    let fd = this.#head.segmentId === start.segmentId ? this.#head.fd : -1;
    for (const id of removed) {
      if (this.#head.segmentId === id && this.#head.fd >= 0) closeQuietly(fs, this.#head.fd);
      if (id === start.segmentId) fd = -1; // the deferred head: not created after all
      try {
        fs.unlinkSync(segmentPath(this.#logDir, id));
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw err; // ENOENT: its creation failed before the file existed
      }
    }
    if (removed.length > 0) fsyncDir(fs, this.#logDir);
    const deferred = removed.includes(start.segmentId);
    if (!deferred) {
      if (fd < 0) fd = fs.openSync(segmentPath(this.#logDir, start.segmentId), 'r+'); // a roll closed (or is sealing) it
      fs.ftruncateSync(fd, start.size);
      fs.fsyncSync(fd);
    }
    // A head that was never created (a full disk at open) is simply created under the next seq's name instead.
    const headId = deferred ? this.#nextSeq : start.segmentId;
    this.#head = { segmentId: headId, fd, size: start.size };
    this.#allocated = start.size;
    this.#tailSegmentId = headId;
    this.#tailSize = start.size;
    this.#rollNext = !deferred;
    if (!deferred) this.#unsynced = false;
    return removed;
  }

  /** Syncs and closes a sealed segment's fd in the background; sync() and close() wait for it. */
  #seal(fd: number): void {
    this.#sealing++;
    this.#fs.fdatasync(fd, (err) => {
      closeQuietly(this.#fs, fd);
      this.#sealing--;
      if (err) this.#syncFailed('fdatasync a sealed segment', err, []);
      if (this.#sealing === 0) {
        const waiting = this.#sealWaiters;
        this.#sealWaiters = [];
        for (const fn of waiting) fn();
      }
    });
  }

  #sealed(): Promise<void> {
    if (this.#sealing === 0) return Promise.resolve();
    return new Promise((resolve) => this.#sealWaiters.push(resolve));
  }

  /** Makes the writer fail with `err` from now on (the owner lock was lost). */
  poison(err: SpoolError): void {
    this.#fail(err);
  }

  #fail(err: SpoolError, inFlight: Waiter[] = []): void {
    if (!this.#failed) this.#failed = err;
    const all = inFlight.concat(this.#waiters);
    this.#waiters = [];
    this.#shared = undefined;
    this.#pending = 0;
    this.#used = 0;
    this.#runs = [];
    for (const w of all) w.reject(this.#failed);
    this.#maybeIdle();
  }

  #maybeIdle(): void {
    if (this.#syncing || this.#scheduled || this.#used > 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const fn of idle) fn();
  }

  /** Resolves when every append made so far has been written and synced as its mode promises. */
  whenIdle(): Promise<void> {
    if (!this.#syncing && !this.#scheduled && this.#used === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Writes and fdatasyncs everything appended so far, whatever the mode. Rejects with the sticky error. */
  async sync(): Promise<void> {
    await this.whenIdle();
    await this.#sealed();
    if (this.#failed) throw this.#failed;
    // Another caller woken by the same idle may have started a sync already (it cleared #unsynced): wait for it.
    if (this.#syncing) return this.sync();
    if (!this.#unsynced) return;
    // Only this call waits on the sync: #waiters holds appends made since the idle point, not yet written, which
    // this fdatasync does not cover; they settle when their own batch is written (and synced, in fsync mode).
    await new Promise<void>((resolve, reject) => {
      this.#sync([{ ptr: { seq: -1, segmentId: -1, offset: -1, size: 0 }, resolve: () => resolve(), reject }]);
    });
  }

  /** Flushes and syncs (in every mode), then closes the head. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.sync();
      if (this.#allocated !== this.#head.size && !this.#failed) {
        try {
          this.#trimHead();
          this.#fs.fsyncSync(this.#head.fd);
        } catch (err) {
          // The data is durable already (sync above); the zeros left are cut off by the next open.
          throw ioError('trim the head segment', err);
        }
      }
    } finally {
      this.#closed = true;
      clearTimeout(this.#batchTimer);
      if (this.#head.fd >= 0) closeQuietly(this.#fs, this.#head.fd);
    }
  }
}

/** True when `err` (or an error it wraps) says there is no room: ENOSPC, or EDQUOT (over quota). */
export function isNoSpace(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The errno code of `err` or of the first error it wraps that has one. */
function errnoOf(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && !e.code.startsWith('ERR_')) return e.code;
  }
  return undefined;
}
