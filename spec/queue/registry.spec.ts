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
import { randomBytes } from 'node:crypto';
import { Queue, SpoolError, Worker } from '../../lib/index.js';
import { FAST, SAFETY, setup, waitFor, waitForCount } from '../helpers/queue.js';

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

describe('handles on one queue in one process must agree on the owner options', () => {
  const key = randomBytes(32);
  /** [what, options of the first handle (on top of FAST), options of the second (exactly), the message's values]. */
  const conflicts: Array<[string, object, object, RegExp]> = [
    ['durability fsync (the default, set) beside none', { durability: 'none' }, { durability: 'fsync' }, /durability 'none'.*durability 'fsync'/],
    ['durability batch beside none', { durability: 'batch' }, { durability: 'none' }, /durability 'batch'.*durability 'none'/],
    ['compression off beside compression', { compression: true }, { ...FAST, compression: false }, /compression on \(threshold \d+ bytes\).*compression off/],
    ['another compression threshold', { compression: { threshold: 64 } }, { ...FAST, compression: true }, /threshold 64 bytes.*threshold \d+ bytes/],
    ['another maxSegmentBytes', { maxSegmentBytes: 1 << 20 }, { ...FAST, maxSegmentBytes: 1 << 21 }, /maxSegmentBytes 1048576.*maxSegmentBytes 2097152/],
    ['another batchIntervalMs', { batchIntervalMs: 20 }, { ...FAST, batchIntervalMs: 5 }, /batchIntervalMs 20.*batchIntervalMs 5/],
    ['another leaseMs', { leaseMs: 1000 }, { ...FAST, leaseMs: 30_000 }, /leaseMs 1000.*leaseMs 30000/],
    ['another maxStalledCount', { maxStalledCount: 3 }, { ...FAST, maxStalledCount: 1 }, /maxStalledCount 3.*maxStalledCount 1/],
    ['another maxDataBytes', { maxDataBytes: 1024 }, { ...FAST, maxDataBytes: 4 << 20 }, /maxDataBytes 1024.*maxDataBytes 4194304/],
    ['another checkpointEvery', { checkpointEvery: 10 }, { ...FAST, checkpointEvery: 100_000 }, /checkpointEvery 10.*checkpointEvery 100000/],
    ['encryption beside none', {}, { ...FAST, encryption: { key } }, /encryption off.*encryption on/],
    ['another key', { encryption: { key } }, { ...FAST, encryption: { key: randomBytes(32) } }, /with one key.*with a different key/],
    ['another set of key ids', { encryption: { key } }, { ...FAST, encryption: { keys: [{ id: 1, key }, { id: 2, key: randomBytes(32) }] } }, /key ids 1.*key ids 1,2/],
    ['another current key', { encryption: { keys: [{ id: 1, key }, { id: 2, key }], currentKeyId: 1 } }, { ...FAST, encryption: { keys: [{ id: 1, key }, { id: 2, key }] } }, /sealing with key 1.*sealing with key 2/],
  ];
  for (const [what, first, second, values] of conflicts) {
    it(`refuses ${what} with ERR_OPTIONS_CONFLICT from the Queue and Worker constructors, naming both values`, SAFETY, async (t) => {
      const s = setup(t);
      const q = s.queue('q', first);
      await q.add('a', { secret: 'in-the-first' });
      const records = s.records();
      for (const open of [
        () => new Queue('q', { dir: s.dir, ...second }),
        () => new Worker('q', async () => 1, { dir: s.dir, ...second }),
      ]) {
        assert.throws(open, (err: unknown) => {
          assert.ok(err instanceof SpoolError);
          assert.equal(err.code, 'ERR_OPTIONS_CONFLICT');
          assert.match(err.message, values);
          assert.match(err.message, /^queue q is already open in this process/);
          // Key bytes never appear in a message, in any encoding.
          for (const enc of ['hex', 'base64', 'latin1'] as const) assert.equal(err.message.includes(key.toString(enc)), false);
          return true;
        });
      }
      assert.equal(s.records(), records);
      assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 1 });
    });
  }

  it('writes nothing in plaintext for a Queue that asked for encryption beside an unencrypted owner', SAFETY, async (t) => {
    const s = setup(t);
    const plain = s.queue();
    await plain.waitUntilReady();
    assert.throws(() => new Queue('q', { dir: s.dir, ...FAST, encryption: { key } }), { code: 'ERR_OPTIONS_CONFLICT' });
    await plain.close();
    for (const f of fs.readdirSync(path.join(s.dir, 'q', 'log'))) {
      assert.equal(fs.readFileSync(path.join(s.dir, 'q', 'log', f)).includes('secret'), false);
    }
    // Once the unencrypted owner has closed, nothing is shared and the files decide: encryption is refused at open
    // only when they say otherwise, so this opens (and encrypts what it adds).
    const secret = s.queue('q', { encryption: { key } });
    await secret.add('s', { text: 'secret-marker' });
    await secret.close();
    for (const f of fs.readdirSync(path.join(s.dir, 'q', 'log'))) {
      assert.equal(fs.readFileSync(path.join(s.dir, 'q', 'log', f)).includes('secret-marker'), false, 'job data in clear');
    }
  });

  it('compares resolved values: defaults given explicitly, or compression as its default threshold, agree', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { compression: true });
    const explicit = s.queue('q', {
      durability: 'none', compression: { threshold: 256 }, maxSegmentBytes: 64 * 1024 * 1024, batchIntervalMs: 5,
      maxDataBytes: 4 * 1024 * 1024, leaseMs: 30_000, maxStalledCount: 1, checkpointEvery: 100_000,
    });
    await q.add('a', 1);
    assert.deepEqual(await explicit.getJobCounts('waiting'), { waiting: 1 });
  });

  it("shares the owner's value of every option a later handle leaves out, as a BullMQ Worker given only its connection", SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { durability: 'batch', leaseMs: 1000, maxStalledCount: 3, compression: true, encryption: { key } });
    // Only dir (and the internal seams setup adds): no conflict, and the owner's values hold for it.
    const w = new Worker('q', async () => 'ok', { dir: s.dir });
    const other = new Queue('q', { dir: s.dir });
    t.after(async () => {
      await w.close();
      await other.close();
    });
    const done = waitFor(w, 'completed');
    await other.add('from-the-second', { secret: 'sealed-by-the-owner-key' });
    await done;
    assert.deepEqual(await q.getJobCounts('completed'), { completed: 1 });
    for (const f of fs.readdirSync(path.join(s.dir, 'q', 'log'))) {
      assert.equal(fs.readFileSync(path.join(s.dir, 'q', 'log', f)).includes('sealed-by-the-owner-key'), false, 'encrypted by the owner');
    }
  });

  it("lets handles differ in what is theirs alone: a Queue's defaultJobOptions, a Worker's concurrency", SAFETY, async (t) => {
    const s = setup(t);
    const a = s.queue('q', { defaultJobOptions: { attempts: 2 } });
    const b = s.queue('q', { defaultJobOptions: { priority: 5 } });
    const w = s.worker('q', async () => 'ok', { concurrency: 7 });
    const both = waitForCount(w, 'completed', 2);
    const [ja, jb] = [await a.add('a', null), await b.add('b', null)];
    assert.deepEqual([ja.opts.attempts, ja.opts.priority, jb.opts.attempts, jb.opts.priority], [2, 0, 1, 5]);
    await both;
  });

  it('opens with other options once every handle with the old ones has closed', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue('q', { leaseMs: 1000 });
    await q.add('a', 1);
    assert.throws(() => s.queue('q', { leaseMs: 2000 }), { code: 'ERR_OPTIONS_CONFLICT' });
    await q.close();
    const again = s.queue('q', { leaseMs: 2000 });
    assert.equal(again.opts.leaseMs, 2000);
    assert.deepEqual(await again.getJobCounts('waiting'), { waiting: 1 });
  });
});
