/**
 * The owner's commands (lib/queue/owner/commands.ts), called as a socket request would call them: plain arguments
 * in, replies that survive a JSON round trip unchanged (job records, not Job instances), and the owner's own
 * refusals with the codes a caller in the owner's process gets from the Queue.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpoolError } from '../../lib/index.js';
import { NO_JOB_OPTS, resolveQueueOptions } from '../../lib/queue/options.js';
import type { AddEvent } from '../../lib/store/events.js';
import { COMMANDS } from '../../lib/queue/owner/commands.js';
import { acquireOwner, releaseOwner } from '../../lib/queue/owner/registry.js';
import { FAST, SAFETY, deferred, setup } from '../helpers/queue.js';

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
/** The object without its undefined fields (which JSON leaves out). */
const defined = (o: object): unknown => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

describe('owner commands', () => {
  it('reply plain, serializable records and counts', SAFETY, async (t) => {
    const s = setup(t);
    const queue = s.queue('q');
    await queue.add('a', { n: 1 }, { priority: 2 });
    await queue.add('b', { n: 2 }, { jobId: 'custom', delay: 60_000 });
    const { key, owner: ownerP } = acquireOwner('q', resolveQueueOptions({ dir: s.dir, ...FAST }));
    const owner = await ownerP;
    t.after(() => releaseOwner(key));

    const rec = await COMMANDS.getJob(owner, '1');
    assert.ok(rec);
    assert.equal(Object.getPrototypeOf(rec), Object.prototype, 'a plain object, not a Job or a JobMeta');
    assert.deepEqual(plain(rec), defined(rec), 'a JSON round trip keeps every field');
    assert.equal(rec.name, 'a');
    assert.deepEqual(rec.data, { n: 1 });
    const recs = await COMMANDS.getJobs(owner, ['waiting', 'delayed'], 0, -1, true);
    assert.deepEqual(recs.map((r) => r.id), ['1', 'custom']);
    for (const r of recs) assert.deepEqual(plain(r), defined(r));
    assert.deepEqual(COMMANDS.getJobCounts(owner, []), { waiting: 1, paused: 0, delayed: 1, active: 0, completed: 0, failed: 0 });
    assert.equal(COMMANDS.count(owner), 2);
    assert.equal(COMMANDS['job.getState'](owner, 'custom'), 'delayed');
    assert.equal(COMMANDS['job.getState'](owner, 'nope'), 'unknown');
    // The same reply the facade builds its Job from.
    const job = await queue.getJob('1');
    assert.deepEqual(job!.data, rec.data);
    assert.equal(job!.timestamp, rec.timestamp);
  });

  it('refuse what only the owner can check, with the codes the Queue gives, writing nothing', SAFETY, async (t) => {
    const s = setup(t);
    const queue = s.queue('q');
    await queue.add('done', {});
    const started = deferred();
    const finish = deferred<string>();
    s.worker('q', async () => {
      started.resolve();
      return finish.promise;
    }, FAST);
    await started.promise;
    const { key, owner: ownerP } = acquireOwner('q', resolveQueueOptions({ dir: s.dir, ...FAST }));
    const owner = await ownerP;
    t.after(() => releaseOwner(key));
    const records = s.records('q');

    const code = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
        return 'resolved';
      } catch (err) {
        assert.ok(err instanceof SpoolError);
        return err.code;
      }
    };
    assert.equal(await code(COMMANDS.remove(owner, '1')), 'ERR_JOB_ACTIVE');
    assert.equal(await code(queue.remove('1')), 'ERR_JOB_ACTIVE');
    assert.equal(await code(COMMANDS['job.remove'](owner, '1')), 'ERR_JOB_ACTIVE');
    assert.equal(await code(COMMANDS.obliterate(owner, false)), 'ERR_JOB_ACTIVE');
    assert.equal(await code(COMMANDS.promote(owner, '1')), 'ERR_INVALID_ARG');
    assert.equal(await code(COMMANDS['job.retry'](owner, '1')), 'ERR_INVALID_ARG');
    assert.equal(await code(COMMANDS.promote(owner, 'nope')), 'ERR_INVALID_ARG');
    assert.equal(await COMMANDS.remove(owner, 'nope'), false);
    assert.equal(s.records('q'), records, 'a refused command writes nothing');
    finish.resolve('ok');
  });

  it('add a dead letter once, however often its move is repeated', SAFETY, async (t) => {
    const s = setup(t);
    const queue = s.queue('dlq');
    await queue.waitUntilReady();
    const { key, owner: ownerP } = acquireOwner('dlq', resolveQueueOptions({ dir: s.dir, ...FAST }));
    const owner = await ownerP;
    t.after(() => releaseOwner(key));
    const ev: AddEvent = { id: 'src:7', n: 'mail', o: NO_JOB_OPTS, ts: 1, dl: { q: 'src', id: '7', a: 3, e: { name: 'Error', message: 'boom' } }, d: { to: 'x' } };
    const before = s.records('dlq');
    await COMMANDS.addDeadLetter(owner, ev);
    await COMMANDS.addDeadLetter(owner, ev);
    assert.equal(s.records('dlq'), before + 1, 'one ADD');
    const job = await queue.getJob('src:7');
    assert.deepEqual(job?.data, { to: 'x' });
    assert.deepEqual(job?.origin, { queue: 'src', jobId: '7' });
    assert.equal(await queue.count(), 1);
  });
});
