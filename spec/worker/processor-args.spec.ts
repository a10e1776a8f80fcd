/**
 * What a processor is called with, inline and in threads: (job, token, signal) as BullMQ calls it, the shared
 * NEVER_ABORTED for one that declares fewer than three parameters, and a thread job's log() count and queueName.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Job } from '../../lib/index.js';
import { NEVER_ABORTED } from '../../lib/worker/never-signal.js';
import { SAFETY, aborted, setup, waitFor } from '../helpers/queue.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}.js`, import.meta.url);
/** Thread tests start threads: give them room on a loaded machine. */
const SLOW = { timeout: 60_000 };

describe('Worker processor arguments', () => {
  it('calls an inline processor with (job, token, signal): the token names the lease, a timeout aborts the signal', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let seen: { token: unknown; leases: string[] } | undefined;
    let reason: unknown;
    const w = s.worker('q', async (_job, token, signal) => {
      seen = { token, leases: fs.readdirSync(path.join(s.dir, 'q', 'tickets', 'taken')) };
      reason = await aborted(signal);
      throw reason;
    });
    await q.add('slow', null, { timeout: 50 });
    const [, err] = await waitFor(w, 'failed');
    assert.equal(err.code, 'ERR_JOB_TIMEOUT');
    assert.equal((reason as { code?: string }).code, 'ERR_JOB_TIMEOUT');
    assert.equal(typeof seen!.token, 'string');
    assert.ok(seen!.leases.some((name) => name.includes(`-${seen!.token as string}.t~`)), `token ${String(seen!.token)} names none of ${seen!.leases}`);
  });

  it('hands an inline processor that declares two parameters the token and the shared NEVER_ABORTED', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    let third: unknown;
    let token: unknown;
    // A `function`, so it can see the argument it does not declare.
    const w = s.worker('q', function (_job: Job, tok: string) {
      token = tok;
      third = arguments[2];
      return 'ok';
    });
    await q.add('two', null);
    await waitFor(w, 'completed');
    assert.equal(typeof token, 'string');
    assert.equal(third, NEVER_ABORTED);
  });

  it('calls a thread processor with (job, token, signal): the token of its lease, a timeout aborts the signal', SLOW, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', fixture('lease-args'), { threads: 1, concurrency: 2 });
    let leases: string[] = [];
    w.on('active', () => (leases = fs.readdirSync(path.join(s.dir, 'q', 'tickets', 'taken'))));
    await q.add('args', null);
    const [, result] = await waitFor(w, 'completed');
    assert.equal(result.signal, true);
    assert.equal(typeof result.token, 'string');
    assert.ok(leases.some((name) => name.includes(`-${result.token as string}.t~`)), `token ${String(result.token)} names none of ${leases}`);
    await q.add('timeout', null, { timeout: 50 });
    const [, err] = await waitFor(w, 'failed');
    assert.equal(err.code, 'ERR_JOB_TIMEOUT');
    assert.match(String((err.cause as Error | undefined)?.message), /^aborted ERR_JOB_TIMEOUT with token \S+$/);
  });

  it('hands a thread processor that declares two parameters the token and the shared NEVER_ABORTED', SLOW, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', fixture('two-params'), { threads: 1 });
    await q.add('two', null);
    const [, result] = await waitFor(w, 'completed');
    assert.equal(typeof result.token, 'string');
    assert.ok(result.token.length > 0);
    assert.equal(result.never, true);
  });
});

describe('Worker thread jobs', () => {
  it("resolves job.log() in a thread with the job's line count, counting on from an earlier attempt, and sets queueName", SLOW, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', fixture('lease-args'), { threads: 1 });
    const [failed] = await Promise.all([waitFor(w, 'failed'), q.add('log-count', null, { attempts: 2 })]);
    assert.match(failed[1].message, /first attempt logged \[1,2\]/);
    const [done, result] = await waitFor(w, 'completed');
    assert.deepEqual(result, { counts: [3, 4], queueName: 'q' });
    assert.deepEqual(await (await q.getJob(done.id))!.getLogs(), ['one', 'two', 'one', 'two']);
  });

  it('resolves job.log() inline with the same counts, for comparison', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const w = s.worker('q', async (job) => {
      const counts = [await job.log('one'), await job.log('two')];
      if (job.attemptsMade === 0) throw new Error(`first attempt logged ${JSON.stringify(counts)}`);
      return { counts, queueName: job.queueName };
    });
    await q.add('log-count', null, { attempts: 2 });
    const [, result] = await waitFor(w, 'completed');
    assert.deepEqual(result, { counts: [3, 4], queueName: 'q' });
  });
});
