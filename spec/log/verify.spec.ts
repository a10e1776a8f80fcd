import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { quarantineFileName } from '../../lib/format/names.js';
import { verifyLog } from '../../lib/log/verify.js';
import { hashTree, logDir, openLog, TEST_KEY_1, TEST_KEY_2 } from '../helpers/log-fixtures.js';
import { appendBytes, flipByte, payloadFor, segmentFiles } from '../helpers/tmp.js';

describe('verifyLog', () => {
  it('reports a healthy log as ok with its records, seqs and usable index', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    await Promise.all(Array.from({ length: 70 }, (_, i) => log.append(1, payloadFor(i))));
    await log.checkpoint(Buffer.from('s'));
    await log.close();
    const report = verifyLog(dir);
    assert.equal(report.ok, true);
    assert.equal(report.records, 70);
    assert.equal(report.firstSeq, 1);
    assert.equal(report.lastSeq, 70);
    assert.deepEqual(report.damage, []);
    assert.equal(report.tornTail, undefined);
    assert.deepEqual(report.index, { present: true, usable: true, nextSeq: 71 });
    assert.deepEqual(report.segments.map((s) => [s.segmentId, s.generation, s.records]), [[1, 0, 29], [30, 0, 29], [59, 0, 12]]);
    assert.equal(report.bytes, segmentFiles(dir).reduce((a, f) => a + fs.statSync(f).size, 0));
  });

  it('reports a torn tail of the last segment without calling it damage, and changes nothing', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const p = await log.append(1, payloadFor(1));
    await log.close();
    appendBytes(segmentFiles(dir)[0]!, Buffer.from('torn!'));
    const before = hashTree(dir);
    const report = verifyLog(dir);
    assert.equal(report.ok, true);
    assert.deepEqual(report.tornTail, { segmentId: 1, offset: p.offset + p.size, bytes: 5, kind: 'incomplete' });
    assert.deepEqual(hashTree(dir), before);
  });

  it('reports interior damage with its range and leaves the files as they are', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const ptrs = [];
    for (let i = 1; i <= 5; i++) ptrs.push(await log.append(1, payloadFor(i)));
    await log.close();
    flipByte(segmentFiles(dir)[0]!, ptrs[1]!.offset + 60);
    const before = hashTree(dir);
    const report = verifyLog(dir);
    assert.equal(report.ok, false);
    assert.deepEqual(report.damage.map((d) => [d.segmentId, d.offset, d.end]), [[1, ptrs[1]!.offset, ptrs[2]!.offset]]);
    assert.equal(report.records, 4);
    assert.deepEqual(report.quarantined, []);
    assert.deepEqual(hashTree(dir), before);
    const opened = await openLog(t, dir);
    await opened.close();
    assert.deepEqual(verifyLog(dir).quarantined, [quarantineFileName(1, ptrs[1]!.offset)]);
  });

  it('reports payloads that do not decode when given a codec', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { encryption: { key: TEST_KEY_1 } });
    await log.append(1, payloadFor(1));
    const report = log.verify({ decode: true });
    assert.equal(report.ok, true);
    assert.deepEqual(report.decodeErrors, []);
    await log.close();
    assert.equal(verifyLog(dir, { encryption: { key: TEST_KEY_1 } }).ok, true);
    assert.throws(() => verifyLog(dir, { encryption: { key: TEST_KEY_2 } }), { code: 'ERR_DECRYPT' });
    const other = verifyLog(dir, { encryption: { keys: [{ id: 2, key: TEST_KEY_2 }] } });
    assert.equal(other.ok, false);
    assert.deepEqual(other.decodeErrors.map((e) => [e.seq, e.code]), [[1, 'ERR_KEY_MISSING']]);
  });

  it('reports a damaged index as present but not usable', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    await log.append(1, payloadFor(1));
    await log.checkpoint(Buffer.from('s'));
    await log.close();
    flipByte(path.join(dir, 'index'), 30);
    const report = verifyLog(dir);
    assert.equal(report.index.present, true);
    assert.equal(report.index.usable, false);
    assert.match(report.index.reason ?? '', /checksum/);
  });

  it('reports an index written before compaction rewrote a segment as not usable, as open will find it', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir, { maxSegmentBytes: 4096 });
    await Promise.all(Array.from({ length: 70 }, (_, i) => log.append(1, payloadFor(i))));
    await log.checkpoint(Buffer.from('before'));
    const result = await log.compact((e) => e.seq % 10 === 0);
    assert.deepEqual(result.rewritten.map((r) => r.segmentId), [1, 30]);
    await log.close();
    const report = verifyLog(dir);
    assert.equal(report.index.usable, false);
    assert.match(report.index.reason ?? '', /segment 1 was rewritten/);
    const again = await openLog(t, dir);
    try {
      assert.equal(again.recovery.checkpointRejected, report.index.reason);
    } finally {
      await again.close();
    }
  });

  it('refuses a directory that is not a log with ERR_NOT_A_LOG', (t) => {
    assert.throws(() => verifyLog(logDir(t)), { code: 'ERR_NOT_A_LOG' });
  });
});
