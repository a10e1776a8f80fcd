import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { encodeRecord, type RecordMeta } from '../../lib/format/record.js';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader } from '../../lib/format/segment-header.js';
import { nodeFs } from '../../lib/log/fs.js';
import { scanSegment, type ScanOptions, type SegmentScan } from '../../lib/log/segment-scanner.js';
import { tempDir } from '../helpers/tmp.js';

const SEGMENT_ID = 100;

interface Laid {
  seq: number;
  offset: number;
  size: number;
  payload: Buffer;
}

/** Records of assorted sizes (0 to ~300 bytes of payload), laid out after a segment header. */
function layout(count: number, first = SEGMENT_ID): { bytes: Buffer; records: Laid[] } {
  const parts: Buffer[] = [encodeSegmentHeader({ segmentId: SEGMENT_ID, generation: 0, epoch: 1, createdAt: 1 })];
  const records: Laid[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const seq = first + i;
    const payload = Buffer.alloc((i * 97) % 301, seq & 0xff);
    const meta: RecordMeta = { type: 1 + (i % 4), flags: 0, keyId: 0, seq, segmentId: SEGMENT_ID, epoch: 1 };
    const rec = encodeRecord(meta, payload);
    parts.push(rec);
    records.push({ seq, offset, size: rec.length, payload });
    offset += rec.length;
  }
  return { bytes: Buffer.concat(parts), records };
}

function scanFile(
  file: string,
  opts: Partial<ScanOptions> = {},
): { scan: SegmentScan; seen: Array<{ seq: number; offset: number; size: number; payload: Buffer }> } {
  const fd = fs.openSync(file, 'r');
  try {
    const seen: Array<{ seq: number; offset: number; size: number; payload: Buffer }> = [];
    const scan = scanSegment(nodeFs, fd, {
      segmentId: SEGMENT_ID,
      from: SEGMENT_HEADER_BYTES,
      afterSeq: SEGMENT_ID - 1,
      onRecord: (r) => {
        seen.push({ seq: r.header.seq, offset: r.offset, size: r.size, payload: Buffer.from(r.buf.subarray(r.at + 36, r.at + r.size)) });
      },
      ...opts,
    });
    return { scan, seen };
  } finally {
    fs.closeSync(fd);
  }
}

const CHUNKS = [1, 36, 37, 100, 333, 4096, undefined];

