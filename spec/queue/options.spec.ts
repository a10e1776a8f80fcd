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
import { NO_JOB_OPTS, resolveDefaultJobOptions, resolveJobOptions } from '../../lib/queue/options.js';
import { FAST, SAFETY, setup, waitFor } from '../helpers/queue.js';

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
    ['a deadLetter that is the queue itself', { deadLetter: 'q' }],
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

describe('options BullMQ has and spoolq does not', () => {
  /** Asserts `fn` throws ERR_INVALID_ARG with a message matching each of `parts`. */
  function refuses(fn: () => unknown, ...parts: RegExp[]): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof SpoolError, `not a SpoolError: ${String(err)}`);
      assert.equal(err.code, 'ERR_INVALID_ARG');
      for (const p of parts) assert.match(err.message, p);
      return true;
    });
  }

  for (const [key, value] of [['connection', { host: 'localhost', port: 6379 }], ['prefix', 'bull']] as const) {
    it(`refuses ${key} on a Queue and on a Worker, saying to pass dir instead, creating nothing`, SAFETY, async (t) => {
      const s = setup(t);
      refuses(() => new Queue('q', { dir: s.dir, [key]: value } as never), new RegExp(`queue option '${key}'`), /`dir`/);
      refuses(() => new Worker('q', async () => 1, { dir: s.dir, [key]: value } as never), new RegExp(`worker option '${key}'`), /`dir`/);
      assert.deepEqual(fs.readdirSync(s.dir), []);
    });
  }

  const workerHints: Array<[string, unknown, RegExp]> = [
    ['lockDuration', 30_000, /use `leaseMs`/],
    ['lockRenewTime', 15_000, /renewed automatically every leaseMs\/3/],
    ['stalledInterval', 30_000, /owner checks leases by itself/],
    ['skipStalledCheck', true, /owner checks leases by itself/],
    ['limiter', { max: 10, duration: 1000 }, /not supported yet/],
    ['removeOnComplete', 100, /job options.*defaultJobOptions/],
    ['removeOnFail', true, /job options.*defaultJobOptions/],
    ['drainDelay', 5, /do not poll/],
    ['useWorkerThreads', true, /module path or URL/],
    ['defaultJobOptions', { attempts: 2 }, /is a Queue option/],
  ];
  for (const [key, value, hint] of workerHints) {
    it(`refuses the Worker option ${key}, naming what to use instead`, SAFETY, async (t) => {
      const s = setup(t);
      refuses(() => new Worker('q', async () => 1, { dir: s.dir, ...FAST, [key]: value } as never), new RegExp(`'${key}'`), hint);
      assert.deepEqual(fs.readdirSync(s.dir), []);
    });
  }

  it('calls an unknown key on a Worker an unknown worker option, and on a Queue an unknown queue option', SAFETY, async (t) => {
    const s = setup(t);
    refuses(() => new Worker('q', async () => 1, { dir: s.dir, concurency: 2 } as never), /^unknown worker option 'concurency'$/);
    refuses(() => new Queue('q', { dir: s.dir, durabilty: 'none' } as never), /^unknown queue option 'durabilty'$/);
  });

  it('says where an option given to the wrong one of Queue, Worker and job belongs', SAFETY, async (t) => {
    const s = setup(t);
    refuses(() => new Queue('q', { dir: s.dir, concurrency: 2 } as never), /'concurrency' is a Worker option/);
    refuses(() => new Queue('q', { dir: s.dir, attempts: 3 } as never), /'attempts' is a job option.*defaultJobOptions/);
  });
});

describe('defaultJobOptions', () => {
  it('gives a job that sets no options the defaults, and the job retries by them', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { defaultJobOptions: { attempts: 3, priority: 2 } });
    const job = await q.add('x', null);
    assert.equal(job.opts.attempts, 3);
    assert.equal(job.opts.priority, 2);
    let runs = 0;
    const w = s.worker('q', async () => {
      if (++runs < 3) throw new Error('not yet');
      return 'third time';
    });
    const [done, result] = await waitFor(w, 'completed');
    assert.equal(done.id, job.id);
    assert.equal(result, 'third time');
    assert.equal((await q.getJob(job.id))!.attemptsMade, 3);
  });

  it("lets a job's own options win, replacing a nested default (backoff) whole, as BullMQ's spread does", SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', {
      defaultJobOptions: { attempts: 4, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, removeOnComplete: { count: 10, age: 60 } },
    });
    const own = await q.add('x', null, { attempts: 1, backoff: { type: 'fixed', delay: 7 }, removeOnComplete: { age: 5 } });
    assert.equal(own.opts.attempts, 1);
    assert.deepEqual(own.opts.backoff, { type: 'fixed', delay: 7 });
    assert.deepEqual(own.opts.removeOnComplete, { age: 5 });
    const some = await q.add('y', null, { priority: 3 });
    assert.deepEqual([some.opts.attempts, some.opts.priority, some.opts.backoff], [4, 3, { type: 'exponential', delay: 500, jitter: 0.5 }]);
    const [bulk] = await q.addBulk([{ name: 'z', data: null }]);
    assert.equal(bulk!.opts.attempts, 4);
    // …and as stored: a reopened queue gives the same options back.
    await q.close();
    const again = s.queue('q');
    assert.deepEqual((await again.getJob(own.id))!.opts, own.opts);
    assert.deepEqual((await again.getJob(bulk!.id))!.opts, bulk!.opts);
  });

  it('exposes the defaults as given, frozen, and {} without any', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { defaultJobOptions: { attempts: 2 } });
    assert.deepEqual(q.defaultJobOptions, { attempts: 2 });
    assert.equal(Object.isFrozen(q.defaultJobOptions), true);
    assert.deepEqual(s.queue('plain').defaultJobOptions, {});
  });

  it('shares one frozen options object between jobs that set none: NO_JOB_OPTS without defaults, the resolved defaults with them', () => {
    assert.equal(resolveJobOptions(undefined), NO_JOB_OPTS);
    const defaults = resolveDefaultJobOptions({ attempts: 2, backoff: 10 })!;
    const a = resolveJobOptions(undefined, defaults);
    assert.equal(a, resolveJobOptions(undefined, defaults));
    assert.equal(Object.isFrozen(a), true);
    assert.deepEqual(a, { attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    assert.equal(resolveDefaultJobOptions(undefined), undefined);
    assert.equal(resolveDefaultJobOptions({}), undefined);
  });

  const bad: Array<[string, unknown]> = [
    ['a jobId', { jobId: 'same-for-all' }],
    ['an unknown key', { attempt: 3 }],
    ['attempts 0', { attempts: 0 }],
    ['a backoff with no type', { backoff: { delay: 10 } }],
    ['a value that is not an object', 'fast'],
    ['a deadLetter that is the queue itself', { deadLetter: 'q' }],
  ];
  for (const [what, defaultJobOptions] of bad) {
    it(`refuses defaultJobOptions with ${what} from the constructor, creating nothing`, SAFETY, async (t) => {
      const s = setup(t);
      throwsCode(() => new Queue('q', { dir: s.dir, defaultJobOptions } as never), 'ERR_INVALID_ARG');
      assert.deepEqual(fs.readdirSync(s.dir), []);
    });
  }
});
