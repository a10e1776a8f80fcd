import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { crc32, crc32Fallback } from '../../lib/format/crc32.js';

const zlibCrc32 = (zlib as unknown as { crc32: (data: Uint8Array) => number }).crc32;

describe('crc32', () => {
  it('gives the IEEE check value 0xCBF43926 for "123456789"', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32Fallback(Buffer.from('123456789')), 0xcbf43926);
  });

  it('gives 0 for no bytes', () => {
    assert.equal(crc32(Buffer.alloc(0)), 0);
    assert.equal(crc32Fallback(Buffer.alloc(0)), 0);
  });

  it('fallback equals zlib.crc32 on random data of many lengths', () => {
    assert.equal(typeof zlibCrc32, 'function', 'this Node has zlib.crc32 to compare against');
    for (const len of [1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 255, 256, 1000, 4096, 65537]) {
      for (let round = 0; round < 4; round++) {
        const data = randomBytes(len);
        const want = zlibCrc32(data) >>> 0;
        assert.equal(crc32Fallback(data), want, `length ${len}`);
        assert.equal(crc32(data), want, `length ${len}`);
      }
    }
  });

  it('fallback equals zlib.crc32 on all-zero and all-ones data', () => {
    for (const fill of [0x00, 0xff]) {
      const data = Buffer.alloc(1500, fill);
      assert.equal(crc32Fallback(data), zlibCrc32(data) >>> 0);
    }
  });

  it('returns an unsigned 32-bit value', () => {
    for (let i = 0; i < 200; i++) {
      const v = crc32Fallback(randomBytes(16));
      assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `got ${v}`);
    }
  });

  it('covers exactly buf[start, end)', () => {
    const data = randomBytes(300);
    assert.equal(crc32(data, 10, 250), zlibCrc32(data.subarray(10, 250)) >>> 0);
    assert.equal(crc32(data, 0, 299), zlibCrc32(data.subarray(0, 299)) >>> 0);
    assert.equal(crc32(data, 299), zlibCrc32(data.subarray(299)) >>> 0);
    assert.equal(crc32(data, 5, 5), 0);
  });

  it('changes when any single bit of the input changes', () => {
    const data = randomBytes(64);
    const base = crc32(data);
    for (let i = 0; i < data.length * 8; i++) {
      data[i >> 3] ^= 1 << (i & 7);
      assert.notEqual(crc32(data), base, `bit ${i}`);
      data[i >> 3] ^= 1 << (i & 7);
    }
    assert.equal(crc32(data), base);
  });
});