describe('scanSegment', () => {
  for (const chunkBytes of CHUNKS) {
    it(`reads every record whatever the read chunk (${chunkBytes ?? 'default'} bytes)`, (t) => {
      const { bytes, records } = layout(60);
      const file = path.join(tempDir(t), 'seg');
      fs.writeFileSync(file, bytes);
      const { scan, seen } = scanFile(file, { chunkBytes });
      assert.deepEqual(seen, records);
      assert.deepEqual(scan, {
        end: bytes.length,
        fileSize: bytes.length,
        tail: 'clean',
        damage: [],
        lastSeq: SEGMENT_ID + 59,
        records: 60,
        complete: true,
      });
    });

    it(`steps over interior damage to the next record whatever the read chunk (${chunkBytes ?? 'default'} bytes)`, (t) => {
      const { bytes, records } = layout(40);
      for (const i of [5, 20, 21]) bytes[records[i]!.offset + 10] ^= 0x40; // reserved bits: bad
      const file = path.join(tempDir(t), 'seg');
      fs.writeFileSync(file, bytes);
      const { scan, seen } = scanFile(file, { chunkBytes });
      assert.deepEqual(seen.map((r) => r.seq), records.filter((_, i) => ![5, 20, 21].includes(i)).map((r) => r.seq));
      assert.deepEqual(
        scan.damage.map((d) => [d.offset, d.end]),
        [
          [records[5]!.offset, records[6]!.offset],
          [records[20]!.offset, records[22]!.offset],
        ],
      );
      assert.equal(scan.tail, 'clean');
      assert.equal(scan.end, bytes.length);
    });
  }

  it('classifies the tail as zero, incomplete or garbage and stops where the records end', (t) => {
    const { bytes, records } = layout(10);
    const last = records[9]!;
    const dir = tempDir(t);
    const cases: Array<[string, Buffer, string]> = [
      ['zero', Buffer.concat([bytes, Buffer.alloc(500)]), 'zero'],
      ['incomplete', bytes.subarray(0, last.offset + last.size - 1), 'incomplete'],
      ['garbage', Buffer.concat([bytes, Buffer.from('this is not a record, not at all, no way no how')]), 'garbage'],
    ];
    for (const [name, content, tail] of cases) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content);
      const { scan, seen } = scanFile(file, { chunkBytes: 64 });
      assert.equal(scan.tail, tail, name);
      assert.equal(scan.end, name === 'incomplete' ? last.offset : bytes.length, name);
      assert.equal(seen.length, name === 'incomplete' ? 9 : 10, name);
      assert.deepEqual(scan.damage, [], name);
    }
  });

  it('treats a valid record that does not belong (wrong segment, repeated seq, seq past the next segment) as damage', (t) => {
    const { bytes, records } = layout(6);
    const dir = tempDir(t);
    const foreign = encodeRecord({ type: 1, flags: 0, keyId: 0, seq: SEGMENT_ID + 2, segmentId: 7, epoch: 1 }, Buffer.alloc(5));
    const repeat = Buffer.from(bytes.subarray(records[1]!.offset, records[1]!.offset + records[1]!.size));
    const mid = records[3]!.offset;
    for (const [name, inserted] of [['foreign', foreign], ['repeat', repeat]] as const) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, mid), inserted, bytes.subarray(mid)]));
      const { scan, seen } = scanFile(file);
      assert.deepEqual(seen.map((r) => r.seq), records.map((r) => r.seq), name);
      assert.deepEqual(scan.damage.map((d) => [d.offset, d.end]), [[mid, mid + inserted.length]], name);
      assert.match(scan.damage[0]!.reason, /does not belong/);
    }
    const file = path.join(dir, 'bounded');
    fs.writeFileSync(file, bytes);
    const { scan, seen } = scanFile(file, { beforeSeq: SEGMENT_ID + 4 });
    assert.deepEqual(seen.map((r) => r.seq), [100, 101, 102, 103]);
    assert.equal(scan.tail, 'garbage');
    assert.equal(scan.end, records[4]!.offset);
  });

  it('stops when onRecord returns false and says so', (t) => {
    const { bytes, records } = layout(10);
    const file = path.join(tempDir(t), 'seg');
    fs.writeFileSync(file, bytes);
    const { scan, seen } = scanFile(file, { onRecord: (r) => r.header.seq !== SEGMENT_ID + 3 });
    assert.equal(seen.length, 0);
    assert.equal(scan.complete, false);
    assert.equal(scan.end, records[3]!.offset + records[3]!.size);
    assert.equal(scan.lastSeq, SEGMENT_ID + 3);
  });

  it('reads no further than the fileSize it is given', (t) => {
    const { bytes, records } = layout(10);
    const file = path.join(tempDir(t), 'seg');
    fs.writeFileSync(file, bytes);
    const { scan, seen } = scanFile(file, { fileSize: records[5]!.offset + 3 });
    assert.equal(seen.length, 5);
    assert.equal(scan.tail, 'incomplete');
    assert.equal(scan.end, records[5]!.offset);
  });

  it('starts at a given offset and seq', (t) => {
    const { bytes, records } = layout(10);
    const file = path.join(tempDir(t), 'seg');
    fs.writeFileSync(file, bytes);
    const { seen } = scanFile(file, { from: records[7]!.offset, afterSeq: records[6]!.seq });
    assert.deepEqual(seen.map((r) => r.seq), [107, 108, 109]);
  });
});

/**
 * Beside a live writer: an Fs whose reads see the file change as a writer would change it. `onRead(n)` runs
 * before the n-th read (from 1) and may write into the file, or return the bytes that read should show instead of
 * the file's (a read that raced a write: it saw a later part of the write but not an earlier one).
 */
