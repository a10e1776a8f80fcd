/**
 * Recovery on open: turns whatever a crash, a power loss or a bad disk left into a log the writer can append to,
 * without asking anybody. Runs only in the process that opens the log for writing, under the owner lock.
 *
 * Steps, each safe to repeat if recovery itself is killed (every step either changes nothing or converges):
 *   1. Remove temp files (*.tmp) in the queue directory and in log/: half-made segments, index or manifest.
 *   2. Read every segment header. A last segment whose header is short or damaged is a roll that never
 *      committed (segment-files.ts): it is deleted. An earlier one with a bad header is reported as damage; its
 *      records are still read, since each carries its own crc and segment id.
 *   3. Take the checkpoint if it is whole and still describes these segments (generations match, its position
 *      exists); otherwise start from the first segment.
 *   4. Scan from there to the end (segment-scanner.ts). Damage inside a segment, with valid records after it,
 *      is copied to quarantine/ and reported; the bytes stay where they are and every reader steps over them.
 *      (Replay hands what can still be made out of such a stretch to the layer above, which names the jobs it
 *      held: log.ts onDamaged, damaged-stretch.ts, queue/fold.ts.)
 *      A bad tail of the last segment is a torn write: it is cut off and the truncation fsynced. A bad tail of
 *      an earlier (sealed) segment is not normal, since sealed segments were fsynced before the roll: it is
 *      copied to quarantine/, reported as damage, then cut off.
 *   5. The epoch of the new owner is one above every epoch seen (segment headers, checkpoint, scanned records).
 * The log (log.ts) then starts a fresh head segment, so that nothing an older owner might still write can land
 * among the new owner's records.
 */
import * as path from 'node:path';
import { SpoolError, ioError } from '../errors.js';
import { INDEX_FILE, QUARANTINE_DIR, isTempFileName, quarantineFileName } from '../format/names.js';
import { SEGMENT_HEADER_BYTES } from '../format/segment-header.js';
import type { Checkpoint } from '../format/checkpoint.js';
import { readCheckpointFile } from './checkpoint-store.js';
import { closeQuietly, fsyncDir, makeDirs, openOrThrow, readFully, writeFully, type Fs } from './fs.js';
import { listSegmentIds, readSegmentHeader, segmentPath } from './segment-files.js';
import { scanSegment, type DamagedRange } from './segment-scanner.js';

export interface SegmentInfo {
  segmentId: number;
  generation: number;
}

export interface Truncation {
  segmentId: number;
  offset: number;
  bytes: number;
  kind: string;
}

export interface RecoveryReport {
  segments: SegmentInfo[];
  nextSeq: number;
  /** Highest epoch seen; the new owner takes one above it. */
  maxEpoch: number;
  checkpoint: Checkpoint | undefined;
  /** Why a present index file was not used, if it was not. */
  checkpointRejected: string | undefined;
  damage: DamagedRange[];
  truncated: Truncation[];
  removedTempFiles: string[];
  /** Size of the last segment after recovery (where its records end). */
  lastSegmentEnd: number;
}

