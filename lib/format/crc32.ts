/**
 * CRC-32 (the IEEE polynomial, as zlib and gzip use it) over byte ranges.
 *
 * Node ≥ 20.15 has zlib.crc32, implemented in C with SIMD: several GB/s, which is what lets a full verify of a
 * log run at disk speed. On an older Node the table-driven fallback below gives the same values, more slowly.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, initial?: number) => number;

const native = (zlib as unknown as { crc32?: Crc32 }).crc32;

let table: Uint32Array | undefined;
function fallback(data: Uint8Array, initial = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~initial;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

const impl: Crc32 = native ?? fallback;

/** CRC-32 of buf[start, end). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  return impl(start === 0 && end === buf.length ? buf : buf.subarray(start, end)) >>> 0;
}

/** Exposed for the test that checks the fallback agrees with zlib. */
export const crc32Fallback = (buf: Uint8Array): number => fallback(buf) >>> 0;
