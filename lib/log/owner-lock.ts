/**
 * The owner lock: at most one process appends to a queue's log. proper-lockfile makes `<dir>/owner` a directory
 * (mkdir is atomic) and refreshes its mtime every `update` ms; a lock whose mtime is older than `stale` ms is
 * taken over. Beside that, we write our pid into `<dir>/owner/pid`. proper-lockfile removes its lock with rmdir,
 * which refuses a directory that holds a file, so it is handed an fs whose rmdir removes our files too.
 *
 * Why the pid: after kill -9 the dead owner's lock still looks fresh for up to `stale` ms, and an app restarted
 * at once would get ERR_LOCKED. spoolq is single-host, so when the lock is held we read the pid and ask the
 * kernel whether it lives (kill(pid, 0)). If it is gone, the lock is stale now:
 *   1. rename `owner` to a unique `owner.<random>.stale` (atomic: only one contender wins it);
 *   2. read the pid inside what we moved. If it is still the dead pid, delete it and take the lock normally.
 *      If not (a live process took the lock between our check and our rename), move it back.
 * A reused pid makes a dead owner look alive; then the mtime rule still frees the lock after `stale` ms.
 *
 * A lock with no pid file: the holder is between proper-lockfile's mkdir and our write of the pid, a window of
 * microseconds, or it was killed inside that window. So we wait until the lock directory is NO_PID_GRACE_MS old;
 * if there is still no pid then, its holder is taken as dead and the lock is broken the same way (step 2 then
 * checks that no pid appeared in what we moved). Without this, a kill -9 in that window locked the queue for
 * `stale` ms.
 *
 * The address: beside `pid`, `address` tells clients where the owner listens (lib/queue/remote/) and at which
 * epoch, as JSON `{"epoch":n,"address":"…"}`. The owner knows both only after it has the lock (the epoch comes
 * from the log it then opens), but creating a file in the lock directory changes the directory's mtime, which
 * proper-lockfile checks at every refresh, and putting the mtime back later could race a refresh in flight on the
 * thread pool. So the file is created empty together with `pid` (the same mtime fix-up, before any refresh can
 * run), and writeOwnerAddress later fills it in place, which leaves the directory's mtime alone. A reader that
 * finds it empty or half written (it is one small write) sees no address yet: readOwnerAddress returns undefined
 * unless the whole JSON parses. Both files are 0600.
 */
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import lockfile from 'proper-lockfile';
import { SpoolError, ioError } from '../errors.js';
import { DIR_MODE, FILE_MODE } from './fs.js';

export const OWNER_LOCK = 'owner';
const PID_FILE = 'pid';
const ADDRESS_FILE = 'address';
const NO_PID_GRACE_MS = 1_000;

export interface OwnerLockOptions {
  /** Called if the lock is lost while held (another process judged it stale). */
  onLost: (err: SpoolError) => void;
  staleMs?: number;
}

/** Takes the owner lock of `dir`; resolves with its release function. ERR_LOCKED when a live process holds it. */
export async function takeOwnerLock(dir: string, opts: OwnerLockOptions): Promise<() => Promise<void>> {
  const lockPath = path.join(dir, OWNER_LOCK);
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(dir, {
        lockfilePath: lockPath,
        realpath: false,
        fs: lockFs,
        stale: opts.staleMs ?? 10_000,
        update: Math.min(2_000, Math.floor((opts.staleMs ?? 10_000) / 2)),
        retries: 0,
        onCompromised: (cause) => {
          opts.onLost(new SpoolError('ERR_LOCKED', `lost the owner lock of ${dir}`, { cause }));
        },
      });
      try {
        // proper-lockfile checks at each refresh that the directory's mtime is the one it set; adding a file
        // changes it, so put the mtime back (ms precision, as proper-lockfile compares).
        const { atime, mtime } = nodeFs.statSync(lockPath);
        nodeFs.writeFileSync(path.join(lockPath, PID_FILE), String(process.pid), { mode: FILE_MODE });
        nodeFs.writeFileSync(path.join(lockPath, ADDRESS_FILE), '', { mode: FILE_MODE });
        nodeFs.utimesSync(lockPath, atime, mtime);
      } catch (err) {
        await release().catch(() => undefined);
        throw ioError('record the owner pid', err);
      }
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw ioError(`take the owner lock of ${dir}`, err);
      const holder = readPid(lockPath);
      if (attempt < 4 && holder !== undefined && !isAlive(holder) && breakDeadLock(lockPath, holder)) continue;
      if (attempt < 4 && holder === undefined) {
        const age = lockAgeMs(lockPath);
        if (age === undefined) continue; // released meanwhile
        if (age < NO_PID_GRACE_MS) {
          await new Promise((r) => setTimeout(r, NO_PID_GRACE_MS - age + 10));
          continue;
        }
        if (breakDeadLock(lockPath, undefined)) continue;
      }
      throw new SpoolError(
        'ERR_LOCKED',
        `${dir} is owned by another process${holder !== undefined ? ` (pid ${holder})` : ''}; ` +
          'only one process may write a queue at a time',
        { cause: err },
      );
    }
  }
}

