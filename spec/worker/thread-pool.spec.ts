import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it, type TestContext } from 'node:test';
import { ThreadPool, type PoolJob, type RunHooks, type RunOutcome, type ThreadPoolOptions } from '../../lib/worker/thread-pool.js';
import { UnrecoverableError } from '../../lib/worker/unrecoverable-error.js';
import { tempDir } from '../helpers/tmp.js';

// Timeouts here are safety nets for a broken pool, never measured: no test asserts how long anything took.
const SAFETY = { timeout: 15_000 };

const execFileAsync = promisify(execFile);
const fixture = (name: string): URL => new URL(`./fixtures/${name}.js`, import.meta.url);

let jobSeq = 0;
function job(name: string, data: unknown = null, extra: Partial<PoolJob> = {}): PoolJob {
  return { id: `job-${++jobSeq}`, name, data, opts: {}, attemptsMade: 0, timestamp: 1_000, processedOn: 2_000, ...extra };
}

const quiet: RunHooks = { onProgress() {}, onLog() {} };

/** Hooks that record every call, and a promise for the first `log('started')` of the job. */
function watch(): { hooks: RunHooks; events: unknown[]; started: Promise<void> } {
  const events: unknown[] = [];
  let onStarted!: () => void;
  const started = new Promise<void>((resolve) => (onStarted = resolve));
  const hooks: RunHooks = {
    onProgress: (progress) => events.push(['progress', progress]),
    onLog: (line) => {
      events.push(['log', line]);
      if (line === 'started') onStarted();
    },
  };
  return { hooks, events, started };
}

function openPool(t: TestContext, opts: Partial<ThreadPoolOptions> = {}): ThreadPool {
  const pool = new ThreadPool({ processor: fixture('behaviours'), threads: 1, concurrency: 1, ...opts });
  t.after(() => pool.close({ graceMs: 0 }));
  return pool;
}

