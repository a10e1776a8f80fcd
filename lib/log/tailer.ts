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
 * The head's window. The live head of an fsync-mode owner ends in up to a MiB of preallocated zeros (writer.ts,
 * Preallocation), and a scan that meets a tail looks through the rest of the file for a record after it. Read
 * whole at every wake, that is a MiB per record when records come one at a time. So the head (and only the head)
 * is read HEAD_WINDOW_BYTES at a time: the next window while records fill the one before, and the rest of the
 * file only when a record straddles a window's edge or something other than zeros ends it (a record being
 * written, or damage, which is then judged as in a full read). Zeros end the reading: in a live head, data only
 * ever follows data. (A hole of zeros with records after it, which only damage makes, is therefore reported once
 * the head is sealed, not while it is the head.)
 *
 * Waking. Besides the timer, `watch` wakes it as soon as the log directory changes (fs.watch: inotify on Linux,
 * which reports writes to the files in it), so that a record is read within a turn of the event loop of its
 * write; the timer stays as the fallback where watching is not supported or misses a change.
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
import { scanSegment, type DamagedRange, type ScannedRecord } from './segment-scanner.js';

/** How much of the head one read takes (header: The head's window). */
const HEAD_WINDOW_BYTES = 64 * 1024;

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
  /** Generation of `segmentId`'s header when last read; undefined until its header could be read. */
  let generation: number | undefined = opts.from?.generation;
  /** Epoch in `segmentId`'s header when last read; undefined until then (a start position does not carry it). */
  let headerEpoch: number | undefined;
  let lastSeq = opts.from ? opts.from.position.nextSeq - 1 : 0;
  let maxEpoch = opts.from?.epoch ?? 0;
  /** Moves to segment `id`, from its first record (header: Records that were cut back, the last check). */
  const enter = (id: number): void => {
    segmentId = id;
    offset = SEGMENT_HEADER_BYTES;
    generation = undefined;
    headerEpoch = undefined;
    if (lastSeq >= id) lastSeq = id - 1;
  };
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
          if (headerEpoch !== undefined && !rescan && header.epoch !== headerEpoch) enter(segmentId!);
          generation = header.generation;
          headerEpoch = header.epoch;
        } catch (err) {
          if (!(err instanceof SpoolError) || err.code === 'ERR_IO') throw err;
        }
        if (rescan) offset = SEGMENT_HEADER_BYTES;
        const onRecord = (r: ScannedRecord): void => {
          if (r.header.seq <= lastSeq) return;
          lastSeq = r.header.seq;
          if (r.header.epoch < maxEpoch) return;
          maxEpoch = r.header.epoch;
          if (r.header.seq < fromSeq) return;
          delivered++;
          opts.onEntry(toEntry(r, opts.codec));
        };
        const size = fs.fstatSync(fd).size;
        if (!rescan && offset > size) {
          // Cut back under us: find where its surviving records end and which seq is the last of them.
          const kept = scanSegment(fs, fd, { segmentId: segmentId!, from: SEGMENT_HEADER_BYTES, afterSeq: segmentId! - 1, beforeSeq: nextId, fileSize: size });
          offset = kept.end;
          lastSeq = kept.lastSeq;
        }
        let afterSeq = rescan ? segmentId! - 1 : lastSeq;
        let scan = scanSegment(fs, fd, { segmentId: segmentId!, from: offset, afterSeq, beforeSeq: nextId, onRecord, fileSize: nextId === undefined ? Math.min(size, offset + HEAD_WINDOW_BYTES) : size });
        // The head is read a window at a time (header: The head's window): on to the next window while records
        // fill this one; to the real end of the file when one straddles its edge (or damage might lie past it).
        while (nextId === undefined && scan.fileSize < size && scan.tail !== 'zero') {
          afterSeq = scan.lastSeq;
          const from = scan.end;
          const bound = scan.tail === 'clean' ? Math.min(size, from + HEAD_WINDOW_BYTES) : size;
          const damage = scan.damage;
          scan = scanSegment(fs, fd, { segmentId: segmentId!, from, afterSeq, onRecord, fileSize: bound });
          scan.damage.unshift(...damage);
        }
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
