/**
 * The disk model the durability specs trust (spec/helpers/fault-fs.ts), checked against its own header: what
 * survives powerLoss(), and how injected faults fire.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { FaultFs } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';

function write(ffs: FaultFs, fd: number, text: string, position: number): void {
  const b = Buffer.from(text);
  ffs.writeSync(fd, b, 0, b.length, position);
}

function fsyncDirectory(ffs: FaultFs, dir: string): void {
  const fd = ffs.openSync(dir, 'r');
  ffs.fsyncSync(fd);
  ffs.closeSync(fd);
}

/** A file created through `ffs`, its data and its name durable. */
function durableFile(ffs: FaultFs, file: string, text: string): void {
  const fd = ffs.openSync(file, 'wx');
  write(ffs, fd, text, 0);
  ffs.fsyncSync(fd);
  ffs.closeSync(fd);
  fsyncDirectory(ffs, path.dirname(file));
}

const read = (file: string): string | undefined => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('FaultFs power loss', () => {
  it('keeps fsynced bytes and forgets the rest', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const file = path.join(dir, 'a');
    durableFile(ffs, file, 'synced');
    const fd = ffs.openSync(file, 'r+');
    write(ffs, fd, '+lost', 6);
    ffs.ftruncateSync(fd, 3);
    assert.equal(read(file), 'syn');
    ffs.powerLoss();
    assert.equal(read(file), 'synced');
  });

  it('removes a file whose creation no directory fsync covered, even with its data fsynced', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const fd = ffs.openSync(path.join(dir, 'new'), 'wx+');
    write(ffs, fd, 'data', 0);
    ffs.fsyncSync(fd);
    ffs.powerLoss();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('undoes a rename that no directory fsync covered, bringing back the file it replaced', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const target = path.join(dir, 'index');
    durableFile(ffs, target, 'old');
    durableFile(ffs, target + '.tmp', 'new');
    ffs.renameSync(target + '.tmp', target);
    assert.equal(read(target), 'new');
    ffs.powerLoss();
    assert.equal(read(target), 'old');
    assert.equal(read(target + '.tmp'), 'new');
  });

  it('keeps a rename once its directory is fsynced', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const target = path.join(dir, 'index');
    durableFile(ffs, target, 'old');
    durableFile(ffs, target + '.tmp', 'new');
    ffs.renameSync(target + '.tmp', target);
    fsyncDirectory(ffs, dir);
    ffs.powerLoss();
    assert.deepEqual(fs.readdirSync(dir), ['index']);
    assert.equal(read(target), 'new');
  });

  it('undoes an unlink that no directory fsync covered', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const file = path.join(dir, 'seg');
    durableFile(ffs, file, 'records');
    ffs.unlinkSync(file);
    ffs.powerLoss();
    assert.equal(read(file), 'records');
  });

  it('treats a file it first sees on disk as durable as it is', (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'before');
    fs.writeFileSync(file, 'was here');
    const ffs = new FaultFs();
    const fd = ffs.openSync(file, 'r+');
    write(ffs, fd, 'WAS', 0);
    ffs.powerLoss();
    assert.equal(read(file), 'was here');
  });

  it('makes what an fdatasync covered durable only when it calls back', async (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const file = path.join(dir, 'head');
    durableFile(ffs, file, 'a');
    const fd = ffs.openSync(file, 'r+');
    write(ffs, fd, 'b', 1);
    const first = await new Promise((resolve) => ffs.fdatasync(fd, resolve));
    assert.equal(first, null);
    write(ffs, fd, 'c', 2);
    const second: { err?: NodeJS.ErrnoException | null } = {};
    ffs.fdatasync(fd, (err) => (second.err = err));
    ffs.powerLoss();
    await turn();
    assert.equal(second.err?.code, 'EIO');
    assert.equal(read(file), 'ab');
  });

  it('never lets an older fdatasync undo a newer fsync', async (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const file = path.join(dir, 'head');
    durableFile(ffs, file, 'a');
    const fd = ffs.openSync(file, 'r+');
    const done = new Promise((resolve) => ffs.fdatasync(fd, resolve));
    write(ffs, fd, 'b', 1);
    ffs.fsyncSync(fd);
    assert.equal(await done, null);
    ffs.powerLoss();
    assert.equal(read(file), 'ab');
  });

  it('is dead after power loss: every call fails with EIO', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    ffs.powerLoss();
    assert.throws(() => ffs.openSync(path.join(dir, 'x'), 'w'), { code: 'EIO' });
    assert.throws(() => ffs.readdirSync(dir), { code: 'EIO' });
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

describe('FaultFs faults', () => {
  it('fails the nth call of a kind from now, once, and counts every call', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const fd = ffs.openSync(path.join(dir, 'f'), 'w');
    ffs.failNth('write', 2);
    write(ffs, fd, 'one', 0);
    assert.throws(() => write(ffs, fd, 'two', 3), { code: 'EIO' });
    write(ffs, fd, 'three', 3);
    assert.equal(ffs.counts.write, 3);
    assert.equal(ffs.counts.open, 1);
    assert.deepEqual(ffs.fired, [{ kind: 'write', n: 2, path: path.join(dir, 'f') }]);
    assert.equal(read(path.join(dir, 'f')), 'onethree');
    ffs.closeSync(fd);
  });

  it('tears a failing write when asked: half the bytes, then the error', (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const fd = ffs.openSync(path.join(dir, 'f'), 'w');
    ffs.failNth('write', 1, { code: 'ENOSPC', torn: true });
    assert.throws(() => write(ffs, fd, 'abcdef', 0), { code: 'ENOSPC' });
    assert.equal(read(path.join(dir, 'f')), 'abc');
    ffs.closeSync(fd);
  });

  it('fails an fdatasync by calling back with the error on a later turn', async (t) => {
    const dir = tempDir(t);
    const ffs = new FaultFs();
    const fd = ffs.openSync(path.join(dir, 'f'), 'w');
    ffs.failNth('fsync', 1);
    const result: { err?: NodeJS.ErrnoException | null } = {};
    ffs.fdatasync(fd, (err) => (result.err = err));
    assert.equal('err' in result, false, 'called back at once');
    await turn();
    assert.equal(result.err?.code, 'EIO');
    assert.equal(ffs.counts.fsync, 1);
    ffs.closeSync(fd);
  });

  for (const kind of ['rename', 'unlink', 'ftruncate', 'open'] as const) {
    it(`fails a ${kind} without doing it`, (t) => {
      const dir = tempDir(t);
      const ffs = new FaultFs();
      const file = path.join(dir, 'f');
      durableFile(ffs, file, 'content');
      const fd = ffs.openSync(file, 'r+');
      ffs.failNth(kind, 1);
      const call = {
        rename: () => ffs.renameSync(file, file + '2'),
        unlink: () => ffs.unlinkSync(file),
        ftruncate: () => ffs.ftruncateSync(fd, 0),
        open: () => ffs.openSync(file, 'w'),
      }[kind];
      assert.throws(call, { code: 'EIO' });
      ffs.closeSync(fd);
      assert.deepEqual(fs.readdirSync(dir), ['f']);
      assert.equal(read(file), 'content');
    });
  }
});
