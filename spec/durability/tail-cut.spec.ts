/**
 * A tailer (tailer.ts) beside a writer whose batch is cut back (writer.ts: Failed writes, Seqs are never handed out
 * twice). The tailer reads the page cache between the torn write and the cut, as a reader in another process can,
 * so it sees some of the doomed records; afterwards it must deliver every record that stays in the log exactly
 * once, in order, and report no damage: in the same run, and after a reopen that reuses the cut seqs (a crash
 * before the skip reached the disk) or makes the cut, emptied head again under the same name. And, by byte surgery,
 * a segment that shrank under the tailer is read again from the cut point.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { RecordCodec } from '../../lib/codec/record-codec.js';
import { SEGMENT_HEADER_BYTES } from '../../lib/format/segment-header.js';
import type { Fs } from '../../lib/log/fs.js';
import { Log } from '../../lib/log/log.js';
import { tailLog } from '../../lib/log/tailer.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { logDir } from '../helpers/log-fixtures.js';
import { appendBytes, payloadFor, segmentFiles } from '../helpers/tmp.js';

/** `ffs` with its methods bound; `beforeTruncate` runs once before the next ftruncateSync (the cut's). */
function cutHook(ffs: FaultFs): { fs: Fs; beforeTruncate: (() => void) | undefined } {
  const ctl: { fs: Fs; beforeTruncate: (() => void) | undefined } = {
    beforeTruncate: undefined,
    fs: new Proxy(ffs, {
      get: (target, key) => {
        if (key === 'ftruncateSync') {
          return (fd: number, len: number) => {
            const hook = ctl.beforeTruncate;
            ctl.beforeTruncate = undefined;
            hook?.();
            target.ftruncateSync(fd, len);
          };
        }
        const v = (target as unknown as Record<PropertyKey, unknown>)[key];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as unknown as Fs,
  };
  return ctl;
}

function follow(t: { after: (fn: () => void) => void }, dir: string) {
  const seen: number[] = [];
  const seqs: number[] = [];
  const damage: unknown[] = [];
  const tailer = tailLog(dir, {
    codec: new RecordCodec({ compressThreshold: false }),
    intervalMs: 1e9, // polled by hand
    onEntry: (e) => {
      seen.push(e.payload().readUInt32LE(0));
      seqs.push(e.seq);
    },
    onDamage: (d) => damage.push(d),
    onError: (err) => damage.push(err),
  });
  t.after(() => tailer.close());
  return { tailer, seen, seqs, damage };
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/**
 * Opens a log on `dir`, appends `before` (awaited), then one batch of ten doomed records (100…109) whose write
 * stops half way with ENOSPC; the tailer polls right before the cut. Returns the log and the doomed ones seen.
 */
async function cutWhileTailing(dir: string, durability: 'fsync' | 'batch' | 'none', before: number[], poll: () => void) {
  const ffs = new FaultFs();
  const hook = cutHook(ffs);
  const log = await Log.open(dir, { fs: hook.fs, durability });
  for (const n of before) await log.append(1, payloadFor(n));
  poll();
  // In fsync mode the first batch of a head first writes its preallocated zeros: the data's write is the second.
  ffs.failNth('write', durability === 'fsync' && before.length === 0 ? 2 : 1, { code: 'ENOSPC', torn: true });
  hook.beforeTruncate = poll;
  const doomed = await Promise.allSettled(range(100, 10).map((n) => log.append(1, payloadFor(n))));
  assert.ok(doomed.every((s) => s.status === 'rejected'), 'a doomed append was acknowledged');
  assert.equal(hook.beforeTruncate, undefined, 'the cut did not truncate');
  assert.equal(log.failure, undefined);
  return log;
}

for (const durability of ['fsync', 'batch', 'none'] as const) {
  describe(`tailLog beside a cut back (${durability})`, () => {
    it('delivers every record that stays once, in order, and reports no damage', async (t) => {
      const dir = logDir(t);
      const { tailer, seen, seqs, damage } = follow(t, dir);
      const log = await cutWhileTailing(dir, durability, range(0, 5), () => tailer.poll());
      const doomedSeen = seen.filter((n) => n >= 100);
      assert.ok(doomedSeen.length > 0, 'the tailer never saw a doomed record: the test proves nothing');
      assert.deepEqual(doomedSeen, range(100, doomedSeen.length), 'doomed records are seen whole, in order');
      for (const n of range(200, 10)) await log.append(1, payloadFor(n));
      tailer.poll();
      for (const n of range(300, 5)) await log.append(1, payloadFor(n));
      tailer.poll();
      tailer.poll();
      await log.close();
      assert.deepEqual(damage, []);
      assert.deepEqual(seen.filter((n) => n < 100 || n >= 200), [...range(0, 5), ...range(200, 10), ...range(300, 5)]);
      assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `seqs delivered out of order: ${seqs}`);
    });

    it('delivers the records of a new owner that reused the cut seqs after a crash', async (t) => {
      const dir = logDir(t);
      const { tailer, seen, damage } = follow(t, dir);
      const log = await cutWhileTailing(dir, durability, range(0, 5), () => tailer.poll());
      assert.ok(seen.some((n) => n >= 100), 'the tailer never saw a doomed record: the test proves nothing');
      await log.close(); // before any append: the fresh segment that makes the skip durable was never created
      const again = await Log.open(dir, { durability });
      assert.equal(again.nextSeq, 6, 'the new owner reuses the cut seqs (writer.ts: the one gap)');
      for (const n of range(200, 10)) await again.append(1, payloadFor(n));
      tailer.poll();
      await again.close();
      assert.deepEqual(damage, []);
      assert.deepEqual(seen.filter((n) => n < 100 || n >= 200), [...range(0, 5), ...range(200, 10)]);
    });

    it('reads a cut, emptied head made again under the same name by a new owner from its first record', async (t) => {
      const dir = logDir(t);
      const { tailer, seen, damage } = follow(t, dir);
      const log = await cutWhileTailing(dir, durability, [], () => tailer.poll());
      assert.ok(seen.length > 0, 'the tailer never saw a doomed record: the test proves nothing');
      await log.close();
      const again = await Log.open(dir, { durability });
      assert.equal(again.nextSeq, 1, 'the empty head is made again at seq 1');
      for (const n of range(200, 30)) await again.append(1, payloadFor(n));
      tailer.poll();
      await again.close();
      assert.deepEqual(damage, []);
      assert.deepEqual(seen.filter((n) => n >= 200), range(200, 30));
    });
  });
}

describe('tailLog: a segment cut back under it', () => {
  it('re-reads from the cut point, so records written there later are delivered', async (t) => {
    const dir = logDir(t);
    const log = await Log.open(dir, { durability: 'none' });
    for (const n of range(0, 10)) await log.append(1, payloadFor(n));
    const epoch = log.epoch;
    await log.close();
    const { tailer, seen, damage } = follow(t, dir);
    tailer.poll();
    assert.deepEqual(seen, range(0, 10));
    // Seqs 6…10 are cut: the file ends after record 5 (records of payloadFor are 36 + 100 bytes).
    const [file] = segmentFiles(dir);
    const cut = SEGMENT_HEADER_BYTES + 5 * 136;
    fs.truncateSync(file!, cut);
    tailer.poll();
    // Records written at the cut point under new seqs, fewer bytes than were cut.
    const codec = new RecordCodec({ compressThreshold: false });
    const buf = Buffer.alloc(3 * codec.maxRecordBytes(100));
    let used = 0;
    for (const [i, n] of range(200, 3).entries()) used += codec.encodeFields(buf, used, 1, 11 + i, 1, epoch, payloadFor(n));
    appendBytes(file!, buf.subarray(0, used));
    tailer.poll();
    assert.deepEqual(damage, []);
    assert.deepEqual(seen, [...range(0, 10), ...range(200, 3)]);
  });
});
