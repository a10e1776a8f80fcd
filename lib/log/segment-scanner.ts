/**
 * Reads the records of one segment file, in order, and classifies whatever is not a record. Never writes.
 *
 * Owns: stepping through a segment by record lengths, reading in large chunks, and deciding for every byte range
 * that is not a valid record whether it is the end of the data or damage. Does not own: what to do about it
 * (recovery.ts truncates and quarantines; verify.ts reports; the tailer waits and looks again).
 *
 * A record is accepted only if its crc matches AND it belongs where it stands: its segment field is this file's
 * id, its seq is above the previous record's, and below the next segment's id when that is known. A valid record
 * that breaks those rules (a duplicate, one written by a fenced-off old owner after the segment was sealed, one
 * copied from elsewhere) is treated like damage.
 *
 * At a range that is not a record, the scanner looks for the next accepted record after it. If there is one, the
 * range [start, next) is damage and scanning goes on from next. If there is none, the range is the tail:
 * 'zero' (never-written bytes), 'incomplete' (a record whose length runs past the end of the file) or 'garbage'.
 *
 * Beside a live writer (readers take no lock: verify, dump, stats, the tailer) the head's bytes change while they
 * are read: zeros (preallocated, or past the end) turn into records. They only ever change that way, front to
 * back: the writer writes one batch after the other at the end of the data, and each write() copies its bytes
 * into the file in order. A read is not atomic against a write, so one read, or the chunk read before the next,
 * can show a record while bytes before it still look zero or half-written. What makes the answer right anyway:
 * once an accepted record was seen at X, every read *started* after that sees the bytes below X as they will
 * stay. So a range is reported as damage only if it was read after the record that ends it had been seen
 * (`settled`); otherwise it is read once more and judged again, and a record that has appeared meanwhile is
 * read as one. Without a writer (recovery, under the owner lock) the second read returns the same bytes and the
 * result is the same as with one read: only a damaged range costs one more read.
 */
import {
  RECORD_BAD,
  RECORD_HEADER_BYTES,
  RECORD_INCOMPLETE,
  RECORD_ZERO,
  badReason,
  findNextRecord,
  readU64,
  recordSize,
  type RecordHeader,
} from '../format/record.js';
import { readFully, type Fs } from './fs.js';

export const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * One record as the scanner hands it to onRecord. The scanner reuses this object (and its header) for every
 * record, as scans call onRecord millions of times: copy what you keep.
 */
export interface ScannedRecord {
  header: RecordHeader;
  /** Byte offset of the record in the segment file. */
  offset: number;
  /** Whole record size: header and payload. */
  size: number;
  /** A buffer holding the record at `at`; valid only during the callback. */
  buf: Buffer;
  at: number;
}

export interface DamagedRange {
  segmentId: number;
  offset: number;
  end: number;
  reason: string;
}

export type TailKind = 'clean' | 'zero' | 'incomplete' | 'garbage';

export interface SegmentScan {
  /** Offset just past the last accepted record (where appending would go). */
  end: number;
  fileSize: number;
  tail: TailKind;
  tailReason?: string;
  damage: DamagedRange[];
  lastSeq: number;
  records: number;
  /** False when onRecord asked to stop early. */
  complete: boolean;
}

export interface ScanOptions {
  segmentId: number;
  /** Byte offset to start at (just past the segment header, or a checkpointed position). */
  from: number;
  /** The seq the previous record had (records must be above it). */
  afterSeq: number;
  /** The next segment's id: records must be below it. Undefined for the head segment. */
  beforeSeq?: number;
  /** Stop reading at this file size instead of the current one (tailers use the size they last saw). */
  fileSize?: number;
  /** Called for each accepted record; return false to stop. */
  onRecord?: (rec: ScannedRecord) => boolean | void;
  chunkBytes?: number;
}

