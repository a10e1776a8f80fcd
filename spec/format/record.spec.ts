import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FLAG_AES,
  FLAG_LZ4,
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  RECORD_VERSION,
  checkRecord,
  encodeRecord,
  findNextRecord,
  isZero,
  readRecordHeader,
  readU64,
  recordAad,
  sealRecord,
  writeRecordHeader,
  writeU64,
  type RecordMeta,
} from '../../lib/format/record.js';
import { crc32 } from '../../lib/format/crc32.js';

const META: RecordMeta = { type: 7, flags: 0, keyId: 0, seq: 42, segmentId: 40, epoch: 3 };

function record(meta: Partial<RecordMeta> = {}, payload: Buffer = Buffer.from('payload!')): Buffer {
  return encodeRecord({ ...META, ...meta }, payload);
}

/** Applies `edit` to a copy of a valid record and re-seals its crc, so only the edited field is wrong. */
function resealed(edit: (buf: Buffer) => void, payload = Buffer.from('payload!')): Buffer {
  const buf = record({}, payload);
  edit(buf);
  buf.writeUInt32LE(crc32(buf, 4, buf.length), 0);
  return buf;
}

describe('encodeRecord / readRecordHeader', () => {
  it('lays out the header exactly as the byte table says', () => {
    const buf = record({ type: 9, flags: FLAG_LZ4 | FLAG_AES, keyId: 200, seq: 0x1_0000_0002, segmentId: 5, epoch: 0xfffffffe }, Buffer.from([1, 2, 3]));
    assert.equal(buf.length, RECORD_HEADER_BYTES + 3);
    assert.equal(buf.readUInt32LE(0), crc32(buf, 4, buf.length));
    assert.deepEqual([...buf.subarray(4, 12)], [0x53, 0x51, RECORD_VERSION, 9, 3, 200, 0, 0]);
    assert.equal(buf.readUInt32LE(12), 3);
    assert.deepEqual([...buf.subarray(16, 24)], [2, 0, 0, 0, 1, 0, 0, 0]);
    assert.deepEqual([...buf.subarray(24, 32)], [5, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(buf.readUInt32LE(32), 0xfffffffe);
    assert.deepEqual([...buf.subarray(36)], [1, 2, 3]);
  });

  it('round-trips every header field, including the largest values', () => {
    const meta: RecordMeta = {
      type: 255,
      flags: FLAG_LZ4 | FLAG_AES,
      keyId: 255,
      seq: Number.MAX_SAFE_INTEGER,
      segmentId: Number.MAX_SAFE_INTEGER - 1,
      epoch: 0xffffffff,
    };
    const buf = encodeRecord(meta, Buffer.alloc(17, 0xaa));
    assert.deepEqual(readRecordHeader(buf, 0), { ...meta, length: 17 });
    assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'ok', size: RECORD_HEADER_BYTES + 17 });
  });

  it('reads a header at a non-zero offset', () => {
    const rec = record({ seq: 77 });
    const buf = Buffer.concat([Buffer.alloc(13, 0xee), rec]);
    assert.deepEqual(readRecordHeader(buf, 13), { ...META, seq: 77, length: 8 });
    assert.deepEqual(checkRecord(buf, 13, buf.length), { kind: 'ok', size: rec.length });
  });

  it('encodes an empty payload as a bare 36-byte header', () => {
    const buf = record({}, Buffer.alloc(0));
    assert.equal(buf.length, RECORD_HEADER_BYTES);
    assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'ok', size: RECORD_HEADER_BYTES });
  });

  it('sealRecord returns the record size and writes the crc of bytes [4, end)', () => {
    const buf = Buffer.alloc(100, 0xcd);
    writeRecordHeader(buf, 10, META, 20);
    assert.equal(buf.readUInt32LE(10), 0);
    assert.equal(sealRecord(buf, 10), 56);
    assert.equal(buf.readUInt32LE(10), crc32(buf, 14, 66));
    assert.deepEqual(checkRecord(buf, 10, 66), { kind: 'ok', size: 56 });
  });

  it('recordAad is header bytes [4, 36) and shares memory with the record', () => {
    const buf = record();
    const aad = recordAad(buf, 0);
    assert.equal(aad.length, 32);
    assert.deepEqual(aad, buf.subarray(4, 36));
    buf[16] = 99;
    assert.equal(aad[12], 99);
  });
});

