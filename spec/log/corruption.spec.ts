import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { quarantineFileName, segmentFileName } from '../../lib/format/names.js';
import { SEGMENT_HEADER_BYTES } from '../../lib/format/segment-header.js';
import { crc32 } from '../../lib/format/crc32.js';
import { Log, type LogOptions } from '../../lib/log/log.js';
import type { DamagedRange } from '../../lib/log/segment-scanner.js';
import { verifyLog } from '../../lib/log/verify.js';
import type { RecordPointer } from '../../lib/log/writer.js';
import { hashTree, logDir, openLog, replayAll, TEST_KEY_1, TEST_KEY_2 } from '../helpers/log-fixtures.js';
import { flipByte, payloadFor, segmentFiles } from '../helpers/tmp.js';

const PAYLOAD_BYTES = 40;

/** Writes `n` records (payloadFor(seq)) with fsync and closes the log. */
async function writeRecords(dir: string, n: number, opts: LogOptions = {}): Promise<RecordPointer[]> {
  const log = await Log.open(dir, opts);
  try {
    const ptrs: RecordPointer[] = [];
    for (let seq = 1; seq <= n; seq++) ptrs.push(await log.append(1, payloadFor(seq, PAYLOAD_BYTES)));
    return ptrs;
  } finally {
    await log.close();
  }
}

