import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from '../../lib/format/crc32.js';
import { CHECKPOINT_VERSION, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../lib/format/checkpoint.js';

const CP: Checkpoint = {
  position: { nextSeq: 1234, segmentId: 1001, offset: 4000 },
  epoch: 6,
  segments: [
    { segmentId: 1, generation: 0 },
    { segmentId: 500, generation: 2 },
    { segmentId: 1001, generation: 0 },
  ],
  state: Buffer.from('{"jobs":["a","b"]}'),
};

function reseal(buf: Buffer): Buffer {
  buf.writeUInt32LE(crc32(buf, 0, buf.length - 4), buf.length - 4);
  return buf;
}

describe('checkpoint', () => {
  it('round-trips position, epoch, segments and state', () => {
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint(CP)), CP);
  });

  it('round-trips an empty segment table and empty state', () => {
    const cp: Checkpoint = { position: { nextSeq: 1, segmentId: 1, offset: 64 }, epoch: 1, segments: [], state: Buffer.alloc(0) };
    const buf = encodeCheckpoint(cp);
    assert.equal(buf.length, 48);
    assert.deepEqual(decodeCheckpoint(buf), cp);
  });

  it('round-trips the largest values', () => {
    const cp: Checkpoint = {
      position: { nextSeq: Number.MAX_SAFE_INTEGER, segmentId: Number.MAX_SAFE_INTEGER - 5, offset: 2 ** 40 },
      epoch: 0xffffffff,
      segments: [{ segmentId: Number.MAX_SAFE_INTEGER - 5, generation: 0xffffffff }],
      state: Buffer.alloc(100_000, 7),
    };
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint(cp)), cp);
  });

  it('lays out the fixed fields as the byte table says', () => {
    const buf = encodeCheckpoint(CP);
    assert.equal(buf.toString('latin1', 0, 4), 'SPQI');
    assert.equal(buf.readUInt16LE(4), CHECKPOINT_VERSION);
    assert.equal(CHECKPOINT_VERSION, 1);
    assert.equal(buf.readUInt16LE(6), 0);
    assert.equal(buf.readBigUInt64LE(8), 1234n);
    assert.equal(buf.readBigUInt64LE(16), 1001n);
    assert.equal(buf.readBigUInt64LE(24), 4000n);
    assert.equal(buf.readUInt32LE(32), 6);
    assert.equal(buf.readUInt32LE(36), 3);
    assert.equal(buf.readBigUInt64LE(40 + 12), 500n);
    assert.equal(buf.readUInt32LE(40 + 12 + 8), 2);
    assert.equal(buf.readUInt32LE(76), CP.state.length);
    assert.equal(buf.length, 40 + 36 + 4 + CP.state.length + 4);
  });

  it('returns the state as a view into the input, not a copy (a large queue state is tens of MB)', () => {
    const buf = encodeCheckpoint(CP);
    const cp = decodeCheckpoint(buf);
    assert.deepEqual(cp.state, CP.state);
    assert.equal(cp.state.buffer, buf.buffer);
  });

  it('refuses a bad magic or a file too short for the fixed fields with ERR_NOT_A_LOG', () => {
    const buf = encodeCheckpoint(CP);
    buf[3] = 0x58;
    assert.throws(() => decodeCheckpoint(buf), { code: 'ERR_NOT_A_LOG' });
    assert.throws(() => decodeCheckpoint(Buffer.alloc(0)), { code: 'ERR_NOT_A_LOG' });
    assert.throws(() => decodeCheckpoint(encodeCheckpoint(CP).subarray(0, 47)), { code: 'ERR_NOT_A_LOG' });
  });

  it('refuses an unknown version with ERR_UNSUPPORTED_VERSION', () => {
    const buf = encodeCheckpoint(CP);
    buf.writeUInt16LE(2, 4);
    reseal(buf);
    assert.throws(() => decodeCheckpoint(buf), { code: 'ERR_UNSUPPORTED_VERSION', message: /version 2/ });
  });

  it('refuses a flipped byte anywhere after the version with ERR_CORRUPT_RECORD', () => {
    const good = encodeCheckpoint(CP);
    for (let i = 6; i < good.length; i++) {
      const buf = Buffer.from(good);
      buf[i] ^= 0x10;
      assert.throws(() => decodeCheckpoint(buf), { code: 'ERR_CORRUPT_RECORD' }, `byte ${i}`);
    }
  });

  it('refuses a truncated file with ERR_CORRUPT_RECORD', () => {
    const good = encodeCheckpoint(CP);
    for (const cut of [1, 4, 20, good.length - 48]) {
      assert.throws(() => decodeCheckpoint(good.subarray(0, good.length - cut)), { code: 'ERR_CORRUPT_RECORD' }, `cut ${cut}`);
    }
  });

  it('refuses a segment count that runs past the end even when the crc matches', () => {
    for (const n of [4, 1000, 0xffffffff]) {
      const buf = encodeCheckpoint(CP);
      buf.writeUInt32LE(n, 36);
      reseal(buf);
      assert.throws(() => decodeCheckpoint(buf), { code: 'ERR_CORRUPT_RECORD' }, `n = ${n}`);
    }
  });

  it('refuses a state length that disagrees with the file size even when the crc matches', () => {
    for (const delta of [-1, 1, 1000]) {
      const buf = encodeCheckpoint(CP);
      buf.writeUInt32LE(CP.state.length + delta, 76);
      reseal(buf);
      assert.throws(() => decodeCheckpoint(buf), { code: 'ERR_CORRUPT_RECORD', message: /state length/ }, `delta ${delta}`);
    }
  });
});