describe('checkRecord', () => {
  it('classifies a whole valid record as ok with its size', () => {
    const buf = record();
    assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'ok', size: 44 });
  });

  it('classifies 36 zero bytes as zero', () => {
    assert.deepEqual(checkRecord(Buffer.alloc(36), 0, 36), { kind: 'zero' });
    assert.deepEqual(checkRecord(Buffer.alloc(4096), 0, 4096), { kind: 'zero' });
  });

  it('classifies a short all-zero remainder as zero and an empty one as incomplete', () => {
    assert.deepEqual(checkRecord(Buffer.alloc(10), 0, 10), { kind: 'zero' });
    assert.deepEqual(checkRecord(Buffer.alloc(10), 10, 10), { kind: 'incomplete' });
  });

  it('classifies a zero magic with non-zero bytes elsewhere as bad, not zero', () => {
    const buf = Buffer.alloc(36);
    buf[30] = 1;
    assert.deepEqual(checkRecord(buf, 0, 36), { kind: 'bad', reason: 'bad magic' });
  });

  it('classifies every prefix of a record as incomplete', () => {
    const buf = record({}, Buffer.alloc(30, 1));
    for (let end = 1; end < buf.length; end++) {
      assert.deepEqual(checkRecord(buf, 0, end), { kind: 'incomplete' }, `prefix of ${end} bytes`);
    }
  });

  it('classifies a header whose length runs past the end as incomplete', () => {
    const buf = resealed((b) => b.writeUInt32LE(1000, 12));
    assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'incomplete' });
  });

  const badCases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['a wrong magic', (b) => b.writeUInt16LE(0x5152, 4), /^bad magic$/],
    ['an unknown version', (b) => (b[6] = 2), /^unknown record version 2$/],
    ['version 0', (b) => (b[6] = 0), /^unknown record version 0$/],
    ['type 0', (b) => (b[7] = 0), /^type 0$/],
    ['an unknown flag bit', (b) => (b[8] = 0x04), /^unknown flags$/],
    ['the high flag bit', (b) => (b[8] = 0x80), /^unknown flags$/],
    ['a key id without FLAG_AES', (b) => (b[9] = 1), /^key id mismatch$/],
    ['FLAG_AES without a key id', (b) => (b[8] = FLAG_AES), /^key id mismatch$/],
    ['reserved byte 10 set', (b) => (b[10] = 1), /^reserved bits set$/],
    ['reserved byte 11 set', (b) => (b[11] = 0x80), /^reserved bits set$/],
    ['a length one over MAX_PAYLOAD_BYTES', (b) => b.writeUInt32LE(MAX_PAYLOAD_BYTES + 1, 12), /over the limit/],
    ['a length of 0xffffffff', (b) => b.writeUInt32LE(0xffffffff, 12), /over the limit/],
  ];
  for (const [what, edit, reason] of badCases) {
    it(`classifies a header with ${what} as bad even when its crc matches`, () => {
      const buf = resealed(edit);
      const c = checkRecord(buf, 0, buf.length);
      assert.equal(c.kind, 'bad');
      assert.match((c as { reason: string }).reason, reason);
    });
  }

  it('accepts a length of exactly MAX_PAYLOAD_BYTES as a (then incomplete) record', () => {
    const buf = resealed((b) => b.writeUInt32LE(MAX_PAYLOAD_BYTES, 12));
    assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'incomplete' });
  });

  it('accepts FLAG_AES with a key id and FLAG_LZ4 alone', () => {
    for (const meta of [{ flags: FLAG_AES, keyId: 1 }, { flags: FLAG_AES | FLAG_LZ4, keyId: 255 }, { flags: FLAG_LZ4, keyId: 0 }]) {
      const buf = record(meta);
      assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'ok', size: 44 });
    }
  });

  it('classifies a crc mismatch as bad', () => {
    const buf = record();
    buf.writeUInt32LE((buf.readUInt32LE(0) ^ 1) >>> 0, 0);
    assert.deepEqual(checkRecord(buf, 0, buf.length), { kind: 'bad', reason: 'checksum mismatch' });
  });

  it('detects a flipped bit in every byte of a small record', () => {
    const original = record({ seq: 123456789, segmentId: 123456700, epoch: 9 }, Buffer.from('a small record'));
    let checked = 0;
    for (const trailer of [0, 64]) {
      for (let i = 0; i < original.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const buf = Buffer.concat([original, Buffer.alloc(trailer)]);
          buf[i] ^= 1 << bit;
          const c = checkRecord(buf, 0, buf.length);
          assert.notEqual(c.kind, 'ok', `bit ${bit} of byte ${i} (trailer ${trailer}) went unnoticed`);
          checked++;
        }
      }
    }
    assert.equal(checked, 2 * original.length * 8);
  });
});