/**
 * The pid of the process that holds the owner lock of `dir`, if it is alive; undefined when there is no lock, no
 * pid in it yet, or its holder is dead. Read-only, for readers (the CLI) that say whether the head is being
 * written right now; they must not depend on it for anything else: the answer can change the moment it is read,
 * and a reused pid makes a dead owner look alive.
 */
export function liveOwnerPid(dir: string): number | undefined {
  const pid = readPid(path.join(dir, OWNER_LOCK));
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/**
 * The pid named in the owner lock of `dir`, alive or not (undefined: no lock, or no pid in it yet). For error
 * messages that say which process holds a queue; the answer can change the moment it is read.
 */
export function readOwnerPid(dir: string): number | undefined {
  return readPid(path.join(dir, OWNER_LOCK));
}

/** Whether a process with this pid runs (kill(pid, 0)); a reused pid makes a dead owner look alive. */
export function isPidAlive(pid: number): boolean {
  return isAlive(pid);
}

export interface OwnerAddress {
  epoch: number;
  /** A socket path or a pipe name. */
  address: string;
}

/**
 * Writes where the owner of `dir` listens into its lock (see the header: in place, into the file made with the
 * lock). Only the holder of the lock calls it. ERR_IO if the lock directory or its address file is gone (the lock
 * was lost).
 */
export function writeOwnerAddress(dir: string, value: OwnerAddress): void {
  const file = path.join(dir, OWNER_LOCK, ADDRESS_FILE);
  const bytes = Buffer.from(JSON.stringify({ epoch: value.epoch, address: value.address }));
  let fd: number | undefined;
  try {
    fd = nodeFs.openSync(file, 'r+');
    nodeFs.writeSync(fd, bytes, 0, bytes.length, 0);
    nodeFs.ftruncateSync(fd, bytes.length);
  } catch (err) {
    throw ioError(`write the owner address into ${file}`, err);
  } finally {
    if (fd !== undefined) nodeFs.closeSync(fd);
  }
}

/** Where the owner of `dir` listens, or undefined: no lock, no address written yet, or one caught mid-write. */
export function readOwnerAddress(dir: string): OwnerAddress | undefined {
  let text: string;
  try {
    text = nodeFs.readFileSync(path.join(dir, OWNER_LOCK, ADDRESS_FILE), 'utf8');
  } catch {
    return undefined; // no lock, or a lock taken by a build that writes no address
  }
  try {
    const v = JSON.parse(text) as Partial<OwnerAddress> | null;
    if (v && Number.isSafeInteger(v.epoch) && typeof v.address === 'string' && v.address !== '') {
      return { epoch: v.epoch!, address: v.address };
    }
  } catch {
    // Empty (not written yet) or caught mid-write: no address yet.
  }
  return undefined;
}

/** node:fs for proper-lockfile, but rmdir also removes the pid file we put inside the lock directory. */
const lockFs = {
  ...nodeFs,
  // The lock directory is private like the rest of the queue's (fs.ts): proper-lockfile would make it 0777 & ~umask.
  mkdir: (p: string, cb: (err: NodeJS.ErrnoException | null) => void) => nodeFs.mkdir(p, { mode: DIR_MODE }, (err) => cb(err)),
  rmdir: (p: string, cb: (err: NodeJS.ErrnoException | null) => void) =>
    nodeFs.rm(p, { recursive: true }, (err) => cb(err)),
  rmdirSync: (p: string) => nodeFs.rmSync(p, { recursive: true }),
};

function readPid(lockPath: string): number | undefined {
  try {
    const pid = Number(nodeFs.readFileSync(path.join(lockPath, PID_FILE), 'utf8'));
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    // No pid file yet (the holder is between mkdir and writing it) or no lock: treat the holder as unknown.
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, but is not ours to signal
  }
}

function lockAgeMs(lockPath: string): number | undefined {
  try {
    return Math.max(0, Date.now() - nodeFs.statSync(lockPath).mtimeMs);
  } catch {
    return undefined;
  }
}

/** Steps 1–2 of the header: true when the dead owner's lock (pid `deadPid`, or none) was removed. */
function breakDeadLock(lockPath: string, deadPid: number | undefined): boolean {
  const moved = `${lockPath}.${randomBytes(6).toString('hex')}.stale`;
  try {
    nodeFs.renameSync(lockPath, moved);
  } catch {
    return true; // somebody else moved or released it first: the lock may be free, so try again
  }
  if (readPid(moved) === deadPid) {
    nodeFs.rmSync(moved, { recursive: true, force: true });
    return true;
  }
  try {
    nodeFs.renameSync(moved, lockPath);
  } catch {
    // `owner` was taken anew meanwhile; the moved lock belonged to a process that will see its lock compromised.
  }
  return false;
}