export function scanSegment(fs: Fs, fd: number, opts: ScanOptions): SegmentScan {
  const fileSize = opts.fileSize ?? fs.fstatSync(fd).size;
  const chunk = opts.chunkBytes ?? SCAN_CHUNK_BYTES;
  const { segmentId, beforeSeq, onRecord } = opts;
  const result: SegmentScan = {
    end: opts.from,
    fileSize,
    tail: 'clean',
    damage: [],
    lastSeq: opts.afterSeq,
    records: 0,
    complete: true,
  };
  const belongs = (h: RecordHeader): boolean =>
    h.segmentId === segmentId && h.seq > result.lastSeq && (beforeSeq === undefined || h.seq < beforeSeq);

  let win = Buffer.allocUnsafe(0);
  let winStart = 0;
  let winEnd = 0;
  const load = (start: number, want: number): void => {
    const len = Math.min(Math.max(want, chunk), fileSize - start);
    if (win.length < len) win = Buffer.allocUnsafe(len);
    winStart = start;
    winEnd = start + readFully(fs, fd, win, 0, len, start);
  };

  // Reused for every record (see ScannedRecord).
  const header: RecordHeader = { type: 0, flags: 0, keyId: 0, length: 0, seq: 0, segmentId: 0, epoch: 0 };
  const rec: ScannedRecord = { header, offset: 0, size: 0, buf: win, at: 0 };

  let pos = opts.from;
  /** Bytes below this offset, in any window loaded from now on, are final (header: Beside a live writer). */
  let settled = pos;
  while (pos < fileSize) {
    if (pos < winStart || winEnd - pos < RECORD_HEADER_BYTES) load(pos, RECORD_HEADER_BYTES);
    let at = pos - winStart;
    let size = recordSize(win, at, winEnd - winStart);
    if (size === RECORD_INCOMPLETE && winEnd < fileSize) {
      // The record may just straddle the window: reload from its start with room for its (bounded) length.
      const need = winEnd - pos >= RECORD_HEADER_BYTES ? RECORD_HEADER_BYTES + win.readUInt32LE(at + 12) : 0;
      load(pos, need);
      at = 0;
      size = recordSize(win, 0, winEnd - winStart);
    }
    let reason = '';
    if (size > 0) {
      const seq = readU64(win, at + 16);
      if (readU64(win, at + 24) === segmentId && seq > result.lastSeq && (beforeSeq === undefined || seq < beforeSeq)) {
        result.lastSeq = seq;
        result.records++;
        if (onRecord) {
          header.type = win[at + 7]!;
          header.flags = win[at + 8]!;
          header.keyId = win[at + 9]!;
          header.length = size - RECORD_HEADER_BYTES;
          header.seq = seq;
          header.segmentId = segmentId;
          header.epoch = win.readUInt32LE(at + 32);
          rec.offset = pos;
          rec.size = size;
          rec.buf = win;
          rec.at = at;
          if (onRecord(rec) === false) {
            result.end = pos + size;
            result.complete = false;
            return result;
          }
        }
        pos += size;
        result.end = pos;
        continue;
      }
      size = RECORD_BAD;
      reason = `record ${seq} does not belong here`;
    } else if (size === RECORD_BAD) {
      reason = badReason();
    } else {
      reason = size === RECORD_ZERO ? 'zero' : 'incomplete';
    }
    // Not a record we accept: find the next one that is, reading the rest of the file (segments are bounded).
    if (winStart !== pos || winEnd < fileSize) load(pos, fileSize - pos);
    const next = findNextRecord(win, 0, winEnd - winStart, belongs);
    if (next === -1) {
      result.tail = size === RECORD_ZERO ? 'zero' : size === RECORD_INCOMPLETE ? 'incomplete' : 'garbage';
      result.tailReason = reason;
      return result;
    }
    if (pos + next > settled) {
      // [pos, pos + next) may have been read before the writer filled it: read it again now that the record at
      // pos + next was seen, and judge it again (it may be a record now). Terminates: `settled` only grows.
      settled = pos + next;
      load(pos, fileSize - pos);
      continue;
    }
    result.damage.push({ segmentId, offset: pos, end: pos + next, reason });
    pos += next;
  }
  return result;
}