describe('findNextRecord', () => {
  it('skips garbage to the first whole valid record', () => {
    const garbage = Buffer.from('garbage SQ SQ\x01 not a record at all', 'latin1');
    const rec = record({ seq: 5 });
    const buf = Buffer.concat([garbage, rec, record({ seq: 6 })]);
    assert.equal(findNextRecord(buf, 0, buf.length), garbage.length);
  });

  it('looks strictly after `from`', () => {
    const a = record({ seq: 1 });
    const buf = Buffer.concat([a, record({ seq: 2 })]);
    assert.equal(findNextRecord(buf, 0, buf.length), a.length);
    assert.equal(findNextRecord(buf, a.length, buf.length), -1);
    assert.equal(findNextRecord(buf, a.length - 1, buf.length), a.length);
  });

  it('finds a record that ends exactly at `end` and none that runs past it', () => {
    const buf = Buffer.concat([Buffer.alloc(7, 0xff), record()]);
    assert.equal(findNextRecord(buf, 0, buf.length), 7);
    assert.equal(findNextRecord(buf, 0, buf.length - 1), -1);
  });

  it('returns -1 when nothing valid follows', () => {
    const buf = Buffer.concat([Buffer.alloc(50, 0x53), Buffer.from([0x53, 0x51, 0x53, 0x51]), Buffer.alloc(100)]);
    assert.equal(findNextRecord(buf, 0, buf.length), -1);
    assert.equal(findNextRecord(Buffer.alloc(0), 0, 0), -1);
  });

  it('ignores a false start whose magic appears inside damaged bytes', () => {
    const good = record({ seq: 9 });
    const fake = Buffer.from(good);
    fake[40] ^= 1; // damage its payload: the magic is still there, the crc no longer matches
    const buf = Buffer.concat([Buffer.alloc(3, 1), fake, good]);
    assert.equal(findNextRecord(buf, 0, buf.length), 3 + fake.length);
  });

  it('honours accept: a valid record that is not accepted is stepped over', () => {
    const r1 = record({ seq: 3 });
    const r2 = record({ seq: 4 });
    const r3 = record({ seq: 5 });
    const buf = Buffer.concat([Buffer.alloc(5, 0xab), r1, r2, r3]);
    const seen: number[] = [];
    const at = findNextRecord(buf, 0, buf.length, (h) => {
      seen.push(h.seq);
      return h.seq >= 5;
    });
    assert.equal(at, 5 + r1.length + r2.length);
    assert.deepEqual(seen, [3, 4, 5]);
    assert.equal(findNextRecord(buf, 0, buf.length, () => false), -1);
  });

  it('passes accept the header of the candidate record', () => {
    const buf = Buffer.concat([Buffer.alloc(2), record({ seq: 31, segmentId: 30, epoch: 4, type: 2 }, Buffer.alloc(3))]);
    let got: unknown;
    findNextRecord(buf, 0, buf.length, (h) => ((got = h), true));
    assert.deepEqual(got, { type: 2, flags: 0, keyId: 0, seq: 31, segmentId: 30, epoch: 4, length: 3 });
  });
});

describe('isZero', () => {
  it('is true only when every byte of the range is zero', () => {
    const buf = Buffer.alloc(10);
    assert.equal(isZero(buf, 0, 10), true);
    assert.equal(isZero(buf, 5, 5), true);
    buf[9] = 1;
    assert.equal(isZero(buf, 0, 10), false);
    assert.equal(isZero(buf, 0, 9), true);
  });
});

describe('u64 helpers', () => {
  const cases = [0, 1, 0xffffffff, 0x1_0000_0000, 0x1_0000_0001, 2 ** 52, Number.MAX_SAFE_INTEGER];
  for (const value of cases) {
    it(`round-trip ${value} and agree with BigInt little-endian`, () => {
      const buf = Buffer.alloc(12, 0xee);
      writeU64(buf, 2, value);
      assert.equal(readU64(buf, 2), value);
      assert.equal(buf.readBigUInt64LE(2), BigInt(value));
      assert.equal(buf[0], 0xee);
      assert.equal(buf[1], 0xee);
      assert.equal(buf[10], 0xee);
    });
  }

  it('write 2^53-1 as ff ff ff ff ff ff 1f 00', () => {
    const buf = Buffer.alloc(8);
    writeU64(buf, 0, 2 ** 53 - 1);
    assert.deepEqual([...buf], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00]);
  });

  it('use the magic and version constants of the byte table', () => {
    assert.equal(RECORD_MAGIC, 0x5153);
    assert.equal(RECORD_VERSION, 1);
    assert.equal(RECORD_HEADER_BYTES, 36);
    assert.equal(MAX_PAYLOAD_BYTES, 64 * 1024 * 1024);
  });
});
