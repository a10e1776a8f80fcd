/**
 * CRC-32 (the IEEE polynomial, as zlib and gzip use it) over byte ranges.
 *
 * Node ≥ 20.15 has zlib.crc32, implemented in C with SIMD: several GB/s for large ranges, which is what lets a
 * full verify of a log of large records run at disk speed. Small ranges (most records) go through a
 * slicing-by-8 loop in JavaScript instead; on an older Node without zlib.crc32 every range does.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, initial?: number) => number;

const native = (zlib as unknown as { crc32?: Crc32 }).crc32;

/**
 * Slicing-by-8 tables: TABLES[k * 256 + b] is the CRC contribution of byte b followed by k zero bytes, so eight
 * bytes are folded per step. Built once at load (8 KiB).
 */
const TABLES = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLES[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let k = 1; k < 8; k++) {
    const prev = TABLES[(k - 1) * 256 + n]!;
    TABLES[k * 256 + n] = (prev >>> 8) ^ TABLES[prev & 0xff]!;
  }
}

/** CRC-32 of buf[start, end) in JavaScript: no call into C, no subarray. */
function crc32Js(buf: Uint8Array, start: number, end: number): number {
  const t = TABLES;
  let crc = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    crc ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    crc =
      t[1792 + (crc & 0xff)]! ^
      t[1536 + ((crc >>> 8) & 0xff)]! ^
      t[1280 + ((crc >>> 16) & 0xff)]! ^
      t[1024 + (crc >>> 24)]! ^
      t[768 + buf[i + 4]!]! ^
      t[512 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/**
 * Below this many bytes the JavaScript loop beats zlib.crc32, whose fixed cost per call (about 0.2 µs, plus a
 * subarray) dominates for small records; above it zlib's SIMD wins. Measured on the bench machine with 100 B
 * records (benchmarks/scan.ts).
 */
const JS_BELOW_BYTES = 256;

/** CRC-32 of buf[start, end). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  if (!native || end - start < JS_BELOW_BYTES) return crc32Js(buf, start, end);
  return native(start === 0 && end === buf.length ? buf : buf.subarray(start, end)) >>> 0;
}

/** CRC-32 of `buf` continuing from the CRC `previous` of the bytes before it. */
export function crc32Continue(buf: Uint8Array, previous: number): number {
  if (native) return native(buf, previous) >>> 0;
  return crc32JsFrom(buf, previous);
}

function crc32JsFrom(buf: Uint8Array, previous: number): number {
  const t = TABLES;
  let crc = ~previous;
  for (let i = 0; i < buf.length; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The JavaScript implementation, exposed for the test that checks it agrees with zlib. */
export const crc32Fallback = (buf: Uint8Array, start = 0, end = buf.length): number => crc32Js(buf, start, end);
