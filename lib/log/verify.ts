/**
 * verify: a full, read-only check of a log directory. Takes no lock and writes nothing, so it runs beside a live
 * owner; what it sees of the head is a snapshot (an incomplete record being written there is not damage).
 *
 * Checks: the manifest; every segment header; every record's framing, crc and place (segment-scanner.ts); with a
 * codec, that every payload decrypts and decompresses; the index file. `ok` is false when anything is damaged:
 * a bad header, a damaged range, a sealed segment with a bad tail, a payload that does not decode. A torn tail of
 * the last segment is not damage: it is what a crash mid-write leaves, and the next open cuts it off.
 */
import * as path from 'node:path';
import { SpoolError } from '../errors.js';
import { RecordCodec } from '../codec/record-codec.js';
import { keySpecs, type EncryptionOptions } from '../codec/keyring.js';
import { INDEX_FILE, LOG_DIR, QUARANTINE_DIR } from '../format/names.js';
import { readCheckpointFile } from './checkpoint-store.js';
import { closeQuietly, nodeFs, openOrThrow, type Fs } from './fs.js';
import { scanLog, type SegmentSummary } from './log-scan.js';
import { checkKeys, readManifest } from './manifest-store.js';
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
  /** A torn tail of the last segment: normal after a crash, cut off at the next open. */
  tornTail: { segmentId: number; offset: number; bytes: number; kind: string } | undefined;
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

  const damage = [...summary.damage];
  const segments: VerifySegment[] = [];
  let tornTail: VerifyReport['tornTail'];
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
    if (s.tail !== 'clean') {
      const tail = { segmentId: s.segmentId, offset: s.end, bytes: s.fileSize - s.end, kind: s.tail };
      if (isLast) tornTail = tail;
      else damage.push({ segmentId: s.segmentId, offset: s.end, end: s.fileSize, reason: `sealed segment ends in ${s.tail} bytes` });
    }
    segments.push(seg);
  });

  const cp = readCheckpointFile(fs, path.join(dir, INDEX_FILE));
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
    decodeErrors,
    index,
    quarantined,
  };
}
