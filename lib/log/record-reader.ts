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
import { RECORD_HEADER_BYTES, checkRecord, readRecordHeader } from '../format/record.js';
import type { RecordCodec } from '../codec/record-codec.js';
import { closeQuietly, openOrThrow, readFully, type Fs } from './fs.js';
import { toEntry, type LogEntry } from './log-scan.js';
import { segmentPath } from './segment-files.js';
import type { RecordPointer } from './writer.js';

const MAX_OPEN_SEGMENTS = 8;

export class RecordReader {
  readonly #fs: Fs;
  readonly #logDir: string;
  readonly #codec: RecordCodec | undefined;
  readonly #fds = new Map<number, number>();

  constructor(fs: Fs, logDir: string, codec: RecordCodec | undefined) {
    this.#fs = fs;
    this.#logDir = logDir;
    this.#codec = codec;
  }

  read(ptr: RecordPointer): LogEntry {
    const fd = this.#fd(ptr.segmentId);
    const buf = Buffer.allocUnsafe(Math.max(ptr.size, RECORD_HEADER_BYTES));
    const n = readFully(this.#fs, fd, buf, 0, buf.length, ptr.offset);
    const check = checkRecord(buf, 0, n);
    if (check.kind !== 'ok') {
      const code = check.kind === 'bad' ? 'ERR_CORRUPT_RECORD' : 'ERR_NOT_FOUND';
      throw new SpoolError(code, `no valid record ${ptr.seq} at segment ${ptr.segmentId} offset ${ptr.offset} (${check.kind})`);
    }
    const header = readRecordHeader(buf, 0);
    if (header.seq !== ptr.seq || header.segmentId !== ptr.segmentId) {
      throw new SpoolError('ERR_NOT_FOUND', `record ${ptr.seq} is not at segment ${ptr.segmentId} offset ${ptr.offset}`);
    }
    return toEntry({ header, offset: ptr.offset, size: check.size, buf, at: 0 }, this.#codec);
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
    const fd = this.#fds.get(segmentId);
    if (fd === undefined) return;
    this.#fds.delete(segmentId);
    closeQuietly(this.#fs, fd);
  }

  close(): void {
    for (const fd of this.#fds.values()) closeQuietly(this.#fs, fd);
    this.#fds.clear();
  }
}
