/**
 * The header that opens every segment file. Pure and synchronous.
 *
 *   off size field       meaning
 *     0   4  magic       "SPQS"
 *     4   2  version     SEGMENT_VERSION (1)
 *     6   2  headerSize  SEGMENT_HEADER_BYTES (64)
 *     8   8  segmentId   the first sequence number the segment may hold; also its file name
 *    16   4  generation  0 when first written; +1 each time compaction rewrites the segment
 *    20   4  epoch       epoch of the owner that created this generation
 *    24   8  createdAt   ms since the Unix epoch
 *    32  28  reserved    0
 *    60   4  crc         CRC-32 of bytes [0, 60)
 *
 * Commit point: a new segment is written as a whole header, fsynced, and only then is its name fsynced into the
 * directory (segment-writer.ts). A file shorter than the header or with a bad crc is a segment whose creation
 * never committed; if it is the last one, recovery removes it, since no record can have been acknowledged in it.
 */
import { SpoolError } from '../errors.js';
import { crc32 } from './crc32.js';
import { readU64, writeU64 } from './record.js';

export const SEGMENT_MAGIC = Buffer.from('SPQS', 'latin1');
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 64;

export interface SegmentHeader {
  segmentId: number;
  generation: number;
  epoch: number;
  createdAt: number;
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(SEGMENT_VERSION, 4);
  buf.writeUInt16LE(SEGMENT_HEADER_BYTES, 6);
  writeU64(buf, 8, h.segmentId);
  buf.writeUInt32LE(h.generation >>> 0, 16);
  buf.writeUInt32LE(h.epoch >>> 0, 20);
  writeU64(buf, 24, h.createdAt);
  buf.writeUInt32LE(crc32(buf, 0, 60), 60);
  return buf;
}

/**
 * Decodes a segment header. Throws ERR_NOT_A_LOG when the magic is wrong, ERR_UNSUPPORTED_VERSION for a version
 * this build does not read, ERR_CORRUPT_RECORD when the bytes are short or fail their crc.
 */
export function decodeSegmentHeader(buf: Buffer, where: string): SegmentHeader {
  if (buf.length < SEGMENT_HEADER_BYTES) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `${where}: segment header is short (${buf.length} bytes)`);
  }
  if (!buf.subarray(0, 4).equals(SEGMENT_MAGIC)) {
    throw new SpoolError('ERR_NOT_A_LOG', `${where}: not a spoolq segment (bad magic)`);
  }
  const version = buf.readUInt16LE(4);
  if (version !== SEGMENT_VERSION) {
    throw new SpoolError('ERR_UNSUPPORTED_VERSION', `${where}: segment format version ${version} is not supported`);
  }
  if (crc32(buf, 0, 60) !== buf.readUInt32LE(60)) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `${where}: segment header checksum mismatch`);
  }
  return {
    segmentId: readU64(buf, 8),
    generation: buf.readUInt32LE(16),
    epoch: buf.readUInt32LE(20),
    createdAt: readU64(buf, 24),
  };
}