const expected = (seqs: number[]) => seqs.map((seq) => ({ seq, type: 1, payload: payloadFor(seq, PAYLOAD_BYTES) }));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Log recovery of interior damage', () => {
  const fields: Array<[string, number]> = [
    ['crc', 0],
    ['magic', 4],
    ['length', 12],
    ['seq', 16],
    ['segment', 24],
    ['epoch', 32],
    ['payload', 36 + 20],
    ['last payload', 36 + PAYLOAD_BYTES - 1],
  ];
  for (const [field, at] of fields) {
    it(`quarantines and reports a flipped ${field} byte inside an interior record and keeps every other record`, async (t) => {
      const dir = logDir(t);
      const ptrs = await writeRecords(dir, 10);
      const bad = ptrs[4]!;
      const file = segmentFiles(dir)[0]!;
      flipByte(file, bad.offset + at);
      const damagedBytes = fs.readFileSync(file).subarray(bad.offset, bad.offset + bad.size);

      const log = await openLog(t, dir, {}, { verify: false });
      const events: DamagedRange[] = [];
      log.on('damage', (d) => events.push(d));
      const want = { segmentId: 1, offset: bad.offset, end: bad.offset + bad.size };
      assert.equal(log.recovery.damage.length, 1);
      assert.deepEqual({ ...log.recovery.damage[0], reason: undefined }, { ...want, reason: undefined });
      assert.deepEqual(log.recovery.truncated, []);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(events, log.recovery.damage);

      const qfile = path.join(dir, 'quarantine', quarantineFileName(1, bad.offset));
      assert.deepEqual(fs.readdirSync(path.join(dir, 'quarantine')), [quarantineFileName(1, bad.offset)]);
      assert.deepEqual(fs.readFileSync(qfile), damagedBytes);
      assert.equal(fs.statSync(file).size, ptrs[9]!.offset + ptrs[9]!.size, 'interior damage is not cut out');

      assert.deepEqual(replayAll(log).entries, expected([1, 2, 3, 4, 6, 7, 8, 9, 10]));
      assert.equal(log.nextSeq, 11);
      // A damaged length may make the record look longer than the pointer says: then nothing whole is there.
      const code = field === 'length' ? /^ERR_(NOT_FOUND|CORRUPT_RECORD)$/ : 'ERR_CORRUPT_RECORD';
      assert.throws(() => log.read(bad), { code });
      assert.deepEqual(log.read(ptrs[5]!).payload(), payloadFor(6, PAYLOAD_BYTES));

      const report = verifyLog(dir);
      assert.equal(report.ok, false);
      assert.deepEqual(report.damage.map((d) => ({ ...d, reason: undefined })), [{ ...want, reason: undefined }]);
      assert.deepEqual(report.quarantined, [quarantineFileName(1, bad.offset)]);
      assert.equal(report.records, 9);
    });
  }

  it('reports the same damage again on the next open and keeps one quarantine copy', async (t) => {
    const dir = logDir(t);
    const ptrs = await writeRecords(dir, 6);
    flipByte(segmentFiles(dir)[0]!, ptrs[2]!.offset + 40);
    const first = await openLog(t, dir);
    const appended = await first.append(1, payloadFor(7, PAYLOAD_BYTES));
    assert.equal(appended.seq, 7);
    await first.close();
    const second = await openLog(t, dir, {}, { verify: false });
    assert.deepEqual(second.recovery.damage, first.recovery.damage);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'quarantine')), [quarantineFileName(1, ptrs[2]!.offset)]);
    assert.deepEqual(replayAll(second).entries, expected([1, 2, 4, 5, 6, 7]));
  });

  it('reports damage that spans two records as one range', async (t) => {
    const dir = logDir(t);
    const ptrs = await writeRecords(dir, 8);
    const file = segmentFiles(dir)[0]!;
    flipByte(file, ptrs[2]!.offset + 38);
    flipByte(file, ptrs[3]!.offset + 38);
    const log = await openLog(t, dir, {}, { verify: false });
    assert.deepEqual(log.recovery.damage.map((d) => [d.offset, d.end]), [[ptrs[2]!.offset, ptrs[4]!.offset]]);
    assert.deepEqual(replayAll(log).entries, expected([1, 2, 5, 6, 7, 8]));
  });
  it('reports zeroes over an interior record as damage, not as the end of the data', async (t) => {
    const dir = logDir(t);
    const ptrs = await writeRecords(dir, 6);
    const fd = fs.openSync(segmentFiles(dir)[0]!, 'r+');
    fs.writeSync(fd, Buffer.alloc(ptrs[2]!.size), 0, ptrs[2]!.size, ptrs[2]!.offset);
    fs.closeSync(fd);
    const log = await openLog(t, dir, {}, { verify: false });
    assert.deepEqual(log.recovery.damage.map((d) => [d.segmentId, d.offset, d.end]), [[1, ptrs[2]!.offset, ptrs[3]!.offset]]);
    assert.deepEqual(log.recovery.truncated, []);
    assert.deepEqual(replayAll(log).entries, expected([1, 2, 4, 5, 6]));
  });

  it('quarantines and cuts a damaged tail of a sealed segment, reporting it as damage', async (t) => {
    const dir = logDir(t);
    const ptrs = await writeRecords(dir, 4);
    const reopened = await openLog(t, dir); // seals segment 1: the next records go to a new head
    assert.deepEqual(reopened.recovery.damage, []);
    for (let seq = 5; seq <= 6; seq++) await reopened.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await reopened.close();
    const sealed = segmentFiles(dir)[0]!;
    const last = ptrs[3]!;
    flipByte(sealed, last.offset + 40);
    const damaged = fs.readFileSync(sealed).subarray(last.offset);

    const log = await openLog(t, dir);
    const want = { segmentId: 1, offset: last.offset, end: last.offset + last.size };
    assert.deepEqual(log.recovery.damage.map((d) => ({ segmentId: d.segmentId, offset: d.offset, end: d.end })), [want]);
    assert.deepEqual(log.recovery.truncated, [{ segmentId: 1, offset: last.offset, bytes: last.size, kind: 'garbage' }]);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'quarantine', quarantineFileName(1, last.offset))), damaged);
    assert.equal(fs.statSync(sealed).size, last.offset);
    assert.deepEqual(replayAll(log).entries, expected([1, 2, 3, 5, 6]));
    assert.equal(log.nextSeq, 7);
  });

  it('removes a last segment whose header never committed and reuses its id', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 3);
    const torn = path.join(dir, 'log', segmentFileName(4));
    fs.writeFileSync(torn, Buffer.from('SPQS\x01\x00', 'latin1'));
    const log = await openLog(t, dir);
    assert.deepEqual(log.recovery.truncated, [{ segmentId: 4, offset: 0, bytes: -1, kind: 'uncommitted segment removed' }]);
    assert.deepEqual(log.recovery.damage, []);
    assert.equal(log.nextSeq, 4);
    const p = await log.append(1, payloadFor(4, PAYLOAD_BYTES));
    assert.deepEqual({ seq: p.seq, segmentId: p.segmentId, offset: p.offset }, { seq: 4, segmentId: 4, offset: SEGMENT_HEADER_BYTES });
    assert.deepEqual(replayAll(log).entries.map((e) => e.seq), [1, 2, 3, 4]);
    await log.close(); // cuts the head's preallocated zeros off (writer.ts)
    assert.equal(fs.statSync(torn).size, SEGMENT_HEADER_BYTES + p.size);
  });

  it('reports a damaged header of a sealed segment and still reads its records', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 3);
    const second = await openLog(t, dir);
    await second.append(1, payloadFor(4, PAYLOAD_BYTES));
    await second.close();
    flipByte(segmentFiles(dir)[0]!, 20);
    const log = await openLog(t, dir, {}, { verify: false });
    assert.deepEqual(log.recovery.damage.map((d) => [d.segmentId, d.offset, d.end]), [[1, 0, SEGMENT_HEADER_BYTES]]);
    assert.deepEqual(replayAll(log).entries, expected([1, 2, 3, 4]));
    assert.equal(verifyLog(dir).ok, false);
  });
});

