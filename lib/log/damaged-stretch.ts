/**
 * What can still be made out of a stretch of a segment that replay stepped over (recovery quarantined it as
 * damaged): read-only, for the layer above to name what was lost (log.ts, Log.replay's onDamaged).
 */
import { RECORD_HEADER_BYTES, RECORD_MAGIC, RECORD_VERSION, readRecordHeader, recordSize } from '../format/record.js';
import { closeQuietly, openOrThrow, readFully, type Fs } from './fs.js';
import { segmentPath } from './segment-files.js';

/**
 * A stretch of a segment that replay stepped over because it is not valid records (quarantined by recovery),
 * with what can still be made out of it: the records whose header is whole and plausible (magic, version, this
 * segment, a seq between its neighbours', a length that fits) but whose checksum fails. Their payloads are as
 * stored and unchecked: a hint to name what was lost (a job id), never data to trust.
 */
export interface DamagedStretch {
  segmentId: number;
  offset: number;
  end: number;
  /** Seqs of the records on either side: the lost records had seqs between them. */
  afterSeq: number;
  beforeSeq: number;
  records: Array<{ seq: number; type: number; flags: number; offset: number; size: number; payload: Buffer }>;
}

/** Reads segment `segmentId`'s bytes [start, end), between records `afterSeq` and `beforeSeq` (see DamagedStretch). */
export function readDamagedStretch(fs: Fs, logDir: string, segmentId: number, start: number, end: number, afterSeq: number, beforeSeq: number): DamagedStretch {
  const stretch: DamagedStretch = { segmentId, offset: start, end, afterSeq, beforeSeq, records: [] };
  const fd = openOrThrow(fs, segmentPath(logDir, segmentId), 'r');
  let buf: Buffer;
  try {
    buf = Buffer.alloc(end - start);
    buf = buf.subarray(0, readFully(fs, fd, buf, 0, buf.length, start));
  } finally {
    closeQuietly(fs, fd);
  }
  for (let at = 0; at + RECORD_HEADER_BYTES <= buf.length; ) {
    const valid = recordSize(buf, at, buf.length);
    if (valid > 0) {
      at += valid; // a whole record replay did not deliver (fenced): not damage
      continue;
    }
    if (buf.readUInt16LE(at + 4) !== RECORD_MAGIC || buf[at + 6] !== RECORD_VERSION) break;
    const h = readRecordHeader(buf, at);
    const size = RECORD_HEADER_BYTES + h.length;
    if (h.segmentId !== segmentId || h.seq <= afterSeq || h.seq >= beforeSeq || at + size > buf.length) break;
    stretch.records.push({ seq: h.seq, type: h.type, flags: h.flags, offset: start + at, size, payload: buf.subarray(at + RECORD_HEADER_BYTES, at + size) });
    at += size;
  }
  return stretch;
}
