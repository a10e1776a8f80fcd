import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { MAX_PLAIN_BYTES } from '../../lib/codec/record-codec.js';
import { parseSegmentFileName, segmentFileName } from '../../lib/format/names.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader } from '../../lib/format/segment-header.js';
import { Log, type LogOptions } from '../../lib/log/log.js';
import { nodeFs, type Fs } from '../../lib/log/fs.js';
import type { RecordPointer } from '../../lib/log/writer.js';
import { LOG_CODECS, countingFs, gatedSyncFs, logDir, openLog, replayAll } from '../helpers/log-fixtures.js';
import { payloadFor, segmentFiles } from '../helpers/tmp.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { readLog } from '../../lib/log/read-log.js';

const RECORD_BYTES = 36 + 100;

/** Lets pending I/O callbacks and immediates run until `cond` holds (bounded; no fixed sleeps). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function tracked<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  const promise = p.finally(() => (done = true));
  return { settled: () => done, promise };
}

describe('LogWriter group commit', () => {
  it('writes appends made in one tick with one write and one fdatasync', async (t) => {
    const counting = countingFs();
    const log = await openLog(t, logDir(t), { fs: counting.fs, durability: 'fsync', preallocateBytes: 0 });
    counting.reset();
    const ptrs = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(1, payloadFor(i))));
    assert.equal(counting.counts.writeSync, 1);
    assert.equal(counting.counts.fdatasync, 1);
    assert.equal(counting.counts.fsyncSync, 0);
    assert.deepEqual(ptrs.map((p) => p.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual(ptrs.map((p) => p.offset), Array.from({ length: 50 }, (_, i) => SEGMENT_HEADER_BYTES + i * RECORD_BYTES));
    assert.ok(ptrs.every((p) => p.size === RECORD_BYTES && p.segmentId === 1));
  });

  it('does not resolve fsync-mode appends before their fdatasync returns', async (t) => {
    const gate = gatedSyncFs();
    const log = await openLog(t, logDir(t), { fs: gate.fs, durability: 'fsync', preallocateBytes: 0 });
    const batch = tracked(Promise.all([1, 2, 3, 4, 5].map((i) => log.append(1, payloadFor(i)))));
    await until(() => gate.held() === 1, 'the fdatasync to finish');
    assert.equal(batch.settled(), false);
    gate.release();
    assert.deepEqual((await batch.promise).map((p) => p.seq), [1, 2, 3, 4, 5]);
  });

  it('resolves a lone fsync-mode append only after a sync that follows its write', async (t) => {
    const events: string[] = [];
    const counting = countingFs();
    const fs: Fs = {
      ...counting.fs,
      writeSync: (...args) => (events.push('write'), counting.fs.writeSync(...args)),
      fsyncSync: (fd) => (counting.fs.fsyncSync(fd), events.push('synced')),
      fdatasync: (fd, cb) => counting.fs.fdatasync(fd, (err) => (events.push('synced'), cb(err))),
    };
    const log = await openLog(t, logDir(t), { fs, durability: 'fsync', preallocateBytes: 0 });
    for (let i = 1; i <= 3; i++) {
      events.length = 0;
      const p = await log.append(1, payloadFor(i));
      events.push('resolved');
      assert.equal(p.seq, i);
      assert.deepEqual(events, ['write', 'synced', 'resolved']);
    }
  });

  it('collects appends made while a sync is in flight into the next batch', async (t) => {
    const counting = countingFs();
    const gate = gatedSyncFs(counting.fs);
    const log = await openLog(t, logDir(t), { fs: gate.fs, durability: 'fsync', preallocateBytes: 0 });
    counting.reset();
    const first = tracked(Promise.all([1, 2, 3, 4, 5].map((i) => log.append(1, payloadFor(i)))));
    await until(() => gate.held() === 1, 'the first fdatasync');
    const later: Array<ReturnType<typeof tracked<RecordPointer>>> = [];
    for (let i = 6; i <= 25; i++) {
      later.push(tracked(log.append(1, payloadFor(i))));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(counting.counts.writeSync, 1, 'nothing more is written while the sync is in flight');
    assert.equal(gate.syncs(), 1);
    assert.equal(first.settled(), false);
    assert.ok(later.every((p) => !p.settled()));
    gate.release();
    assert.deepEqual((await first.promise).map((p) => p.seq), [1, 2, 3, 4, 5]);
    await until(() => gate.held() === 1, 'the second fdatasync');
    assert.equal(counting.counts.writeSync, 2);
    assert.equal(gate.syncs(), 2);
    assert.ok(later.every((p) => !p.settled()));
    gate.release();
    const ptrs = await Promise.all(later.map((p) => p.promise));
    assert.deepEqual(ptrs.map((p) => p.seq), Array.from({ length: 20 }, (_, i) => i + 6));
    assert.equal(gate.syncs(), 2);
    assert.equal(counting.counts.fsyncSync, 0);
  });
});

describe('LogWriter durability modes', () => {
  it('batch: resolves before any fdatasync and syncs once batchIntervalMs has passed', async (t) => {
    const counting = countingFs();
    const log = await Log.open(logDir(t), { fs: counting.fs, durability: 'batch', batchIntervalMs: 20, lock: false });
    try {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      counting.reset();
      const ptrs = await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(1, payloadFor(i))));
      assert.equal(ptrs.length, 10);
      assert.equal(counting.counts.writeSync, 1);
      assert.equal(counting.counts.fdatasync, 0);
      t.mock.timers.tick(19);
      assert.equal(counting.counts.fdatasync, 0);
      t.mock.timers.tick(1);
      assert.equal(counting.counts.fdatasync, 1);
      await log.sync();
      t.mock.timers.tick(1_000);
      assert.equal(counting.counts.fdatasync, 1, 'no sync without new writes');
      await log.append(1, payloadFor(11));
      assert.equal(counting.counts.fdatasync, 1);
      t.mock.timers.tick(20);
      assert.equal(counting.counts.fdatasync, 2);
      await log.sync();
    } finally {
      t.mock.timers.reset();
      await log.close();
    }
  });

  it('none: never fdatasyncs while appending, once at close', async (t) => {
    const counting = countingFs();
    const dir = logDir(t);
    const log = await openLog(t, dir, { fs: counting.fs, durability: 'none' });
    counting.reset();
    for (let i = 1; i <= 5; i++) await log.append(1, payloadFor(i));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(counting.counts.fdatasync, 0);
    assert.equal(counting.counts.fsyncSync, 0);
    assert.equal(counting.counts.writeSync, 5);
    await log.close();
    assert.equal(counting.counts.fdatasync, 1);
  });

  for (const durability of ['none', 'batch', 'fsync'] as const) {
    it(`close flushes appends that were not awaited (${durability})`, async (t) => {
      const counting = countingFs();
      const dir = logDir(t);
      const log = await openLog(t, dir, { fs: counting.fs, durability, batchIntervalMs: 60_000 });
      counting.reset();
      const pending = [1, 2, 3].map((i) => log.append(2, payloadFor(i)));
      await log.close();
      assert.deepEqual((await Promise.all(pending)).map((p) => p.seq), [1, 2, 3]);
      assert.equal(counting.counts.fdatasync, 1);
      const again = await openLog(t, dir);
      assert.deepEqual(replayAll(again).entries, [1, 2, 3].map((i) => ({ seq: i, type: 2, payload: payloadFor(i) })));
    });
  }
});

describe('LogWriter.sync', () => {
  for (const durability of ['batch', 'none'] as const) {
    it(`does not settle an append made while it runs before that append is written (${durability})`, async (t) => {
      let failWrites = false;
      const fs: Fs = {
        ...countingFs().fs,
        writeSync: (fd, buf, off, len, pos) => {
          if (failWrites) throw Object.assign(new Error('injected write failure'), { code: 'EIO' });
          return nodeFs.writeSync(fd, buf, off, len, pos);
        },
      };
      const log = await Log.open(logDir(t), { fs, durability, batchIntervalMs: 60_000, lock: false });
      try {
        await log.append(1, payloadFor(1));
        const synced = log.sync();
        const second = assert.rejects(log.append(1, payloadFor(2)), (err: { code?: string; cause?: { code?: string } }) => {
          assert.equal(err.code, 'ERR_IO');
          assert.equal(err.cause?.code, 'EIO');
          return true;
        });
        failWrites = true;
        await synced;
        await second;
        await assert.rejects(log.append(1, payloadFor(3)), { code: 'ERR_IO' });
      } finally {
        await log.close().catch(() => undefined);
      }
    });
  }

  it('resolves only after everything appended before it is written and synced', async (t) => {
    const events: string[] = [];
    const base = countingFs().fs;
    const fs: Fs = {
      ...base,
      writeSync: (...args) => (events.push('write'), base.writeSync(...args)),
      fdatasync: (fd, cb) => base.fdatasync(fd, (err) => (events.push('synced'), cb(err))),
      fsyncSync: (fd) => (base.fsyncSync(fd), events.push('synced')),
    };
    const log = await openLog(t, logDir(t), { fs, durability: 'none' });
    events.length = 0;
    void log.append(1, payloadFor(1));
    void log.append(1, payloadFor(2));
    await log.sync();
    events.push('resolved');
    assert.deepEqual(events, ['write', 'synced', 'resolved']);
  });
});

describe('LogWriter segment rolls', () => {
  it('rolls at maxSegmentBytes: records never span segments and seqs continue', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const ptrs = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(1, payloadFor(i + 1))));
    const perSegment = Math.floor((4096 - SEGMENT_HEADER_BYTES) / RECORD_BYTES);
    assert.equal(perSegment, 29);
    assert.deepEqual(
      segmentFiles(dir).map((f) => parseSegmentFileName(path.basename(f))),
      [1, 30, 59, 88],
    );
    ptrs.forEach((p, i) => {
      assert.equal(p.seq, i + 1);
      assert.equal(p.segmentId, 1 + Math.floor(i / perSegment) * perSegment, `seq ${p.seq}`);
      assert.equal(p.offset, SEGMENT_HEADER_BYTES + (i % perSegment) * RECORD_BYTES, `seq ${p.seq}`);
      assert.ok(p.offset + p.size <= 4096);
      assert.deepEqual(log.read(p).payload(), payloadFor(i + 1));
    });
    await log.close(); // the live head may hold preallocated zeros past its data; close cuts them off
    for (const file of segmentFiles(dir)) {
      const bytes = fs.readFileSync(file);
      const id = parseSegmentFileName(path.basename(file))!;
      assert.ok(bytes.length <= 4096, `${file} is ${bytes.length} bytes`);
      assert.equal(decodeSegmentHeader(bytes, file).segmentId, id);
      const records = ptrs.filter((p) => p.segmentId === id);
      assert.equal(bytes.length, SEGMENT_HEADER_BYTES + records.length * RECORD_BYTES);
    }
  });

  it('puts a record bigger than maxSegmentBytes in a segment of its own', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const small = [];
    for (let i = 1; i <= 3; i++) small.push(await log.append(1, payloadFor(i)));
    const big = await log.append(1, payloadFor(4, 10_000));
    const after = await log.append(1, payloadFor(5));
    assert.deepEqual(small.map((p) => p.segmentId), [1, 1, 1]);
    assert.deepEqual(big, { seq: 4, segmentId: 4, offset: SEGMENT_HEADER_BYTES, size: 10_036 });
    assert.deepEqual(after, { seq: 5, segmentId: 5, offset: SEGMENT_HEADER_BYTES, size: RECORD_BYTES });
    assert.equal(fs.statSync(path.join(dir, 'log', segmentFileName(4))).size, SEGMENT_HEADER_BYTES + 10_036);
    await log.close();
    const again = await openLog(t, dir);
    assert.deepEqual(
      replayAll(again).entries.map((e) => [e.seq, e.payload.length]),
      [[1, 100], [2, 100], [3, 100], [4, 10_000], [5, 100]],
    );
    assert.deepEqual(again.read(big).payload(), payloadFor(4, 10_000));
  });

  it('keeps a big first record in the empty head instead of rolling', async (t) => {
    const log = await openLog(t, logDir(t), { maxSegmentBytes: 4096 });
    const big = await log.append(1, payloadFor(1, 8_000));
    const next = await log.append(1, payloadFor(2));
    assert.deepEqual(big, { seq: 1, segmentId: 1, offset: SEGMENT_HEADER_BYTES, size: 8_036 });
    assert.equal(next.segmentId, 2);
  });

  it('starts a fresh head at nextSeq on reopen and continues the seqs', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    await log.append(1, payloadFor(1));
    await log.append(1, payloadFor(2));
    await log.close();
    const again = await openLog(t, dir);
    assert.equal(again.nextSeq, 3);
    const p = await again.append(1, payloadFor(3));
    assert.deepEqual(p, { seq: 3, segmentId: 3, offset: SEGMENT_HEADER_BYTES, size: RECORD_BYTES });
    assert.deepEqual(segmentFiles(dir).map((f) => path.basename(f)), [segmentFileName(1), segmentFileName(3)]);
  });

  it('keeps the maxSegmentBytes the log was created with', async (t) => {
    const dir = logDir(t);
    await (await Log.open(dir, { maxSegmentBytes: 4096 })).close();
    const log = await openLog(t, dir);
    const ptrs = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(1, payloadFor(i))));
    assert.equal(ptrs[28]!.segmentId, 1);
    assert.equal(ptrs[29]!.segmentId, 30);
  });

  it('does not leave an empty head behind when reopened without appending', async (t) => {
    const dir = logDir(t);
    await (await Log.open(dir)).close();
    await (await Log.open(dir)).close();
    const log = await openLog(t, dir);
    assert.deepEqual(segmentFiles(dir).map((f) => path.basename(f)), [segmentFileName(1)]);
    assert.equal((await log.append(1, payloadFor(1))).seq, 1);
  });
});

describe('LogWriter preallocation (fsync mode)', () => {
  it('keeps zeros ahead of the data in the head while open, and cuts them off at close', async (t) => {
    const dir = logDir(t);
    const log = await Log.open(dir, { durability: 'fsync', preallocateBytes: 64 * 1024 });
    const ptrs = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(1, payloadFor(i))));
    const end = ptrs[19]!.offset + ptrs[19]!.size;
    const [head] = segmentFiles(dir);
    assert.equal(fs.statSync(head!).size, SEGMENT_HEADER_BYTES + 64 * 1024, 'the head is extended ahead of the data');
    assert.ok(end < SEGMENT_HEADER_BYTES + 64 * 1024);
    assert.ok(fs.readFileSync(head!).subarray(end).every((b) => b === 0));
    await log.close();
    assert.equal(fs.statSync(head!).size, end, 'close cuts the zeros off');
  });

  it('reopens after being abandoned with zeros in the head: every record, the zeros cut off as a tail', async (t) => {
    const dir = logDir(t);
    const log = await Log.open(dir, { durability: 'fsync', lock: false });
    for (let i = 0; i < 30; i++) await log.append(1, payloadFor(i));
    // Abandoned without close, as by kill -9: the head still holds its preallocated zeros.
    const [head] = segmentFiles(dir);
    assert.ok(fs.statSync(head!).size > 1024 * 1024);
    const again = await openLog(t, dir);
    assert.deepEqual(replayAll(again).entries.map((e) => e.seq), Array.from({ length: 30 }, (_, i) => i + 1));
    assert.deepEqual(again.recovery.truncated.map((x) => x.kind), ['zero']);
    assert.equal(again.recovery.damage.length, 0);
  });

  it('seals rolled segments at their data end: no zeros, no damage, records intact', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { durability: 'fsync', maxSegmentBytes: 8192, preallocateBytes: 4096 });
    for (let i = 0; i < 200; i++) await log.append(1, payloadFor(i));
    const files = segmentFiles(dir);
    assert.ok(files.length > 3);
    for (const f of files.slice(0, -1)) {
      const bytes = fs.readFileSync(f);
      assert.ok(bytes.length <= 8192, `${path.basename(f)} is ${bytes.length} bytes, past maxSegmentBytes`);
      assert.notEqual(bytes.subarray(bytes.length - 36).every((b) => b === 0), true, `${path.basename(f)} ends in zeros`);
    }
    assert.deepEqual(replayAll(log).entries.map((e) => e.seq), Array.from({ length: 200 }, (_, i) => i + 1));
  });

  it('does not preallocate in batch or none mode', async (t) => {
    for (const durability of ['batch', 'none'] as const) {
      const dir = path.join(logDir(t), durability);
      const log = await Log.open(dir, { durability });
      const ptr = await log.append(1, payloadFor(1));
      assert.equal(fs.statSync(segmentFiles(dir)[0]!).size, ptr.offset + ptr.size);
      await log.close();
    }
  });
});

describe('LogWriter string payloads', () => {
  const strings = ['', 'x', '{"id":"1","d":{"s":"plain ASCII"}}', 'ünïcödé ✓ 𝄞 and \u0000 escapes', 'é'.repeat(3000), 'y'.repeat(70_000)];
  for (const codec of LOG_CODECS) {
    it(`stores a string as its UTF-8 bytes, written in place or through the codec (${codec.name})`, async (t) => {
      const dir = logDir(t);
      const log = await openLog(t, dir, { ...codec.opts, maxSegmentBytes: 64 * 1024 });
      const ptrs: RecordPointer[] = [];
      for (const [i, s] of strings.entries()) {
        ptrs.push(await log.append(1 + i, s));
        ptrs.push(await log.append(1 + i, Buffer.from(s, 'utf8'))); // the same bytes as a Buffer, for comparison
      }
      for (let i = 0; i < ptrs.length; i += 2) {
        const expected = Buffer.from(strings[i / 2]!, 'utf8');
        assert.deepEqual(log.read(ptrs[i]!).payload(), expected);
        assert.equal(ptrs[i]!.size, ptrs[i + 1]!.size, 'a string and its bytes make records of one size');
      }
      await log.close();
      const reopened = await openLog(t, dir, codec.opts);
      assert.deepEqual(replayAll(reopened).entries.map((e) => e.payload.toString('utf8')), strings.flatMap((s) => [s, s]));
    });
  }

  it('refuses a string over MAX_PLAIN_BYTES as UTF-8 with ERR_TOO_LARGE and uses no seq', async (t) => {
    const log = await openLog(t, logDir(t));
    await assert.rejects(log.append(1, 'é'.repeat(MAX_PLAIN_BYTES / 2 + 1)), { code: 'ERR_TOO_LARGE' });
    assert.equal(log.nextSeq, 1);
  });
});

describe('LogWriter refusals', () => {
  it('rejects append after close with ERR_CLOSED, and read, checkpoint and compact too', async (t) => {
    const log = await openLog(t, logDir(t));
    const ptr = await log.append(1, payloadFor(1));
    await log.close();
    await log.close();
    await assert.rejects(log.append(1, payloadFor(2)), { code: 'ERR_CLOSED' });
    assert.throws(() => log.read(ptr), { code: 'ERR_CLOSED' });
    await assert.rejects(log.checkpoint(Buffer.from('x')), { code: 'ERR_CLOSED' });
    assert.throws(() => log.compact(() => true), { code: 'ERR_CLOSED' });
    assert.throws(() => log.verify(), { code: 'ERR_CLOSED' });
  });

  const badAppends: Array<[string, unknown, unknown]> = [
    ['type 0', 0, Buffer.from('x')],
    ['type 256', 256, Buffer.from('x')],
    ['type -1', -1, Buffer.from('x')],
    ['type 1.5', 1.5, Buffer.from('x')],
    ['type NaN', NaN, Buffer.from('x')],
    ['type "1"', '1', Buffer.from('x')],
    ['a number payload', 1, 42],
    ['a Uint8Array payload', 1, new Uint8Array(3)],
    ['a null payload', 1, null],
    ['an undefined payload', 1, undefined],
  ];
  for (const [what, type, payload] of badAppends) {
    it(`rejects ${what} with ERR_INVALID_ARG and uses no seq`, async (t) => {
      const log = await openLog(t, logDir(t));
      await assert.rejects(log.append(type as number, payload as Buffer), { code: 'ERR_INVALID_ARG' });
      assert.equal(log.nextSeq, 1);
      assert.equal((await log.append(1, payloadFor(1))).seq, 1);
    });
  }

  it('rejects a payload over MAX_PLAIN_BYTES with ERR_TOO_LARGE and the log position does not move', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const p1 = await log.append(1, payloadFor(1));
    await assert.rejects(log.append(1, Buffer.alloc(MAX_PLAIN_BYTES + 1)), { code: 'ERR_TOO_LARGE' });
    assert.equal(log.nextSeq, 2);
    await log.checkpoint(Buffer.from('after 1'));
    const p2 = await log.append(1, payloadFor(2));
    assert.deepEqual(p2, { seq: 2, segmentId: 1, offset: p1.offset + p1.size, size: RECORD_BYTES });
    await log.close();
    const again = await openLog(t, dir);
    assert.equal(again.recovery.checkpointRejected, undefined);
    const { entries, state } = replayAll(again);
    assert.deepEqual(state, Buffer.from('after 1'));
    assert.deepEqual(entries, [{ seq: 2, type: 1, payload: payloadFor(2) }]);
  });

  const badOptions: Array<[string, unknown]> = [
    ['null options', null],
    ['options that are a string', 'fsync'],
    ['durability "always"', { durability: 'always' }],
    ['maxSegmentBytes below 4096', { maxSegmentBytes: 4095 }],
    ['a fractional maxSegmentBytes', { maxSegmentBytes: 8192.5 }],
    ['a string maxSegmentBytes', { maxSegmentBytes: '8192' }],
    ['a negative batchIntervalMs', { batchIntervalMs: -1 }],
    ['a NaN batchIntervalMs', { batchIntervalMs: NaN }],
    ['a batchIntervalMs over a minute', { batchIntervalMs: 60_001 }],
    ['compression "yes"', { compression: 'yes' }],
    ['a negative compression threshold', { compression: { threshold: -1 } }],
    ['a fractional compression threshold', { compression: { threshold: 0.5 } }],
    ['encryption null', { encryption: null }],
    ['encryption with a short key', { encryption: { key: Buffer.alloc(16) } }],
    ['encryption with key id 0', { encryption: { keys: [{ id: 0, key: Buffer.alloc(32) }] } }],
    ['encryption with duplicate key ids', { encryption: { keys: [{ id: 1, key: Buffer.alloc(32) }, { id: 1, key: Buffer.alloc(32, 1) }] } }],
  ];
  for (const [what, opts] of badOptions) {
    it(`refuses ${what} with ERR_INVALID_ARG and creates nothing on disk`, async (t) => {
      const root = logDir(t);
      const dir = path.join(root, 'q');
      await assert.rejects(Log.open(dir, opts as LogOptions), { code: 'ERR_INVALID_ARG' });
      assert.deepEqual(fs.readdirSync(root), []);
    });
  }

  it('refuses an empty dir name with ERR_INVALID_ARG', async () => {
    await assert.rejects(Log.open(''), { code: 'ERR_INVALID_ARG' });
    await assert.rejects(Log.open(undefined as unknown as string), { code: 'ERR_INVALID_ARG' });
  });

  it('refuses a second Log.open on a directory that is open with ERR_LOCKED, then allows it after close', async (t) => {
    const dir = logDir(t);
    const first = await openLog(t, dir);
    await first.append(1, payloadFor(1));
    const before = fs.readdirSync(path.join(dir, 'log'));
    await assert.rejects(Log.open(dir), { code: 'ERR_LOCKED' });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'log')), before);
    assert.equal((await first.append(1, payloadFor(2))).seq, 2);
    await first.close();
    const second = await openLog(t, dir);
    assert.equal(second.nextSeq, 3);
  });
});

describe('LogWriter: a failed write is cut back', () => {
  for (const durability of ['fsync', 'batch', 'none'] as const) {
    it(`takes back a batch that rolled into a new segment when a write there fails with ENOSPC (${durability})`, async (t) => {
      const dir = logDir(t);
      const ffs = new FaultFs();
      const log = await Log.open(dir, { fs: ffs, durability, maxSegmentBytes: 4096 });
      for (let i = 0; i < 3; i++) await log.append(1, payloadFor(i));
      const segmentsBefore = segmentFiles(dir);
      const writes = ffs.counts.write;
      // One batch of 60 records of 136 bytes: it rolls past 4096 bytes; the first write in the new segment fails.
      const batch = Array.from({ length: 60 }, (_, i) => log.append(1, payloadFor(100 + i)));
      ffs.failNth('write', 1, { code: 'ENOSPC', torn: true });
      const settled = await Promise.allSettled(batch);
      assert.ok(settled.every((s) => s.status === 'rejected'), 'an append of the failed batch was acknowledged');
      assert.ok(ffs.counts.write > writes);
      assert.deepEqual(segmentFiles(dir), segmentsBefore, 'a segment made by the failed batch is still there');
      assert.equal(log.failure, undefined, 'ENOSPC cut back cleanly is not sticky');
      assert.equal(log.nextSeq, 64, 'the seqs of the rejected batch are never handed out again');
      const later = await log.append(1, payloadFor(7));
      assert.equal(later.seq, 64);
      assert.equal(later.segmentId, 64, 'the record after a cut back starts a fresh segment');
      await log.close();
      const seen: number[] = [];
      readLog(dir, { onEntry: (e) => void seen.push(e.payload().readUInt32LE(0)) });
      assert.deepEqual(seen, [0, 1, 2, 7]);
    });
  }

  it('creates a head that a full disk kept from being made under the next seq after a cut, and checkpoints it', async (t) => {
    const dir = logDir(t);
    await (await Log.open(dir)).close();
    const ffs = new FaultFs();
    ffs.full = true;
    const log = await Log.open(dir, { fs: ffs, durability: 'none' });
    await assert.rejects(log.append(1, payloadFor(1)), { code: 'ERR_IO' });
    ffs.full = false;
    const ptr = await log.append(1, payloadFor(2));
    assert.equal(ptr.segmentId, ptr.seq, 'the head is named by its first seq');
    assert.ok(ptr.seq > 1, 'a cut seq was handed out again');
    await log.checkpoint(Buffer.from('state'));
    await log.close();
    const again = await openLog(t, dir);
    assert.equal(again.recovery.checkpointRejected, undefined);
    assert.ok(again.recovery.checkpoint, 'the checkpoint was not used');
  });

  it('stays failed after an fdatasync fails, whatever its errno (ENOSPC included)', async (t) => {
    const dir = logDir(t);
    const ffs = new FaultFs();
    const log = await Log.open(dir, { fs: ffs, durability: 'fsync' });
    await log.append(1, payloadFor(1));
    ffs.failNth('fsync', 1, { code: 'ENOSPC' });
    const err = await Promise.all([1, 2, 3].map((i) => log.append(1, payloadFor(i)))).then(() => undefined, (e: Error) => e);
    assert.equal((err as { code?: string })?.code, 'ERR_IO');
    assert.equal(log.failure, err);
    await assert.rejects(log.append(1, payloadFor(9)), (e) => e === err);
    await log.close().catch(() => undefined);
  });

  it('stays failed when the layer above cannot rebuild its state after a cut back', async (t) => {
    const dir = logDir(t);
    const ffs = new FaultFs();
    const log = await Log.open(dir, { fs: ffs, durability: 'none' });
    await log.append(1, payloadFor(1));
    log.on('cut', () => {
      throw new Error('fold failed');
    });
    ffs.failNth('write', 1, { code: 'ENOSPC' });
    await assert.rejects(log.append(1, payloadFor(2)), /rebuild the state after a failed write was cut back/);
    assert.ok(log.failure);
    await assert.rejects(log.append(1, payloadFor(3)), (e) => e === log.failure);
    await log.close().catch(() => undefined);
  });

  it('does not write a checkpoint whose state was taken before a cut back', async (t) => {
    const dir = logDir(t);
    const ffs = new FaultFs();
    const log = await Log.open(dir, { fs: ffs, durability: 'none' });
    await log.append(1, payloadFor(1));
    const rejected = log.append(1, payloadFor(2));
    ffs.failNth('write', 1, { code: 'ENOSPC' });
    const checkpoint = log.checkpoint(Buffer.from('state with record 2'));
    await assert.rejects(rejected, { code: 'ERR_IO' });
    await checkpoint;
    assert.equal(fs.existsSync(path.join(dir, 'index')), false, 'an index covering a rejected record was written');
    await log.close();
  });
});
