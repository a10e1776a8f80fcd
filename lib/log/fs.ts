/**
 * The Fs seam: every file-system call the log makes goes through an object of this shape, so tests can hand the
 * log one that fails the nth write, fsync or rename, or forgets everything not yet fsynced (spec/helpers). The
 * queue's tickets and leases (queue/tickets.ts) go through the same object, so claims and renewals can fail too.
 *
 * Private by default: a file it creates is 0600 and a directory 0700 (before the umask, which can only take
 * bits away), whoever calls it. A queue's data, tickets and index are its owner's user's alone.
 *
 * Almost every call is synchronous on purpose. On a local disk, a write into the page cache or a read that hits
 * it costs a few microseconds, less than a hop through libuv's thread pool. The one call that waits on the
 * device for long, the group commit's fdatasync, is asynchronous so the event loop keeps running (and keeps
 * collecting the next batch) while the disk works.
 */
import * as nodeFsModule from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../errors.js';

export interface Fs {
  /** `flags` as node takes them: a string, or O_* bits (then `mode` for a file it creates). */
  openSync(path: string, flags: string | number, mode?: number): number;
  closeSync(fd: number): void;
  readSync(fd: number, buf: Buffer, off: number, len: number, position: number): number;
  writeSync(fd: number, buf: Buffer, off: number, len: number, position: number): number;
  /** Flushes data and metadata; used for directories and for new or sealed files. */
  fsyncSync(fd: number): void;
  /** Flushes data (and the size); the group commit's sync. */
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  fstatSync(fd: number): { size: number };
  ftruncateSync(fd: number, len: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  readdirSync(path: string): string[];
  /** Without `recursive`, one directory (EEXIST when it is there); see makeDirs for a bounded walk. */
  mkdirSync(path: string, opts?: { recursive?: boolean }): void;
  existsSync(path: string): boolean;
  readFileSync(path: string): Buffer;
  /** Times in seconds since the epoch, as node takes a number (tickets: a lease's renewal). */
  utimesSync(path: string, atime: number, mtime: number): void;
  statSync(path: string): { mtimeMs: number };
}

/** The modes of what the seam creates (header). */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

export const nodeFs: Fs = {
  openSync: (p, flags, mode) => nodeFsModule.openSync(p, flags, mode ?? FILE_MODE),
  closeSync: (fd) => nodeFsModule.closeSync(fd),
  readSync: (fd, buf, off, len, pos) => nodeFsModule.readSync(fd, buf, off, len, pos),
  writeSync: (fd, buf, off, len, pos) => nodeFsModule.writeSync(fd, buf, off, len, pos),
  fsyncSync: (fd) => nodeFsModule.fsyncSync(fd),
  fdatasync: (fd, cb) => nodeFsModule.fdatasync(fd, cb),
  fstatSync: (fd) => nodeFsModule.fstatSync(fd),
  ftruncateSync: (fd, len) => nodeFsModule.ftruncateSync(fd, len),
  renameSync: (a, b) => nodeFsModule.renameSync(a, b),
  unlinkSync: (p) => nodeFsModule.unlinkSync(p),
  readdirSync: (p) => nodeFsModule.readdirSync(p),
  mkdirSync: (p, opts) => void nodeFsModule.mkdirSync(p, { ...opts, mode: DIR_MODE }),
  existsSync: (p) => nodeFsModule.existsSync(p),
  readFileSync: (p) => nodeFsModule.readFileSync(p),
  utimesSync: (p, atime, mtime) => nodeFsModule.utimesSync(p, atime, mtime),
  statSync: (p) => nodeFsModule.statSync(p),
};

/** Makes a directory's entries (creations, renames, unlinks) durable. */
export function fsyncDir(fs: Fs, dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    throw ioError(`fsync directory ${path.basename(dir)}`, err);
  } finally {
    if (fd !== undefined) closeQuietly(fs, fd);
  }
}

/**
 * Creates `dir` and its missing parents, one plain mkdir each: at most one call per missing path component, so it
 * always ends. (Node's recursive mkdir retries a component that keeps saying ENOENT, as /proc does, forever.) A
 * failure is ERR_IO naming the errno and the directory it could not create; EEXIST (made meanwhile) is fine.
 */
export function makeDirs(fs: Fs, dir: string): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !fs.existsSync(at); ) {
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i]!);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw ioError(`create directory ${missing[i]}`, err);
    }
  }
}

/** Writes all of buf at `position`, looping over short writes. */
export function writeFully(fs: Fs, fd: number, buf: Buffer, off: number, len: number, position: number): void {
  while (len > 0) {
    const n = fs.writeSync(fd, buf, off, len, position);
    off += n;
    len -= n;
    position += n;
  }
}

/** Reads up to len bytes at `position`, looping over short reads; returns how many were read. */
export function readFully(fs: Fs, fd: number, buf: Buffer, off: number, len: number, position: number): number {
  let total = 0;
  while (total < len) {
    const n = fs.readSync(fd, buf, off + total, len - total, position + total);
    if (n === 0) break;
    total += n;
  }
  return total;
}

/**
 * Replaces `file` atomically: file.tmp written and fsynced, renamed over file, directory fsynced. A crash leaves
 * the old file or the new one (and maybe a stale .tmp, which recovery removes).
 */
export function replaceFileAtomic(fs: Fs, file: string, data: Buffer | Buffer[]): void {
  const tmp = file + '.tmp';
  const fd = writeTemp(fs, file, tmp, data);
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    closeQuietly(fs, fd);
    throw ioError(`replace ${path.basename(file)}`, err);
  }
  closeAndRename(fs, fd, tmp, file);
}

/**
 * replaceFileAtomic, with the file's fsync on the thread pool: for files of megabytes (the index of a large
 * queue), whose sync would otherwise stop the event loop for milliseconds. Same steps, same crash story.
 */
export async function replaceFileAtomicAsync(fs: Fs, file: string, data: Buffer | Buffer[]): Promise<void> {
  const tmp = file + '.tmp';
  const fd = writeTemp(fs, file, tmp, data);
  try {
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    closeQuietly(fs, fd);
    throw ioError(`replace ${path.basename(file)}`, err);
  }
  closeAndRename(fs, fd, tmp, file);
}

/** Creates `tmp` with `data`; returns its open fd. */
function writeTemp(fs: Fs, file: string, tmp: string, data: Buffer | Buffer[]): number {
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    let at = 0;
    for (const part of Array.isArray(data) ? data : [data]) {
      writeFully(fs, fd, part, 0, part.length, at);
      at += part.length;
    }
    return fd;
  } catch (err) {
    if (fd !== undefined) closeQuietly(fs, fd);
    throw ioError(`replace ${path.basename(file)}`, err);
  }
}

/** The end of a replacement, once `tmp` is synced: close, rename over `file`, fsync the directory. */
function closeAndRename(fs: Fs, fd: number, tmp: string, file: string): void {
  try {
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (err) {
    throw ioError(`replace ${path.basename(file)}`, err);
  }
  fsyncDir(fs, path.dirname(file));
}

export function closeQuietly(fs: Fs, fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Closing is best effort on paths that are already failing or only read; the data's fate was decided by the
    // write and fsync calls before it, whose errors are reported.
  }
}

/** Opens a file, wrapping a failure as ERR_IO (the errno stays on `cause`). */
export function openOrThrow(fs: Fs, file: string, flags: string): number {
  try {
    return fs.openSync(file, flags);
  } catch (err) {
    throw ioError(`open ${file}`, err);
  }
}
