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
 *   - A segment deleted by compaction under it is skipped (it held nothing live).
 *   - Fencing is the same as for a full scan (log-scan.ts).
 */
import * as path from 'node:path';
import type { RecordCodec } from '../codec/record-codec.js';
import { LOG_DIR } from '../format/names.js';
import { SEGMENT_HEADER_BYTES } from '../format/segment-header.js';
import { closeQuietly, nodeFs, openOrThrow, type Fs } from './fs.js';
import { toEntry, type LogEntry } from './log-scan.js';
import { listSegmentIds, segmentPath } from './segment-files.js';
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
        segmentId = next;
        offset = SEGMENT_HEADER_BYTES;
      }
      const nextId = ids.find((id) => id > segmentId!);
      let fd: number;
      try {
        fd = openOrThrow(fs, segmentPath(logDir, segmentId), 'r');
      } catch (err) {
        // Deleted by compaction between the listing and the open: the next listing moves past it.
        if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') continue;
        throw err;
      }
      try {
        const scan = scanSegment(fs, fd, {
          segmentId,
          from: offset,
          afterSeq: lastSeq,
          beforeSeq: nextId,
          onRecord: (r) => {
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
          opts.onDamage?.({ segmentId, offset: scan.end, end: scan.fileSize, reason: `sealed segment ends in ${scan.tail} bytes` });
        }
        segmentId = nextId;
        offset = SEGMENT_HEADER_BYTES;
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