function gate(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

function open(g: Int32Array): void {
  Atomics.store(g, 0, 1);
}

function errorOf(outcome: RunOutcome, kind: RunOutcome['kind']): Error & { code?: unknown; unrecoverable?: unknown } {
  assert.equal(outcome.kind, kind, `expected ${kind}, got ${JSON.stringify(outcome)}`);
  return (outcome as { error: Error }).error;
}

describe('ThreadPool results and errors', () => {
  it('completes a job with the result its processor returned', SAFETY, async (t) => {
    const pool = openPool(t);
    assert.deepEqual(await pool.run(job('echo', { to: 'a@b.c', n: [1, 2] }), undefined, quiet),
      { kind: 'completed', result: { to: 'a@b.c', n: [1, 2] } });
  });

  it("hands the processor the job's fields, with progress starting from the earlier attempt's", SAFETY, async (t) => {
    const pool = openPool(t);
    const sent = job('job-fields', { x: 1 }, { opts: { attempts: 3 }, attemptsMade: 2, progress: 40 });
    assert.deepEqual(await pool.run(sent, undefined, quiet), { kind: 'completed', result: {
      id: sent.id, name: 'job-fields', data: { x: 1 }, opts: { attempts: 3 }, attemptsMade: 2, timestamp: 1_000,
      processedOn: 2_000, progress: 40 } });
  });

  it('rebuilds a thrown error with its class, name, message, code and the stack from the thread', SAFETY, async (t) => {
    const pool = openPool(t);
    const error = errorOf(await pool.run(job('throw-coded'), undefined, quiet), 'failed');
    assert.ok(error instanceof TypeError);
    assert.equal(error.name, 'TypeError');
    assert.equal(error.message, 'bad input');
    assert.equal(error.code, 'E_BAD_INPUT');
    assert.match(error.stack ?? '', /fixtures[/\\]behaviours\.js/);
  });

  it('flags an UnrecoverableError as unrecoverable', SAFETY, async (t) => {
    const pool = openPool(t);
    const error = errorOf(await pool.run(job('throw-unrecoverable'), undefined, quiet), 'failed');
    assert.ok(error instanceof UnrecoverableError);
    assert.equal(error.unrecoverable, true);
    assert.equal(error.message, 'give up on this one');
  });

  for (const [name, message, code] of [
    ['throw-string', 'plain string', undefined],
    ['throw-object', 'non-Error thrown: { code: 1 }', 1],
  ] as const) {
    it(`fails with an Error when the processor throws a non-Error (${name})`, SAFETY, async (t) => {
      const pool = openPool(t);
      const error = errorOf(await pool.run(job(name), undefined, quiet), 'failed');
      assert.ok(error instanceof Error);
      assert.equal(error.message, message);
      assert.equal(error.code, code);
    });
  }

  it('fails a job whose result cannot be cloned with the DataCloneError', SAFETY, async (t) => {
    const pool = openPool(t);
    const error = errorOf(await pool.run(job('unclonable-result'), undefined, quiet), 'failed');
    assert.equal(error.name, 'DataCloneError');
  });

  it('delivers progress and log lines in the order they were made, all before the outcome', SAFETY, async (t) => {
    const pool = openPool(t);
    const { hooks, events } = watch();
    const outcome = await pool.run(job('progress'), undefined, hooks);
    assert.deepEqual([...events, outcome], [
      ['progress', 10], ['log', 'first'], ['progress', { step: 2 }], ['log', 'second'],
      { kind: 'completed', result: 'reported' },
    ]);
  });
});

describe('ThreadPool batches of runs and ends', () => {
  it('fails only the job whose result cannot be cloned when its end shares a batch with others', SAFETY, async (t) => {
    const pool = openPool(t, { concurrency: 10 });
    await pool.run(job('echo', 0), undefined, quiet); // the thread is up: the next ten go out in one message
    const names = ['echo', 'echo', 'echo', 'echo', 'unclonable-result', 'echo', 'echo', 'echo', 'echo', 'echo'];
    const outcomes = await Promise.all(names.map((name, i) => pool.run(job(name, i), undefined, quiet)));
    outcomes.forEach((outcome, i) => {
      if (i === 4) assert.equal(errorOf(outcome, 'failed').name, 'DataCloneError');
      else assert.deepEqual(outcome, { kind: 'completed', result: i });
    });
  });

  it('fails only the job whose data cannot be cloned when it is posted with others', SAFETY, async (t) => {
    const pool = openPool(t, { concurrency: 5 });
    await pool.run(job('echo', 0), undefined, quiet);
    const data = [1, 2, () => 'functions cannot be cloned', 4, 5];
    const outcomes = await Promise.all(data.map((d) => pool.run(job('echo', d), undefined, quiet)));
    outcomes.forEach((outcome, i) => {
      if (i === 2) assert.equal(errorOf(outcome, 'failed').name, 'DataCloneError');
      else assert.deepEqual(outcome, { kind: 'completed', result: data[i] });
    });
  });

  it('delivers an abort() made in the same turn as run() after the run, so the job sees it', SAFETY, async (t) => {
    const pool = openPool(t, { abortGraceMs: 10_000 });
    await pool.run(job('echo', 0), undefined, quiet);
    const sent = job('await-abort');
    const running = pool.run(sent, undefined, quiet);
    pool.abort(sent.id, 'changed my mind'); // the run is still in the batch being collected
    const error = errorOf(await running, 'failed');
    assert.equal(error.code, 'ERR_JOB_ABORTED');
    assert.equal(error.message, 'changed my mind');
  });
});

describe('ThreadPool processor modules', () => {
  const path = fileURLToPath(fixture('behaviours'));
  for (const [form, processor] of [
    ['an absolute path', path],
    ['a file: URL string', fixture('behaviours').href],
    ['a URL', fixture('behaviours')],
  ] as const) {
    it(`loads the processor given as ${form}`, SAFETY, async (t) => {
      const pool = openPool(t, { processor });
      assert.deepEqual(await pool.run(job('echo', 'hi'), undefined, quiet), { kind: 'completed', result: 'hi' });
    });
  }

  it('uses a named export `process` when there is no default export', SAFETY, async (t) => {
    const pool = openPool(t, { processor: fixture('named-process') });
    assert.deepEqual(await pool.run(job('anything', 'x'), undefined, quiet), { kind: 'completed', result: 'named x' });
  });

  it('routes each job to the handler named by the job when the module exports a map', SAFETY, async (t) => {
    const pool = openPool(t, { processor: fixture('handler-map'), concurrency: 2 });
    const outcomes = await Promise.all([pool.run(job('greet', 'ann'), undefined, quiet), pool.run(job('shout', 'bo'), undefined, quiet)]);
    assert.deepEqual(outcomes, [{ kind: 'completed', result: 'hello ann' }, { kind: 'completed', result: 'BO' }]);
  });

  it('fails a job whose name has no handler in the map with ERR_NO_HANDLER', SAFETY, async (t) => {
    const pool = openPool(t, { processor: fixture('handler-map') });
    const error = errorOf(await pool.run(job('whisper'), undefined, quiet), 'failed');
    assert.equal(error.code, 'ERR_NO_HANDLER');
    assert.match(error.message, /whisper/);
  });

  for (const [what, name, because] of [
    ['throws while loading', 'load-throws', /refuses to load/],
    ['exports no processor', 'no-processor', /exports no processor/],
    ['ends its thread while loading', 'exit-on-load', /exited \(code 7\) before processor/],
    ['does not exist', 'no-such-module', /no-such-module/],
  ] as const) {
    it(`fails every job with ERR_PROCESSOR_LOAD, without starting more threads, when the module ${what}`, SAFETY, async (t) => {
      const pool = openPool(t, { processor: fixture(name), threads: 2 });
      for (let i = 0; i < 2; i++) {
        const error = errorOf(await pool.run(job('echo'), undefined, quiet), 'failed');
        assert.equal(error.code, 'ERR_PROCESSOR_LOAD');
        assert.match(`${error.message} ${(error.cause as Error | undefined)?.message}`, because);
      }
      assert.equal(pool.threadsStarted, 1);
    });
  }
});

describe('ThreadPool dispatch', () => {
  it('never runs more than threads × concurrency jobs at once, and does reach that many', SAFETY, async (t) => {
    const pool = openPool(t, { threads: 2, concurrency: 3 });
    const counters = new Int32Array(new SharedArrayBuffer(12));
    const runs = Array.from({ length: 20 }, () => pool.run(job('count', { counters: counters.buffer, target: 6 }), undefined, quiet));
    assert.equal(pool.capacity, 6);
    assert.equal(pool.running, 6);
    assert.equal(pool.queued, 14);
    const outcomes = await Promise.all(runs);
    assert.ok(outcomes.every((o) => o.kind === 'completed'), JSON.stringify(outcomes));
    assert.equal(Atomics.load(counters, 1), 6);
  });

  it('gives each job to the least-loaded thread', SAFETY, async (t) => {
    const pool = openPool(t, { threads: 2, concurrency: 2 });
    const held = gate();
    const busy = watch();
    const holding = pool.run(job('hold', { gate: held.buffer }), undefined, busy.hooks);
    await busy.started;
    const first = await pool.run(job('thread-id'), undefined, quiet);
    const second = await pool.run(job('thread-id'), undefined, quiet);
    open(held);
    const holder = await holding;
    assert.equal(holder.kind, 'completed');
    assert.equal(first.kind, 'completed');
    assert.notEqual((first as { result: number }).result, (holder as { result: number }).result);
    assert.deepEqual(second, first);
  });

  it('recycles a thread after maxJobsPerThread jobs', SAFETY, async (t) => {
    const pool = openPool(t, { maxJobsPerThread: 2 });
    const ids: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const outcome = await pool.run(job('thread-id'), undefined, quiet);
      assert.equal(outcome.kind, 'completed');
      ids.push((outcome as { result: unknown }).result);
    }
    assert.equal(ids[0], ids[1]);
    assert.equal(ids[2], ids[3]);
    assert.notEqual(ids[0], ids[2]);
    assert.equal(pool.threadsStarted, 2);
  });
});

