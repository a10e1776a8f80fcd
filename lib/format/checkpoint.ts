/**
 * The index file: a checkpoint of the fold of the log at a log position. Pure. The log layer does not know what
 * the state bytes mean; the layer above (store) does.
 *
 *   off size field      meaning
 *     0   4  magic      "SPQI"
 *     4   2  version    CHECKPOINT_VERSION (1)
 *     6   2  reserved   0
 *     8   8  nextSeq    the first sequence number NOT covered by the state
 *    16   8  segmentId  segment holding the position
 *    24   8  offset     byte offset in that segment just past the last covered record
 *    32   4  epoch      highest owner epoch seen up to the position
 *    36   4  n          number of segment entries that follow
 *    40 12n  segments   n × (segmentId u64, generation u32): every segment at or before the position, with the
 *                       generation the state's pointers refer to
 *     …   4  stateLen   bytes of state
 *     …   …  state      opaque to the log
 *     …   4  crc        CRC-32 of every byte before it
 *
 * Replaced atomically (log/checkpoint-store.ts): written as index.tmp, fsynced, renamed over index, directory
 * fsynced. A crash leaves the old index or the new one, never a mix; a damaged or stale one (a segment it names
 * was since rewritten by compaction) is ignored and the log is replayed from the start instead.
 */
import { SpoolError } from '../errors.js';
import { crc32, crc32Continue } from './crc32.js';
import { readU64, writeU64 } from './record.js';

export const CHECKPOINT_MAGIC = Buffer.from('SPQI', 'latin1');
export const CHECKPOINT_VERSION = 1;

export interface LogPosition {
  /** First sequence number after the position. */
  nextSeq: number;
  segmentId: number;
  /** Byte offset in the segment just past the last record before the position. */
  offset: number;
}

export interface Checkpoint {
  position: LogPosition;
  epoch: number;
  segments: Array<{ segmentId: number; generation: number }>;
  state: Buffer;
}

export function encodeCheckpoint(cp: Checkpoint): Buffer {
  return Buffer.concat(encodeCheckpointParts(cp));
}

/**
 * The checkpoint as [head, state, crc] so a writer can write them in turn: the state of a large queue is tens of
 * MB, and concatenating would hold it twice. The crc is computed over head and state in two steps.
 */
export function encodeCheckpointParts(cp: Checkpoint): [Buffer, Buffer, Buffer] {
  const n = cp.segments.length;
  const head = Buffer.alloc(40 + 12 * n + 4);
  CHECKPOINT_MAGIC.copy(head, 0);
  head.writeUInt16LE(CHECKPOINT_VERSION, 4);
  writeU64(head, 8, cp.position.nextSeq);
  writeU64(head, 16, cp.position.segmentId);
  writeU64(head, 24, cp.position.offset);
  head.writeUInt32LE(cp.epoch >>> 0, 32);
  head.writeUInt32LE(n, 36);
  let off = 40;
  for (const s of cp.segments) {
    writeU64(head, off, s.segmentId);
    head.writeUInt32LE(s.generation >>> 0, off + 8);
    off += 12;
  }
  head.writeUInt32LE(cp.state.length, off);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(crc32Continue(cp.state, crc32(head)), 0);
  return [head, cp.state, tail];
}

/** Throws ERR_CORRUPT_RECORD, ERR_NOT_A_LOG or ERR_UNSUPPORTED_VERSION; callers treat all three as "no index". */
export function decodeCheckpoint(buf: Buffer): Checkpoint {
  if (buf.length < 48 || !buf.subarray(0, 4).equals(CHECKPOINT_MAGIC)) {
    throw new SpoolError('ERR_NOT_A_LOG', 'index: not a spoolq index file');
  }
  const version = buf.readUInt16LE(4);
  if (version !== CHECKPOINT_VERSION) {
    throw new SpoolError('ERR_UNSUPPORTED_VERSION', `index: version ${version} is not supported`);
  }
  const body = buf.length - 4;
  if (crc32(buf, 0, body) !== buf.readUInt32LE(body)) {
    throw new SpoolError('ERR_CORRUPT_RECORD', 'index: checksum mismatch');
  }
  const n = buf.readUInt32LE(36);
  let off = 40;
  if (off + 12 * n + 4 > body) throw new SpoolError('ERR_CORRUPT_RECORD', 'index: segment table runs past the end');
  const segments: Checkpoint['segments'] = [];
  for (let i = 0; i < n; i++, off += 12) {
    segments.push({ segmentId: readU64(buf, off), generation: buf.readUInt32LE(off + 8) });
  }
  const stateLen = buf.readUInt32LE(off);
  if (off + 4 + stateLen !== body) throw new SpoolError('ERR_CORRUPT_RECORD', 'index: state length mismatch');
  return {
    position: { nextSeq: readU64(buf, 8), segmentId: readU64(buf, 16), offset: readU64(buf, 24) },
    epoch: buf.readUInt32LE(32),
    segments,
    // A view, not a copy: the state of a large queue is tens of MB, and the caller decodes it and drops it.
    state: buf.subarray(off + 4, off + 4 + stateLen),
  };
}
