import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Log } from '../../lib/log/log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { payloadFor, tempDir } from '../helpers/tmp.js';

describe('Log (smoke)', () => {
  for (const durability of ['fsync', 'batch', 'none'] as const) {
    it(`appends, reopens and replays every record (${durability})`, async (t) => {
      const dir = tempDir(t);
      const log = await Log.open(dir, { durability, maxSegmentBytes: 8192 });
      const ptrs = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(1 + (i % 3), payloadFor(i))));
      assert.deepEqual(ptrs.map((p) => p.seq), Array.from({ length: 500 }, (_, i) => i + 1));
      assert.deepEqual(log.read(ptrs[123]!).payload(), payloadFor(123));
      await log.close();
      const again = await Log.open(dir, { durability });
      const seen: number[] = [];
      again.replay((e) => {
        assert.deepEqual(e.payload(), payloadFor(e.seq - 1));
        seen.push(e.seq);
      });
      assert.equal(seen.length, 500);
      assert.equal(again.nextSeq, 501);
      assert.ok(again.epoch > 1);
      const report = verifyLog(dir);
      assert.equal(report.ok, true);
      assert.equal(report.records, 500);
      await again.close();
    });
  }
});