describe('ThreadPool crashes', () => {
  for (const [what, name, opts, cause] of [
    ['calls process.exit', 'exit', {}, { message: 'exit code 3' }],
    ['throws outside the job', 'throw-outside', {}, { message: 'thrown from a timer' }],
    ['runs out of maxHeapMb', 'allocate', { maxHeapMb: 32 }, { code: 'ERR_WORKER_OUT_OF_MEMORY' }],
  ] as const) {
    it(`reports a job whose thread ${what} as crashed and completes the next job on a new thread`, SAFETY, async (t) => {
      const pool = openPool(t, opts);
      const error = errorOf(await pool.run(job(name), undefined, quiet), 'crashed');
      assert.equal(error.code, 'ERR_THREAD_CRASHED');
      for (const [key, value] of Object.entries(cause)) assert.equal((error.cause as Record<string, unknown>)[key], value);
      assert.deepEqual(await pool.run(job('echo', 'after'), undefined, quiet), { kind: 'completed', result: 'after' });
      assert.equal(pool.threadsStarted, 2);
    });
  }

  it('re-runs the jobs of a thread that crashed under several, alone, and charges only the one that crashes again', SAFETY, async (t) => {
    const pool = openPool(t, { concurrency: 2 });
    const held = gate();
    const w = watch();
    let restarts = 0;
    let restarted!: () => void;
    const restartedP = new Promise<void>((resolve) => (restarted = resolve));
    const holding = pool.run(job('hold', { gate: held.buffer }), undefined, { ...w.hooks, onRestart: () => void (restarts++, restarted()) });
    await w.started;
    let culpritRestarts = 0;
    const exiting = pool.run(job('exit'), undefined, { ...quiet, onRestart: () => void culpritRestarts++ });
    await restartedP; // the thread died under both: from here the hold may finish, in its re-run
    open(held);
    const outcome = await holding;
    assert.equal(outcome.kind, 'completed', 'the neighbour of the crash completes in its re-run');
    assert.equal(errorOf(await exiting, 'crashed').code, 'ERR_THREAD_CRASHED');
    assert.equal([restarts, culpritRestarts].join(), '1,1', 'both were suspects, re-run once');
    // The first thread, then the isolation thread: the hold (first in line) ran alone in it, then the culprit.
    assert.equal(pool.threadsStarted, 2);
  });

  it('charges a job alone on its thread at its first crash, with no re-run', SAFETY, async (t) => {
    const pool = openPool(t, { concurrency: 2 });
    let restarts = 0;
    assert.equal(errorOf(await pool.run(job('exit'), undefined, { ...quiet, onRestart: () => void restarts++ }), 'crashed').code, 'ERR_THREAD_CRASHED');
    assert.equal(restarts, 0);
    assert.equal(pool.threadsStarted, 1);
  });
});