export function recoverLog(fs: Fs, dir: string, logDir: string, durable: boolean): RecoveryReport {
  const report: RecoveryReport = {
    segments: [],
    nextSeq: 1,
    maxEpoch: 0,
    checkpoint: undefined,
    checkpointRejected: undefined,
    damage: [],
    truncated: [],
    removedTempFiles: [],
    lastSegmentEnd: 0,
  };
  removeTempFiles(fs, dir, report);
  removeTempFiles(fs, logDir, report);

  // 2. Headers.
  const ids = listSegmentIds(fs, logDir);
  const headerOk = new Map<number, boolean>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const fd = openOrThrow(fs, segmentPath(logDir, id), 'r');
    try {
      const h = readSegmentHeader(fs, fd, id);
      report.segments.push({ segmentId: id, generation: h.generation });
      report.maxEpoch = Math.max(report.maxEpoch, h.epoch);
      headerOk.set(id, true);
    } catch (err) {
      if (!(err instanceof SpoolError) || err.code === 'ERR_IO') throw err;
      if (err.code === 'ERR_UNSUPPORTED_VERSION') throw err;
      if (i === ids.length - 1) {
        closeQuietly(fs, fd);
        unlinkOrThrow(fs, segmentPath(logDir, id));
        if (durable) fsyncDir(fs, logDir);
        report.truncated.push({ segmentId: id, offset: 0, bytes: -1, kind: 'uncommitted segment removed' });
        ids.pop();
        break;
      }
      report.damage.push({ segmentId: id, offset: 0, end: SEGMENT_HEADER_BYTES, reason: err.message });
      report.segments.push({ segmentId: id, generation: 0 });
      headerOk.set(id, false);
    } finally {
      closeQuietly(fs, fd);
    }
  }

  // 3. Checkpoint.
  const cp = readCheckpointFile(fs, path.join(dir, INDEX_FILE));
  let startIndex = 0;
  let startOffset = SEGMENT_HEADER_BYTES;
  let afterSeq = 0;
  if (cp.checkpoint) {
    const why = checkpointMismatch(cp.checkpoint, report.segments, fs, logDir);
    if (why) report.checkpointRejected = why;
    else {
      report.checkpoint = cp.checkpoint;
      report.maxEpoch = Math.max(report.maxEpoch, cp.checkpoint.epoch);
      startIndex = ids.indexOf(cp.checkpoint.position.segmentId);
      startOffset = cp.checkpoint.position.offset;
      afterSeq = cp.checkpoint.position.nextSeq - 1;
    }
  } else if (cp.error) {
    report.checkpointRejected = cp.error;
  }

  // 4. Scan to the end.
  let lastSeq = afterSeq;
  for (let i = startIndex; i < ids.length; i++) {
    const id = ids[i]!;
    const isLast = i === ids.length - 1;
    const fd = openOrThrow(fs, segmentPath(logDir, id), 'r+');
    try {
      let maxEpoch = report.maxEpoch;
      const scan = scanSegment(fs, fd, {
        segmentId: id,
        from: i === startIndex ? startOffset : SEGMENT_HEADER_BYTES,
        afterSeq: lastSeq,
        beforeSeq: ids[i + 1],
        onRecord: (r) => {
          if (r.header.epoch > maxEpoch) maxEpoch = r.header.epoch;
        },
      });
      report.maxEpoch = maxEpoch;
      lastSeq = scan.lastSeq;
      for (const d of scan.damage) {
        quarantine(fs, dir, fd, d.segmentId, d.offset, d.end);
        report.damage.push(d);
      }
      if (scan.tail !== 'clean') {
        const bytes = scan.fileSize - scan.end;
        if (!isLast) {
          quarantine(fs, dir, fd, id, scan.end, scan.fileSize);
          report.damage.push({ segmentId: id, offset: scan.end, end: scan.fileSize, reason: `sealed segment ends in ${scan.tail} bytes (${scan.tailReason})` });
        }
        truncate(fs, fd, scan.end, durable);
        report.truncated.push({ segmentId: id, offset: scan.end, bytes, kind: scan.tail });
      }
      if (isLast) report.lastSegmentEnd = scan.end;
    } finally {
      closeQuietly(fs, fd);
    }
  }
  report.nextSeq = Math.max(lastSeq + 1, ids.length ? ids[ids.length - 1]! : 1);
  return report;
}

/** Why the checkpoint cannot be used with these segments, or undefined when it can. Read-only (verify uses it). */
export function checkpointMismatch(cp: Checkpoint, segments: SegmentInfo[], fs: Fs, logDir: string): string | undefined {
  const pos = cp.position;
  const listed = new Map(cp.segments.map((s) => [s.segmentId, s.generation]));
  const head = segments.find((s) => s.segmentId === pos.segmentId);
  if (!head) return `its position names segment ${pos.segmentId}, which is gone`;
  for (const s of segments) {
    if (s.segmentId > pos.segmentId) break;
    const gen = listed.get(s.segmentId);
    if (gen === undefined) return `segment ${s.segmentId} is not in it`;
    if (gen !== s.generation) return `segment ${s.segmentId} was rewritten since (generation ${s.generation}, index has ${gen})`;
  }
  const fd = openOrThrow(fs, segmentPath(logDir, pos.segmentId), 'r');
  try {
    if (pos.offset < SEGMENT_HEADER_BYTES || pos.offset > fs.fstatSync(fd).size) {
      return `its position ${pos.offset} lies outside segment ${pos.segmentId}`;
    }
  } finally {
    closeQuietly(fs, fd);
  }
  return undefined;
}

function removeTempFiles(fs: Fs, dir: string, report: RecoveryReport): void {
  let removed = false;
  for (const name of fs.readdirSync(dir)) {
    if (!isTempFileName(name)) continue;
    unlinkOrThrow(fs, path.join(dir, name));
    report.removedTempFiles.push(name);
    removed = true;
  }
  if (removed) fsyncDir(fs, dir);
}

/** Copies file bytes [start, end) to quarantine/, once; an existing copy of the same range is kept. */
function quarantine(fs: Fs, dir: string, fd: number, segmentId: number, start: number, end: number): void {
  const qdir = path.join(dir, QUARANTINE_DIR);
  const file = path.join(qdir, quarantineFileName(segmentId, start));
  try {
    makeDirs(fs, qdir);
    if (fs.existsSync(file)) return;
    const bytes = Buffer.allocUnsafe(end - start);
    const n = readFully(fs, fd, bytes, 0, bytes.length, start);
    const out = fs.openSync(file + '.tmp', 'w');
    try {
      writeFully(fs, out, bytes, 0, n, 0);
      fs.fsyncSync(out);
    } finally {
      closeQuietly(fs, out);
    }
    fs.renameSync(file + '.tmp', file);
    fsyncDir(fs, qdir);
  } catch (err) {
    throw ioError(`quarantine bytes of segment ${segmentId}`, err);
  }
}

function truncate(fs: Fs, fd: number, size: number, durable: boolean): void {
  try {
    fs.ftruncateSync(fd, size);
    if (durable) fs.fsyncSync(fd);
  } catch (err) {
    throw ioError('truncate a torn tail', err);
  }
}

function unlinkOrThrow(fs: Fs, file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    throw ioError(`remove ${path.basename(file)}`, err);
  }
}