describe('Log recovery of a garbage tail', () => {
  it('cuts random garbage appended to the last segment and keeps every record', async (t) => {
    const dir = logDir(t);
    const ptrs = await writeRecords(dir, 5);
    const file = segmentFiles(dir)[0]!;
    const end = ptrs[4]!.offset + ptrs[4]!.size;
    const garbage = randomBytes(300);
    garbage[0] = 0xab; // not a zero region
    fs.appendFileSync(file, garbage);

    const log = await openLog(t, dir);
    assert.deepEqual(log.recovery.truncated, [{ segmentId: 1, offset: end, bytes: 300, kind: 'garbage' }]);
    assert.deepEqual(log.recovery.damage, []);
    assert.equal(fs.statSync(file).size, end);
    assert.equal(fs.existsSync(path.join(dir, 'quarantine')), false);
    assert.deepEqual(replayAll(log).entries, expected(range(1, 5)));
    assert.equal(log.nextSeq, 6);
    const report = verifyLog(dir);
    assert.equal(report.ok, true);
    assert.equal(report.tornTail, undefined);
    assert.equal(report.records, 5);
  });

  it('cuts a copy of a valid record appended after the end (a duplicate seq does not belong)', async (t) => {
    const dir = logDir(t);
    const ptrs = await writeRecords(dir, 3);
    const file = segmentFiles(dir)[0]!;
    const bytes = fs.readFileSync(file);
    fs.appendFileSync(file, bytes.subarray(ptrs[1]!.offset, ptrs[1]!.offset + ptrs[1]!.size));
    const log = await openLog(t, dir);
    assert.equal(log.recovery.truncated.length, 1);
    assert.equal(log.recovery.truncated[0]!.bytes, ptrs[1]!.size);
    assert.deepEqual(replayAll(log).entries, expected([1, 2, 3]));
    assert.equal(log.nextSeq, 4);
  });
});

