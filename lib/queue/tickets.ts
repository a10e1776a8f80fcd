/**
 * Tickets and leases on disk (DESIGN §4): how work is handed from the owner to workers so that each handed-out
 * attempt runs in at most one place while its lease holds, and `ls tickets/taken` is the set of running work.
 *
 *   tickets/ready/<prio>-<order>-<ticket>.t           cut by the owner, not yet claimed
 *   tickets/taken/<prio>-<order>-<ticket>.t~<worker>  claimed by <worker>: its lease; the mtime is the last renewal
 *   tickets/free/<n>                                  spent ticket files kept for reuse
 *
 * <prio> is the first job's priority (7 digits) and <order> its order (16 digits), so a worker that scans ready/
 * and takes the first name takes the most urgent work. <ticket> is "<epoch>x<counter>", unique per owner epoch.
 * Content: JSON { v: 1, ticket, epoch, s, jobs: [{ id, attempt, ptr: [seq, segmentId, offset, size] }] }; s (the
 * ACTIVE record's `s`) is how many of the jobs, a prefix, the claimant starts as it claims (owner/starts.ts).
 *
 * The protocol, step by step, with what each party sees:
 *   cut      Owner: appends ACTIVE for the jobs (the commit point: from here the jobs are active in the log),
 *            waits for it to be durable, writes the content into a free file (or a new one) and renames it into
 *            ready/. Files are reused because creating a file costs far more than renaming one (DESIGN §4).
 *   claim    Worker: renames ready/<name> to taken/<name>~<worker>. rename() succeeds for exactly one claimant;
 *            the others get ENOENT and try the next ticket.
 *   renew    Worker: sets the taken file's mtime to now (the clock's now, clock.ts), every leaseMs/3 while any of
 *            its jobs runs. If the file is gone (ENOENT) the owner has taken the lease back: the worker aborts those
 *            jobs.
 *   finish   Worker: reports each job's outcome to the owner. Owner: logs it if the job is still active in that
 *            ticket with that attempt, otherwise ignores it (a late result for a lease it took back). When every
 *            job of the ticket is settled, the owner recycles the taken file into free/.
 *   expire   Owner: a lease whose last renewal (the taken file's mtime) and claim are both older than leaseMs
 *            (leaseAge) is recycled; of its unsettled jobs, those that
 *            had started (the claimed prefix, and what START records say) are logged as STALL (a stall counts,
 *            not an attempt), the others RELEASEd (nothing counts). A ready file unclaimed for leaseMs is recycled
 *            and its jobs RELEASEd (nothing counts: they never ran). A ready file that is gone though no worker in the owner's
 *            process reported the claim was taken by a claimant the owner does not know (another process): the
 *            owner finds its taken file (findTaken) and expires it like any lease.
 *   restart  A new owner notes which tickets were claimed (a file in taken/; one in ready/, or none at all, was
 *            never claimed), then recycles every ticket file it finds: they belong to an older epoch. The jobs the
 *            log says are active are settled by the same rule as at expiry (their leases cannot be trusted across
 *            owners): STALL if started, RELEASE if not.
 * Ticket files are never fsynced: after a crash the log, not the tickets, says what is active.
 *
 * Every file call goes through the Fs seam (log/fs.ts), the queue's own (INTERNAL_FS), so that fault tests can make
 * a claim, a renewal or a publish fail. A failure is ERR_IO with the errno on `cause`; what each party does then is
 * said where it calls (owner/desk.ts, worker/job-loop.ts).
 */
import { constants as FS } from 'node:fs';
import * as path from 'node:path';
import { ioError } from '../errors.js';
import { FILE_MODE, nodeFs, type Fs } from '../log/fs.js';
import type { RecordPointer } from '../log/writer.js';

export const TICKETS_DIR = 'tickets';

export interface TicketJob {
  id: string;
  attempt: number;
  ptr: RecordPointer;
}

export interface TicketContent {
  ticket: string;
  epoch: number;
  /** How many of `jobs` (a prefix) the claimant starts as it claims the ticket: their start is the claim. */
  atClaim: number;
  jobs: TicketJob[];
}

export function ticketFileName(priority: number, order: number, ticket: string): string {
  return `${String(priority).padStart(7, '0')}-${String(order).padStart(16, '0')}-${ticket}.t`;
}

/** The <ticket> of a ticket file's name, in ready/ or taken/ (the grammar above); undefined for another name. */
export function ticketOfName(name: string): string | undefined {
  const m = /^\d{7}-\d{16}-([0-9a-z]+x[0-9a-z]+)\.t(~|$)/.exec(name);
  return m?.[1];
}

export function encodeTicket(t: TicketContent): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      ticket: t.ticket,
      epoch: t.epoch,
      s: t.atClaim,
      jobs: t.jobs.map((j) => ({ id: j.id, attempt: j.attempt, ptr: [j.ptr.seq, j.ptr.segmentId, j.ptr.offset, j.ptr.size] })),
    }),
  );
}

