import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readOwnerAddress, readOwnerPid, takeOwnerLock, writeOwnerAddress } from '../../lib/log/owner-lock.js';
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

  it('writes the owner address beside the pid, both 0600, and keeps the lock across refreshes after it', async (t) => {
    const dir = tempDir(t);
    const lost: SpoolError[] = [];
    const release = await takeOwnerLock(dir, { staleMs: 2_000, onLost: (e) => lost.push(e) });
    assert.equal(readOwnerAddress(dir), undefined, 'no address before the owner writes one');
    assert.equal(readOwnerPid(dir), process.pid);
    const lockDir = path.join(dir, 'owner');
    const mtimeBefore = fs.statSync(lockDir).mtimeMs;
    writeOwnerAddress(dir, { epoch: 7, address: '/some/where/owner-7.sock' });
    assert.deepEqual(readOwnerAddress(dir), { epoch: 7, address: '/some/where/owner-7.sock' });
    assert.equal(fs.statSync(lockDir).mtimeMs, mtimeBefore, 'filling the address in place leaves the lock mtime alone');
    for (const name of ['pid', 'address']) assert.equal(fs.statSync(path.join(lockDir, name)).mode & 0o777, 0o600, name);
    // Wait for two refreshes (each checks the mtime it set last), observed as the lock's mtime moving on twice.
    const deadline = Date.now() + 20_000;
    let seen = mtimeBefore;
    for (let moves = 0; moves < 2; ) {
      assert.ok(Date.now() < deadline, 'proper-lockfile did not refresh the lock within 20 s');
      await sleep(50);
      const now = fs.statSync(lockDir).mtimeMs;
      if (now !== seen) {
        moves++;
        seen = now;
      }
    }
    assert.deepEqual(lost, []);
    await release();
    assert.equal(readOwnerAddress(dir), undefined);
    assert.equal(fs.existsSync(lockDir), false);
  });

  it('reads no address from an empty, half-written or mistyped address file', (t) => {
    const dir = tempDir(t);
    fs.mkdirSync(path.join(dir, 'owner'));
    for (const text of ['', '{"epoch":3,"addr', '{"epoch":"3","address":"x"}', '{"epoch":3,"address":""}', 'null']) {
      fs.writeFileSync(path.join(dir, 'owner', 'address'), text);
      assert.equal(readOwnerAddress(dir), undefined, JSON.stringify(text));
    }
  });

  it('refuses to write an address without the lock (ERR_IO)', (t) => {
    const dir = tempDir(t);
    assert.throws(() => writeOwnerAddress(dir, { epoch: 1, address: 'x' }), { code: 'ERR_IO' });
    assert.equal(fs.existsSync(path.join(dir, 'owner')), false);
  });
});
