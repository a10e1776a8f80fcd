/**
 * Record framing: the bytes of one log record. Pure and synchronous; no fs, no codecs.
 *
 * A segment file is a segment header (segment-header.ts) followed by records laid end to end, no padding:
 *
 *   off size field     meaning
 *     0   4  crc       CRC-32 of bytes [4, 36 + length): the rest of this header and the payload as stored
 *     4   2  magic     0x53 0x51 ("SQ")
 *     6   1  version   RECORD_VERSION (1)
 *     7   1  type      1..255, chosen by the layer above; 0 is never written
 *     8   1  flags     bit 0 FLAG_LZ4: payload is LZ4-compressed; bit 1 FLAG_AES: payload is AES-256-GCM
 *                      sealed (nonce ‖ ciphertext ‖ tag); other bits 0
 *     9   1  keyId     id of the key that sealed the payload (1..255); 0 when FLAG_AES is clear
 *    10   2  reserved  0
 *    12   4  length    payload bytes as stored (after compression and encryption), ≤ MAX_PAYLOAD_BYTES
 *    16   8  seq       sequence number: strictly increasing through the whole log, never reused
 *    24   8  segment   id of the segment the record was first written to (that segment's first seq)
 *    32   4  epoch     epoch of the owner that wrote it (fencing, see log/scanner.ts)
 *    36   …  payload   `length` bytes
 *
 * All integers little-endian. Bytes [4, 36) are also the associated data of AES-GCM, so an encrypted payload
 * cannot be moved to another seq, segment, type or epoch without failing authentication.
 *
 * Commit point: a record exists once all of its 36 + length bytes are on disk and its crc matches. It is
 * written with the others of its batch in one write(); a crash can leave any prefix of that write.
 *
 * Crash story, as the reader sees bytes at an offset:
 *   - fewer than 36 bytes left, or a header whose length runs past the end of the file: incomplete (a torn
 *     tail, or a record still being written when a tailer looks);
 *   - 36 zero bytes: end of data (a region the file system extended but never filled);
 *   - a header with the wrong magic/version/reserved bits, an impossible length, or a crc mismatch: bad.
 *     The reader cannot trust its length, so it looks for the next offset at which a whole valid record
 *     starts (findNextRecord). Whether the bad range is a torn tail or interior damage is decided there:
 *     nothing valid after it means tail.
 */
import { crc32 } from './crc32.js';

export const RECORD_HEADER_BYTES = 36;
export const RECORD_MAGIC = 0x5153; // "SQ" little-endian
export const RECORD_VERSION = 1;
export const FLAG_LZ4 = 0x01;
export const FLAG_AES = 0x02;
const KNOWN_FLAGS = FLAG_LZ4 | FLAG_AES;
/** The largest payload a record may carry as stored. Larger lengths are never trusted. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

export interface RecordMeta {
  type: number;
  flags: number;
  keyId: number;
  seq: number;
  segmentId: number;
  epoch: number;
}

export interface RecordHeader extends RecordMeta {
  /** Payload bytes as stored. */
  length: number;
}

/**
 * Writes the header (crc left zero) of a record whose stored payload is `length` bytes. Positional arguments and
 * byte stores rather than an options object and Buffer#write*: this runs once per append and shows in profiles.
 */
export function writeRecordHeaderFields(
  buf: Buffer,
  off: number,
  type: number,
  flags: number,
  keyId: number,
  length: number,
  seq: number,
  segmentId: number,
  epoch: number,
): void {
  buf[off] = 0;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = RECORD_MAGIC & 0xff;
  buf[off + 5] = RECORD_MAGIC >>> 8;
  buf[off + 6] = RECORD_VERSION;
  buf[off + 7] = type;
  buf[off + 8] = flags;
  buf[off + 9] = keyId;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeU32(buf, off + 12, length);
  writeU64(buf, off + 16, seq);
  writeU64(buf, off + 24, segmentId);
  writeU32(buf, off + 32, epoch);
}

export function writeRecordHeader(buf: Buffer, off: number, meta: RecordMeta, length: number): void {
  writeRecordHeaderFields(buf, off, meta.type, meta.flags, meta.keyId, length, meta.seq, meta.segmentId, meta.epoch);
}

/** Computes and stores the crc of the record at `off` whose header and payload are already in place. */
export function sealRecord(buf: Buffer, off: number): number {
  const length = buf.readUInt32LE(off + 12);
  const end = off + RECORD_HEADER_BYTES + length;
  buf.writeUInt32LE(crc32(buf, off + 4, end), off);
  return end - off;
}

/** The associated data that AES-GCM binds to a payload: header bytes [4, 36). */
export function recordAad(buf: Buffer, off: number): Buffer {
  return buf.subarray(off + 4, off + RECORD_HEADER_BYTES);
}

/** Encodes a whole plain record (no codec) into a new buffer. For tests and small tools. */
export function encodeRecord(meta: RecordMeta, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  writeRecordHeader(buf, 0, meta, payload.length);
  buf.set(payload, RECORD_HEADER_BYTES);
  sealRecord(buf, 0);
  return buf;
}