describe('ThreadPool timeouts and aborts', () => {
  it('terminates a job stuck in a loop past its timeout as crashed with ERR_JOB_TIMEOUT, then runs the next job', SAFETY, async (t) => {
    const pool = openPool(t, { abortGraceMs: 100 });
    const error = errorOf(await pool.run(job('spin'), 200, quiet), 'crashed');
    assert.equal(error.code, 'ERR_JOB_TIMEOUT');
    assert.deepEqual(await pool.run(job('echo', 'next'), undefined, quiet), { kind: 'completed', result: 'next' });
  });

  it('ends a timed-out job whose processor takes no signal by terminating its thread, then runs the next job', SAFETY, async (t) => {
    const pool = openPool(t, { processor: fixture('no-signal'), abortGraceMs: 100 });
    const error = errorOf(await pool.run(job('wait'), 100, quiet), 'crashed');
    assert.equal(error.code, 'ERR_JOB_TIMEOUT');
    assert.deepEqual(await pool.run(job('echo', 'next'), undefined, quiet), { kind: 'completed', result: 'next' });
    assert.equal(pool.threadsStarted, 2);
  });

  it('reports the other jobs of a thread terminated for a timeout as interrupted (victims), the loop as crashed', SAFETY, async (t) => {
    const pool = openPool(t, { concurrency: 2, abortGraceMs: 100 });
    const held = gate();
    const w = watch();
    const holding = pool.run(job('hold', { gate: held.buffer }), undefined, w.hooks);
    await w.started;
    assert.equal(errorOf(await pool.run(job('spin'), 200, quiet), 'crashed').code, 'ERR_JOB_TIMEOUT');
    assert.equal(errorOf(await holding, 'interrupted').code, 'ERR_THREAD_CRASHED');
  });

  it('reports a job that rejects when its timeout aborts its signal as timeout, the reason carrying ERR_JOB_TIMEOUT', SAFETY, async (t) => {
    const pool = openPool(t);
    const error = errorOf(await pool.run(job('honour-signal'), 200, quiet), 'timeout');
    assert.equal(error.code, 'ERR_JOB_TIMEOUT');
    assert.equal((error.cause as { code?: unknown }).code, 'ERR_JOB_TIMEOUT'); // signal.reason, rethrown in the thread
    assert.equal(pool.threadsStarted, 1);
  });

  it('reports a job that resolves only after its timeout fired as timeout', SAFETY, async (t) => {
    const pool = openPool(t);
    assert.equal(errorOf(await pool.run(job('resolve-after-abort'), 200, quiet), 'timeout').code, 'ERR_JOB_TIMEOUT');
  });

  it("fires a running job's signal on abort() with ERR_JOB_ABORTED and the reason given", SAFETY, async (t) => {
    const pool = openPool(t);
    const sent = job('honour-signal');
    const w = watch();
    const running = pool.run(sent, undefined, w.hooks);
    await w.started;
    pool.abort(sent.id, 'lease lost');
    const error = errorOf(await running, 'failed');
    assert.equal(error.code, 'ERR_JOB_ABORTED');
    assert.equal(error.message, 'lease lost');
  });

  it('terminates a job that ignores abort() as crashed with ERR_JOB_ABORTED', SAFETY, async (t) => {
    const pool = openPool(t, { abortGraceMs: 100 });
    const sent = job('spin');
    const w = watch();
    const running = pool.run(sent, undefined, w.hooks);
    await w.started;
    pool.abort(sent.id);
    assert.equal(errorOf(await running, 'crashed').code, 'ERR_JOB_ABORTED');
    assert.deepEqual(await pool.run(job('echo', 1), undefined, quiet), { kind: 'completed', result: 1 });
  });

  it('ends a job still waiting for a slot as failed on abort()', SAFETY, async (t) => {
    const pool = openPool(t);
    const held = gate();
    const holding = pool.run(job('hold', { gate: held.buffer }), undefined, quiet);
    const waiting = job('echo');
    const queued = pool.run(waiting, undefined, quiet);
    assert.equal(pool.queued, 1);
    pool.abort(waiting.id, 'not wanted');
    assert.equal(errorOf(await queued, 'failed').code, 'ERR_JOB_ABORTED');
    open(held);
    assert.equal((await holding).kind, 'completed');
  });
});

