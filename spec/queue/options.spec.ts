/**
 * Bad input at the public boundary (DESIGN §6): each case is refused with a SpoolError of a stable code, and
 * nothing is written: no directory for a queue that was never opened, no record for a job that was refused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Queue, SpoolError, Worker } from '../../lib/index.js';
import { FAST, SAFETY, setup } from '../helpers/queue.js';

/** Asserts `fn` throws a SpoolError with `code`. */
function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SpoolError, `not a SpoolError: ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

const UNSAFE_NAMES: unknown[] = ['../x', '', 'a/b', 'a\\b', '.', '..', 'x'.repeat(200), '-x', 'sp ace', 'nul\0', 5, undefined];

describe('queue names', () => {
  for (const name of UNSAFE_NAMES) {
    it(`refuses queue name ${JSON.stringify(name)?.slice(0, 24)} for a Queue and a Worker, creating nothing`, SAFETY, async (t) => {
      const s = setup(t);
      throwsCode(() => new Queue(name as string, { dir: s.dir }), 'ERR_INVALID_ARG');
      throwsCode(() => new Worker(name as string, async () => 1, { dir: s.dir }), 'ERR_INVALID_ARG');
      assert.deepEqual(fs.readdirSync(s.dir), []);
    });
  }

  it('accepts a name of 128 letters, digits, dots, dashes and underscores', SAFETY, async (t) => {
    const s = setup(t);
    const name = `a.b-c_9${'z'.repeat(121)}`;
    assert.equal(name.length, 128);
    const q = s.queue(name);
    await q.add('x', null);
    assert.deepEqual(fs.readdirSync(s.dir), [name]);
  });
});

describe('queue options', () => {
  const cases: Array<[string, unknown]> = [
    ['no options', undefined],
    ['an unknown key', { durabilty: 'none' }],
    ['an empty dir', { dir: '' }],
    ['maxDataBytes 0', { maxDataBytes: 0 }],
    ['leaseMs 10', { leaseMs: 10 }],
    ['maxStalledCount -1', { maxStalledCount: -1 }],
    ['checkpointEvery 0', { checkpointEvery: 0 }],
    ['durability "always"', { durability: 'always' }],
    ['maxSegmentBytes 10', { maxSegmentBytes: 10 }],
    ['batchIntervalMs -1', { batchIntervalMs: -1 }],
    ['compression "yes"', { compression: 'yes' }],
  ];
  for (const [what, opts] of cases) {
    it(`refuses ${what}, creating nothing`, SAFETY, async (t) => {
      const s = setup(t);
      const full = opts === undefined ? undefined : { dir: s.dir, ...(opts as object) };
      throwsCode(() => new Queue('q', full as never), 'ERR_INVALID_ARG');
      assert.deepEqual(fs.readdirSync(s.dir), []);
    });
  }

  it('refuses a key that is not the one the queue was written with, with ERR_DECRYPT', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { encryption: { key: randomBytes(32) } });
    await q.add('secret', { pin: 1234 });
    await q.close();
    const before = fs.readdirSync(path.join(s.dir, 'q', 'log')).map((f) => fs.statSync(path.join(s.dir, 'q', 'log', f)).size);
    const wrong = s.queue('q', { encryption: { key: randomBytes(32) } });
    await assert.rejects(wrong.waitUntilReady(), { code: 'ERR_DECRYPT' });
    await assert.rejects(wrong.add('x', null), { code: 'ERR_DECRYPT' });
    const after = fs.readdirSync(path.join(s.dir, 'q', 'log')).map((f) => fs.statSync(path.join(s.dir, 'q', 'log', f)).size);
    assert.deepEqual(after, before);
  });
});

describe('job data and names', () => {
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  const cases: Array<[string, string, unknown, string]> = [
    ['a BigInt', 'n', 10n, 'ERR_INVALID_ARG'],
    ['a nested BigInt', 'n', { deep: [1, { n: 2n }] }, 'ERR_INVALID_ARG'],
    ['a circular object', 'n', circular, 'ERR_INVALID_ARG'],
    ['a function', 'n', () => 1, 'ERR_INVALID_ARG'],
    ['a symbol', 'n', Symbol('s'), 'ERR_INVALID_ARG'],
    ['data over maxDataBytes', 'n', { text: 'x'.repeat(2000) }, 'ERR_TOO_LARGE'],
    ['a name over 1024 characters', 'n'.repeat(1025), null, 'ERR_INVALID_ARG'],
    ['a name that is not a string', 7 as unknown as string, null, 'ERR_INVALID_ARG'],
  ];
  for (const [what, name, data, code] of cases) {
    it(`refuses ${what} with ${code}, writing nothing`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue('q', { maxDataBytes: 1024 });
      await q.add('first', null);
      await assert.rejects(q.add(name, data), { code });
      assert.equal(s.records(), 1);
      assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 1 });
    });
  }
});

describe('job options', () => {
  const cases: Array<[string, unknown]> = [
    ['options that are not an object', 'fast'],
    ['options null', null],
    ['options as an array', []],
    ['an unknown key', { attempt: 3 }],
    ['a negative delay', { delay: -1 }],
    ['a fractional delay', { delay: 1.5 }],
    ['attempts 0', { attempts: 0 }],
    ['attempts "3"', { attempts: '3' }],
    ['a negative priority', { priority: -1 }],
    ['a priority over 2097152', { priority: 2_097_153 }],
    ['a priority that is NaN', { priority: Number.NaN }],
    ['a backoff string', { backoff: 'fast' }],
    ['a backoff with no type', { backoff: { delay: 10 } }],
    ['a backoff with a negative delay', { backoff: { type: 'fixed', delay: -1 } }],
    ['a backoff jitter over 1', { backoff: { type: 'fixed', delay: 10, jitter: 2 } }],
    ['a backoff with an unknown key', { backoff: { type: 'exponential', delay: 10, factor: 3 } }],
    ['a negative backoff number', { backoff: -5 }],
    ['timeout 0', { timeout: 0 }],
    ['removeOnComplete "yes"', { removeOnComplete: 'yes' }],
    ['removeOnComplete -1', { removeOnComplete: -1 }],
    ['removeOnComplete { age: -1 }', { removeOnComplete: { age: -1 } }],
    ['removeOnComplete { keep: 1 }', { removeOnComplete: { keep: 1 } }],
    ['removeOnFail 1.5', { removeOnFail: 1.5 }],
    ['an unsafe deadLetter name', { deadLetter: '../elsewhere' }],
    ['an integer jobId', { jobId: '12' }],
  ];
  for (const [what, opts] of cases) {
    it(`refuses ${what} with ERR_INVALID_ARG, writing nothing`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue();
      await q.add('first', null);
      await assert.rejects(q.add('x', null, opts as never), { code: 'ERR_INVALID_ARG' });
      assert.equal(s.records(), 1);
    });
  }

  it('accepts every option at its limits', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const job = await q.add('x', null, {
      jobId: 'j'.repeat(256), priority: 2_097_152, delay: 1, attempts: 1_000_000,
      backoff: { type: 'exponential', delay: 0, jitter: 1 }, timeout: 1, removeOnComplete: { age: 0, count: 0 },
      removeOnFail: 0, deadLetter: 'dead',
    });
    assert.equal(job.id, 'j'.repeat(256));
    assert.equal(job.opts.priority, 2_097_152);
  });
});

describe('worker options', () => {
  const fn = async (): Promise<number> => 1;
  const cases: Array<[string, unknown, unknown]> = [
    ['concurrency 0', fn, { concurrency: 0 }],
    ['concurrency 1.5', fn, { concurrency: 1.5 }],
    ['threads with a function processor', fn, { threads: 2 }],
    ['a processor that is a number', 42, {}],
    ['a handler map with a value that is not a function', { send: 'nope' }, {}],
    ['an unknown key', fn, { concurency: 2 }],
    ['a negative closeTimeoutMs', fn, { closeTimeoutMs: -1 }],
    ['no options', fn, undefined],
  ];
  for (const [what, processor, opts] of cases) {
    it(`refuses ${what}, creating nothing`, SAFETY, async (t) => {
      const s = setup(t);
      const full = opts === undefined ? undefined : { dir: s.dir, ...FAST, ...(opts as object) };
      throwsCode(() => new Worker('q', processor as never, full as never), 'ERR_INVALID_ARG');
      assert.deepEqual(fs.readdirSync(s.dir), []);
    });
  }
});