describe('Log checkpoint (index) on open', () => {
  it('ignores a damaged index and replays every record from the start', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    for (let seq = 1; seq <= 5; seq++) await log.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await log.checkpoint(Buffer.from('state at 5'));
    await log.close();
    flipByte(path.join(dir, 'index'), 20);

    const again = await openLog(t, dir);
    assert.match(again.recovery.checkpointRejected ?? '', /checksum/);
    assert.equal(again.recovery.checkpoint, undefined);
    const { entries, state } = replayAll(again);
    assert.equal(state, undefined);
    assert.deepEqual(entries, expected(range(1, 5)));
    assert.equal(again.nextSeq, 6);
  });

  it('ignores an index that is not an index at all', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 3);
    fs.writeFileSync(path.join(dir, 'index'), 'not an index');
    const log = await openLog(t, dir);
    assert.equal(typeof log.recovery.checkpointRejected, 'string');
    assert.deepEqual(replayAll(log).entries, expected([1, 2, 3]));
  });

  it('uses a stale index: replays only the records after it and returns its state', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    for (let seq = 1; seq <= 5; seq++) await log.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await log.checkpoint(Buffer.from('state at 5'));
    for (let seq = 6; seq <= 9; seq++) await log.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await log.close();

    const again = await openLog(t, dir);
    assert.equal(again.recovery.checkpointRejected, undefined);
    assert.equal(again.recovery.checkpoint?.position.nextSeq, 6);
    const { entries, state } = replayAll(again);
    assert.deepEqual(state, Buffer.from('state at 5'));
    assert.deepEqual(entries, expected([6, 7, 8, 9]));
    assert.equal(again.nextSeq, 10);
  });

  for (const durability of ['fsync', 'batch', 'none'] as const) {
    it(`covers only the records appended before checkpoint() was called (${durability})`, async (t) => {
      const dir = logDir(t);
      const log = await openLog(t, dir, { durability, batchIntervalMs: 60_000 });
      await log.append(1, payloadFor(1, PAYLOAD_BYTES));
      const cp = log.checkpoint(Buffer.from('state after 1'));
      const second = log.append(1, payloadFor(2, PAYLOAD_BYTES));
      await cp;
      await second;
      await log.close();
      const again = await openLog(t, dir);
      assert.equal(again.recovery.checkpoint?.position.nextSeq, 2);
      const { entries, state } = replayAll(again);
      assert.deepEqual(state, Buffer.from('state after 1'));
      assert.deepEqual(entries, expected([2]));
    });
  }

  it('uses an index written at a pointer: replays from just after that record', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const ptrs = [];
    for (let seq = 1; seq <= 6; seq++) ptrs.push(await log.append(1, payloadFor(seq, PAYLOAD_BYTES)));
    await log.checkpoint(Buffer.from('up to 3'), ptrs[2]);
    await log.close();
    const again = await openLog(t, dir);
    const { entries, state } = replayAll(again);
    assert.deepEqual(state, Buffer.from('up to 3'));
    assert.deepEqual(entries, expected([4, 5, 6]));
  });

  it('uses an index at the last record of a sealed segment and replays the next segment', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    const ptrs = await Promise.all(range(1, 60).map((seq) => log.append(1, payloadFor(seq, PAYLOAD_BYTES))));
    const lastOfFirst = ptrs.filter((p) => p.segmentId === 1).pop()!;
    assert.ok(lastOfFirst.seq < 60);
    await log.checkpoint(Buffer.from('end of segment 1'), lastOfFirst);
    await log.close();
    const again = await openLog(t, dir);
    assert.equal(again.recovery.checkpointRejected, undefined);
    const { entries, state } = replayAll(again);
    assert.deepEqual(state, Buffer.from('end of segment 1'));
    assert.deepEqual(entries, expected(range(lastOfFirst.seq + 1, 60)));
  });

  it('uses an index that covers the whole log across a reopen and a new head segment', async (t) => {
    const dir = logDir(t);
    const first = await openLog(t, dir);
    for (let seq = 1; seq <= 3; seq++) await first.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await first.close();
    const second = await openLog(t, dir);
    for (let seq = 4; seq <= 5; seq++) await second.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await second.checkpoint(Buffer.from('all'));
    await second.close();
    const third = await openLog(t, dir);
    assert.equal(third.recovery.checkpointRejected, undefined);
    const { entries, state } = replayAll(third);
    assert.deepEqual(state, Buffer.from('all'));
    assert.deepEqual(entries, []);
    assert.equal(third.nextSeq, 6);
  });

  it('loses nothing when the index is deleted', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    for (let seq = 1; seq <= 7; seq++) await log.append(1, payloadFor(seq, PAYLOAD_BYTES));
    await log.checkpoint(Buffer.from('state'));
    await log.close();
    fs.unlinkSync(path.join(dir, 'index'));
    const again = await openLog(t, dir);
    assert.equal(again.recovery.checkpoint, undefined);
    assert.equal(again.recovery.checkpointRejected, undefined);
    const { entries, state } = replayAll(again);
    assert.equal(state, undefined);
    assert.deepEqual(entries, expected(range(1, 7)));
  });

  it('removes temp files a crash left behind', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 2);
    fs.writeFileSync(path.join(dir, 'index.tmp'), 'half');
    fs.writeFileSync(path.join(dir, 'log', segmentFileName(99) + '.tmp'), 'half');
    const log = await openLog(t, dir);
    assert.deepEqual(log.recovery.removedTempFiles.sort(), ['00000000000000000099.seg.tmp', 'index.tmp']);
    assert.equal(fs.existsSync(path.join(dir, 'index.tmp')), false);
    assert.equal(fs.existsSync(path.join(dir, 'log', segmentFileName(99) + '.tmp')), false);
    assert.deepEqual(replayAll(log).entries, expected([1, 2]));
  });
});

