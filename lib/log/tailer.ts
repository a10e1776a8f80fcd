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
 *   - A new owner (after a crash or a failover) cuts the old head's torn tail, then starts a new head segment:
 *     the old head is followed to its (new) end before the new one is read, as for any sealed segment. Recovery
 *     truncates before it creates the new head, so a listing that shows the new head was taken after the cut.
 *
 * Start. `from` starts at a position (the index file's: log/checkpoint-store.ts) instead of the first segment:
 * its segment is read from its offset, unless its generation has changed since (compaction rewrote it), when it
 * is read from its first record with the seqs before the position skipped.
 *
 * Waking. Besides the timer, `watch` wakes it as soon as the log directory changes (fs.watch: inotify on Linux,
 * which reports writes to the files in it), so that a record is read within a turn of the event loop of its
 * write; the timer stays as the fallback where watching is not supported or misses a change.
 */
import { watch as watchDir, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import type { LogPosition } from '../format/checkpoint.js';
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
  /** Start at this position (header: Start); fromSeq still applies. */
  from?: { position: LogPosition; generation: number | undefined; epoch: number };
  intervalMs?: number;
  /** Also poll as soon as the log directory changes (header: Waking). Default false. */
  watch?: boolean;
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
  let segmentId: number | undefined = opts.from?.position.segmentId;
  let offset = opts.from?.position.offset ?? SEGMENT_HEADER_BYTES;
  /** Generation of `segmentId` when last read; undefined until its header could be read. */
  let generation: number | undefined = opts.from?.generation;
  let lastSeq = opts.from ? opts.from.position.nextSeq - 1 : 0;
  let maxEpoch = opts.from?.epoch ?? 0;
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
        generation = undefined;
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
        // Compaction may have rewritten this segment since the last poll (same name, next generation): records not
        // yet delivered may now lie before `offset`. Then read it again from its first record, skipping the seqs
        // already delivered. A header that cannot be read yet (a segment being created) changes nothing.
        let rescan = false;
        try {
          const gen = readSegmentHeader(fs, fd, segmentId).generation;
          rescan = generation !== undefined && gen !== generation;
          generation = gen;
        } catch (err) {
          if (!(err instanceof SpoolError) || err.code === 'ERR_IO') throw err;
        }
        if (rescan) offset = SEGMENT_HEADER_BYTES;
        const scan = scanSegment(fs, fd, {
          segmentId,
          from: offset,
          afterSeq: rescan ? segmentId - 1 : lastSeq,
          beforeSeq: nextId,
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
          opts.onDamage?.({ segmentId, offset: scan.end, end: scan.fileSize, reason: `sealed segment ends in ${scan.tail} bytes` });
        }
        segmentId = nextId;
        offset = SEGMENT_HEADER_BYTES;
        generation = undefined;
      } finally {
        closeQuietly(fs, fd);
      }
    }
  };

  const tick = (): void => {
    if (closed) return;
    try {
      poll();
    } catch (err) {
      opts.onError?.(err as Error);
    }
  };
  const timer = setInterval(tick, opts.intervalMs ?? 50);
  timer.unref();

  // Changes come in bursts (a write, then preallocation, a roll…): one poll per turn of the event loop.
  let woken = false;
  const wake = (): void => {
    if (woken || closed) return;
    woken = true;
    setImmediate(() => {
      woken = false;
      tick();
    });
  };
  let watcher: FSWatcher | undefined;
  if (opts.watch) {
    try {
      watcher = watchDir(logDir, { persistent: false }, wake);
      // A watch that fails later (the directory removed, a platform limit) leaves the timer in charge.
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // no watching here (a missing directory, an unsupported platform): the timer polls
    }
  }

  return {
    poll,
    close: () => {
      closed = true;
      clearInterval(timer);
      watcher?.close();
    },
  };
}
