/**
 * Compaction: gives back the space of records nobody needs, in sealed segments only (never the head, so appends
 * go on beside it). Liveness is the caller's: `isLive(entry)` decides per record.
 *
 * Per sealed segment, oldest first:
 *   - damaged (any range that is not a record): left alone, for verify to report and an operator to inspect;
 *   - no live record: the file is unlinked and the directory fsynced;
 *   - live bytes below `sparseRatio` of its record bytes, or `mustRewrite` says so: rewritten as generation g+1
 *     under the same name.
 *
 * The rewrite protocol, with what a crash at each step leaves:
 *   1. create <name>.tmp (O_EXCL), write a header with generation g+1, then copy the live records' bytes exactly
 *      as stored (encrypted records stay encrypted: their associated data is their own header, which does not
 *      change).                                       crash: old segment intact; recovery deletes the .tmp.
 *   2. fsync the .tmp.                                crash: same.
 *   3. rename .tmp over <name>.                       crash: the directory holds the old or the new generation;
 *                                                     both hold every live record, in the same order.
 *   4. fsync the directory.                           crash: the new generation, durably.
 * A checkpoint written before step 3 names generation g for this segment, so after a crash past step 3 it no
 * longer matches, is ignored, and the log is replayed: pointers into the segment are never trusted stale.
 *
 * Records keep their seq and segment fields, so the scanner's rules (seq rising, segment = file id) still hold.
 * Between segments, and every few MiB of copying, compaction yields to the event loop so appends are never held
 * up for long.
 */
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { SpoolError, ioError } from '../errors.js';
import { TMP_SUFFIX } from '../format/names.js';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader } from '../format/segment-header.js';
import { closeQuietly, fsyncDir, openOrThrow, readFully, writeFully, type Fs } from './fs.js';
import { toEntry, type LogEntry } from './log-scan.js';
import { segmentPath } from './segment-files.js';
import { scanSegment } from './segment-scanner.js';
import type { RecordPointer } from './writer.js';
import type { RecordCodec } from '../codec/record-codec.js';

export interface CompactOptions {
  /** Rewrite a segment when its live bytes are below this share of its record bytes. Default 0.5. */
  sparseRatio?: number;
  /**
   * Called once per segment, oldest first, as soon as its fate is done and durable: 'kept' (dense enough),
   * 'damaged' (left alone), 'deleted', or 'rewritten' with the new pointers of the records that moved. isLive
   * has been called for every record of the segment before this. Callers that hold pointers apply `moved` here,
   * before any other code runs: compaction yields to the event loop between segments.
   */
  onSegment?: (segmentId: number, action: 'kept' | 'damaged' | 'deleted' | 'rewritten', moved: Map<number, RecordPointer>) => void;
  /** Asked after a segment is judged: true rewrites it even when it is dense (it holds a record that must go). */
  mustRewrite?: (segmentId: number) => boolean;
}

export interface CompactionResult {
  deleted: number[];
  rewritten: Array<{ segmentId: number; generation: number; liveRecords: number }>;
  /** New pointers of the records that moved, by seq. */
  relocated: Map<number, RecordPointer>;
  skippedDamaged: number[];
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Thrown when compaction fails part way (code ERR_IO, the fs error as `cause`). `result` holds what was done
 * before the failure: segments already rewritten stay rewritten, so the caller must still apply `relocated`.
 */
export class CompactionError extends SpoolError {
  readonly result: CompactionResult;

