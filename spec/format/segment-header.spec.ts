import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from '../../lib/format/crc32.js';
import {
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  SEGMENT_VERSION,
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from '../../lib/format/segment-header.js';

const HEADER: SegmentHeader = { segmentId: 1001, generation: 3, epoch: 7, createdAt: 1_700_000_000_123 };

function reseal(buf: Buffer): Buffer {
  buf.writeUInt32LE(crc32(buf, 0, 60), 60);
  return buf;
}

describe('segment header', () => {
  it('round-trips every field', () => {
    assert.deepEqual(decodeSegmentHeader(encodeSegmentHeader(HEADER), 'x'), HEADER);
  });

  it('round-trips the largest values', () => {
    const h = { segmentId: Number.MAX_SAFE_INTEGER, generation: 0xffffffff, epoch: 0xffffffff, createdAt: 8.64e15 };
    assert.deepEqual(decodeSegmentHeader(encodeSegmentHeader(h), 'x'), h);
  });

  it('lays out 64 bytes as the byte table says', () => {
    const buf = encodeSegmentHeader(HEADER);
    assert.equal(buf.length, SEGMENT_HEADER_BYTES);
    assert.equal(SEGMENT_HEADER_BYTES, 64);
    assert.equal(buf.toString('latin1', 0, 4), 'SPQS');
    assert.deepEqual(buf.subarray(0, 4), SEGMENT_MAGIC);
    assert.equal(buf.readUInt16LE(4), SEGMENT_VERSION);
    assert.equal(SEGMENT_VERSION, 1);
    assert.equal(buf.readUInt16LE(6), 64);
    assert.equal(buf.readBigUInt64LE(8), 1001n);
    assert.equal(buf.readUInt32LE(16), 3);
    assert.equal(buf.readUInt32LE(20), 7);
    assert.equal(buf.readBigUInt64LE(24), 1_700_000_000_123n);
    assert.deepEqual(buf.subarray(32, 60), Buffer.alloc(28));
    assert.equal(buf.readUInt32LE(60), crc32(buf, 0, 60));
  });

  it('decodes a header followed by more bytes (the first records)', () => {
    const buf = Buffer.concat([encodeSegmentHeader(HEADER), Buffer.alloc(100, 9)]);
    assert.deepEqual(decodeSegmentHeader(buf, 'x'), HEADER);
  });

  it('refuses a short header with ERR_CORRUPT_RECORD', () => {
    const buf = encodeSegmentHeader(HEADER);
    for (const len of [0, 1, 4, 63]) {
      assert.throws(() => decodeSegmentHeader(buf.subarray(0, len), 'seg'), { code: 'ERR_CORRUPT_RECORD' }, `length ${len}`);
    }
  });

  it('refuses a bad magic with ERR_NOT_A_LOG', () => {
    const buf = reseal(encodeSegmentHeader(HEADER));
    buf.write('SPQX', 0, 'latin1');
    reseal(buf);
    assert.throws(() => decodeSegmentHeader(buf, 'seg'), { code: 'ERR_NOT_A_LOG' });
  });

  it('refuses an unknown version with ERR_UNSUPPORTED_VERSION even when its crc matches', () => {
    for (const version of [0, 2, 0xffff]) {
      const buf = encodeSegmentHeader(HEADER);
      buf.writeUInt16LE(version, 4);
      reseal(buf);
      assert.throws(() => decodeSegmentHeader(buf, 'seg'), { code: 'ERR_UNSUPPORTED_VERSION', message: new RegExp(`version ${version}`) });
    }
  });

  it('detects a flipped byte anywhere in the header, with the code its field calls for', () => {
    const good = encodeSegmentHeader(HEADER);
    for (let i = 0; i < SEGMENT_HEADER_BYTES; i++) {
      const buf = Buffer.from(good);
      buf[i] ^= 0xff;
      const code = i < 4 ? 'ERR_NOT_A_LOG' : i < 6 ? 'ERR_UNSUPPORTED_VERSION' : 'ERR_CORRUPT_RECORD';
      assert.throws(() => decodeSegmentHeader(buf, 'seg'), { code }, `byte ${i}`);
    }
  });

  it('names the file in its error messages', () => {
    const buf = encodeSegmentHeader(HEADER);
    buf[20] ^= 1;
    assert.throws(() => decodeSegmentHeader(buf, '00000000000000001001.seg'), {
      code: 'ERR_CORRUPT_RECORD',
      message: /00000000000000001001\.seg/,
    });
  });
});