describe('ThreadPool close', () => {
  it('waits for running jobs to finish before it resolves', SAFETY, async (t) => {
    const pool = openPool(t);
    const held = gate();
    const w = watch();
    const order: string[] = [];
    const running = pool.run(job('hold', { gate: held.buffer }), undefined, w.hooks);
    await w.started;
    void running.then(() => order.push('job'));
    const closing = pool.close().then(() => order.push('closed'));
    open(held);
    assert.equal((await running).kind, 'completed');
    await closing;
    assert.deepEqual(order, ['job', 'closed']);
  });

  it('terminates running jobs as crashed with ERR_CLOSED when graceMs is 0', SAFETY, async (t) => {
    const pool = openPool(t);
    const held = gate();
    const w = watch();
    const running = pool.run(job('hold', { gate: held.buffer }), undefined, w.hooks);
    await w.started;
    await pool.close({ graceMs: 0 });
    assert.equal(errorOf(await running, 'crashed').code, 'ERR_CLOSED');
  });

  it('ends jobs still waiting for a slot as crashed with ERR_CLOSED', SAFETY, async (t) => {
    const pool = openPool(t);
    const held = gate();
    const holding = pool.run(job('hold', { gate: held.buffer }), undefined, quiet);
    const queued = pool.run(job('echo'), undefined, quiet);
    const closing = pool.close();
    assert.equal(errorOf(await queued, 'crashed').code, 'ERR_CLOSED');
    open(held);
    assert.equal((await holding).kind, 'completed');
    await closing;
  });

  it('rejects run() after close with ERR_CLOSED', SAFETY, async (t) => {
    const pool = openPool(t);
    await pool.close();
    await assert.rejects(pool.run(job('echo'), undefined, quiet), { code: 'ERR_CLOSED' });
  });
});

