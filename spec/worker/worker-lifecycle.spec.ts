/**
 * Worker lifecycle through the public API and in real processes: what keeps a process alive (a running Worker,
 * until close()), what a Worker that cannot start does (its queue will not open, its processor module will not
 * load, no thread can be spawned), and threads under the node flags a process may be started with.
 *
 * Children are waited on for what they print and for their exit, with generous safety nets; nothing here asserts
 * how long anything took.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker, readLog } from '../../lib/index.js';
import { REC } from '../../lib/store/events.js';
import { runNode, startNode } from '../helpers/child.js';
import { FAST, SAFETY, setup, waitFor, type Setup } from '../helpers/queue.js';
import { tempDir } from '../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('./children/lifecycle.js', import.meta.url));
const fixture = (name: string): URL => new URL(`./fixtures/${name}.js`, import.meta.url);
/** Children spawn threads and open queues: give them room on a loaded machine. */
const SLOW = { timeout: 60_000 };

/** Starts a child that holds queue q of `dir` (its owner lock) until the test ends. */
async function holdQueue(t: TestContext, dir: string): Promise<void> {
  const holder = startNode(CHILD, ['hold', dir]);
  t.after(() => holder.kill());
  await holder.line('holding');
}

/** ACTIVE records in queue q's log: one per ticket cut. */
function ticketsCut(dir: string): number {
  let n = 0;
  readLog(path.join(dir, 'q'), { onEntry: (e) => void (e.type === REC.ACTIVE && n++) });
  return n;
}

/** A backlog of `n` waiting jobs in queue q, the first with 3 attempts. */
async function backlog(s: Setup, n: number): Promise<void> {
  const q = s.queue();
  await q.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'echo', data: i, opts: { attempts: i === 0 ? 3 : 1 } })));
}

/** Every job of queue q still waiting, with no attempt made, and no ticket ever cut. */
async function untouched(s: Setup, n: number): Promise<void> {
  const q = s.queue();
  assert.deepEqual(await q.getJobCounts('waiting', 'active', 'completed', 'failed'), { waiting: n, active: 0, completed: 0, failed: 0 });
  for (const job of await q.getJobs(['waiting'], 0, -1)) assert.equal(job.attemptsMade, 0, `job ${job.id}`);
  assert.equal(ticketsCut(s.dir), 0);
}

describe('Worker and the process', () => {
  it('keeps a process with only a Worker alive until a delayed job has run, and lets it exit once closed', SLOW, async (t) => {
    const out = await runNode([CHILD, 'delayed', tempDir(t)]);
    assert.deepEqual(out.lines, ['added', 'done ran late', 'closed'], out.stderr);
    assert.equal(out.code, 0);
  });

  it('does not keep a process with only a Queue alive', SLOW, async (t) => {
    const out = await runNode([CHILD, 'queue-only', tempDir(t)]);
    assert.deepEqual(out.lines, ['added'], out.stderr);
    assert.equal(out.code, 0);
  });

  it('lets the process exit by itself once its Worker is closed', SLOW, async (t) => {
    const out = await runNode([CHILD, 'worker-closed', tempDir(t)]);
    assert.deepEqual(out.lines, ['done', 'closed'], out.stderr);
    assert.equal(out.code, 0);
  });
});

describe('Worker on a queue it cannot open', () => {
  for (const [what, code, prepare] of [
    ['another process holds it', 'ERR_LOCKED', async (t: TestContext, root: string) => {
      await holdQueue(t, root);
      return root;
    }],
    ['its directory cannot be made (an I/O error)', 'ERR_IO', async (_t: TestContext, root: string) => {
      const file = path.join(root, 'a-file');
      fs.writeFileSync(file, 'not a directory');
      return file;
    }],
  ] as const) {
    it(`rejects run() and waitUntilReady(), emits error once and stops running when ${what} (${code})`, SLOW, async (t) => {
      const s = setup(t);
      const dir = await prepare(t, s.dir);
      let runs = 0;
      const w = s.worker('q', async () => void runs++, { dir });
      const errors: unknown[] = [];
      w.on('error', (err: Error & { code?: string }) => errors.push(err.code));
      await assert.rejects(w.run(), { code });
      await assert.rejects(w.waitUntilReady(), { code });
      assert.deepEqual(errors, [code]);
      assert.equal(w.isRunning, false);
      assert.equal(runs, 0);
    });
  }

  it('writes the error to stderr once when nobody listens for it, instead of throwing it', SAFETY, async (t) => {
    const root = tempDir(t);
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const logged = t.mock.method(console, 'error', () => undefined);
    const w = new Worker('q', async () => 'never', { dir: file, ...FAST });
    await assert.rejects(w.waitUntilReady(), { code: 'ERR_IO' });
    await w.close();
    assert.equal(logged.mock.callCount(), 1);
    assert.match(String(logged.mock.calls[0]!.arguments[0]), /ERR_IO: .*a-file/);
    assert.equal(w.isRunning, false);
  });

  it('lets its process exit by itself, the error on stderr once, when it has no error listener (ERR_LOCKED)', SLOW, async (t) => {
    const dir = tempDir(t);
    await holdQueue(t, dir);
    const out = await runNode([CHILD, 'locked', dir]);
    assert.deepEqual(out.lines, ['rejected ERR_LOCKED', 'running false'], out.stderr);
    assert.equal(out.code, 0);
    assert.equal(out.stderr.match(/ERR_LOCKED/g)?.length, 1, out.stderr);
  });
});

