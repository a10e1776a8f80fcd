/**
 * FaultFs: the Fs seam over the real node:fs (lib/log/fs.ts `nodeFs`) with two powers, for durability tests.
 *
 * 1. Faults. `failNth(kind, n)` makes the nth call of `kind` from now fail, once, with an Error whose `code` is
 *    EIO (or the code given, e.g. ENOSPC). Kinds: write (writeSync), fsync (fsyncSync and fdatasync, files and
 *    directories alike), rename, open, ftruncate, unlink, mkdir, utimes. A failing call does nothing (a failing write may be
 *    told to write the first half of its bytes first, like a device that died mid-request); a failing fdatasync
 *    calls back with the error on a later turn of the event loop. `counts` says how many calls of each kind
 *    were made, failed ones included. `full` (every write fails with ENOSPC) and `readOnly` (every change fails
 *    with EROFS) model a whole file system in that state, for as long as they are set.
 *
 * 2. Power loss. The model of the disk these tests trust, deliberately the least a POSIX file system promises:
 *    - A file is an inode with two contents: `current` (what reads see) and `synced` (what survives a power
 *      loss). writeSync and ftruncateSync change `current`; fsyncSync or fdatasync on any fd of the inode copy
 *      `current` to `synced` (an fdatasync copies what `current` was when it was called, once it calls back;
 *      `synced` never goes back to an older content). The real fdatasync is done at once and reported on a
 *      later turn of the event loop, so the order of events, and so every test, is deterministic.
 *    - A name is durable only through its directory. Creating a file (open with a 'w' flag where it did not
 *      exist), renaming and unlinking change the directory's `current` entries at once; they become durable
 *      when fsyncSync is called on an fd opened on that directory. A rename over an existing name that is not
 *      yet durable leaves the old target durable, with its own synced content.
 *    - Whatever FaultFs first sees already on disk (a file it is asked to open, rename or unlink) counts as
 *      durable as it is. Directories (mkdirSync) are durable at once, and renaming directories is not supported.
 *    `powerLoss()` rewrites the real directory tree to its durable state: every name the model knows is
 *    removed, then every durable name is written back with its inode's synced bytes (so a file with two durable
 *    names comes back as two copies: harmless here, since the log never links). Afterwards this FaultFs is dead,
 *    like the process that used it: every call throws EIO (closeSync does nothing, since powerLoss already
 *    closed every fd it knew), and fdatasyncs still in flight call back with EIO. The test reopens the
 *    directory with the real fs.
 *
 * Files are small in tests, so contents are kept as whole Buffers. Reads (readSync, fstatSync, readdirSync,
 * existsSync, readFileSync) pass straight through: the real file always equals the model's `current`.
 */
import * as realFs from 'node:fs';
import * as path from 'node:path';
import { nodeFs, type Fs } from '../../lib/log/fs.js';

export type FaultKind = 'write' | 'fsync' | 'rename' | 'open' | 'ftruncate' | 'unlink' | 'mkdir' | 'utimes';

export interface FaultOptions {
  /** The error's code. Default EIO. */
  code?: string;
  /** For write: write the first half of the bytes, then fail. */
  torn?: boolean;
}

interface Inode {
  current: Buffer;
  synced: Buffer;
  /** Bumped by every change of `current`; `syncedVersion` is the version `synced` copies. */
  version: number;
  syncedVersion: number;
}

type Handle = { dir: string } | { inode: Inode; path: string };

interface Armed extends FaultOptions {
  kind: FaultKind;
  /** The value counts[kind] has when the call to fail is made. */
  at: number;
}

export class FaultFs implements Fs {
  readonly counts: Record<FaultKind, number> = { write: 0, fsync: 0, rename: 0, open: 0, ftruncate: 0, unlink: 0, mkdir: 0, utimes: 0 };
  /** A full disk: while true, every writeSync fails with ENOSPC and writes nothing (counted, not in `fired`). */
  full = false;
  /**
   * A read-only file system: while true, every call that would change something (write, ftruncate, rename,
   * unlink, mkdir, an open for writing or creating) fails with EROFS. Reads pass.
   */
  readOnly = false;
  /** Every injected fault that fired, in order: which call, and the file it was about. */
  readonly fired: Array<{ kind: FaultKind; n: number; path: string | undefined }> = [];
  #armed: Armed[] = [];
  #dead = false;
  readonly #fds = new Map<number, Handle>();
  /** Current names: absolute path → inode, or null once renamed away or unlinked. */
  readonly #names = new Map<string, Inode | null>();
  /** Durable names: absolute path → inode; a path missing here is durably absent (if the model knows it). */
  readonly #durable = new Map<string, Inode>();

