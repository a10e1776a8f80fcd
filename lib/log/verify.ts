/**
 * verify: a full, read-only check of a log directory. Takes no lock and writes nothing, so it runs beside a live
 * owner; what it sees of the head is a snapshot.
 *
 * Checks: the manifest; every segment header; every record's framing, crc and place (segment-scanner.ts); with a
 * codec, that every payload decrypts and decompresses; the index file. `ok` is false when anything is damaged:
 * a bad header, a damaged range, a sealed segment with a bad tail, a payload that does not decode. The head's
 * tail is never damage (head-tail.ts has the rule): preallocated zeros, the record a live owner is writing, or
 * the torn write a crash left, which the next open cuts off. `ownerPid` only says which of these it likely is.
 *
 * The index is read before the log: the owner syncs the records a checkpoint covers before writing it, so an
 * index read first never covers more than the scan after it sees (read after, it could, beside a live owner).
 */
import * as path from 'node:path';
import { SpoolError } from '../errors.js';
import { RecordCodec } from '../codec/record-codec.js';
import { keySpecs, type EncryptionOptions } from '../codec/keyring.js';
import { INDEX_FILE, LOG_DIR, QUARANTINE_DIR } from '../format/names.js';
import { readCheckpointFile } from './checkpoint-store.js';
import { closeQuietly, nodeFs, openOrThrow, type Fs } from './fs.js';
import { judgeScan, type HeadTail } from './head-tail.js';
import { scanLog, type SegmentSummary } from './log-scan.js';
import { checkKeys, readManifest } from './manifest-store.js';
import { liveOwnerPid } from './owner-lock.js';
import { checkpointMismatch } from './recovery.js';
import { readSegmentHeader, segmentPath } from './segment-files.js';
import type { DamagedRange } from './segment-scanner.js';

export interface VerifySegment extends SegmentSummary {
  generation?: number;
  headerError?: string;
}

export interface VerifyReport {
  ok: boolean;
  dir: string;
  encrypted: boolean;
  segments: VerifySegment[];
  records: number;
  bytes: number;
  firstSeq: number | undefined;
  lastSeq: number;
  fenced: number;
  damage: DamagedRange[];
  /**
   * The head's tail, never damage: kind 'zero' (preallocated zeros), 'incomplete' or 'garbage' (the record being
   * written, or a torn write), 'uncommitted segment' (a roll caught before its header was whole).
   */
  tornTail: { segmentId: number; offset: number; bytes: number; kind: HeadTail['kind'] | 'uncommitted segment' } | undefined;
  /** The pid of the live process holding the owner lock when verify looked, if any. */
  ownerPid: number | undefined;
  decodeErrors: Array<{ seq: number; segmentId: number; offset: number; code: string; message: string }>;
  index: { present: boolean; usable: boolean; reason?: string; nextSeq?: number };
  quarantined: string[];
}

export function verifyLog(
  dir: string,
  opts: { fs?: Fs; codec?: RecordCodec; encryption?: EncryptionOptions } = {},
): VerifyReport {
  const fs = opts.fs ?? nodeFs;
  const manifest = readManifest(fs, dir);
  if (opts.encryption) checkKeys(manifest, keySpecs(opts.encryption));
  const codec = opts.codec ?? (opts.encryption ? new RecordCodec({ compressThreshold: false, encryption: opts.encryption }) : undefined);
  const logDir = path.join(dir, LOG_DIR);
  const cp = readCheckpointFile(fs, path.join(dir, INDEX_FILE));
  const decodeErrors: VerifyReport['decodeErrors'] = [];
  // Without a codec there is nothing to check per entry: no onEntry, so the scan builds no entry objects.
  const summary = scanLog(fs, logDir, {
    codec,
    onEntry: !codec ? undefined : (e) => {
      try {
        e.payload();
      } catch (err) {
        if (!(err instanceof SpoolError)) throw err;
        decodeErrors.push({ seq: e.seq, segmentId: e.segmentId, offset: e.offset, code: err.code, message: err.message });
      }
    },
  });

  const judged = judgeScan(summary);
  const damage = judged.damage;
  const segments: VerifySegment[] = [];
  let tornTail: VerifyReport['tornTail'] = judged.headTail;
  let bytes = 0;
  summary.segments.forEach((s, i) => {
    const seg: VerifySegment = { ...s };
    bytes += s.fileSize;
    const isLast = i === summary.segments.length - 1;
    let fd: number | undefined;
    try {
      fd = openOrThrow(fs, segmentPath(logDir, s.segmentId), 'r');
      seg.generation = readSegmentHeader(fs, fd, s.segmentId).generation;
    } catch (err) {
      // Deleted by compaction since the scan: it held nothing live.
      if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return;
      if (!(err instanceof SpoolError) || err.code === 'ERR_IO') throw err;
      seg.headerError = err.message;
      if (isLast && s.records === 0) {
        // A roll caught before its header was whole (a crash, or an owner rolling right now): recovery removes it.
        tornTail = { segmentId: s.segmentId, offset: 0, bytes: s.fileSize, kind: 'uncommitted segment' };
        segments.push(seg);
        return;
      }
      damage.unshift({ segmentId: s.segmentId, offset: 0, end: 64, reason: err.message });
    } finally {
      if (fd !== undefined) closeQuietly(fs, fd);
    }
    segments.push(seg);
  });

  const index: VerifyReport['index'] = cp.checkpoint
    ? { present: true, usable: true, nextSeq: cp.checkpoint.position.nextSeq }
    : { present: cp.error !== undefined, usable: false, reason: cp.error };
  if (cp.checkpoint && cp.checkpoint.position.nextSeq > summary.lastSeq + 1) {
    index.usable = false;
    index.reason = `it covers up to seq ${cp.checkpoint.position.nextSeq - 1}, past the log's end`;
  }
  if (cp.checkpoint && index.usable) {
    // The same test open applies (recovery.ts): a segment rewritten or gone since makes the index unusable.
    const current = segments.map((s) => ({ segmentId: s.segmentId, generation: s.generation ?? 0 }));
    const why = checkpointMismatch(cp.checkpoint, current, fs, logDir);
    if (why) {
      index.usable = false;
      index.reason = why;
    }
  }
  let quarantined: string[] = [];
  const qdir = path.join(dir, QUARANTINE_DIR);
  if (fs.existsSync(qdir)) quarantined = fs.readdirSync(qdir).sort();

  return {
    ok: damage.length === 0 && decodeErrors.length === 0,
    dir,
    encrypted: manifest.encrypted,
    segments,
    records: summary.records,
    bytes,
    firstSeq: summary.firstSeq,
    lastSeq: summary.lastSeq,
    fenced: summary.fenced,
    damage,
    tornTail,
    ownerPid: liveOwnerPid(dir),
    decodeErrors,
    index,
    quarantined,
  };
}