describe('Worker processor module loading', () => {
  for (const [form, missing] of [
    ['a path', (dir: string) => path.join(dir, 'no-such-processor.js')],
    ['a file: URL', (dir: string) => new URL(`file://${path.join(dir, 'no-such-processor.js')}`)],
  ] as const) {
    it(`refuses a processor module that does not exist, given as ${form}, with ERR_PROCESSOR_LOAD when made`, SAFETY, (t) => {
      const dir = tempDir(t);
      assert.throws(() => new Worker('q', missing(dir), { dir, ...FAST }), { code: 'ERR_PROCESSOR_LOAD', name: 'SpoolError' });
      assert.equal(fs.existsSync(path.join(dir, 'q')), false, 'the queue was opened');
    });
  }

  for (const [what, name] of [
    ['throws at import', 'load-throws'],
    ['exports no processor', 'no-processor'],
    ['ends its thread at import', 'exit-on-load'],
  ] as const) {
    it(`claims nothing when the module ${what}: run() rejects, error, not running, the backlog waits unspent`, SLOW, async (t) => {
      const s = setup(t);
      await backlog(s, 50);
      const w = s.worker('q', fixture(name), { threads: 2, concurrency: 4, autorun: false });
      const errors: unknown[] = [];
      w.on('error', (err: Error & { code?: string }) => errors.push(err.code));
      await assert.rejects(w.run(), { code: 'ERR_PROCESSOR_LOAD' });
      assert.deepEqual(errors, ['ERR_PROCESSOR_LOAD']);
      assert.equal(w.isRunning, false);
      await w.close();
      await untouched(s, 50);
    });
  }

  it('finds a module that throws at import before the first claim with autorun too', SLOW, async (t) => {
    const s = setup(t);
    await backlog(s, 50);
    const w = s.worker('q', fixture('load-throws'), { threads: 1 });
    const [err] = await waitFor(w, 'error');
    assert.equal(err.code, 'ERR_PROCESSOR_LOAD');
    await w.close();
    assert.equal(w.isRunning, false);
    await untouched(s, 50);
  });

  it('stops and hands the job back unspent when the module no longer loads in a replacement thread', SLOW, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const module = path.join(s.dir, 'crash-or-echo.mjs');
    fs.writeFileSync(module, `export default async function (job) { if (job.name === 'exit') process.exit(3); return job.data; }`);
    const w = s.worker('q', module, { threads: 1 });
    const errors: unknown[] = [];
    w.on('error', (err: Error & { code?: string }) => errors.push(err.code));
    await w.waitUntilReady();
    const [crashed] = await Promise.all([waitFor(w, 'failed'), q.add('exit', null)]);
    assert.equal(crashed[1].code, 'ERR_THREAD_CRASHED');
    fs.rmSync(module); // no thread is running now; the next job's thread cannot import it
    const job = await q.add('echo', 'x', { attempts: 3 });
    await waitFor(w, 'closed');
    assert.deepEqual(errors, ['ERR_PROCESSOR_LOAD']);
    assert.equal(w.isRunning, false);
    const after = (await q.getJob(job.id))!;
    assert.equal(await after.getState(), 'waiting');
    assert.equal(after.attemptsMade, 0);
  });

  it('treats a thread that cannot be spawned as a load failure: nothing claimed, error, jobs left waiting', SLOW, async (t) => {
    const out = await runNode([CHILD, 'spawn-fails', tempDir(t), fixture('behaviours').href]);
    assert.deepEqual(out.lines.slice(0, 3), ['rejected ERR_PROCESSOR_LOAD', 'running false', 'errors 1'], out.stderr);
    assert.deepEqual(JSON.parse(out.lines[3]!.replace(/^jobs /, '')), Array.from({ length: 10 }, () => ['waiting', 0]));
    assert.equal(out.code, 0);
  });
});

describe('Worker threads under node flags', () => {
  for (const flag of ['--max-old-space-size=512', '--expose-gc', '--prof', '--title=x', '--abort-on-uncaught-exception']) {
    it(`runs a job in a thread in a process started with node ${flag}`, SLOW, async (t) => {
      const cwd = tempDir(t); // --prof writes its isolate logs here
      const out = await runNode([flag, CHILD, 'threads', path.join(cwd, 'data'), fixture('behaviours').href], { cwd });
      assert.deepEqual(out.lines, ['done flagged', 'closed'], out.stderr);
      assert.equal(out.code, 0);
    });
  }
});
