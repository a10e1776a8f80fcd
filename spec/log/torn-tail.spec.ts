import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { isZero } from '../../lib/format/record.js';
import { SEGMENT_HEADER_BYTES } from '../../lib/format/segment-header.js';
import { segmentFileName } from '../../lib/format/names.js';
import { Log } from '../../lib/log/log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { LOG_CODECS, logDir, openLog, replayAll } from '../helpers/log-fixtures.js';
import { payloadFor, segmentFiles } from '../helpers/tmp.js';

const RECORDS = 6;
const PAYLOAD_BYTES = 40;

describe('Log recovery of a torn tail', () => {
  for (const codec of LOG_CODECS) {
    it(`reopens cleanly at every cut inside the last record (${codec.name})`, async (t) => {
      const root = logDir(t);
      const pristine = path.join(root, 'pristine');
      const log = await Log.open(pristine, { ...codec.opts, durability: 'fsync' });
      const ptrs = [];
      try {
        for (let i = 0; i < RECORDS; i++) ptrs.push(await log.append(1 + (i % 3), payloadFor(i, PAYLOAD_BYTES)));
      } finally {
        await log.close();
      }
      const last = ptrs[RECORDS - 1]!;
      assert.deepEqual(ptrs.map((p) => p.segmentId), Array(RECORDS).fill(1));
      const [segment] = segmentFiles(pristine);
      assert.equal(path.basename(segment!), segmentFileName(1));
      const original = fs.readFileSync(segment!);
      assert.equal(original.length, last.offset + last.size);

      let cycles = 0;
      for (let cut = last.offset; cut < last.offset + last.size; cut++) {
        const dir = path.join(root, `cut-${cut}`);
        fs.cpSync(pristine, dir, { recursive: true });
        const file = path.join(dir, 'log', segmentFileName(1));
        fs.truncateSync(file, cut);

        const reopened = await Log.open(dir, codec.opts);
        try {
          const dropped = cut - last.offset;
          const kind = isZero(original, last.offset, cut) ? 'zero' : 'incomplete';
          assert.deepEqual(
            reopened.recovery.truncated,
            dropped === 0 ? [] : [{ segmentId: 1, offset: last.offset, bytes: dropped, kind }],
            `cut at ${cut}`,
          );
          assert.deepEqual(reopened.recovery.damage, [], `cut at ${cut}`);
          assert.equal(fs.statSync(file).size, last.offset, `segment file cut back at ${cut}`);
          assert.deepEqual(fs.readFileSync(file), original.subarray(0, last.offset));
          assert.equal(reopened.nextSeq, RECORDS);
          const { entries, state } = replayAll(reopened);
          assert.equal(state, undefined);
          assert.deepEqual(
            entries,
            ptrs.slice(0, -1).map((p, i) => ({ seq: p.seq, type: 1 + (i % 3), payload: payloadFor(i, PAYLOAD_BYTES) })),
            `cut at ${cut}`,
          );
          const ptr = await reopened.append(9, Buffer.from('after the cut'));
          assert.equal(ptr.seq, RECORDS);
          assert.equal(ptr.segmentId, RECORDS);
          assert.equal(ptr.offset, SEGMENT_HEADER_BYTES);
          assert.deepEqual(reopened.read(ptr).payload(), Buffer.from('after the cut'));
        } finally {
          await reopened.close();
        }
        const report = verifyLog(dir, { encryption: codec.opts.encryption });
        assert.equal(report.ok, true, `verify after cut at ${cut}`);
        assert.equal(report.tornTail, undefined);
        assert.equal(report.records, RECORDS);
        fs.rmSync(dir, { recursive: true, force: true });
        cycles++;
      }
      assert.equal(cycles, last.size);
      assert.ok(cycles > 40, `${cycles} cuts`);
    });
  }

  it('treats a whole record cut away as a clean end, not a truncation', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const a = await log.append(1, payloadFor(1, PAYLOAD_BYTES));
    const b = await log.append(1, payloadFor(2, PAYLOAD_BYTES));
    await log.close();
    fs.truncateSync(segmentFiles(dir)[0]!, b.offset);
    const again = await openLog(t, dir);
    try {
      assert.deepEqual(again.recovery.truncated, []);
      assert.equal(again.nextSeq, 2);
      assert.deepEqual(replayAll(again).entries, [{ seq: a.seq, type: 1, payload: payloadFor(1, PAYLOAD_BYTES) }]);
    } finally {
      await again.close();
    }
  });

  it('cuts a torn tail after a run of zeros the file system left behind', async (t) => {
    const dir = logDir(t);
    const log = await openLog(t, dir);
    const a = await log.append(1, payloadFor(1, PAYLOAD_BYTES));
    await log.close();
    const file = segmentFiles(dir)[0]!;
    fs.appendFileSync(file, Buffer.alloc(4096));
    const again = await openLog(t, dir);
    try {
      assert.deepEqual(again.recovery.truncated, [{ segmentId: 1, offset: a.offset + a.size, bytes: 4096, kind: 'zero' }]);
      assert.equal(fs.statSync(file).size, a.offset + a.size);
      assert.equal(again.nextSeq, 2);
    } finally {
      await again.close();
    }
  });
});