  /** Makes the nth call of `kind` from now on (n = 1: the very next) fail. */
  failNth(kind: FaultKind, n: number, opts: FaultOptions = {}): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
    this.#armed.push({ kind, at: this.counts[kind] + n, ...opts });
  }

  /** Counts a call; throws (or returns, for fdatasync) the fault armed for it, if any. */
  #count(kind: FaultKind, file: string | undefined, mutates = true): (Error & { code: string; fault?: Armed }) | undefined {
    if (this.#dead) throw fsError('EIO', `${kind} after power loss`);
    const n = ++this.counts[kind];
    if (this.readOnly && mutates && kind !== 'fsync') return fsError('EROFS', `read-only file system: ${kind}${file ? ` ${file}` : ''}`);
    if (this.full && kind === 'write') return fsError('ENOSPC', `disk full: write${file ? ` to ${file}` : ''}`);
    const i = this.#armed.findIndex((a) => a.kind === kind && a.at === n);
    if (i < 0) return undefined;
    const [fault] = this.#armed.splice(i, 1);
    this.fired.push({ kind, n, path: file });
    return Object.assign(fsError(fault!.code ?? 'EIO', `injected fault: ${kind} #${n}${file ? ` on ${file}` : ''}`), { fault });
  }

  #pathOf(fd: number): string | undefined {
    const h = this.#fds.get(fd);
    return h && ('dir' in h ? h.dir : h.path);
  }

  /** The inode a path names now, adopting a file the model has not seen as durable. */
  #inodeAt(file: string): Inode | undefined {
    const known = this.#names.get(file);
    if (known !== undefined) return known ?? undefined;
    let st: realFs.Stats;
    try {
      st = realFs.statSync(file);
    } catch {
      return undefined; // Nothing there: the model learns nothing.
    }
    if (!st.isFile()) return undefined;
    const content = realFs.readFileSync(file);
    const inode = { current: content, synced: Buffer.from(content), version: 0, syncedVersion: 0 };
    this.#names.set(file, inode);
    this.#durable.set(file, inode);
    return inode;
  }

  openSync(p: string, flags: string | number, mode?: number): number {
    const file = path.resolve(p);
    const { O_WRONLY, O_RDWR, O_TRUNC } = realFs.constants;
    const writes = typeof flags === 'string' ? /[wax+]/.test(flags) : (flags & (O_WRONLY | O_RDWR)) !== 0;
    const truncates = typeof flags === 'string' ? flags.includes('w') : (flags & O_TRUNC) !== 0;
    const fault = this.#count('open', file, writes);
    if (fault) throw fault;
    const existing = this.#inodeAt(file);
    const fd = nodeFs.openSync(file, flags, mode);
    if (realFs.fstatSync(fd).isDirectory()) {
      this.#fds.set(fd, { dir: file });
      return fd;
    }
    let inode = existing;
    if (!inode) {
      inode = { current: Buffer.alloc(0), synced: Buffer.alloc(0), version: 0, syncedVersion: 0 };
      this.#names.set(file, inode);
    } else if (truncates) {
      inode.current = Buffer.alloc(0);
      inode.version++;
    }
    this.#fds.set(fd, { inode, path: file });
    return fd;
  }

  closeSync(fd: number): void {
    if (this.#dead) return;
    this.#fds.delete(fd);
    nodeFs.closeSync(fd);
  }

  writeSync(fd: number, buf: Buffer, off: number, len: number, position: number): number {
    const fault = this.#count('write', this.#pathOf(fd));
    if (fault?.fault?.torn) this.#write(fd, buf, off, Math.floor(len / 2), position);
    if (fault) throw fault;
    return this.#write(fd, buf, off, len, position);
  }

  #write(fd: number, buf: Buffer, off: number, len: number, position: number): number {
    const n = nodeFs.writeSync(fd, buf, off, len, position);
    const h = this.#fds.get(fd);
    if (h && 'inode' in h) {
      const end = Math.max(h.inode.current.length, position + n);
      if (end > h.inode.current.length) h.inode.current = resized(h.inode.current, end);
      buf.copy(h.inode.current, position, off, off + n);
      h.inode.version++;
    }
    return n;
  }

  fsyncSync(fd: number): void {
    const fault = this.#count('fsync', this.#pathOf(fd));
    if (fault) throw fault;
    nodeFs.fsyncSync(fd);
    const h = this.#fds.get(fd);
    if (!h) return;
    if ('inode' in h) {
      markSynced(h.inode, Buffer.from(h.inode.current), h.inode.version);
      return;
    }
    for (const [file, inode] of this.#names) {
      if (path.dirname(file) !== h.dir) continue;
      if (inode) this.#durable.set(file, inode);
      else this.#durable.delete(file);
    }
  }

  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
    let fault;
    try {
      fault = this.#count('fsync', this.#pathOf(fd));
    } catch (err) {
      fault = err as NodeJS.ErrnoException;
    }
    if (fault) return void setImmediate(cb, fault);
    const h = this.#fds.get(fd);
    const inode = h && 'inode' in h ? h.inode : undefined;
    const snapshot = inode && { bytes: Buffer.from(inode.current), version: inode.version };
    nodeFs.fsyncSync(fd);
    setImmediate(() => {
      // Power lost before the callback: nobody was told the data is durable, and the model says it is not.
      if (this.#dead) return cb(fsError('EIO', 'fdatasync interrupted by power loss'));
      if (inode) markSynced(inode, snapshot!.bytes, snapshot!.version);
      cb(null);
    });
  }

  fstatSync(fd: number): { size: number } {
    this.#alive();
    return nodeFs.fstatSync(fd);
  }

  /** Times only: the model keeps no metadata, so a power loss keeps whatever the real file has. */
  utimesSync(p: string, atime: number, mtime: number): void {
    const fault = this.#count('utimes', path.resolve(p));
    if (fault) throw fault;
    nodeFs.utimesSync(p, atime, mtime);
  }

  statSync(p: string): { mtimeMs: number } {
    this.#alive();
    return nodeFs.statSync(p);
  }

  readSync(fd: number, buf: Buffer, off: number, len: number, position: number): number {
    this.#alive();
    return nodeFs.readSync(fd, buf, off, len, position);
  }

  ftruncateSync(fd: number, len: number): void {
    const fault = this.#count('ftruncate', this.#pathOf(fd));
    if (fault) throw fault;
    nodeFs.ftruncateSync(fd, len);
    const h = this.#fds.get(fd);
    if (h && 'inode' in h) {
      h.inode.current = resized(h.inode.current, len);
      h.inode.version++;
    }
  }

  renameSync(from: string, to: string): void {
    const a = path.resolve(from);
    const b = path.resolve(to);
    const fault = this.#count('rename', a);
    if (fault) throw fault;
    const inode = this.#inodeAt(a);
    if (!inode && realFs.existsSync(a)) throw new Error(`FaultFs cannot rename ${a}: not a regular file`);
    this.#inodeAt(b);
    nodeFs.renameSync(a, b);
    this.#names.set(b, inode!);
    this.#names.set(a, null);
  }

  unlinkSync(p: string): void {
    const file = path.resolve(p);
    const fault = this.#count('unlink', file);
    if (fault) throw fault;
    this.#inodeAt(file);
    nodeFs.unlinkSync(file);
    this.#names.set(file, null);
  }

  readdirSync(p: string): string[] {
    this.#alive();
    return nodeFs.readdirSync(p);
  }

  mkdirSync(p: string, opts?: { recursive?: boolean }): void {
    const fault = this.#count('mkdir', path.resolve(p));
    if (fault) throw fault;
    nodeFs.mkdirSync(p, opts);
  }

  existsSync(p: string): boolean {
    this.#alive();
    return nodeFs.existsSync(p);
  }

  readFileSync(p: string): Buffer {
    this.#alive();
    return nodeFs.readFileSync(p);
  }

  #alive(): void {
    if (this.#dead) throw fsError('EIO', 'call after power loss');
  }

  /** Cuts the power: the real tree becomes what the model says is durable, and this FaultFs dies. */
  powerLoss(): void {
    this.#dead = true;
    for (const fd of this.#fds.keys()) realFs.closeSync(fd);
    this.#fds.clear();
    for (const file of new Set([...this.#names.keys(), ...this.#durable.keys()])) {
      realFs.rmSync(file, { force: true });
      const inode = this.#durable.get(file);
      if (inode) realFs.writeFileSync(file, inode.synced);
    }
  }
}

/** Durability only grows: an older fdatasync that calls back after a newer fsync changes nothing. */
function markSynced(inode: Inode, bytes: Buffer, version: number): void {
  if (version < inode.syncedVersion) return;
  inode.synced = bytes;
  inode.syncedVersion = version;
}

function fsError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** `buf` cut to, or zero-extended to, `len` bytes (a fresh Buffer when it grows). */
function resized(buf: Buffer, len: number): Buffer {
  if (len <= buf.length) return buf.subarray(0, len);
  const out = Buffer.alloc(len);
  buf.copy(out);
  return out;
}
