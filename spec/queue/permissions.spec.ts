/**
 * Security by default: everything a queue puts on disk is its user's alone — files 0600, directories 0700 —
 * whatever the process's umask lets through. Checked over a whole life of a queue: create, add, run, fail into a
 * dead-letter queue, remove and compact, checkpoint at close, reopen, and a reopen that quarantines damage.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Queue, Worker, type Job } from '../../lib/index.js';
import { flipByte, segmentFiles, tempDir } from '../helpers/tmp.js';

/** Every path below `root` (and root) whose mode is not private, as "mode path". */
function notPrivate(root: string): string[] {
  const bad: string[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    const mode = st.mode & 0o777;
    if (st.isDirectory()) {
      if (mode !== 0o700) bad.push(`${mode.toString(8)} ${path.relative(root, p) || '.'}/`);
      for (const name of fs.readdirSync(p)) walk(path.join(p, name));
    } else if (mode !== 0o600) {
      bad.push(`${mode.toString(8)} ${path.relative(root, p)}`);
    }
  };
  walk(root);
  return bad;
}

describe('permissions of what a queue writes', () => {
  it('makes every file 0600 and every directory 0700 over a queue\'s life, even with umask 0', async (t) => {
    const before = process.umask(0); // nothing masked: only the modes spoolq asks for count
    t.after(() => process.umask(before));
    const root = path.join(tempDir(t), 'data');
    const opts = { dir: root, maxSegmentBytes: 4096, checkpointEvery: 50 };

    const q = new Queue('mail', opts);
    const dead = new Queue('mail-dead', opts);
    const done = new Promise<void>((resolve) => {
      let left = 60;
      const w = new Worker('mail', async (job: Job) => {
        if (job.name === 'bad') throw new Error('no');
        return { ok: job.id };
      }, opts);
      const settle = (): void => {
        if (--left === 0) void w.close().then(resolve);
      };
      w.on('completed', settle);
      w.on('failed', settle);
    });
    await q.addBulk(Array.from({ length: 60 }, (_, i) => ({
      name: i % 10 === 0 ? 'bad' : 'good',
      data: { i, pad: 'x'.repeat(100) },
      opts: { deadLetter: 'mail-dead', removeOnComplete: i % 2 === 0 },
    })));
    await done;
    await q.compact();
    await q.close();
    await dead.close();
    assert.ok(segmentFiles(path.join(root, 'mail')).length > 1, 'the log rolled, so sealed segments exist');
    assert.deepEqual(notPrivate(root), []);

    // Damage in a sealed segment: the reopen quarantines it, and the quarantine is private too.
    const sealed = segmentFiles(path.join(root, 'mail'))[0]!;
    flipByte(sealed, Math.floor(fs.statSync(sealed).size / 2));
    fs.rmSync(path.join(root, 'mail', 'index'), { force: true });
    const again = new Queue('mail', opts);
    again.on('error', () => undefined); // the damage report
    await again.waitUntilReady();
    await again.close();
    assert.ok(fs.existsSync(path.join(root, 'mail', 'quarantine')), 'the damage was quarantined');
    assert.deepEqual(notPrivate(root), []);
  });
});
