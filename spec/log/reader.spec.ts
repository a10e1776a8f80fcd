import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { RecordCodec } from '../../lib/codec/record-codec.js';
import { segmentFileName } from '../../lib/format/names.js';
import { encodeRecord } from '../../lib/format/record.js';
import type { LogEntry } from '../../lib/log/log-scan.js';
import type { RecordPointer } from '../../lib/log/writer.js';
import type { DamagedRange } from '../../lib/log/segment-scanner.js';
import { tailLog, type Tailer } from '../../lib/log/tailer.js';
import { LOG_CODECS, logDir, openLog } from '../helpers/log-fixtures.js';
import { flipByte, payloadFor } from '../helpers/tmp.js';

describe('RecordReader (Log.read)', () => {
  for (const codec of LOG_CODECS) {
    it(`returns the exact payload of every record by pointer, across segments (${codec.name})`, async (t) => {
      const log = await openLog(t, logDir(t), { ...codec.opts, maxSegmentBytes: 4096 });
      const ptrs = await Promise.all(Array.from({ length: 120 }, (_, i) => log.append(1 + (i % 5), payloadFor(i, 50 + i))));
      assert.ok(new Set(ptrs.map((p) => p.segmentId)).size >= 3, 'the records span several segments');
      for (const i of [119, 0, 60, 1, 118, 30, 90]) {
        const e = log.read(ptrs[i]!);
        assert.deepEqual(e.payload(), payloadFor(i, 50 + i));
        assert.deepEqual(
          { seq: e.seq, type: e.type, segmentId: e.segmentId, offset: e.offset, size: e.size },
          { seq: i + 1, type: 1 + (i % 5), segmentId: ptrs[i]!.segmentId, offset: ptrs[i]!.offset, size: ptrs[i]!.size },
        );
      }
      ptrs.forEach((p, i) => assert.deepEqual(log.read(p).payload(), payloadFor(i, 50 + i)));
      // decode: the same bytes and seq, from the read-ahead window (in order) or a direct read (backwards).
      const copy = (buf: Buffer, seq: number, start: number, end: number): [number, Buffer] => [seq, Buffer.from(buf.subarray(start, end))];
      ptrs.forEach((p, i) => assert.deepEqual(log.decode(p, copy), [i + 1, payloadFor(i, 50 + i)]));
      for (let i = ptrs.length - 1; i >= 0; i -= 7) assert.deepEqual(log.decode(ptrs[i]!, copy), [i + 1, payloadFor(i, 50 + i)]);
    });
  }

  it('reads a record right after its append resolves in every durability mode', async (t) => {
    for (const durability of ['none', 'batch', 'fsync'] as const) {
      const log = await openLog(t, logDir(t), { durability });
      const p = await log.append(3, Buffer.from(`just written (${durability})`));
      assert.deepEqual(log.read(p).payload(), Buffer.from(`just written (${durability})`));
    }
  });

  it('reads the records of a previous run after reopening', async (t) => {
    const dir = logDir(t);
    const first = await openLog(t, dir);
    const p = await first.append(1, payloadFor(1));
    await first.close();
    const again = await openLog(t, dir);
    await again.append(1, payloadFor(2));
    assert.deepEqual(again.read(p).payload(), payloadFor(1));
  });

  it('refuses a pointer whose seq is wrong with ERR_NOT_FOUND', async (t) => {
    const log = await openLog(t, logDir(t));
    const ptrs = [await log.append(1, payloadFor(1)), await log.append(1, payloadFor(2))];
    assert.throws(() => log.read({ ...ptrs[0]!, seq: 2 }), { code: 'ERR_NOT_FOUND' });
    assert.throws(() => log.read({ ...ptrs[1]!, seq: 1 }), { code: 'ERR_NOT_FOUND' });
    assert.throws(() => log.read({ ...ptrs[1]!, seq: 999 }), { code: 'ERR_NOT_FOUND' });
    assert.throws(() => log.decode({ ...ptrs[1]!, seq: 999 }, () => 0), { code: 'ERR_NOT_FOUND' });
  });

  it('refuses a pointer past the end of its segment with ERR_NOT_FOUND', async (t) => {
    const log = await openLog(t, logDir(t));
    const p = await log.append(1, payloadFor(1));
    assert.throws(() => log.read({ ...p, seq: 2, offset: p.offset + p.size }), { code: 'ERR_NOT_FOUND' });
    assert.throws(() => log.read({ ...p, offset: 1_000_000 }), { code: 'ERR_NOT_FOUND' });
  });

  it('refuses a pointer with a size shorter than the record with ERR_NOT_FOUND', async (t) => {
    const log = await openLog(t, logDir(t));
    const p = await log.append(1, payloadFor(1));
    assert.throws(() => log.read({ ...p, size: p.size - 1 }), { code: 'ERR_NOT_FOUND' });
  });

  it('refuses a pointer into a segment that does not exist with ERR_NOT_FOUND', async (t) => {
    const log = await openLog(t, logDir(t));
    const p = await log.append(1, payloadFor(1));
    assert.throws(() => log.read({ ...p, segmentId: 5000 }), { code: 'ERR_NOT_FOUND' });
  });

  it('refuses a pointer that names the wrong segment with ERR_NOT_FOUND', async (t) => {
    const dir = logDir(t);
    const first = await openLog(t, dir);
    const p1 = await first.append(1, payloadFor(1));
    await first.close();
    const log = await openLog(t, dir);
    const p2 = await log.append(1, payloadFor(2));
    assert.equal(p2.segmentId, 2);
    // Copy record 1's bytes into segment 2 where the pointer says: the record exists, but not in this segment.
    const rec = fs.readFileSync(path.join(dir, 'log', segmentFileName(1))).subarray(p1.offset, p1.offset + p1.size);
    const fd = fs.openSync(path.join(dir, 'log', segmentFileName(2)), 'r+');
    fs.writeSync(fd, rec, 0, rec.length, p2.offset + p2.size);
    fs.closeSync(fd);
    assert.throws(() => log.read({ ...p1, segmentId: 2, offset: p2.offset + p2.size }), { code: 'ERR_NOT_FOUND' });
  });

  it('refuses a malformed pointer with ERR_INVALID_ARG', async (t) => {
    const log = await openLog(t, logDir(t));
    const p = await log.append(1, payloadFor(1));
    const bad: unknown[] = [
      null,
      undefined,
      {},
      { ...p, offset: -1 },
      { ...p, offset: NaN },
      { ...p, offset: 2 ** 60 },
      { ...p, offset: 10 },
      { ...p, size: -1 },
      { ...p, size: 2 ** 40 },
      { ...p, size: 35 },
      { ...p, seq: 0 },
      { ...p, seq: 1.5 },
      { ...p, segmentId: 1.5 },
      { ...p, segmentId: '1' },
    ];
    for (const ptr of bad) {
      assert.throws(() => log.read(ptr as RecordPointer), { code: 'ERR_INVALID_ARG' }, JSON.stringify(ptr));
    }
    assert.deepEqual(log.read(p).payload(), payloadFor(1));
  });

  it('refuses a damaged record with ERR_CORRUPT_RECORD', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const p = await log.append(1, payloadFor(1));
    flipByte(path.join(dir, 'log', segmentFileName(1)), p.offset + 50);
    assert.throws(() => log.read(p), { code: 'ERR_CORRUPT_RECORD' });
  });
});