export class TicketFiles {
  readonly ready: string;
  readonly taken: string;
  readonly free: string;
  #freeNames: string[] = [];
  #created = 0;
  readonly #fs: Fs;

  constructor(queueDir: string, fs: Fs = nodeFs) {
    this.#fs = fs;
    const root = path.join(queueDir, TICKETS_DIR);
    this.ready = path.join(root, 'ready');
    this.taken = path.join(root, 'taken');
    this.free = path.join(root, 'free');
  }

  /**
   * Owner start: makes the folders and recycles every ticket left by an older owner. Returns the tickets that had
   * been claimed (their file was in taken/), which tells the new owner whose claimed prefix started (restart, above).
   */
  reset(): Set<string> {
    const claimed = new Set<string>();
    try {
      for (const d of [this.ready, this.taken, this.free]) this.#fs.mkdirSync(d, { recursive: true });
      for (const name of this.#fs.readdirSync(this.taken)) {
        const ticket = ticketOfName(name);
        if (ticket !== undefined) claimed.add(ticket);
      }
      for (const d of [this.ready, this.taken]) for (const name of this.#fs.readdirSync(d)) this.recycle(path.join(d, name));
      this.#freeNames = this.#fs.readdirSync(this.free);
      this.#created = this.#freeNames.length;
    } catch (err) {
      throw ioError('reset the tickets folder', err);
    }
    return claimed;
  }

  /** Owner: writes a ticket and makes it visible in ready/. */
  publish(name: string, content: Buffer): void {
    let file = this.#freeNames.pop();
    try {
      if (file === undefined) file = `f${(this.#created++).toString(36)}-${process.pid}`;
      const from = path.join(this.free, file);
      // Opened without O_TRUNC and cut to length after the write: on ext4 a truncation to zero frees the file's
      // blocks (a journal transaction) and arms auto_da_alloc, which starts writeback at close. That made each
      // ticket cost ~290 µs instead of ~45 µs (benchmarks/README.md, queue-process). ftruncate to a non-zero
      // length does neither. O_CREAT still creates a new file.
      const fd = this.#fs.openSync(from, FS.O_WRONLY | FS.O_CREAT, FILE_MODE);
      try {
        this.#fs.writeSync(fd, content, 0, content.length, 0);
        this.#fs.ftruncateSync(fd, content.length);
      } finally {
        this.#fs.closeSync(fd);
      }
      this.#fs.renameSync(from, path.join(this.ready, name));
    } catch (err) {
      throw ioError('publish a ticket', err);
    }
  }

  /** Worker: claims a ready ticket. Returns the taken file's name, or undefined when somebody else has it. */
  claim(name: string, workerId: string): string | undefined {
    const takenName = `${name}~${workerId}`;
    try {
      this.#fs.renameSync(path.join(this.ready, name), path.join(this.taken, takenName));
      return takenName;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError('claim a ticket', err);
    }
  }

  /** Worker: renews a lease, stamping `nowMs` (the clock's now) as its mtime. False when the owner has taken it back. */
  renew(takenName: string, nowMs: number): boolean {
    const at = nowMs / 1000; // utimes takes a number as seconds
    try {
      this.#fs.utimesSync(path.join(this.taken, takenName), at, at);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError('renew a lease', err);
    }
  }

  /**
   * Owner: ms since the lease was last renewed or, if later, claimed (`claimedAt`, on the same clock as `now`), or
   * undefined when the file is gone. An mtime after `now` is not a renewal on this clock (a ticket file written in
   * real time, read on a test clock that is behind it; or real time stepped back) and counts for nothing: the
   * claim, and the next renewal, which stamps `now`, say how old the lease is. On the system clock a renewal's
   * mtime is never after now, and the claim follows the ticket's write by microseconds, so the age is as the mtime
   * alone would give it.
   */
  leaseAge(takenName: string, now: number, claimedAt: number): number | undefined {
    try {
      const renewed = this.#fs.statSync(path.join(this.taken, takenName)).mtimeMs;
      return now - (renewed <= now ? Math.max(renewed, claimedAt) : claimedAt);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError('check a lease', err);
    }
  }

  /** Owner: the taken name under which somebody claimed ready/<name>, if its lease file is there. Lists taken/. */
  findTaken(name: string): string | undefined {
    const prefix = `${name}~`;
    try {
      return this.#fs.readdirSync(this.taken).find((n) => n.startsWith(prefix));
    } catch (err) {
      throw ioError('list the taken tickets', err);
    }
  }

  readyPath(name: string): string {
    return path.join(this.ready, name);
  }

  takenPath(takenName: string): string {
    return path.join(this.taken, takenName);
  }

  /** Owner: moves a ticket file (from ready/ or taken/) to free/. False when it was already gone. */
  recycle(file: string): boolean {
    const name = `r${(this.#created++).toString(36)}-${process.pid}`;
    try {
      this.#fs.renameSync(file, path.join(this.free, name));
      this.#freeNames.push(name);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError('recycle a ticket', err);
    }
  }
}
