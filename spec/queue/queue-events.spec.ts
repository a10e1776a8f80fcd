/**
 * QueueEvents (lib/queue/queue-events.ts) in the test's own process: beside a Queue and a Worker it reports what
 * the owner reports (with the differences transitions.ts documents), each event once with an id in log order;
 * lastEventId resumes exactly after an id; encrypted queues need their key; bad input is refused and nothing is
 * written, and reading writes nothing either.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Queue, QueueEvents, type QueueEventsOptions } from '../../lib/index.js';
import { FAST, SAFETY, setup, until, waitFor } from '../helpers/queue.js';

const NAMES = ['added', 'waiting', 'delayed', 'active', 'progress', 'completed', 'failed', 'retries-exhausted', 'stalled', 'removed', 'paused', 'resumed', 'drained'] as const;

/** An event as seen: its name, its job (if any), its payload and its id. */
interface Seen {
  event: string;
  jobId: string | undefined;
  payload: Record<string, unknown> | undefined;
  id: string;
}

/** Opens a QueueEvents on the test's directory, closed after the test, recording every event. */
function listen(t: { after(fn: () => Promise<void>): void }, dir: string, opts: Partial<QueueEventsOptions> = {}): { qe: QueueEvents; seen: Seen[] } {
  const qe = new QueueEvents('q', { dir, ...opts });
  const seen: Seen[] = [];
  for (const event of NAMES) {
    (qe as unknown as NodeJS.EventEmitter).on(event, (...args: unknown[]) => {
      const id = args[args.length - 1] as string;
      const payload = args.length > 1 ? (args[0] as Record<string, unknown>) : undefined;
      seen.push({ event, jobId: payload?.jobId as string | undefined, payload, id });
    });
  }
  qe.on('error', () => undefined);
  t.after(() => qe.close());
  return { qe, seen };
}

/** Ids compared as positions: seq, then the place among the record's events. */
function order(id: string): [number, number] {
  const [seq, n] = id.split('-').map(Number);
  return [seq!, n!];
}

function assertIncreasing(seen: Seen[]): void {
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [order(seen[i - 1]!.id), order(seen[i]!.id)];
    assert.ok(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `ids out of order: ${seen[i - 1]!.id} then ${seen[i]!.id}`);
  }
}

/** Runs a mixed workload: adds, a promoted delay, a removal, a failure retried, a final failure, progress, pause. */
async function mixedRun(s: ReturnType<typeof setup>): Promise<{ q: Queue; owner: Array<[string, Record<string, unknown> | undefined]> }> {
  const q = s.queue('q');
  const owner: Array<[string, Record<string, unknown> | undefined]> = [];
  for (const event of ['waiting', 'delayed', 'active', 'progress', 'completed', 'failed', 'stalled', 'removed', 'paused', 'resumed'] as const) {
    (q as unknown as NodeJS.EventEmitter).on(event, (p?: Record<string, unknown>) => owner.push([event, p]));
  }
  await q.waitUntilReady();
  s.worker('q', async (job) => {
    await job.updateProgress(50);
    if (job.name === 'flaky' && job.attemptsMade === 0) throw new Error('first try fails');
    if (job.name === 'bad') throw new Error('always fails');
    return `done ${job.id}`;
  });
  await q.add('plain', 1);
  await q.add('flaky', 2, { attempts: 2 });
  await q.add('bad', 3);
  const later = await q.add('later', 4, { delay: 3_600_000 });
  await q.promote(later.id);
  const gone = await q.add('gone', 5, { delay: 3_600_000 });
  await q.remove(gone.id);
  await until(async () => (await q.getJobCounts('completed', 'failed')).completed === 3 && (await q.getJobCounts('failed')).failed === 1, 'the jobs are done');
  await q.pause();
  await q.resume();
  return { q, owner };
}

