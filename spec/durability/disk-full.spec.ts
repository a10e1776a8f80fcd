/**
 * A full disk (ENOSPC) under a Queue, through the Fs seam (INTERNAL_FS, spec/helpers/fault-fs.ts): a rejected add
 * leaves no trace in the table or the log, the queue goes on once space is back, and a queue opens and serves
 * reads on a disk with no room left.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Queue } from '../../lib/index.js';
import { INTERNAL_FS } from '../../lib/queue/options.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';

describe('Queue: the Fs seam', () => {
  it('takes an internal Fs under a symbol and makes its log calls through it', async (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const q = new Queue('q', { dir, durability: 'fsync', [INTERNAL_FS]: ffs } as never);
    await q.add('a', { x: 1 });
    await q.close();
    assert.ok(ffs.counts.write > 0 && ffs.counts.fsync > 0, JSON.stringify(ffs.counts));
  });
});