describe('ThreadPool and the process', () => {
  /** A child that hangs is killed (and the test fails) rather than left behind. */
  const CHILD = { timeout: 10_000, killSignal: 'SIGKILL' as const };

  /** A program that runs one echo job on a pool it never closes, and prints the result. */
  const program = `
    const { ThreadPool } = await import(${JSON.stringify(new URL('../../lib/worker/thread-pool.js', import.meta.url).href)});
    const pool = new ThreadPool({ processor: new URL(${JSON.stringify(fixture('behaviours').href)}), threads: 2, concurrency: 1 });
    const quiet = { onProgress() {}, onLog() {} };
    const job = { id: 'a', name: 'echo', data: 'idle', opts: {}, attemptsMade: 0, timestamp: 0, processedOn: 0 };
    console.log(JSON.stringify(await pool.run(job, undefined, quiet)));`;

  it('does not keep the process alive while it has no job to run', SAFETY, async (t) => {
    const file = join(tempDir(t), 'idle.mjs');
    writeFileSync(file, program);
    // The child must exit by itself, unclosed pool and all.
    const { stdout } = await execFileAsync(process.execPath, [file], CHILD);
    assert.deepEqual(JSON.parse(stdout), { kind: 'completed', result: 'idle' });
  });

  it('runs jobs in a process started with --input-type=module -e, a flag its threads must not inherit', SAFETY, async () => {
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', program], CHILD);
    assert.deepEqual(JSON.parse(stdout), { kind: 'completed', result: 'idle' });
  });

  it('runs jobs under --input-type=module -e beside flags a thread refuses when given explicitly', SAFETY, async () => {
    // --input-type makes the pool pass its flags explicitly; Node refuses these two there (V8, per-process).
    const flags = ['--input-type=module', '--max-old-space-size=512', '--title=spoolq-test', '--no-warnings'];
    const { stdout } = await execFileAsync(process.execPath, [...flags, '-e', program], CHILD);
    assert.deepEqual(JSON.parse(stdout), { kind: 'completed', result: 'idle' });
  });
});

describe('ThreadPool options', () => {
  const processor = fixture('behaviours');
  for (const [what, opts] of [
    ['a relative processor path', { processor: './x.js', threads: 1, concurrency: 1 }],
    ['an http: processor URL', { processor: new URL('http://example.com/x.js'), threads: 1, concurrency: 1 }],
    ['threads 0', { processor, threads: 0, concurrency: 1 }],
    ['concurrency 1.5', { processor, threads: 1, concurrency: 1.5 }],
    ['maxJobsPerThread 0', { processor, threads: 1, concurrency: 1, maxJobsPerThread: 0 }],
    ['maxHeapMb -1', { processor, threads: 1, concurrency: 1, maxHeapMb: -1 }],
    ['abortGraceMs NaN', { processor, threads: 1, concurrency: 1, abortGraceMs: Number.NaN }],
  ] as const) {
    it(`rejects ${what} with ERR_INVALID_ARG`, SAFETY, () => {
      assert.throws(() => new ThreadPool(opts as ThreadPoolOptions), { code: 'ERR_INVALID_ARG' });
    });
  }
});