describe('QueueEvents beside a Queue and a Worker', () => {
  it('reports the owner\'s events for a mixed run, each once, with ids in log order', SAFETY, async (t) => {
    const s = setup(t);
    const { qe, seen } = listen(t, s.dir);
    const { owner } = await mixedRun(s);
    await qe.waitUntilReady();
    await until(() => seen.some((e) => e.event === 'resumed'), 'QueueEvents has seen the resume');
    assertIncreasing(seen);
    assert.equal(new Set(seen.map((e) => e.id)).size, seen.length, 'every id once');

    // The owner's events, mapped by the documented differences (transitions.ts; report): a retried failure is
    // 'waiting' (prev failed) in QueueEvents, 'failed' with final: false from the owner; QueueEvents adds 'added'
    // and 'retries-exhausted'; drained follows different rules; delayed's delay is a time, not a duration.
    const mapped = owner.map(([e, p]) => (e === 'failed' && p!.final === false ? 'waiting' : e) + ' ' + String(p?.jobId ?? ''));
    const derived = seen.filter((e) => e.event !== 'added' && e.event !== 'retries-exhausted' && e.event !== 'drained').map((e) => `${e.event} ${e.jobId ?? ''}`);
    const perJob = (lines: string[]): Record<string, string[]> => {
      const out: Record<string, string[]> = {};
      for (const l of lines) (out[l.split(' ')[1]!] ??= []).push(l.split(' ')[0]!);
      return out;
    };
    assert.deepEqual(perJob(derived), perJob(mapped));

    const idOf = (name: string): string => seen.find((e) => e.event === 'added' && e.payload!.name === name)!.jobId!;
    const of = (name: string): string[] => seen.filter((e) => e.jobId === idOf(name)).map((e) => `${e.event}${e.payload?.prev ? `<${String(e.payload.prev)}` : ''}`);
    assert.deepEqual(of('flaky'), ['added', 'waiting', 'active<waiting', 'progress', 'waiting<failed', 'active<waiting', 'progress', 'completed<active']);
    assert.deepEqual(of('bad'), ['added', 'waiting', 'active<waiting', 'progress', 'failed<active', 'retries-exhausted']);
    const completed = seen.filter((e) => e.event === 'completed');
    assert.deepEqual(completed.map((e) => e.payload!.returnvalue), completed.map((e) => `done ${e.jobId}`));
    const delayed = seen.find((e) => e.event === 'delayed')!;
    assert.ok((delayed.payload!.delay as number) > Date.now() + 3_000_000, 'delay is the time the job runs at');
    assert.equal(seen.filter((e) => e.event === 'paused').length, 1);
    assert.ok(seen.some((e) => e.event === 'removed' && e.payload!.prev === 'delayed'));
  });

  it('from lastEventId gives exactly the events after it', SAFETY, async (t) => {
    const s = setup(t);
    const { q } = await mixedRun(s);
    await q.close();
    const all = listen(t, s.dir, { lastEventId: '0' });
    await all.qe.waitUntilReady();
    assert.ok(all.seen.length > 20);
    for (const k of [0, 3, Math.floor(all.seen.length / 2), all.seen.length - 1]) {
      const from = listen(t, s.dir, { lastEventId: all.seen[k]!.id });
      await from.qe.waitUntilReady();
      assert.deepEqual(from.seen, all.seen.slice(k + 1), `after ${all.seen[k]!.id}`);
    }
    // A bare seq: after every event of that record.
    const multi = all.seen.find((e) => e.id.endsWith('-1'))!;
    const seq = multi.id.split('-')[0]!;
    const bare = listen(t, s.dir, { lastEventId: seq });
    await bare.qe.waitUntilReady();
    assert.deepEqual(bare.seen, all.seen.filter((e) => order(e.id)[0] > Number(seq)));
  });

  it("by default ('$') reports only what is appended after it started", SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q');
    await q.add('before', 1);
    const { qe, seen } = listen(t, s.dir);
    await qe.waitUntilReady();
    await q.add('after', 2);
    await waitFor(qe, 'waiting');
    assert.deepEqual(seen.map((e) => `${e.event} ${e.jobId}`), ['added 2', 'waiting 2']);
  });

  it('reads, and writes nothing: the queue directory is byte for byte the same', SAFETY, async (t) => {
    const s = setup(t);
    const { q } = await mixedRun(s);
    await q.close();
    const before = tree(path.join(s.dir, 'q'));
    const { qe, seen } = listen(t, s.dir, { lastEventId: '0' });
    await qe.waitUntilReady();
    assert.ok(seen.length > 0);
    await qe.close();
    assert.deepEqual(tree(path.join(s.dir, 'q')), before);
  });
});