function racingFs(file: string, onRead: (n: number, position: number, len: number) => Buffer | void): typeof nodeFs {
  let reads = 0;
  return {
    ...nodeFs,
    readSync: (fd, buf, off, len, position) => {
      const shown = onRead(++reads, position, len);
      if (!shown) return nodeFs.readSync(fd, buf, off, len, position);
      const n = Math.min(len, shown.length - position);
      shown.copy(buf, off, position, position + n);
      return n;
    },
  };
}

describe('scanSegment beside a live writer', () => {
  /** The head as an fsync-mode writer leaves it: `written` records, then zeros up to room for all `total`. */
  function head(t: { after: (fn: () => void) => void }, written: number, total: number) {
    const { bytes, records } = layout(total);
    const dataEnd = (i: number): number => (i === 0 ? SEGMENT_HEADER_BYTES : records[i - 1]!.offset + records[i - 1]!.size);
    const file = path.join(tempDir(t), 'seg');
    fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, dataEnd(written)), Buffer.alloc(bytes.length - dataEnd(written) + 512)]));
    /** Writes records [from, to) into the zeros, as the writer's next batch. */
    const write = (from: number, to: number): void => {
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, bytes, dataEnd(from), dataEnd(to) - dataEnd(from), dataEnd(from));
      fs.closeSync(fd);
    };
    return { bytes, records, file, write, dataEnd };
  }

  function scanWith(file: string, fsx: typeof nodeFs, chunkBytes?: number): { scan: SegmentScan; seqs: number[] } {
    const fd = fs.openSync(file, 'r');
    try {
      const seqs: number[] = [];
      const scan = scanSegment(fsx, fd, {
        segmentId: SEGMENT_ID,
        from: SEGMENT_HEADER_BYTES,
        afterSeq: SEGMENT_ID - 1,
        chunkBytes,
        onRecord: (r) => void seqs.push(r.header.seq),
      });
      return { scan, seqs };
    } finally {
      fs.closeSync(fd);
    }
  }

  it('reads records written into the zeros between two of its reads as records, not as a damaged range', (t) => {
    const { file, write } = head(t, 10, 20);
    // Read 1 shows 10 records and then zeros; the writer appends records 10..14 before read 2 (the look past them).
    const fsx = racingFs(file, (n) => void (n === 2 && write(10, 15)));
    const { scan, seqs } = scanWith(file, fsx);
    assert.deepEqual(scan.damage, []);
    assert.equal(scan.tail, 'zero');
    assert.deepEqual(seqs, Array.from({ length: 15 }, (_, i) => SEGMENT_ID + i));
  });

  it('reads a record it first saw as zeros while a later one was already there (a read racing a write) as a record', (t) => {
    const { file, write, dataEnd } = head(t, 10, 20);
    write(10, 14);
    // Read 1 shows records 0..9, zeros where 10 is, and 11..13: the write of 10..13 had copied its later pages only.
    const torn = fs.readFileSync(file);
    torn.fill(0, dataEnd(10), dataEnd(11));
    for (const chunkBytes of [undefined, 100]) {
      const fsx = racingFs(file, (n) => (n === 1 ? torn : undefined));
      const { scan, seqs } = scanWith(file, fsx, chunkBytes);
      assert.deepEqual(scan.damage, [], `chunk ${chunkBytes ?? 'default'}`);
      assert.deepEqual(seqs, Array.from({ length: 14 }, (_, i) => SEGMENT_ID + i), `chunk ${chunkBytes ?? 'default'}`);
    }
  });

  it('still reports a damaged range that reads the same every time, before records the writer adds meanwhile', (t) => {
    const { records, file, write } = head(t, 10, 20);
    const fdw = fs.openSync(file, 'r+');
    fs.writeSync(fdw, Buffer.from([0xee]), 0, 1, records[4]!.offset + 40); // inside record 4's payload
    fs.closeSync(fdw);
    const fsx = racingFs(file, (n) => void (n === 2 && write(10, 12)));
    const { scan, seqs } = scanWith(file, fsx);
    assert.deepEqual(scan.damage.map((d) => [d.offset, d.end, d.reason]), [[records[4]!.offset, records[5]!.offset, 'checksum mismatch']]);
    assert.deepEqual(seqs, Array.from({ length: 12 }, (_, i) => SEGMENT_ID + i).filter((s) => s !== SEGMENT_ID + 4));
  });
});
