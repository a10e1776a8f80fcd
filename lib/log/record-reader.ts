/**
 * Random reads of single records by pointer (segment, offset, seq): how job data is fetched without scanning.
 *
 * Keeps a few segment fds open (most recently used first). An fd stays valid after compaction renames a new
 * generation over its file (it still reads the old inode, where the old offsets hold), but the pointers the caller
 * has then point into the new generation, so compaction calls invalidate() for the segments it rewrote.
 * A record is returned only if it is whole, passes its crc and has the seq the pointer names; otherwise
 * ERR_NOT_FOUND (nothing there) or ERR_CORRUPT_RECORD (something damaged there).
 */
import { SpoolError } from '../errors.js';
import { RECORD_BAD, RECORD_HEADER_BYTES, RECORD_ZERO, readRecordHeader, readU64, recordSize } from '../format/record.js';
import type { PayloadDecoder, RecordCodec } from '../codec/record-codec.js';
import { closeQuietly, openOrThrow, readFully, type Fs } from './fs.js';
import { toEntry, type LogEntry } from './log-scan.js';
import { segmentPath } from './segment-files.js';
import type { RecordPointer } from './writer.js';

const MAX_OPEN_SEGMENTS = 8;
/**
 * Read-ahead. A read that starts at or just after where the previous one ended (workers take jobs in the order they
 * were added, so their ADD records are read in log order) reads this much instead of one record, and the next
 * reads inside it come from memory: one pread per window instead of one per job (benchmarks/README.md,
 * queue-process). A window holds only bytes that were in the file when it was read, and bytes once written are
 * never rewritten in place: compaction renames a new generation over a segment and calls invalidate(), which drops
 * the window together with the fd. So a window is exactly as fresh as the cached fd, and every record served from
 * it is still checked (crc, seq, segment) like a direct read, which it falls back to otherwise.
 */
const READ_AHEAD_BYTES = 64 * 1024;

export class RecordReader {
  readonly #fs: Fs;
  readonly #logDir: string;
  readonly #codec: RecordCodec | undefined;
  readonly #fds = new Map<number, number>();
  #window: { segmentId: number; start: number; end: number; buf: Buffer } | undefined;
  /** The buffer #locate found the record in. */
  #found: Buffer | undefined;
  /** Where the previous direct read ended: a read starting near there reads ahead. */
  #nextSegmentId = -1;
  #nextOffset = 0;

  constructor(fs: Fs, logDir: string, codec: RecordCodec | undefined) {
    this.#fs = fs;
    this.#logDir = logDir;
    this.#codec = codec;
  }

  read(ptr: RecordPointer): LogEntry {
    const at = this.#locate(ptr);
    const buf = this.#found!;
    const size = RECORD_HEADER_BYTES + buf.readUInt32LE(at + 12);
    return toEntry({ header: readRecordHeader(buf, at), offset: ptr.offset, size, buf, at }, this.#codec);
  }

  /**
   * Decodes the payload of the record at ptr with `decoder`, which gets the bytes in place: a plain payload in the
   * read buffer itself, without a copy, a view or a header object (this runs once per job processed). Read
   * buffers are never written again after the read; the decoder must not write to them or keep them.
   */
  decode<T>(ptr: RecordPointer, decoder: PayloadDecoder<T>): T {
    if (!this.#codec) throw new TypeError('no codec given to decode payloads');
    const at = this.#locate(ptr);
    return this.#codec.decodeWith(this.#found!, at, decoder);
  }

  /**
   * Finds the whole, checked record `ptr` names, in the read-ahead window or by a direct read; leaves its buffer
   * in #found and returns its offset there. Throws ERR_NOT_FOUND (nothing there) or ERR_CORRUPT_RECORD.
   */
  #locate(ptr: RecordPointer): number {
    const w = this.#window;
    if (w && w.segmentId === ptr.segmentId && ptr.offset >= w.start && ptr.offset + ptr.size <= w.end) {
      const at = ptr.offset - w.start;
      if (recordSize(w.buf, at, w.end - w.start) > 0 && names(w.buf, at, ptr)) {
        this.#found = w.buf;
        return at;
      }
      // Not there after all: fall through to a direct read, which reports what it finds.
    }
    const sequential = this.#nextSegmentId === ptr.segmentId && ptr.offset >= this.#nextOffset &&
      ptr.offset - this.#nextOffset < READ_AHEAD_BYTES;
    this.#nextSegmentId = ptr.segmentId;
    this.#nextOffset = ptr.offset + ptr.size;
    const fd = this.#fd(ptr.segmentId);
    const buf = Buffer.allocUnsafe(Math.max(ptr.size, RECORD_HEADER_BYTES, sequential ? READ_AHEAD_BYTES : 0));
    const n = readFully(this.#fs, fd, buf, 0, buf.length, ptr.offset);
    if (sequential) this.#window = { segmentId: ptr.segmentId, start: ptr.offset, end: ptr.offset + n, buf };
    const size = recordSize(buf, 0, n);
    if (size <= 0) {
      const kind = size === RECORD_BAD ? 'bad' : size === RECORD_ZERO ? 'zero' : 'incomplete';
      throw new SpoolError(kind === 'bad' ? 'ERR_CORRUPT_RECORD' : 'ERR_NOT_FOUND', `no valid record ${ptr.seq} at segment ${ptr.segmentId} offset ${ptr.offset} (${kind})`);
    }
    if (!names(buf, 0, ptr)) {
      throw new SpoolError('ERR_NOT_FOUND', `record ${ptr.seq} is not at segment ${ptr.segmentId} offset ${ptr.offset}`);
    }
    this.#found = buf;
    return 0;
  }

  #fd(segmentId: number): number {
    let fd = this.#fds.get(segmentId);
    if (fd !== undefined) {
      this.#fds.delete(segmentId);
      this.#fds.set(segmentId, fd);
      return fd;
    }
    try {
      fd = openOrThrow(this.#fs, segmentPath(this.#logDir, segmentId), 'r');
    } catch (err) {
      if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') {
        throw new SpoolError('ERR_NOT_FOUND', `segment ${segmentId} does not exist`, { cause: err });
      }
      throw err;
    }
    this.#fds.set(segmentId, fd);
    if (this.#fds.size > MAX_OPEN_SEGMENTS) {
      const [oldId, oldFd] = this.#fds.entries().next().value as [number, number];
      this.#fds.delete(oldId);
      closeQuietly(this.#fs, oldFd);
    }
    return fd;
  }

  /** Forgets the cached fd of a segment that was rewritten or deleted. */
  invalidate(segmentId: number): void {
    if (this.#window?.segmentId === segmentId) this.#window = undefined;
    if (this.#nextSegmentId === segmentId) this.#nextSegmentId = -1;
    const fd = this.#fds.get(segmentId);
    if (fd === undefined) return;
    this.#fds.delete(segmentId);
    closeQuietly(this.#fs, fd);
  }

  close(): void {
    this.#window = undefined;
    this.#found = undefined;
    for (const fd of this.#fds.values()) closeQuietly(this.#fs, fd);
    this.#fds.clear();
  }
}

/** True when the record at buf[at] has the seq and segment the pointer names. */
function names(buf: Buffer, at: number, ptr: RecordPointer): boolean {
  return readU64(buf, at + 16) === ptr.seq && readU64(buf, at + 24) === ptr.segmentId;
}