describe('QueueEvents on an encrypted queue', () => {
  it('reads the returnvalue with the key, and refuses to start without it or with a wrong one', SAFETY, async (t) => {
    const s = setup(t);
    const key = randomBytes(32);
    const q = s.queue('q', { encryption: { key } });
    s.worker('q', async (job) => ({ secret: job.data }), { encryption: { key } });
    const { qe, seen } = listen(t, s.dir, { encryption: { key } });
    await qe.waitUntilReady();
    await q.add('x', 'plaintext');
    await waitFor(qe, 'completed');
    assert.deepEqual(seen.find((e) => e.event === 'completed')!.payload!.returnvalue, { secret: 'plaintext' });

    const noKey = new QueueEvents('q', { dir: s.dir, autorun: false });
    await assert.rejects(noKey.run(), { code: 'ERR_KEY_MISSING' });
    await assert.rejects(noKey.waitUntilReady(), { code: 'ERR_KEY_MISSING' });
    await noKey.close();
    const wrong = new QueueEvents('q', { dir: s.dir, autorun: false, encryption: { key: randomBytes(32) } });
    await assert.rejects(wrong.run(), { code: 'ERR_DECRYPT' });
    await wrong.close();
  });
});

describe('QueueEvents bad input', () => {
  const cases: Array<[string, () => unknown]> = [];
  it('refuses bad names, ids and options with ERR_INVALID_ARG and writes nothing', SAFETY, async (t) => {
    const s = setup(t);
    const q = new Queue('q', { dir: s.dir, ...FAST });
    await q.add('x', 1);
    await q.close();
    const before = tree(s.dir);
    cases.push(
      ['a bad name', () => new QueueEvents('../q', { dir: s.dir })],
      ['an empty name', () => new QueueEvents('', { dir: s.dir })],
      ['no options', () => new QueueEvents('q', undefined as never)],
      ['no dir', () => new QueueEvents('q', {} as never)],
      ['an unknown option', () => new QueueEvents('q', { dir: s.dir, connection: {} } as never)],
      ['a lastEventId that is not an id', () => new QueueEvents('q', { dir: s.dir, lastEventId: 'abc' })],
      ['a negative lastEventId', () => new QueueEvents('q', { dir: s.dir, lastEventId: '-1' })],
      ['a lastEventId with three parts', () => new QueueEvents('q', { dir: s.dir, lastEventId: '1-2-3' })],
      ['a lastEventId number', () => new QueueEvents('q', { dir: s.dir, lastEventId: 5 as never })],
      ['autorun not a boolean', () => new QueueEvents('q', { dir: s.dir, autorun: 'yes' as never })],
      ['a key of the wrong size', () => new QueueEvents('q', { dir: s.dir, encryption: { key: Buffer.alloc(3) } })],
    );
    for (const [what, make] of cases) assert.throws(make, { code: 'ERR_INVALID_ARG' }, what);
    assert.deepEqual(tree(s.dir), before);
  });

  it('run() twice is refused', SAFETY, async (t) => {
    const s = setup(t);
    const qe = new QueueEvents('q', { dir: s.dir, autorun: false });
    t.after(() => qe.close());
    void qe.run();
    await assert.rejects(qe.run(), { code: 'ERR_INVALID_ARG' });
  });
});

/** Every file under `dir` with its size and bytes' digest, and every directory: what a write would change. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out[path.relative(dir, p) + '/'] = 'dir';
        walk(p);
      } else {
        const st = fs.statSync(p);
        out[path.relative(dir, p)] = `${st.size} ${st.mtimeMs} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
      }
    }
  };
  walk(dir);
  return out;
}
