/**
 * Reading job contents: data, results, failures and log lines live in the log's records, not in memory (the job
 * table holds pointers to them, DESIGN §3). A read waits for its record to be written (an append not yet flushed),
 * and is one synchronous read when it was written long ago, the common case, so the per-job path awaits nothing.
 */
import type { Log } from '../../log/log.js';
import type { RecordPointer } from '../../log/writer.js';
import type { PayloadDecoder } from '../../codec/record-codec.js';
import { decodeAddData, decodeEvent, type AddEvent } from '../../store/events.js';
import type { JobMeta } from '../../store/job-table.js';

export class JobReads {
  readonly #log: Log;

  constructor(log: Log) {
    this.#log = log;
  }

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
}
