/**
 * Tailer: follows a log that another process (or this one) is appending to. Read-only, takes no lock.
 *
 * It remembers a position (segment, offset, last seq, highest epoch) and, every `intervalMs`, reads whatever
 * complete records lie after it. Rules, so that a record is delivered once, in order, and only when whole:
 *   - At the end of the segment it stops at an incomplete or bad record and looks again next time: a record
 *     being written is incomplete for a moment, never damage.
 *   - It moves on to the next segment only once one exists: the writer seals (and fsyncs) a segment before it
 *     creates the next, so from then on the old one can only end. Whatever bad bytes remain there are reported
 *     through onDamage, then skipped.
 *   - A segment deleted by compaction under it is skipped (it held nothing live). One rewritten under it (its
 *     header names a new generation) is read again from its first record, skipping the seqs already delivered.
 *   - Fencing is the same as for a full scan (log-scan.ts).
 *
 * Records that were cut back. The tailer reads the page cache, without a lock: it may read, and deliver, records
 * of a batch whose write failed, in the moment before the writer cut them back (writer.ts: Failed writes). That
 * cannot be prevented, and such a record is delivered that once; a consumer that must see only records that stay
 * should check the state through the owner. What the tailer guarantees is that every record that stays in the log
 * is delivered exactly once, in order, and that a cut is never reported as damage. It rests on the writer's rule
 * that a cut segment never grows again and seqs are not reused (writer.ts: Seqs are never handed out twice), and
 * on these checks, each of which resets the position to what the log now holds:
 *   - the current segment is shorter than the offset reached: it was cut. Its surviving records are found again
 *     (read, not delivered: they were delivered before) and reading goes on from the cut point;
 *   - its header names a new epoch at the same generation: it was removed and made again by a new owner (an empty
 *     head at open, log.ts), so every record in it is new: read again from its first record;
 *   - the tailer enters a segment whose id (its first seq) is not above the last seq it delivered: the seqs from
 *     that id on that it delivered were cut, and the new owner reused them after a crash (writer.ts: the one gap),
 *     so the last seq seen goes back to just below that id.
 */
import * as path from 'node:path';
import { SpoolError } from '../errors.js';
import type { RecordCodec } from '../codec/record-codec.js';
import { LOG_DIR } from '../format/names.js';
import { SEGMENT_HEADER_BYTES } from '../format/segment-header.js';
import { closeQuietly, nodeFs, openOrThrow, type Fs } from './fs.js';
import { toEntry, type LogEntry } from './log-scan.js';
import { listSegmentIds, readSegmentHeader, segmentPath } from './segment-files.js';
import { scanSegment, type DamagedRange } from './segment-scanner.js';

export interface TailOptions {
  fs?: Fs;
  codec?: RecordCodec;
  /** Deliver records with seq ≥ fromSeq. Default 1 (everything). */
  fromSeq?: number;
  intervalMs?: number;
  onEntry: (entry: LogEntry) => void;
  onDamage?: (range: DamagedRange) => void;
  onError?: (err: Error) => void;
}

export interface Tailer {
  /** Reads what is there now, synchronously; the timer calls this too. Returns how many entries it delivered. */
  poll(): number;
  close(): void;
}

export function tailLog(dir: string, opts: TailOptions): Tailer {
  const fs = opts.fs ?? nodeFs;
  const logDir = path.join(dir, LOG_DIR);
  const fromSeq = opts.fromSeq ?? 1;
  let segmentId: number | undefined;
  let offset = SEGMENT_HEADER_BYTES;
  /** Generation and epoch of `segmentId`'s header when last read; undefined until its header could be read. */
  let generation: number | undefined;
  let headerEpoch = 0;
  /** Moves to segment `id`, from its first record (header: Records that were cut back, the last check). */
  const enter = (id: number): void => {
    segmentId = id;
    offset = SEGMENT_HEADER_BYTES;
    generation = undefined;
    if (lastSeq >= id) lastSeq = id - 1;
  };
  let lastSeq = 0;
  let maxEpoch = 0;
  let closed = false;

  const poll = (): number => {
    let delivered = 0;
    for (;;) {
      const ids = listSegmentIds(fs, logDir);
      if (segmentId === undefined || !ids.includes(segmentId)) {
        const next = ids.find((id) => segmentId === undefined || id > segmentId);
        if (next === undefined) return delivered;
        enter(next);
      }
      const nextId = ids.find((id) => id > segmentId!);
      let fd: number;
      try {
        fd = openOrThrow(fs, segmentPath(logDir, segmentId!), 'r');
      } catch (err) {
        // Deleted by compaction between the listing and the open: the next listing moves past it.
        if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') continue;
        throw err;
      }
      try {
        // Compaction may have rewritten this segment since the last poll (same name, next generation): records not
        // yet delivered may now lie before `offset`. Then read it again from its first record, skipping the seqs
        // already delivered. A header that cannot be read yet (a segment being created) changes nothing.
        let rescan = false;
        try {
          const header = readSegmentHeader(fs, fd, segmentId!);
          rescan = generation !== undefined && header.generation !== generation;
          // Same generation, another epoch: made again by a new owner (header: Records that were cut back).
          if (generation !== undefined && !rescan && header.epoch !== headerEpoch) enter(segmentId!);
          generation = header.generation;
          headerEpoch = header.epoch;
        } catch (err) {
          if (!(err instanceof SpoolError) || err.code === 'ERR_IO') throw err;
        }
        if (rescan) offset = SEGMENT_HEADER_BYTES;
        const size = fs.fstatSync(fd).size;
        if (!rescan && offset > size) {
          // Cut back under us: find where its surviving records end and which seq is the last of them.
          const kept = scanSegment(fs, fd, { segmentId: segmentId!, from: SEGMENT_HEADER_BYTES, afterSeq: segmentId! - 1, beforeSeq: nextId, fileSize: size });
          offset = kept.end;
          lastSeq = kept.lastSeq;
        }
        const scan = scanSegment(fs, fd, {
          segmentId: segmentId!,
          from: offset,
          afterSeq: rescan ? segmentId! - 1 : lastSeq,
          beforeSeq: nextId,
          fileSize: size,
          onRecord: (r) => {
            if (r.header.seq <= lastSeq) return;
            lastSeq = r.header.seq;
            if (r.header.epoch < maxEpoch) return;
            maxEpoch = r.header.epoch;
            if (r.header.seq < fromSeq) return;
            delivered++;
            opts.onEntry(toEntry(r, opts.codec));
          },
        });
        for (const d of scan.damage) opts.onDamage?.(d);
        offset = scan.end;
        if (nextId === undefined) return delivered;
        if (scan.tail !== 'clean') {
          opts.onDamage?.({ segmentId: segmentId!, offset: scan.end, end: scan.fileSize, reason: `sealed segment ends in ${scan.tail} bytes` });
        }
        enter(nextId);
      } finally {
        closeQuietly(fs, fd);
      }
    }
  };

  const timer = setInterval(() => {
    if (closed) return;
    try {
      poll();
    } catch (err) {
      opts.onError?.(err as Error);
    }
  }, opts.intervalMs ?? 50);
  timer.unref();

  return {
    poll,
    close: () => {
      closed = true;
      clearInterval(timer);
    },
  };
}