export function readRecordHeader(buf: Buffer, off: number): RecordHeader {
  return {
    type: buf[off + 7]!,
    flags: buf[off + 8]!,
    keyId: buf[off + 9]!,
    length: buf.readUInt32LE(off + 12),
    seq: readU64(buf, off + 16),
    segmentId: readU64(buf, off + 24),
    epoch: buf.readUInt32LE(off + 32),
  };
}

export type RecordCheck =
  | { kind: 'ok'; size: number }
  | { kind: 'incomplete' }
  | { kind: 'zero' }
  | { kind: 'bad'; reason: string };

/** recordSize results below zero. */
export const RECORD_INCOMPLETE = -1;
export const RECORD_ZERO = -2;
export const RECORD_BAD = -3;
let lastBadReason = '';

/**
 * Classifies the bytes at buf[off, end): the whole record's size when it is valid, else RECORD_INCOMPLETE,
 * RECORD_ZERO or RECORD_BAD (badReason() then says why). A number rather than an object because scans call this
 * once per record. The length field is trusted only after the fixed fields look right and it is within bounds;
 * the record is trusted only when its crc matches.
 */
export function recordSize(buf: Buffer, off: number, end: number): number {
  const avail = end - off;
  if (avail < RECORD_HEADER_BYTES) return avail > 0 && isZero(buf, off, end) ? RECORD_ZERO : RECORD_INCOMPLETE;
  if (buf[off + 4] !== (RECORD_MAGIC & 0xff) || buf[off + 5] !== RECORD_MAGIC >>> 8) {
    return isZero(buf, off, off + RECORD_HEADER_BYTES) ? RECORD_ZERO : bad('bad magic');
  }
  if (buf[off + 6] !== RECORD_VERSION) return bad(`unknown record version ${buf[off + 6]}`);
  const flags = buf[off + 8]!;
  const keyId = buf[off + 9]!;
  if (buf[off + 7] === 0) return bad('type 0');
  if ((flags & ~KNOWN_FLAGS) !== 0) return bad('unknown flags');
  if ((flags & FLAG_AES) === 0 ? keyId !== 0 : keyId === 0) return bad('key id mismatch');
  if (buf[off + 10] !== 0 || buf[off + 11] !== 0) return bad('reserved bits set');
  const length = buf.readUInt32LE(off + 12);
  if (length > MAX_PAYLOAD_BYTES) return bad(`length ${length} over the limit`);
  const size = RECORD_HEADER_BYTES + length;
  if (size > avail) return RECORD_INCOMPLETE;
  if (crc32(buf, off + 4, off + size) !== buf.readUInt32LE(off)) return bad('checksum mismatch');
  return size;
}

function bad(reason: string): number {
  lastBadReason = reason;
  return RECORD_BAD;
}

/** Why the last recordSize call returned RECORD_BAD. */
export function badReason(): string {
  return lastBadReason;
}

/** recordSize as an object, for callers off the hot path. */
export function checkRecord(buf: Buffer, off: number, end: number): RecordCheck {
  const size = recordSize(buf, off, end);
  if (size > 0) return { kind: 'ok', size };
  if (size === RECORD_ZERO) return { kind: 'zero' };
  if (size === RECORD_INCOMPLETE) return { kind: 'incomplete' };
  return { kind: 'bad', reason: lastBadReason };
}

/**
 * The first offset in (from, end) at which a whole valid record starts, or -1. Used to step over a damaged
 * range whose length field cannot be trusted. `accept` lets the caller add conditions (seq and segment in
 * range), which makes a false match inside damaged bytes much less likely than the crc alone.
 */
export function findNextRecord(
  buf: Buffer,
  from: number,
  end: number,
  accept: (header: RecordHeader) => boolean = () => true,
): number {
  const m0 = RECORD_MAGIC & 0xff;
  const m1 = RECORD_MAGIC >> 8;
  for (let i = buf.indexOf(m0, from + 1); i !== -1 && i - 4 + RECORD_HEADER_BYTES <= end; i = buf.indexOf(m0, i + 1)) {
    const start = i - 4;
    if (start <= from || buf[i + 1] !== m1) continue;
    const c = checkRecord(buf, start, end);
    if (c.kind === 'ok' && accept(readRecordHeader(buf, start))) return start;
  }
  return -1;
}

export function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

function writeU32(buf: Buffer, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
  buf[off + 2] = (v >>> 16) & 0xff;
  buf[off + 3] = (v >>> 24) & 0xff;
}

// Sequence numbers and segment ids are u64 on disk and safe integers (< 2^53) in memory: at a million records
// a second that lasts 285 years.
export function writeU64(buf: Buffer, off: number, value: number): void {
  const lo = value % 0x1_0000_0000;
  writeU32(buf, off, lo);
  writeU32(buf, off + 4, (value - lo) / 0x1_0000_0000);
}

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x1_0000_0000;
}