describe('Log.open refusals', () => {
  it('refuses a non-empty foreign directory with ERR_NOT_A_LOG and leaves it unchanged', async (t) => {
    const dir = logDir(t);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    fs.mkdirSync(path.join(dir, 'sub'));
    const before = hashTree(dir);
    await assert.rejects(Log.open(dir), { code: 'ERR_NOT_A_LOG' });
    assert.deepEqual(hashTree(dir), before);
  });

  it('refuses a file where a directory should be with ERR_NOT_A_LOG', async (t) => {
    const file = path.join(logDir(t), 'file');
    fs.writeFileSync(file, 'x');
    await assert.rejects(Log.open(file), { code: 'ERR_NOT_A_LOG' });
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
  });

  it('refuses a missing directory with ERR_NOT_A_LOG when create is false and creates nothing', async (t) => {
    const dir = path.join(logDir(t), 'missing');
    await assert.rejects(Log.open(dir, { create: false }), { code: 'ERR_NOT_A_LOG' });
    assert.equal(fs.existsSync(dir), false);
  });

  it('refuses a segment with an unknown version with ERR_UNSUPPORTED_VERSION, and again on retry', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 3);
    const file = segmentFiles(dir)[0]!;
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const fd = fs.openSync(file, 'r+');
    fs.readSync(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt32LE(crc32(header, 0, 60), 60);
    fs.writeSync(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
    fs.closeSync(fd);
    const before = hashTree(path.join(dir, 'log'));
    await assert.rejects(Log.open(dir), { code: 'ERR_UNSUPPORTED_VERSION' });
    await assert.rejects(Log.open(dir), { code: 'ERR_UNSUPPORTED_VERSION' }, 'the failed open released its lock');
    assert.deepEqual(hashTree(path.join(dir, 'log')), before);
  });

  it('refuses a manifest with an unknown version with ERR_UNSUPPORTED_VERSION', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 1);
    flipByte(path.join(dir, 'QUEUE'), 4, 0x02);
    await assert.rejects(Log.open(dir), { code: 'ERR_UNSUPPORTED_VERSION' });
  });

  it('refuses an encrypted log opened without keys with ERR_KEY_MISSING and changes nothing', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 3, { encryption: { key: TEST_KEY_1 } });
    const before = hashTree(dir);
    await assert.rejects(Log.open(dir), { code: 'ERR_KEY_MISSING' });
    assert.deepEqual(hashTree(dir), before);
  });

  it('refuses an encrypted log opened with the wrong key with ERR_DECRYPT and changes nothing on disk', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 3, { encryption: { key: TEST_KEY_1 } });
    const before = hashTree(dir);
    await assert.rejects(Log.open(dir, { encryption: { key: TEST_KEY_2 } }), { code: 'ERR_DECRYPT' });
    await assert.rejects(Log.open(dir, { encryption: { keys: [{ id: 1, key: TEST_KEY_2 }, { id: 2, key: TEST_KEY_1 }] } }), {
      code: 'ERR_DECRYPT',
    });
    assert.deepEqual(hashTree(dir), before);
    const right = await openLog(t, dir, { encryption: { key: TEST_KEY_1 } });
    assert.deepEqual(replayAll(right).entries, expected([1, 2, 3]));
  });

  it('opens an encrypted log with a rotated ring and reads records of both keys', async (t) => {
    const dir = logDir(t);
    await writeRecords(dir, 2, { encryption: { key: TEST_KEY_1 } });
    const ring = { keys: [{ id: 1, key: TEST_KEY_1 }, { id: 2, key: TEST_KEY_2 }] };
    const rotated = await openLog(t, dir, { encryption: ring });
    const p3 = await rotated.append(1, payloadFor(3, PAYLOAD_BYTES));
    assert.equal(rotated.read(p3).keyId, 2);
    await rotated.close();
    await assert.rejects(Log.open(dir, { encryption: { keys: [{ id: 2, key: TEST_KEY_1 }] } }), { code: 'ERR_DECRYPT' });
    const again = await openLog(t, dir, { encryption: ring });
    assert.deepEqual(replayAll(again).entries, expected([1, 2, 3]));
  });
});
