/**
 * stats: what a log directory holds, read-only and lock-free, in one pass over the segments.
 *
 * Live and dead are counted two ways. Without a liveness function every record that a reader accepts is live,
 * and dead space is what no reader will use: damaged ranges, the head's tail, bad tails of sealed segments,
 * records fenced off as written by an old owner, and segment headers. With `isLive` (the layer above knows which
 * records still matter) dead also counts the records it rejects: what compaction would give back. Fenced records
 * are counted in `fenced` and their bytes in dead.bytes, but not in dead.records.
 *
 * Of the bytes that are not records, only damage (head-tail.ts: damaged ranges, bad tails of sealed segments) is
 * counted as damaged. The head's tail is not: zeros there are `preallocatedBytes` (what an fsync-mode owner keeps
 * ahead of its appends), anything else `headTailBytes` (the record being written, or a torn write).
 */
import * as path from 'node:path';
import { RecordCodec } from '../codec/record-codec.js';
import { keySpecs, type EncryptionOptions } from '../codec/keyring.js';
import { LOG_DIR } from '../format/names.js';
import { nodeFs, type Fs } from './fs.js';
import { judgeScan } from './head-tail.js';
import { scanLog, type LogEntry } from './log-scan.js';
import { checkKeys, readManifest } from './manifest-store.js';

export interface LogStats {
  dir: string;
  encrypted: boolean;
  maxSegmentBytes: number;
  segments: number;
  bytes: number;
  records: number;
  firstSeq: number | undefined;
  lastSeq: number;
  live: { records: number; bytes: number };
  dead: { records: number; bytes: number };
  /** Bytes in damaged ranges and bad tails of sealed segments (part of dead.bytes). */
  damagedBytes: number;
  /** Zeros after the head's last record: preallocated by an fsync-mode owner (part of dead.bytes; not damage). */
  preallocatedBytes: number;
  /** Other bytes after the head's last record: a record being written, or torn (part of dead.bytes; not damage). */
  headTailBytes: number;
  fenced: number;
  /** Records per type. */
  types: Record<number, number>;
  compressed: number;
  encryptedRecords: number;
}

export function logStats(
  dir: string,
  opts: { fs?: Fs; encryption?: EncryptionOptions; isLive?: (e: LogEntry) => boolean } = {},
): LogStats {
  const fs = opts.fs ?? nodeFs;
  const manifest = readManifest(fs, dir);
  if (opts.encryption) checkKeys(manifest, keySpecs(opts.encryption));
  // Only isLive reads payloads; a codec costs nothing until it decodes one.
  const codec = new RecordCodec({ compressThreshold: false, encryption: opts.encryption });
  const stats: LogStats = {
    dir,
    encrypted: manifest.encrypted,
    maxSegmentBytes: manifest.maxSegmentBytes,
    segments: 0,
    bytes: 0,
    records: 0,
    firstSeq: undefined,
    lastSeq: 0,
    live: { records: 0, bytes: 0 },
    dead: { records: 0, bytes: 0 },
    damagedBytes: 0,
    preallocatedBytes: 0,
    headTailBytes: 0,
    fenced: 0,
    types: {},
    compressed: 0,
    encryptedRecords: 0,
  };
  const summary = scanLog(fs, path.join(dir, LOG_DIR), {
    codec,
    onEntry: (e) => {
      stats.firstSeq ??= e.seq;
      stats.types[e.type] = (stats.types[e.type] ?? 0) + 1;
      if (e.flags & 1) stats.compressed++;
      if (e.flags & 2) stats.encryptedRecords++;
      if (!opts.isLive || opts.isLive(e)) {
        stats.live.records++;
        stats.live.bytes += e.size;
      } else {
        stats.dead.records++;
        stats.dead.bytes += e.size;
      }
    },
  });
  stats.segments = summary.segments.length;
  stats.records = summary.records;
  stats.lastSeq = summary.lastSeq;
  stats.fenced = summary.fenced;
  for (const s of summary.segments) stats.bytes += s.fileSize;
  const { damage, headTail } = judgeScan(summary);
  for (const d of damage) stats.damagedBytes += d.end - d.offset;
  if (headTail?.kind === 'zero') stats.preallocatedBytes = headTail.bytes;
  else if (headTail) stats.headTailBytes = headTail.bytes;
  // Everything in the files that is not a live record: headers, damage, tails, fenced and rejected records.
  stats.dead.bytes = stats.bytes - stats.live.bytes;
  return stats;
}
