import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { takeOwnerLock } from '../../lib/log/owner-lock.js';
import type { SpoolError } from '../../lib/errors.js';
import { tempDir } from '../helpers/tmp.js';

const lib = fileURLToPath(new URL('../../lib/log/owner-lock.js', import.meta.url));

describe('owner lock', () => {
  it('keeps the lock across its refreshes (the pid file does not disturb them)', async (t) => {
    const dir = tempDir(t);
    const lost: SpoolError[] = [];
    const release = await takeOwnerLock(dir, { staleMs: 2_000, onLost: (e) => lost.push(e) });
    await sleep(2_500); // two refreshes at 1 s; each checks the mtime it set
    assert.deepEqual(lost, []);
    assert.equal(fs.readFileSync(path.join(dir, 'owner', 'pid'), 'utf8'), String(process.pid));
    await release();
    assert.equal(fs.existsSync(path.join(dir, 'owner')), false);
  });

  it('refuses a second owner while the first lives', async (t) => {
    const dir = tempDir(t);
    const release = await takeOwnerLock(dir, { onLost: () => undefined });
    await assert.rejects(takeOwnerLock(dir, { onLost: () => undefined }), { code: 'ERR_LOCKED' });
    await release();
    const again = await takeOwnerLock(dir, { onLost: () => undefined });
    await again();
  });

  it('takes over at once from an owner killed with SIGKILL', async (t) => {
    const dir = tempDir(t);
    const code = `const { takeOwnerLock } = await import(${JSON.stringify(lib)});
      await takeOwnerLock(${JSON.stringify(dir)}, { onLost: () => {} }); console.log('locked'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await assert.rejects(takeOwnerLock(dir, { onLost: () => undefined }), { code: 'ERR_LOCKED' });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    // The dead owner's lock is fresh by mtime (stale only after 10 s), but its pid is gone.
    const release = await takeOwnerLock(dir, { onLost: () => undefined });
    assert.equal(fs.readFileSync(path.join(dir, 'owner', 'pid'), 'utf8'), String(process.pid));
    await release();
  });

  it('takes over from an owner killed between making the lock and writing its pid, after a short grace', async (t) => {
    const dir = tempDir(t);
    // What a kill -9 inside that window leaves: the lock directory, fresh, with no pid file in it.
    fs.mkdirSync(path.join(dir, 'owner'));
    const started = Date.now();
    const release = await takeOwnerLock(dir, { onLost: () => undefined });
    const waited = Date.now() - started;
    assert.ok(waited >= 900, `took over after ${waited} ms, before the grace for a holder still writing its pid`);
    assert.equal(fs.readFileSync(path.join(dir, 'owner', 'pid'), 'utf8'), String(process.pid));
    await release();
  });

  it('does not break a lock whose holder writes its pid within the grace', async (t) => {
    const dir = tempDir(t);
    fs.mkdirSync(path.join(dir, 'owner'));
    // A live holder (this process stands in for it) that writes its pid a little late.
    setTimeout(() => fs.writeFileSync(path.join(dir, 'owner', 'pid'), String(process.pid)), 200);
    await assert.rejects(takeOwnerLock(dir, { onLost: () => undefined }), { code: 'ERR_LOCKED' });
    assert.equal(fs.readFileSync(path.join(dir, 'owner', 'pid'), 'utf8'), String(process.pid));
  });
});
