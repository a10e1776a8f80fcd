/**
 * address: where an owner listens for its clients, and clearing what a dead owner left there. Owns socket paths
 * and their private directory; does not own writing the address into the lock (lib/log/owner-lock.ts) nor the
 * server (server.ts).
 *
 * POSIX: a Unix domain socket `owner-<epoch>.sock` in `<queue dir>/socket/`, a directory of our own, 0700, so
 * only this user reaches the socket whatever the queue directory's mode; the socket itself is chmod'ed 0600
 * right after bind, and the directory already keeps everybody else out before that, so there is no window.
 * One name per epoch: a new owner never has to take over the path of an old one (which may be alive but
 * stopped, SIGSTOP, and still accept connections into its backlog); it listens beside it, and clients find the
 * current one through the lock. An old socket whose listener is gone (kill -9 leaves its file) is removed by the
 * next owner's sweep; one whose listener still answers is left to it.
 *
 * A socket path has an OS limit (sun_path: 108 bytes on Linux, 104 on macOS and the BSDs, NUL included). When the
 * path in the queue directory would pass it, the directory is `<os.tmpdir()>/spoolq-<uid>-<hash>/` instead, the
 * hash naming the queue directory (so the next owner of the same queue finds and sweeps the same place). That
 * name is predictable in a shared /tmp: a directory there that is not ours, or not a plain directory, or that
 * cannot be made private is never used; a fresh mkdtemp directory (0700, random) is used instead, which a later
 * owner cannot sweep (a stale empty directory in tmp, the price of the squatter). Either way the address the
 * owner writes in its lock is the truth; nobody derives it.
 *
 * Windows: a named pipe `\\.\pipe\spoolq-<hash>-<epoch>` (named pipes live in their own namespace, with a limit of
 * 256 characters, and vanish with their last handle, so there is nothing to sweep). Its default security gives
 * write access, needed to connect, to the creating user, SYSTEM and administrators only. Written, not run here.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { SpoolError, ioError } from '../../errors.js';

export const SOCKET_DIR = 'socket';
const SOCKET_NAME = /^owner-\d+\.sock$/;

/** Longest socket path in bytes, NUL excluded. */
export function maxSocketPathBytes(platform: NodeJS.Platform = process.platform): number {
  return platform === 'linux' ? 107 : 103;
}

export interface SocketPathOptions {
  platform?: NodeJS.Platform;
  /** os.tmpdir() unless given (tests). */
  tmpdir?: string;
}

/**
 * The address the owner of `queueDir` at `epoch` listens on, computed without touching the disk. POSIX: in the
 * queue directory when short enough, else under the temp dir; ERR_INVALID_ARG when even that is too long.
 */
export function socketPathFor(queueDir: string, epoch: number, opts: SocketPathOptions = {}): string {
  const platform = opts.platform ?? process.platform;
  const dir = path.resolve(queueDir);
  const name = `owner-${epoch}.sock`;
  if (platform === 'win32') return `\\\\.\\pipe\\spoolq-${hashOf(dir)}-${epoch}`;
  const limit = maxSocketPathBytes(platform);
  const inQueue = path.join(dir, SOCKET_DIR, name);
  if (Buffer.byteLength(inQueue) <= limit) return inQueue;
  const inTmp = path.join(tmpSocketDir(dir, opts.tmpdir ?? os.tmpdir()), name);
  if (Buffer.byteLength(inTmp) <= limit) return inTmp;
  throw new SpoolError('ERR_INVALID_ARG', `no socket path fits the ${limit}-byte limit for ${dir}: the temp dir's path is too long (${inTmp})`);
}

/**
 * socketPathFor, with its private directory made (0700, ours; see the header). Returns the path to listen on,
 * which is another one (in a fresh mkdtemp directory) when the predictable temp directory is not safe to use.
 */
