/**
 * lib/queue/remote/address.ts: where the owner's socket goes (the queue directory, or the temp dir past the OS
 * limit), its private directory, and removing what a dead owner left, never anything else.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  maxSocketPathBytes, prepareSocketPath, removeStaleSocket, socketPathFor, sweepStaleSockets,
} from '../../../lib/queue/remote/address.js';
import { startNode } from '../../helpers/child.js';
import { tempDir } from '../../helpers/tmp.js';

const SERVER = fileURLToPath(new URL('../../durability/children/remote-server.js', import.meta.url));

/** A directory under `base` whose path is at least `bytes` long. */
function longDir(base: string, bytes: number): string {
  let dir = base;
  while (Buffer.byteLength(dir) < bytes) dir = path.join(dir, 'a-rather-long-directory-name');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** A socket file with no listener: a child listens, then is killed -9, which leaves the file behind. */
async function staleSocket(t: { after: (fn: () => unknown) => void }, address: string): Promise<void> {
  const child = startNode(SERVER, [address, 'q', '1', `${address}.applied`, `${address}.dup`, '0']);
  t.after(() => child.kill());
  await child.line('listening');
  await child.kill();
  assert.equal(fs.lstatSync(address).isSocket(), true, 'kill -9 leaves the socket file');
}

describe('socket address', () => {
  it('puts the socket in the queue directory when the path fits the OS limit', (t) => {
    const dir = tempDir(t);
    assert.equal(socketPathFor(dir, 3), path.join(dir, 'socket', 'owner-3.sock'));
  });

  for (const platform of ['linux', 'darwin'] as const) {
    it(`falls back to the temp dir when the path passes the ${platform} limit, the same place for the same queue`, (t) => {
      const base = tempDir(t);
      const limit = maxSocketPathBytes(platform);
      const fits = longDir(base, 1);
      const long = longDir(base, limit);
      const tmp = tempDir(t);
      assert.ok(socketPathFor(fits, 1, { platform, tmpdir: tmp }).startsWith(fits));
      const a = socketPathFor(long, 1, { platform, tmpdir: tmp });
      assert.ok(a.startsWith(tmp + path.sep), a);
      assert.ok(Buffer.byteLength(a) <= limit);
      assert.equal(socketPathFor(long, 1, { platform, tmpdir: tmp }), a, 'deterministic per queue directory');
      assert.notEqual(socketPathFor(path.join(long, 'other'), 1, { platform, tmpdir: tmp }), a);
    });
  }

  it('refuses (ERR_INVALID_ARG) when even the temp dir path is too long', (t) => {
    const base = tempDir(t);
    const long = longDir(base, 200);
    assert.throws(() => socketPathFor(long, 1, { tmpdir: long }), { code: 'ERR_INVALID_ARG' });
  });

  it('names a pipe on Windows', () => {
    const a = socketPathFor('C:\\data\\emails', 12, { platform: 'win32' });
    assert.match(a, /^\\\\\.\\pipe\\spoolq-[0-9a-f]{16}-12$/);
  });

  it('makes the socket directory private (0700), also one that was there with a wider mode', (t) => {
    const dir = tempDir(t);
    fs.mkdirSync(path.join(dir, 'socket'), { mode: 0o755 });
    fs.chmodSync(path.join(dir, 'socket'), 0o755);
    const a = prepareSocketPath(dir, 1);
    assert.equal(fs.statSync(path.dirname(a)).mode & 0o777, 0o700);
  });

  it('serves a long queue path from a private directory under the temp dir, and listens there', async (t) => {
    const base = tempDir(t);
    const long = longDir(base, 120);
    const a = prepareSocketPath(long, 1);
    t.after(() => fs.rmSync(path.dirname(a), { recursive: true, force: true }));
    assert.ok(!a.startsWith(long), a);
    assert.equal(fs.statSync(path.dirname(a)).mode & 0o777, 0o700);
    const server = net.createServer().listen(a);
    await new Promise((r) => server.once('listening', r));
    await new Promise((r) => server.close(r));
  });

  it('does not use a predictable temp directory that belongs to someone else', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, (t) => {
    const base = tempDir(t);
    const tmp = tempDir(t);
    const long = longDir(base, 120);
    const predictable = path.dirname(socketPathFor(long, 1, { tmpdir: tmp }));
    fs.mkdirSync(predictable, { mode: 0o777 });
    fs.chownSync(predictable, 65534, 65534);
    const a = prepareSocketPath(long, 1, { tmpdir: tmp });
    assert.notEqual(path.dirname(a), predictable);
    assert.ok(a.startsWith(tmp + path.sep));
    assert.equal(fs.statSync(path.dirname(a)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(predictable).uid, 65534, 'the squatter is left alone');
  });

  it('removes a socket whose listener was killed -9', async (t) => {
    const dir = tempDir(t);
    const a = prepareSocketPath(dir, 1);
    await staleSocket(t, a);
    assert.equal(await removeStaleSocket(a), true);
    assert.equal(fs.existsSync(a), false);
    assert.equal(await removeStaleSocket(a), false, 'nothing there is fine');
  });

  it('leaves alone a socket with a live listener, and a file that is not a socket (ERR_ADDRESS_IN_USE)', async (t) => {
    const dir = tempDir(t);
    const a = prepareSocketPath(dir, 1);
    const server = net.createServer().listen(a);
    await new Promise((r) => server.once('listening', r));
    await assert.rejects(removeStaleSocket(a), { code: 'ERR_ADDRESS_IN_USE' });
    assert.equal(fs.lstatSync(a).isSocket(), true);
    await new Promise((r) => server.close(r));
    const file = path.join(dir, 'socket', 'owner-2.sock');
    fs.writeFileSync(file, 'user data');
    await assert.rejects(removeStaleSocket(file), { code: 'ERR_ADDRESS_IN_USE' });
    assert.equal(fs.readFileSync(file, 'utf8'), 'user data');
  });

  it('sweeps the stale sockets of older owners beside its own, and nothing else', async (t) => {
    const dir = tempDir(t);
    const stale = prepareSocketPath(dir, 1);
    await staleSocket(t, stale);
    const live = prepareSocketPath(dir, 2);
    const server = net.createServer().listen(live);
    await new Promise((r) => server.once('listening', r));
    t.after(() => new Promise((r) => server.close(r)));
    const other = path.join(dir, 'socket', 'notes.txt');
    fs.writeFileSync(other, 'x');
    const mine = prepareSocketPath(dir, 3);
    assert.deepEqual(await sweepStaleSockets(mine), [stale]);
    assert.equal(fs.existsSync(stale), false);
    assert.equal(fs.lstatSync(live).isSocket(), true, 'a live older owner keeps its socket');
    assert.equal(fs.existsSync(other), true);
  });
});
