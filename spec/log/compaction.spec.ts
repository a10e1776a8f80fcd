import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { segmentFileName } from '../../lib/format/names.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader } from '../../lib/format/segment-header.js';
import { Log, type LogOptions } from '../../lib/log/log.js';
import type { LogEntry } from '../../lib/log/log-scan.js';
import type { RecordPointer } from '../../lib/log/writer.js';
import { LOG_CODECS, logDir, openLog, replayAll } from '../helpers/log-fixtures.js';
import { flipByte } from '../helpers/tmp.js';

const SEGMENT_BYTES = 4096;
const PAYLOAD_BYTES = 100;

/** 100 incompressible bytes: first byte even when the record is live, then the seq. */
function payload(seq: number, live: boolean): Buffer {
  const b = Buffer.alloc(PAYLOAD_BYTES);
  for (let i = 0; i * 32 < PAYLOAD_BYTES; i++) {
    createHash('sha256').update(`${seq}/${i}`).digest().copy(b, i * 32);
  }
  b[0] = (b[0]! & 0xfe) | (live ? 0 : 1);
  b.writeUInt32LE(seq, 1);
  return b;
}

const isLive = (e: LogEntry): boolean => e.payload()[0]! % 2 === 0;

/** What each sealed segment holds, in order; the head (last) holds a mix. */
const PLAN = ['dead', 'sparse', 'live', 'mostly', 'sparse', 'dead'] as const;
const liveness: Record<(typeof PLAN)[number] | 'head', (k: number) => boolean> = {
  dead: () => false,
  sparse: (k) => k % 5 === 0,
  live: () => true,
  mostly: (k) => k % 4 !== 0,
  head: (k) => k % 2 === 0,
};
const HEAD_RECORDS = 10;

interface Built {
  dir: string;
  log: Log;
  ptrs: RecordPointer[];
  live: Set<number>;
  /** Segment ids in plan order. */
  segments: number[];
  perSegment: number;
  opts: LogOptions;
}

async function build(t: { after: (fn: () => unknown) => void }, opts: LogOptions): Promise<Built> {
  const dir = logDir(t as never);
  opts = { ...opts, maxSegmentBytes: SEGMENT_BYTES };
  const log = await openLog(t, dir, opts);
  const size = log.codec.maxRecordBytes(PAYLOAD_BYTES);
  const perSegment = Math.floor((SEGMENT_BYTES - SEGMENT_HEADER_BYTES) / size);
  const live = new Set<number>();
  const payloads: Buffer[] = [];
  let seq = 0;
  for (const kind of [...PLAN, 'head' as const]) {
    const n = kind === 'head' ? HEAD_RECORDS : perSegment;
    for (let k = 0; k < n; k++) {
      seq++;
      const isLiveRecord = liveness[kind](k);
      if (isLiveRecord) live.add(seq);
      payloads.push(payload(seq, isLiveRecord));
    }
  }
  const ptrs = await Promise.all(payloads.map((p) => log.append(1, p)));
  assert.ok(ptrs.every((p) => p.size === size), 'no record was compressed');
  const segments = PLAN.map((_, i) => 1 + i * perSegment);
  assert.deepEqual([...new Set(ptrs.map((p) => p.segmentId))], [...segments, 1 + PLAN.length * perSegment]);
  return { dir, log, ptrs, live, segments, perSegment, opts };
}

const fileSize = (dir: string, id: number) => fs.statSync(path.join(dir, 'log', segmentFileName(id))).size;
const exists = (dir: string, id: number) => fs.existsSync(path.join(dir, 'log', segmentFileName(id)));

/** Seqs that survive a compaction of `b`: all but those in deleted segments and the dead ones of rewritten ones. */
function survivors(b: Built): number[] {
  const [dead0, sparse1, , , sparse4, dead5] = b.segments;
  const gone = new Set([dead0, dead5]);
  const sparse = new Set([sparse1, sparse4]);
  return b.ptrs
    .filter((p) => !gone.has(p.segmentId) && (!sparse.has(p.segmentId) || b.live.has(p.seq)))
    .map((p) => p.seq);
}

