/**
 * maxDataBytes counts what the README says: the job data's JSON in UTF-8 bytes, not the record around it (job
 * name, options, id, timestamp).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SAFETY, setup } from '../helpers/queue.js';

/** Data whose JSON is exactly `bytes` bytes: a string of 'x' (2 bytes of quotes). */
const dataOf = (bytes: number): string => 'x'.repeat(bytes - 2);

describe('Queue: maxDataBytes', () => {
  for (const how of ['add', 'addBulk', 'add with a jobId'] as const) {
    it(`accepts data whose JSON is exactly maxDataBytes, whatever the name and options (${how})`, SAFETY, async (t) => {
      const q = setup(t).queue('q', { maxDataBytes: 1000 });
      const name = 'n'.repeat(500);
      const opts = { attempts: 3, priority: 7, ...(how === 'add with a jobId' ? { jobId: 'j'.repeat(200) } : {}) };
      const job = how === 'addBulk' ? (await q.addBulk([{ name, data: dataOf(1000), opts }]))[0]! : await q.add(name, dataOf(1000), opts);
      assert.equal(JSON.stringify(job.data).length, 1000);
      assert.equal((await q.getJob(job.id))?.data, dataOf(1000));
    });

    it(`refuses data one byte over, naming the data's size (${how})`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue('q', { maxDataBytes: 1000 });
      const opts = how === 'add with a jobId' ? { jobId: 'j' } : undefined;
      const p = how === 'addBulk' ? q.addBulk([{ name: 'n', data: dataOf(1001), opts }]) : q.add('n', dataOf(1001), opts);
      await assert.rejects(p, (err: Error & { code?: string }) => err.code === 'ERR_TOO_LARGE' && /\b1001 bytes\b/.test(err.message));
      assert.equal((await q.getJobCounts()).waiting, 0);
    });
  }

  it('counts UTF-8 bytes, not characters', SAFETY, async (t) => {
    const q = setup(t).queue('q', { maxDataBytes: 1500 });
    const euros = '€'.repeat(499); // JSON: 499 × 3 bytes + 2 quotes = 1499 bytes, 501 characters
    assert.equal((await q.add('n', euros)).data, euros);
    await assert.rejects(q.add('n', euros + '€'), { code: 'ERR_TOO_LARGE' });
  });
});