describe('tailLog', () => {
  const never = 1e9;
  function follow(t: { after: (fn: () => void) => void }, dir: string, opts: Partial<Parameters<typeof tailLog>[1]> = {}) {
    const seen: LogEntry[] = [];
    const payloads: Buffer[] = [];
    const damage: DamagedRange[] = [];
    const tailer: Tailer = tailLog(dir, {
      intervalMs: never,
      onEntry: (e) => {
        seen.push(e);
        payloads.push(e.payload());
      },
      onDamage: (d) => damage.push(d),
      codec: new RecordCodec({ compressThreshold: false }),
      ...opts,
    });
    t.after(() => tailer.close());
    return { tailer, seen, payloads, damage };
  }

  it('follows appends made after it started, across segment rolls, once each and in order', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const { tailer, seen, payloads, damage } = follow(t, dir);
    assert.equal(tailer.poll(), 0);

    for (let i = 1; i <= 10; i++) await log.append(1, payloadFor(i));
    assert.equal(tailer.poll(), 10);
    assert.equal(tailer.poll(), 0);

    const ptrs = await Promise.all(Array.from({ length: 60 }, (_, i) => log.append(2, payloadFor(11 + i))));
    assert.deepEqual([...new Set(ptrs.map((p) => p.segmentId))], [1, 30, 59]);
    assert.equal(tailer.poll(), 60);
    assert.equal(tailer.poll(), 0);
    await log.append(3, payloadFor(71));
    assert.equal(tailer.poll(), 1);

    assert.deepEqual(seen.map((e) => e.seq), Array.from({ length: 71 }, (_, i) => i + 1));
    assert.deepEqual(payloads, Array.from({ length: 71 }, (_, i) => payloadFor(i + 1)));
    assert.deepEqual(seen.map((e) => e.segmentId).filter((v, i, a) => a.indexOf(v) === i), [1, 30, 59]);
    assert.deepEqual(damage, []);
  });

  it('catches up on a log written before it started and honours fromSeq', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(1, payloadFor(i + 1))));
    const { tailer, seen } = follow(t, dir, { fromSeq: 25 });
    assert.equal(tailer.poll(), 16);
    assert.deepEqual(seen.map((e) => e.seq), Array.from({ length: 16 }, (_, i) => i + 25));
  });

  it('stops at an incomplete record at the tail and delivers it once it is whole', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    let last;
    for (let i = 1; i <= 3; i++) last = await log.append(1, payloadFor(i));
    const epoch = log.epoch;
    await log.close();
    const { tailer, seen, payloads, damage } = follow(t, dir);
    assert.equal(tailer.poll(), 3);

    const head = path.join(dir, 'log', segmentFileName(last!.segmentId));
    const next = encodeRecord({ type: 4, flags: 0, keyId: 0, seq: 4, segmentId: last!.segmentId, epoch }, payloadFor(4));
    for (const cut of [1, 20, 36, 37, next.length - 1]) {
      const copy = path.join(dir, 'head.copy');
      fs.copyFileSync(head, copy);
      fs.appendFileSync(head, next.subarray(0, cut));
      assert.equal(tailer.poll(), 0, `${cut} bytes of the record`);
      assert.equal(seen.length, 3);
      fs.renameSync(copy, head);
    }
    fs.appendFileSync(head, next.subarray(0, 20));
    assert.equal(tailer.poll(), 0);
    fs.appendFileSync(head, next.subarray(20));
    assert.equal(tailer.poll(), 1);
    assert.equal(tailer.poll(), 0);
    assert.deepEqual(seen.map((e) => [e.seq, e.type]), [[1, 1], [2, 1], [3, 1], [4, 4]]);
    assert.deepEqual(payloads[3], payloadFor(4));
    assert.deepEqual(damage, []);
  });

  it('delivers records once each when compaction rewrites the segment it stands in', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const { tailer, seen, payloads } = follow(t, dir);
    for (let i = 1; i <= 20; i++) await log.append(1, payloadFor(i));
    assert.equal(tailer.poll(), 20);
    // Fill segment 1 and roll; then compaction rewrites segment 1 with only the records the tailer has not seen.
    const more = await Promise.all(Array.from({ length: 15 }, (_, i) => log.append(1, payloadFor(21 + i))));
    assert.equal(more[8]!.segmentId, 1);
    assert.equal(more[9]!.segmentId, 30);
    const result = await log.compact((e) => e.seq > 20);
    assert.deepEqual(result.rewritten.map((r) => r.segmentId), [1]);
    assert.equal(tailer.poll(), 15);
    assert.deepEqual(seen.map((e) => e.seq), Array.from({ length: 35 }, (_, i) => i + 1));
    assert.deepEqual(payloads, Array.from({ length: 35 }, (_, i) => payloadFor(i + 1)));
  });

  it("reads a live fsync head past its preallocated zeros a window at a time: records across windows, one straddling a window's edge, one larger than a window", async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir); // fsync: the head ends in a MiB of preallocated zeros
    const { tailer, seen, payloads, damage } = follow(t, dir);
    const sizes = [...Array.from({ length: 150 }, (_, i) => 900 + (i % 7) * 13), 200 * 1024, 10, 70 * 1024, ...Array.from({ length: 40 }, () => 3_000)];
    let delivered = 0;
    for (let i = 0; i < sizes.length; i++) {
      await log.append(1, payloadFor(i, sizes[i]));
      if (i % 17 === 0) delivered += tailer.poll(); // some polls see one new record, some many
    }
    delivered += tailer.poll();
    assert.equal(delivered, sizes.length);
    assert.equal(tailer.poll(), 0);
    assert.deepEqual(payloads, sizes.map((n, i) => payloadFor(i, n)));
    assert.deepEqual(seen.map((e) => e.seq), sizes.map((_, i) => i + 1));
    assert.deepEqual(damage, []);
  });

  it('starts at a position: only the records after it', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const ptrs = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(1, payloadFor(i + 1))));
    const at = ptrs[29]!;
    const position = { nextSeq: at.seq + 1, segmentId: at.segmentId, offset: at.offset + at.size };
    const { tailer, seen } = follow(t, dir, { from: { position, generation: 0, epoch: log.epoch } });
    assert.equal(tailer.poll(), 10);
    await log.append(1, payloadFor(41));
    assert.equal(tailer.poll(), 1);
    assert.deepEqual(seen.map((e) => e.seq), Array.from({ length: 11 }, (_, i) => i + 31));
  });

  it('with watch, delivers a record as the directory changes, without its timer', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { durability: 'none' });
    let resolve!: (seq: number) => void;
    const got = new Promise<number>((r) => (resolve = r));
    const tailer = tailLog(dir, { intervalMs: never, watch: true, onEntry: (e) => resolve(e.seq) });
    t.after(() => tailer.close());
    await log.append(1, payloadFor(1));
    // The watcher does not keep the process alive: hold the loop open while waiting (a safety net, not a clock).
    const guard = setTimeout(() => resolve(-1), 20_000);
    const seq = await got;
    clearTimeout(guard);
    assert.equal(seq, 1, 'woken by the change (the timer would only fire after 1e9 ms)');
  });

  it('delivers records through its timer without poll being called', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const got: number[] = [];
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const tailer = tailLog(dir, {
      intervalMs: 5,
      onEntry: (e) => {
        got.push(e.seq);
        if (got.length === 3) resolve();
      },
    });
    t.after(() => tailer.close());
    await Promise.all([1, 2, 3].map((i) => log.append(1, payloadFor(i))));
    // The tailer's timer is unref'd (it never keeps a process alive): hold the loop open while waiting for it.
    const guard = setTimeout(() => resolve(), 5_000);
    await done;
    clearTimeout(guard);
    assert.deepEqual(got, [1, 2, 3]);
  });
});
