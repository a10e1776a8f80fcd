/**
 * The owner lock: at most one process appends to a queue's log. proper-lockfile makes `<dir>/owner` a directory
 * (mkdir is atomic) and refreshes its mtime every `update` ms; a lock whose mtime is older than `stale` ms is
 * taken over. Beside that, we write our pid into `<dir>/owner/pid`. proper-lockfile removes its lock with rmdir,
 * which refuses a directory that holds a file, so it is handed an fs whose rmdir removes the pid file too.
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
 */
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import lockfile from 'proper-lockfile';
import { SpoolError, ioError } from '../errors.js';
import { DIR_MODE, FILE_MODE } from './fs.js';

export const OWNER_LOCK = 'owner';
const PID_FILE = 'pid';
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