describe('Log.compact', () => {
  for (const codec of LOG_CODECS) {
    it(`deletes dead segments, rewrites sparse ones and relocates their live records (${codec.name})`, async (t) => {
      const b = await build(t, codec.opts);
      const [dead0, sparse1, live2, mostly3, sparse4, dead5] = b.segments as [number, number, number, number, number, number];
      const sizeBefore = new Map(b.segments.map((id) => [id, fileSize(b.dir, id)]));
      const inSegment = (id: number) => b.ptrs.filter((p) => p.segmentId === id);
      const liveIn = (id: number) => inSegment(id).filter((p) => b.live.has(p.seq));

      const result = await b.log.compact(isLive);

      assert.deepEqual(result.deleted, [dead0, dead5]);
      assert.deepEqual(result.rewritten, [
        { segmentId: sparse1, generation: 1, liveRecords: liveIn(sparse1).length },
        { segmentId: sparse4, generation: 1, liveRecords: liveIn(sparse4).length },
      ]);
      assert.deepEqual(result.skippedDamaged, []);
      assert.equal(exists(b.dir, dead0), false);
      assert.equal(exists(b.dir, dead5), false);
      assert.equal(fileSize(b.dir, live2), sizeBefore.get(live2));
      assert.equal(fileSize(b.dir, mostly3), sizeBefore.get(mostly3));
      const recordSize = b.ptrs[0]!.size;
      for (const id of [sparse1, sparse4]) {
        assert.equal(fileSize(b.dir, id), SEGMENT_HEADER_BYTES + liveIn(id).length * recordSize);
        const header = decodeSegmentHeader(fs.readFileSync(path.join(b.dir, 'log', segmentFileName(id))), 'seg');
        assert.equal(header.generation, 1);
        assert.equal(header.segmentId, id);
      }
      const total = [...sizeBefore.values()].reduce((a, v) => a + v, 0);
      assert.equal(result.bytesBefore, total);
      assert.equal(
        result.bytesAfter,
        total - sizeBefore.get(dead0)! - sizeBefore.get(dead5)! -
          (sizeBefore.get(sparse1)! - fileSize(b.dir, sparse1)) - (sizeBefore.get(sparse4)! - fileSize(b.dir, sparse4)),
      );

      const moved = [...liveIn(sparse1), ...liveIn(sparse4)].map((p) => p.seq);
      assert.deepEqual([...result.relocated.keys()].sort((a, c) => a - c), moved);
      for (const id of [sparse1, sparse4]) {
        liveIn(id).forEach((old, k) => {
          const ptr = result.relocated.get(old.seq)!;
          assert.deepEqual(ptr, { seq: old.seq, segmentId: id, offset: SEGMENT_HEADER_BYTES + k * recordSize, size: recordSize });
          assert.deepEqual(b.log.read(ptr).payload(), payload(old.seq, true));
        });
      }
      for (const p of inSegment(live2)) assert.deepEqual(b.log.read(p).payload(), payload(p.seq, b.live.has(p.seq)));
      assert.throws(() => b.log.read(inSegment(dead0)[0]!), { code: 'ERR_NOT_FOUND' });
      assert.throws(() => b.log.read(inSegment(dead5)[3]!), { code: 'ERR_NOT_FOUND' });

      const verify = b.log.verify({ decode: true });
      assert.equal(verify.ok, true);
      assert.deepEqual(verify.decodeErrors, []);

      await b.log.close();
      const again = await openLog(t, b.dir, b.opts);
      const { entries, state } = replayAll(again);
      assert.equal(state, undefined);
      const want = survivors(b);
      assert.deepEqual(entries.map((e) => e.seq), want);
      for (const e of entries) assert.deepEqual(e.payload, payload(e.seq, b.live.has(e.seq)));
      assert.equal(again.nextSeq, b.ptrs.length + 1);
    });
  }

  it('uses a checkpoint written after compaction on reopen', async (t) => {
    const b = await build(t, {});
    await b.log.compact(isLive);
    await b.log.checkpoint(Buffer.from('after compaction'));
    const extra = await b.log.append(1, payload(b.ptrs.length + 1, true));
    await b.log.close();
    const again = await openLog(t, b.dir, b.opts);
    assert.equal(again.recovery.checkpointRejected, undefined);
    const gens = again.recovery.checkpoint!.segments;
    assert.deepEqual(gens.find((s) => s.segmentId === b.segments[1]), { segmentId: b.segments[1], generation: 1 });
    assert.equal(gens.find((s) => s.segmentId === b.segments[0]), undefined, 'a deleted segment is not listed');
    const { entries, state } = replayAll(again);
    assert.deepEqual(state, Buffer.from('after compaction'));
    assert.deepEqual(entries.map((e) => e.seq), [extra.seq]);
  });

  it('rejects a checkpoint written before compaction (generation changed) and still replays correctly', async (t) => {
    const b = await build(t, {});
    await b.log.checkpoint(Buffer.from('before compaction'));
    const result = await b.log.compact(isLive);
    assert.equal(result.rewritten[0]!.segmentId, b.segments[1]);
    await b.log.close();
    const again = await openLog(t, b.dir, b.opts);
    assert.match(again.recovery.checkpointRejected ?? '', new RegExp(`segment ${b.segments[1]} was rewritten`));
    assert.equal(again.recovery.checkpoint, undefined);
    const { entries, state } = replayAll(again);
    assert.equal(state, undefined);
    assert.deepEqual(entries.map((e) => e.seq), survivors(b));
    for (const e of entries) assert.deepEqual(e.payload, payload(e.seq, b.live.has(e.seq)));
  });

  it('keeps a checkpoint that only deleted segments made stale, since they held nothing live', async (t) => {
    const b = await build(t, {});
    await b.log.checkpoint(Buffer.from('before'));
    const result = await b.log.compact(isLive, { sparseRatio: 0 });
    assert.deepEqual(result.deleted, [b.segments[0], b.segments[5]]);
    assert.deepEqual(result.rewritten, []);
    await b.log.close();
    const again = await openLog(t, b.dir, b.opts);
    assert.equal(again.recovery.checkpointRejected, undefined);
    assert.deepEqual(replayAll(again), { entries: [], state: Buffer.from('before') });
  });

  it('accepts appends made while compaction runs, including a roll', async (t) => {
    const b = await build(t, {});
    const during: Array<Promise<RecordPointer>> = [];
    let calls = 0;
    const result = await b.log.compact((e) => {
      // Append from inside the scan of the third segment: compaction is certainly running.
      if (e.segmentId === b.segments[2] && calls++ === 0) {
        for (let i = 0; i < 2 * b.perSegment; i++) during.push(b.log.append(2, payload(b.ptrs.length + 1 + i, true)));
      }
      return isLive(e);
    });
    assert.equal(during.length, 2 * b.perSegment);
    const ptrs = await Promise.all(during);
    assert.deepEqual(ptrs.map((p) => p.seq), Array.from({ length: during.length }, (_, i) => b.ptrs.length + 1 + i));
    assert.ok(new Set(ptrs.map((p) => p.segmentId)).size >= 2, 'the appends rolled the head');
    assert.deepEqual(result.deleted, [b.segments[0], b.segments[5]]);
    for (const p of ptrs) assert.deepEqual(b.log.read(p).payload(), payload(p.seq, true));
    await b.log.close();
    const again = await openLog(t, b.dir, b.opts);
    assert.deepEqual(replayAll(again).entries.map((e) => e.seq), [...survivors(b), ...ptrs.map((p) => p.seq)]);
  });

  it('rewrites a segment again as the next generation', async (t) => {
    const b = await build(t, {});
    const first = await b.log.compact(isLive);
    const sparse1 = b.segments[1]!;
    assert.equal(first.rewritten[0]!.generation, 1);
    const keep = [...first.relocated.values()].filter((p) => p.segmentId === sparse1)[0]!;
    const second = await b.log.compact((e) => e.seq === keep.seq || (e.segmentId !== sparse1 && isLive(e)), { sparseRatio: 0.9 });
    assert.deepEqual(second.rewritten.find((r) => r.segmentId === sparse1), { segmentId: sparse1, generation: 2, liveRecords: 1 });
    assert.deepEqual(second.relocated.get(keep.seq), { ...keep, offset: SEGMENT_HEADER_BYTES });
    assert.deepEqual(b.log.read(second.relocated.get(keep.seq)!).payload(), payload(keep.seq, true));
  });

  it('leaves a damaged segment alone and reports it', async (t) => {
    const b = await build(t, {});
    const dead0 = b.segments[0]!;
    await b.log.close();
    flipByte(path.join(b.dir, 'log', segmentFileName(dead0)), b.ptrs[3]!.offset + 40);
    const log = await openLog(t, b.dir, b.opts, { verify: false });
    assert.equal(log.recovery.damage.length, 1);
    const before = fs.readFileSync(path.join(b.dir, 'log', segmentFileName(dead0)));
    const result = await log.compact(isLive);
    assert.deepEqual(result.skippedDamaged, [dead0]);
    assert.deepEqual(result.deleted, [b.segments[5]]);
    assert.deepEqual(fs.readFileSync(path.join(b.dir, 'log', segmentFileName(dead0))), before);
  });

  it('refuses a second compaction while one runs with ERR_INVALID_ARG', async (t) => {
    const b = await build(t, {});
    const running = b.log.compact(isLive);
    await assert.rejects(b.log.compact(isLive), { code: 'ERR_INVALID_ARG' });
    assert.deepEqual((await running).deleted, [b.segments[0], b.segments[5]]);
    assert.deepEqual((await b.log.compact(isLive)).deleted, []);
  });

  it('never touches the head segment', async (t) => {
    const b = await build(t, {});
    const head = b.ptrs[b.ptrs.length - 1]!.segmentId;
    const before = fileSize(b.dir, head);
    const result = await b.log.compact(() => false, { sparseRatio: 1 });
    assert.ok(!result.deleted.includes(head));
    assert.deepEqual(result.rewritten, []);
    assert.equal(fileSize(b.dir, head), before);
    assert.deepEqual(result.deleted, b.segments);
  });
});
