/**
 * Opening a queue where it cannot be: every open ends (no unbounded retry anywhere in it) and says what is wrong,
 * the errno and the path. /proc refuses new directories with ENOENT; a read-only file system with EROFS, through
 * the Fs seam always, and on a real read-only mount where the test can make one (root, mount available).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Queue } from '../../lib/index.js';
import { INTERNAL_FS } from '../../lib/queue/options.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';

const opener = fileURLToPath(new URL('./children/queue-opener.js', import.meta.url));
type Err = Error & { code?: string; cause?: { code?: string } };

/** Opens queue `q` under `root` in a child (a hang in a synchronous loop cannot be timed out in-process). */
function openInChild(root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opener, root, 'q'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    // A safety net, not a measurement: an open that has not ended in 20 s is the hang this test is about.
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`opening a queue under ${root} did not end within 20 s`));
    }, 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      if (out.includes('\n')) {
        clearTimeout(guard);
        child.stdin.end();
        resolve(out.slice(0, out.indexOf('\n')));
      }
    });
    child.on('error', reject);
  });
}

async function openError(root: string, ffs?: FaultFs): Promise<Err> {
  const q = new Queue('q', { dir: root, durability: 'fsync', ...(ffs ? { [INTERNAL_FS]: ffs } : {}) } as never);
  try {
    await q.waitUntilReady();
  } catch (err) {
    return err as Err;
  } finally {
    await q.close();
  }
  throw new Error(`a queue opened under ${root}`);
}

describe('opening a queue where it cannot be', () => {
  it('ends with ERR_IO naming ENOENT and the directory under /proc', { timeout: 30_000 }, async () => {
    const line = await openInChild('/proc');
    assert.match(line, /^err ERR_IO /);
    assert.match(line, /ENOENT/);
    assert.match(line, /\/proc\/q\b/);
  });

  it('reports EROFS and the directory for a new queue on a read-only file system (Fs seam)', async (t) => {
    const root = path.join(tempDir(t), 'ro');
    const ffs = new FaultFs();
    ffs.readOnly = true;
    const err = await openError(root, ffs);
    assert.equal(err.code, 'ERR_IO');
    assert.equal(err.cause?.code, 'EROFS');
    assert.ok(err.message.includes(root) && /EROFS/.test(err.message), err.message);
    assert.equal(fs.existsSync(root), false);
  });

  it('reports EROFS for an existing queue on a read-only file system (Fs seam)', async (t) => {
    const root = tempDir(t);
    const first = new Queue('q', { dir: root, durability: 'fsync' });
    await first.add('a', 1);
    await first.close();
    const ffs = new FaultFs();
    ffs.readOnly = true;
    const err = await openError(root, ffs);
    assert.equal(err.code, 'ERR_IO');
    assert.equal(err.cause?.code, 'EROFS', err.message);
    assert.match(err.message, /EROFS/);
  });

  it('reports EROFS on a real read-only mount', async (t) => {
    // Its own temp dir, not tempDir(): the mount must go before the directory is removed (after hooks run in order).
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spoolq-ro-'));
    let mounted = false;
    t.after(() => {
      if (mounted) execFileSync('umount', [root], { stdio: 'pipe' });
      fs.rmSync(root, { recursive: true, force: true });
    });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'spoolq-ro-test', root], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      return t.skip(`cannot mount a tmpfs here (needs root and mount): ${String((err as Error).message).split('\n')[0]}`);
    }
    const first = new Queue('q', { dir: root, durability: 'fsync' });
    await first.add('a', 1);
    await first.close();
    execFileSync('mount', ['-o', 'remount,ro', root], { stdio: 'pipe' });
    const existing = await openError(root);
    assert.equal(existing.code, 'ERR_IO');
    assert.equal(existing.cause?.code, 'EROFS', existing.message);
    const fresh = await openError(path.join(root, 'sub'));
    assert.equal(fresh.code, 'ERR_IO');
    assert.equal(fresh.cause?.code, 'EROFS', fresh.message);
    assert.ok(fresh.message.includes(path.join(root, 'sub')), fresh.message);
  });
});
