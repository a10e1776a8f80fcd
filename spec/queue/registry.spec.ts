/**
 * One owner per queue directory: Queues and Workers in one process share it; another process is refused with
 * ERR_LOCKED until the last holder here closes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { SAFETY, setup, waitFor } from '../helpers/queue.js';

const execFileAsync = promisify(execFile);
const lib = new URL('../../lib/index.js', import.meta.url).href;

/** Opens queue `q` under `dir` in a child process; resolves with what it printed: OPEN or the error code. */
async function openInChild(dir: string): Promise<string> {
  const script = `
    import { Queue } from ${JSON.stringify(lib)};
    const q = new Queue('q', { dir: ${JSON.stringify(dir)}, durability: 'none' });
    try { await q.waitUntilReady(); console.log('OPEN'); } catch (err) { console.log(err.code); }
    await q.close();`;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000 });
  return stdout.trim();
}

describe('the owner registry', () => {
  it('shares one owner between a Queue and a Worker opened side by side', SAFETY, async (t) => {
    const s = setup(t);
    const w = s.worker('q', async (job) => `done ${job.data}`);
    const q = s.queue();
    const completed = waitFor(w, 'completed');
    const job = await q.add('a', 1);
    const [done, result] = await completed;
    assert.equal(done.id, job.id);
    assert.equal(result, 'done 1');
    assert.equal(await (await q.getJob(job.id))!.getState(), 'completed');
  });

  it('keeps the owner open while any holder is open: a Worker outlives the Queue that fed it', SAFETY, async (t) => {
    const s = setup(t);
    const q1 = s.queue();
    const w = s.worker('q', async (job) => job.data);
    await q1.add('a', 1);
    await waitFor(w, 'completed');
    await q1.close();
    const q2 = s.queue();
    const completed = waitFor(w, 'completed');
    const job = await q2.add('b', 2);
    const [, result] = await completed;
    assert.equal(result, 2);
    assert.equal((await q2.getJob('1'))!.returnvalue, 1);
    assert.equal(job.data, 2);
  });

  it('opens again at once after the last holder closes', SAFETY, async (t) => {
    const s = setup(t);
    const q1 = s.queue();
    await q1.add('a', 1);
    const closing = q1.close();
    const q2 = s.queue(); // while the close is still running
    assert.deepEqual(await q2.getJobCounts('waiting'), { waiting: 1 });
    await closing;
  });

  it('refuses a second process with ERR_LOCKED while this one holds the queue, and lets it in after', { timeout: 30_000 }, async (t) => {
    const s = setup(t);
    const q = s.queue();
    await q.add('a', 1);
    assert.equal(await openInChild(s.dir), 'ERR_LOCKED');
    assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 1 }); // unharmed
    await q.close();
    assert.equal(await openInChild(s.dir), 'OPEN');
  });

  it('closes a Queue and a Worker that could not open without harm', { timeout: 30_000 }, async (t) => {
    const s = setup(t);
    const held = s.queue();
    await held.waitUntilReady();
    const script = `
      import { Queue, Worker } from ${JSON.stringify(lib)};
      const dir = ${JSON.stringify(s.dir)};
      const q = new Queue('q', { dir });
      const w = new Worker('q', async () => 1, { dir });
      const codes = [];
      await q.waitUntilReady().catch((e) => codes.push(e.code));
      await w.waitUntilReady().catch((e) => codes.push(e.code));
      await w.close();
      await q.close();
      console.log(codes.join(','));`;
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000 });
    assert.equal(stdout.trim(), 'ERR_LOCKED,ERR_LOCKED');
  });

  it('does not let a Queue that failed to open close the owner a later Queue opened', SAFETY, async (t) => {
    const s = setup(t);
    const dir = path.join(s.dir, 'q');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'not-ours.txt'), 'x');
    const failed = s.queue();
    await assert.rejects(failed.waitUntilReady(), { code: 'ERR_NOT_A_LOG' });
    fs.rmSync(path.join(dir, 'not-ours.txt'));
    const q = s.queue();
    await q.add('a', 1);
    await failed.close();
    await q.add('b', 2);
    assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 2 });
  });
});