  constructor(cause: SpoolError, result: CompactionResult) {
    super(cause.code, cause.message, { cause });
    this.name = 'CompactionError';
    this.result = result;
  }
}

export interface CompactRun extends CompactOptions {
  segments: Array<{ segmentId: number; generation: number }>;
  isLive: (entry: LogEntry) => boolean;
  /** Lets isLive decode payloads. */
  codec?: RecordCodec;
  epoch: number;
  durable: boolean;
  /** Called after each change is durable: a new generation, or undefined when the segment was deleted. */
  onSegmentChanged: (segmentId: number, generation: number | undefined) => void;
}

const COPY_SLICE_BYTES = 4 * 1024 * 1024;
const NONE_MOVED: Map<number, RecordPointer> = new Map();

export async function compactLog(fs: Fs, logDir: string, run: CompactRun): Promise<CompactionResult> {
  const result: CompactionResult = {
    deleted: [],
    rewritten: [],
    relocated: new Map(),
    skippedDamaged: [],
    bytesBefore: 0,
    bytesAfter: 0,
  };
  try {
    return await compactSegments(fs, logDir, run, result);
  } catch (err) {
    throw new CompactionError(ioError('compaction', err), result);
  }
}

async function compactSegments(fs: Fs, logDir: string, run: CompactRun, result: CompactionResult): Promise<CompactionResult> {
  const ratio = run.sparseRatio ?? 0.5;
  for (let i = 0; i < run.segments.length; i++) {
    await yieldToLoop();
    const { segmentId, generation } = run.segments[i]!;
    const file = segmentPath(logDir, segmentId);
    const fd = openOrThrow(fs, file, 'r');
    let fdOpen = true;
    let live: Array<{ seq: number; offset: number; size: number }> = [];
    let liveBytes = 0;
    let fileSize = 0;
    let damaged = false;
    try {
      const scan = scanSegment(fs, fd, {
        segmentId,
        from: SEGMENT_HEADER_BYTES,
        afterSeq: segmentId - 1,
        beforeSeq: run.segments[i + 1]?.segmentId,
        onRecord: (r) => {
          if (!run.isLive(toEntry(r, run.codec))) return;
          live.push({ seq: r.header.seq, offset: r.offset, size: r.size });
          liveBytes += r.size;
        },
      });
      fileSize = scan.fileSize;
      damaged = scan.damage.length > 0 || scan.tail !== 'clean';
      result.bytesBefore += fileSize;
      if (damaged) {
        result.skippedDamaged.push(segmentId);
        result.bytesAfter += fileSize;
        run.onSegment?.(segmentId, 'damaged', NONE_MOVED);
        continue;
      }
      const recordBytes = scan.end - SEGMENT_HEADER_BYTES;
      if (live.length === 0) {
        closeQuietly(fs, fd);
        fdOpen = false;
        removeSegment(fs, logDir, file, run.durable);
        run.onSegmentChanged(segmentId, undefined);
        result.deleted.push(segmentId);
        run.onSegment?.(segmentId, 'deleted', NONE_MOVED);
        continue;
      }
      if (liveBytes >= ratio * recordBytes && !run.mustRewrite?.(segmentId)) {
        result.bytesAfter += fileSize;
        run.onSegment?.(segmentId, 'kept', NONE_MOVED);
        continue;
      }
      const next = generation + 1;
      await rewriteSegment(fs, logDir, fd, segmentId, next, run, live, result);
      run.onSegmentChanged(segmentId, next);
      if (run.onSegment) run.onSegment(segmentId, 'rewritten', new Map(live.map((r) => [r.seq, result.relocated.get(r.seq)!])));
      result.rewritten.push({ segmentId, generation: next, liveRecords: live.length });
      result.bytesAfter += SEGMENT_HEADER_BYTES + liveBytes;
      live = [];
    } finally {
      if (fdOpen) closeQuietly(fs, fd);
    }
  }
  return result;
}

async function rewriteSegment(
  fs: Fs,
  logDir: string,
  src: number,
  segmentId: number,
  generation: number,
  run: CompactRun,
  live: Array<{ seq: number; offset: number; size: number }>,
  result: CompactionResult,
): Promise<void> {
  const file = segmentPath(logDir, segmentId);
  const tmp = file + TMP_SUFFIX;
  let out: number | undefined;
  try {
    out = fs.openSync(tmp, 'wx');
    const header = encodeSegmentHeader({ segmentId, generation, epoch: run.epoch, createdAt: Date.now() });
    writeFully(fs, out, header, 0, header.length, 0);
    let at = SEGMENT_HEADER_BYTES;
    let slice = 0;
    let buf = Buffer.allocUnsafe(64 * 1024);
    for (const rec of live) {
      if (buf.length < rec.size) buf = Buffer.allocUnsafe(rec.size);
      const n = readFully(fs, src, buf, 0, rec.size, rec.offset);
      if (n !== rec.size) throw new Error(`segment ${segmentId} shrank during compaction`);
      writeFully(fs, out, buf, 0, rec.size, at);
      result.relocated.set(rec.seq, { seq: rec.seq, segmentId, offset: at, size: rec.size });
      at += rec.size;
      slice += rec.size;
      if (slice >= COPY_SLICE_BYTES) {
        slice = 0;
        await yieldToLoop();
      }
    }
    fs.fsyncSync(out);
    fs.closeSync(out);
    out = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (out !== undefined) {
      closeQuietly(fs, out);
      try {
        fs.unlinkSync(tmp);
      } catch {
        // Best effort: a .tmp left behind is removed by the next recovery, and the old segment is intact.
      }
    }
    for (const rec of live) result.relocated.delete(rec.seq);
    throw ioError(`compact segment ${path.basename(file)}`, err);
  }
  if (run.durable) fsyncDir(fs, logDir);
}

function removeSegment(fs: Fs, logDir: string, file: string, durable: boolean): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    throw ioError(`remove segment ${path.basename(file)}`, err);
  }
  if (durable) fsyncDir(fs, logDir);
}
