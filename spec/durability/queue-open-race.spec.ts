/**
 * Two processes that create the same fresh queue at the same moment: exactly one becomes its owner and the other
 * gets what any second process gets, ERR_LOCKED (not an ERR_IO from the two creations colliding). Real child
 * processes, many rounds, each on a fresh directory.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Queue, verifyLog } from '../../lib/index.js';
import { tempDir } from '../helpers/tmp.js';

const opener = fileURLToPath(new URL('./children/queue-opener.js', import.meta.url));
const ROUNDS = 20;

/** Starts an opener; resolves with its one line (a safety net of 20 s, not a measurement). */
function start(root: string): { child: ChildProcess; line: Promise<string> } {
  const child = spawn(process.execPath, [opener, root, 'q'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = new Promise<string>((resolve, reject) => {
    let out = '';
    const guard = setTimeout(() => reject(new Error('an opener said nothing within 20 s')), 20_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(guard);
        resolve(out.slice(0, nl));
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(guard);
      if (!out.includes('\n')) reject(new Error(`an opener exited (${code}) without a word`));
    });
  });
  return { child, line };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on('exit', () => resolve());
    child.stdin!.end();
  });
}

describe('two processes creating the same fresh queue', () => {
  it(`gives one the queue and the other ERR_LOCKED, in each of ${ROUNDS} rounds`, { timeout: 300_000 }, async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const root = tempDir(t);
      const a = start(root);
      const b = start(root);
      try {
        const lines = (await Promise.all([a.line, b.line])).sort();
        assert.equal(lines[1], 'ok', `round ${round}: nobody opened the queue: ${JSON.stringify(lines)}`);
        assert.match(lines[0]!, /^err ERR_LOCKED /, `round ${round}: ${JSON.stringify(lines)}`);
      } finally {
        await Promise.all([stop(a.child), stop(b.child)]);
      }
      const report = verifyLog(path.join(root, 'q'));
      assert.equal(report.ok, true, JSON.stringify(report.damage));
      assert.equal(fs.readdirSync(path.join(root, 'q')).some((n) => n.endsWith('.tmp')), false);
    }
  });
});

describe('a queue directory caught while another process creates it', () => {
  // What the loser of the race can list between the winner's manifest and its first records: the winner's
  // tickets/ (and later socket/) folders, with or without the QUEUE file yet. Deterministic: the listing is staged.
  for (const [what, names] of [
    ['tickets/ and socket/ only', ['tickets', 'socket']],
    ['QUEUE written, tickets/ made', ['QUEUE-from-the-winner', 'tickets']],
  ] as const) {
    it(`is not taken for somebody else's directory: ${what}`, async (t) => {
      const root = tempDir(t);
      const dir = path.join(root, 'q');
      fs.mkdirSync(dir);
      for (const n of names) {
        if (n === 'QUEUE-from-the-winner') {
          const winner = new Queue('q', { dir: root, durability: 'none' });
          await winner.waitUntilReady();
          await winner.close();
        } else {
          fs.mkdirSync(path.join(dir, n), { recursive: true });
        }
      }
      const q = new Queue('q', { dir: root, durability: 'none' });
      await q.add('a', 1);
      assert.deepEqual(await q.getJobCounts('waiting'), { waiting: 1 });
      await q.close();
    });
  }

  it("still refuses a directory that holds something a queue does not, beside tickets/", async (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'q');
    fs.mkdirSync(path.join(dir, 'tickets'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const q = new Queue('q', { dir: root, durability: 'none' });
    await assert.rejects(q.waitUntilReady(), { code: 'ERR_NOT_A_LOG' });
    await q.close();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['notes.txt', 'tickets']);
  });
});