export function prepareSocketPath(queueDir: string, epoch: number, opts: SocketPathOptions = {}): string {
  const address = socketPathFor(queueDir, epoch, opts);
  if ((opts.platform ?? process.platform) === 'win32') return address;
  const dir = path.dirname(address);
  if (makePrivateDir(dir)) return address;
  const inQueue = path.dirname(dir) === path.resolve(queueDir);
  if (inQueue) throw new SpoolError('ERR_ADDRESS_IN_USE', `${dir} is not a directory of this user's that can be made private (0700)`);
  const fresh = fs.mkdtempSync(path.join(opts.tmpdir ?? os.tmpdir(), 'spoolq-'));
  return path.join(fresh, path.basename(address));
}

/**
 * Removes the socket file at `address` if nothing listens on it any more (connect is refused); true if it was
 * removed. A path that does not exist is fine (false). A socket that still answers, or a path that is not a
 * socket (a file of the user's, a symlink), is left alone: ERR_ADDRESS_IN_USE. A named pipe needs nothing.
 * Only the holder of the owner lock calls this, for addresses of its own queue, so no one binds a path
 * between the probe and the unlink.
 */
export async function removeStaleSocket(address: string, probeTimeoutMs = 1_000): Promise<boolean> {
  if (address.startsWith('\\\\')) return false;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(address);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`stat the socket ${address}`, err);
  }
  if (!st.isSocket()) throw new SpoolError('ERR_ADDRESS_IN_USE', `${address} is not a socket; it is left alone`);
  const answer = await probe(address, probeTimeoutMs);
  if (answer !== 'refused') {
    throw new SpoolError('ERR_ADDRESS_IN_USE', `${address} ${answer === 'live' ? 'has a live listener' : `cannot be probed (${answer})`}`);
  }
  try {
    fs.unlinkSync(address);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`remove the stale socket ${address}`, err);
  }
}

/**
 * Removes the stale sockets of older owners in the directory of `address` (all `owner-<n>.sock` but `address`
 * itself): those with a live listener stay. Best effort: an owner must not fail to start over litter.
 */
export async function sweepStaleSockets(address: string): Promise<string[]> {
  if (address.startsWith('\\\\')) return [];
  const dir = path.dirname(address);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return []; // no directory yet: nothing to sweep
  }
  const removed: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (!SOCKET_NAME.test(name) || file === address) continue;
    try {
      if (await removeStaleSocket(file)) removed.push(file);
    } catch {
      // A live (perhaps stopped) older owner, or something that is not ours to remove: leave it.
    }
  }
  return removed;
}

/** Removes the socket file of a server that has closed, and its directory when it was a temp one and is empty. */
export function removeSocketFile(address: string): void {
  if (address.startsWith('\\\\')) return;
  try {
    fs.unlinkSync(address);
  } catch {
    // Already gone (a sweep, or the user): nothing to do.
  }
  const dir = path.dirname(address);
  if (path.basename(dir) !== SOCKET_DIR) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // Not empty (another owner's socket beside it) or gone: leave it.
    }
  }
}

function tmpSocketDir(queueDir: string, tmpdir: string): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(tmpdir, `spoolq-${uid}-${hashOf(queueDir)}`);
}

function hashOf(dir: string): string {
  return createHash('sha256').update(dir).digest('hex').slice(0, 16);
}

/** Makes `dir` (one level) or checks the one there: a real directory, ours, mode 0700 after. False if not safe. */
function makePrivateDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`create the socket directory ${dir}`, err);
  }
  const st = fs.lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (!st.isDirectory() || st.uid !== uid) return false;
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
  return true;
}

function probe(address: string, timeoutMs: number): Promise<'live' | 'refused' | string> {
  return new Promise((resolve) => {
    const socket = net.connect(address);
    const timer = setTimeout(() => done('live'), timeoutMs); // a full backlog or a stopped process: not dead
    function done(answer: string): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    }
    socket.once('connect', () => done('live'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'refused' : err.code ?? err.message));
  });
}
