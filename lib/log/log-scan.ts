/**
 * Reading a whole log in order, segment after segment, as one sequence of entries. Read-only: used by replay,
 * verify, the CLI's dump and stats, and the tailer's catch-up.
 *
 * Fencing: records carry the epoch of the owner that wrote them, and epochs only grow. A record whose epoch is
 * below the highest epoch already seen was written by an older owner after a newer one had started (a paused
 * process that woke up): it is skipped and counted, never folded, so a revived old owner cannot fork the state.
 */
import type { RecordCodec } from '../codec/record-codec.js';
import { SEGMENT_HEADER_BYTES } from '../format/segment-header.js';
import type { LogPosition } from '../format/checkpoint.js';
import { closeQuietly, openOrThrow, type Fs } from './fs.js';
import { listSegmentIds, segmentPath } from './segment-files.js';
import { scanSegment, type DamagedRange, type ScannedRecord, type TailKind } from './segment-scanner.js';

/** One record as readers see it. `payload()` decodes (decrypts, decompresses) on demand. */
export interface LogEntry {
  seq: number;
  type: number;
  epoch: number;
  segmentId: number;
  offset: number;
  size: number;
  flags: number;
  keyId: number;
  /** The decoded payload, a fresh Buffer. Throws ERR_DECRYPT / ERR_KEY_MISSING / ERR_CORRUPT_RECORD. */
  payload(): Buffer;
  /** The record's bytes exactly as stored; valid only during the callback. */
  raw(): Buffer;
}

export interface ScanLogOptions {
  /** Start here instead of at the first record. */
  from?: LogPosition;
  /** The highest epoch known before `from` (fencing). */
  fromEpoch?: number;
  codec?: RecordCodec;
  /** Called for each entry; return false to stop. */
  onEntry?: (entry: LogEntry) => boolean | void;
}

export interface SegmentSummary {
  segmentId: number;
  fileSize: number;
  records: number;
  end: number;
  tail: TailKind;
  tailReason?: string;
}

export interface LogScanSummary {
  segments: SegmentSummary[];
  damage: DamagedRange[];
  records: number;
  fenced: number;
  /** Seq of the first entry delivered (not fenced), if any. */
  firstSeq: number | undefined;
  lastSeq: number;
  maxEpoch: number;
  /** Where the last record ends, or `from` if there were none. */
  position: LogPosition | undefined;
  complete: boolean;
}

/** An entry for the record; copies what it needs, since the scanner reuses `r`. */
export function toEntry(r: ScannedRecord, codec: RecordCodec | undefined): LogEntry {
  const { header, buf, at, size } = r;
  return {
    seq: header.seq,
    type: header.type,
    epoch: header.epoch,
    segmentId: header.segmentId,
    offset: r.offset,
    size,
    flags: header.flags,
    keyId: header.keyId,
    payload: () => {
      if (!codec) throw new TypeError('no codec given to decode payloads');
      return codec.decode(buf, at);
    },
    raw: () => buf.subarray(at, at + size),
  };
}

export function scanLog(fs: Fs, logDir: string, opts: ScanLogOptions = {}): LogScanSummary {
  const summary: LogScanSummary = {
    segments: [],
    damage: [],
    records: 0,
    fenced: 0,
    firstSeq: undefined,
    lastSeq: opts.from ? opts.from.nextSeq - 1 : 0,
    maxEpoch: opts.fromEpoch ?? 0,
    position: opts.from,
    complete: true,
  };
  const { onEntry } = opts;
  const ids = listSegmentIds(fs, logDir);
  let i = opts.from ? ids.indexOf(opts.from.segmentId) : 0;
  if (i < 0) i = ids.findIndex((id) => id > opts.from!.segmentId);
  if (i < 0) return summary;
  for (; i < ids.length; i++) {
    const id = ids[i]!;
    let fd: number;
    try {
      fd = openOrThrow(fs, segmentPath(logDir, id), 'r');
    } catch (err) {
      // Compaction may delete a dead segment between the listing and the open: nothing live was in it.
      if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') continue;
      throw err;
    }
    try {
      const scan = scanSegment(fs, fd, {
        segmentId: id,
        from: opts.from && opts.from.segmentId === id ? opts.from.offset : SEGMENT_HEADER_BYTES,
        afterSeq: summary.lastSeq,
        beforeSeq: ids[i + 1],
        onRecord: (r) => {
          if (r.header.epoch < summary.maxEpoch) {
            summary.fenced++;
            return;
          }
          summary.maxEpoch = r.header.epoch;
          summary.records++;
          summary.firstSeq ??= r.header.seq;
          if (onEntry?.(toEntry(r, opts.codec)) === false) return false;
        },
      });
      if (scan.records > 0) summary.position = { nextSeq: scan.lastSeq + 1, segmentId: id, offset: scan.end };
      summary.lastSeq = scan.lastSeq;
      summary.damage.push(...scan.damage);
      summary.segments.push({
        segmentId: id,
        fileSize: scan.fileSize,
        records: scan.records,
        end: scan.end,
        tail: scan.tail,
        tailReason: scan.tailReason,
      });
      if (!scan.complete) {
        summary.complete = false;
        return summary;
      }
    } finally {
      closeQuietly(fs, fd);
    }
  }
  return summary;
}
