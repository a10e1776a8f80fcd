/**
 * TicketDesk: the owner's side of claiming (protocol in tickets.ts). Cuts tickets for workers that want work,
 * tracks every live ticket until all its jobs are settled, and takes back leases that expire.
 *
 * Batch size adapts to demand and load. A worker says how many jobs it could start now (`free`: slots with
 * nothing to start) and how many it would take in all (`want`: free slots plus a lookahead of short jobs, see
 * worker.ts). Jobs go in priority order, in one ticket (capped at MAX_TICKET_JOBS). While fewer than BUSY jobs
 * wait, a worker gets only what it can start now: a quiet queue hands out one job per ticket, and no job is held
 * back behind work a worker could not start. With a backlog of BUSY or more, it gets up to its whole want, so
 * that tickets, whose file operations and ACTIVE record cost far more than a short job, carry many jobs.
 *
 * Each ticket's ACTIVE says how many of its jobs (a prefix) start as it is claimed: the worker's free slots at the
 * cut (`s`, see starts.ts). Those are exactly the jobs the worker starts in the code that claims the
 * ticket: its free count never overstates what it can start (it only grows as jobs end), and every job it has in
 * hand or on the way was subtracted from it. The rest of a ticket is lookahead, whose starts START records tell.
 *
 * Orphaned jobs (JobMeta.orphaned: released unstarted after their holder died, maybe having started unseen; Starts
 * in starts.ts) are never put beyond that prefix: the ticket is cut before one, and a worker with no free slot gets
 * none. So the next run of such a job is known to have started from its claim on, and a crash in it is a stall.
 */
import type { JobMeta } from '../../store/job-table.js';
import { REC } from '../../store/events.js';
import { TicketFiles, encodeTicket, ticketFileName, type TicketContent } from '../tickets.js';
import type { WorkerPort } from '../backend.js';
import type { JobTable } from '../../store/job-table.js';
import type { ResolvedQueueOptions } from '../options.js';
import type { Clock } from '../clock.js';

const MAX_TICKET_JOBS = 256;
/** Waiting jobs from which the queue counts as busy (header). */
const BUSY = 16;

/** What the desk uses of its owner (owner.ts): an interface, so that the desk does not import the owner. */
export interface DeskHost {
  readonly opts: ResolvedQueueOptions;
  readonly table: JobTable;
  readonly closed: boolean;
  readonly cooling: boolean;
  record(type: number, event: object): { done: Promise<unknown> };
  release(ticket: string, id: string, attempt: number, why?: string): Promise<unknown> | undefined;
  settleOrphan(job: JobMeta, claimed: boolean, why?: string): void;
  heard(event: 'active'): boolean;
  emit(event: 'active', arg: { jobId: string }): boolean;
  emit(event: 'drained'): boolean;
  emit(event: 'error', err: Error): boolean;
}

interface LiveTicket {
  name: string;
  state: 'cutting' | 'ready' | 'taken';
  takenName: string | undefined;
  /** Unsettled jobs: id → attempt. */
  jobs: Map<string, number>;
  /** On the owner's clock: when it was published (ready), or claimed (taken by a worker here: the lease's start). */
  since: number;
}

export class TicketDesk {
  readonly files: TicketFiles;
  readonly #owner: DeskHost;
  readonly #clock: Clock;
  readonly #epoch: number;
  #ports: WorkerPort[] = [];
  #next = 0;
  #counter = 0;
  readonly #live = new Map<string, LiveTicket>();
  #idle = true;
  #closed = false;

  constructor(owner: DeskHost, dir: string, epoch: number) {
    this.#owner = owner;
    this.#clock = owner.opts.clock;
    this.#epoch = epoch;
    this.files = new TicketFiles(dir, owner.opts.fs); // the queue's Fs seam (INTERNAL_FS): node:fs unless a test gives one
  }

  /** Owner start: clears the tickets folder; returns the tickets that had been claimed (tickets.ts, restart). */
  reset(): Set<string> {
    return this.files.reset();
  }

  attach(port: WorkerPort): void {
    this.#ports.push(port);
  }

  detach(port: WorkerPort): void {
    this.#ports = this.#ports.filter((p) => p !== port);
  }

  /** Tickets whose jobs are not all settled. */
  get liveTickets(): number {
    return this.#live.size;
  }

  /** Cuts tickets for every worker that wants work, round robin, while jobs are ready. */
  dispatch(): void {
    const table = this.#owner.table;
    if (this.#closed || this.#owner.closed || table.paused || this.#owner.cooling) return;
    for (let served = 0; served < this.#ports.length; served++) {
      const port = this.#ports[this.#next++ % this.#ports.length]!;
      if (port.want <= 0) continue;
      const jobs: JobMeta[] = [];
      const waiting = table.count('waiting');
      const n = Math.min(waiting >= BUSY ? port.want : Math.min(port.free, port.want), MAX_TICKET_JOBS);
      if (n <= 0) continue;
      let held: JobMeta | undefined;
      for (let job = table.ready.pop(); job; job = jobs.length < n ? table.ready.pop() : undefined) {
        // An orphaned job goes only where it starts as the ticket is claimed (header): cut the ticket before it.
        if (jobs.length >= port.free && job.orphaned) {
          table.ready.push((held = job)); // same keys and stamp: back in its place
          break;
        }
        jobs.push(job);
      }
      if (jobs.length === 0) {
        if (held) continue; // this worker has no free slot for it; another may
        break;
      }
      this.#cut(port, jobs);
    }
    const empty = table.count('waiting') === 0 && table.count('active') === 0;
    if (empty && !this.#idle) this.#owner.emit('drained');
    this.#idle = empty;
  }

  #cut(port: WorkerPort, jobs: JobMeta[]): void {
    const ticket = `${this.#epoch}x${(this.#counter++).toString(36)}`;
    const first = jobs[0]!;
    const name = ticketFileName(first.priority, first.order, ticket);
    const atClaim = Math.min(jobs.length, port.free);
    const content: TicketContent = {
      ticket,
      epoch: this.#epoch,
      atClaim,
      jobs: jobs.map((j) => ({ id: j.id, attempt: j.attemptsMade + 1, ptr: j.ptr })),
    };
    const { done } = this.#owner.record(REC.ACTIVE, {
      t: ticket,
      j: content.jobs.map((j) => [j.id, j.attempt]),
      ts: this.#clock.now(),
      s: atClaim,
    });
    const live: LiveTicket = {
      name,
      state: 'cutting',
      takenName: undefined,
      jobs: new Map(content.jobs.map((j) => [j.id, j.attempt])),
      since: 0,
    };
    this.#live.set(ticket, live);
    port.want -= jobs.length;
    port.free = Math.max(0, port.free - jobs.length);
    port.inFlight += jobs.length;
    done.then(
      () => {
        port.inFlight -= jobs.length;
        // Once the ACTIVE record is durable, as the 'waiting' of an add waits for its ADD (so never before it).
        if (this.#owner.heard('active')) for (const j of jobs) this.#owner.emit('active', { jobId: j.id });
        if (this.#closed || live.jobs.size === 0) return;
        try {
          this.files.publish(name, encodeTicket(content));
        } catch (err) {
          // No file, so no lease that could expire: hand the jobs back at once (they never ran).
          this.#owner.emit('error', err as Error);
          try {
            for (const [id, attempt] of [...live.jobs]) void this.#owner.release(ticket, id, attempt)?.catch(() => undefined);
          } catch {
            // The log refuses records (closed or failed): the next owner stalls these jobs instead.
          }
          return;
        }
        live.state = 'ready';
        live.since = this.#clock.now();
        port.offer(name, content);
      },
      (err: Error) => {
        // The ACTIVE record was refused: not in the log (a failed write is cut back, and the owner's table rebuilt
        // without it), so the ticket never existed and the jobs were never cut for this worker.
        // The worker's want and free get back what the cut took from them (free: exactly atClaim, see #cut), so
        // that the next dispatch cuts for it again without waiting for the worker to ask.
        port.inFlight -= jobs.length;
        port.want += jobs.length;
        port.free += atClaim;
        if (this.#live.get(ticket) === live) this.#live.delete(ticket);
        this.#owner.emit('error', err);
      },
    );
  }

  /** The worker has claimed the ticket: taken/<takenName> is its lease from now on. */
  claimed(ticket: string, takenName: string): void {
    const live = this.#live.get(ticket);
    if (!live) return;
    live.state = 'taken';
    live.takenName = takenName;
    live.since = this.#clock.now();
  }

  /** True when a live ticket holds attempt `attempt` of job `id` unsettled (cut-back.ts checks the rebuilt table against it). */
  tracks(ticket: string, id: string, attempt: number): boolean {
    return this.#live.get(ticket)?.jobs.get(id) === attempt;
  }

  /** A job of the ticket reached an outcome; the ticket file is recycled when none is left. */
  settled(ticket: string, id: string): void {
    const live = this.#live.get(ticket);
    if (!live) return;
    live.jobs.delete(id);
    if (live.jobs.size > 0) return;
    this.#live.delete(ticket);
    if (live.state === 'ready') this.files.recycle(this.files.readyPath(live.name));
    else if (live.state === 'taken') this.files.recycle(this.files.takenPath(live.takenName!));
  }

  /**
   * Takes back expired leases and unclaimed tickets. The jobs of an expired lease that had started are stalled,
   * the others released (Owner.settleOrphan); those of an unclaimed ticket are released (they never ran).
   */
  checkLeases(now: number): void {
    const leaseMs = this.#owner.opts.leaseMs;
    for (const [ticket, live] of [...this.#live]) {
      if (live.state === 'ready' && now - live.since > leaseMs) {
        if (!this.files.recycle(this.files.readyPath(live.name))) {
          // Gone from ready/, yet no worker here said it claimed it (claimed() runs in the same tick as an in-process
          // claim): a claimant this desk does not know renamed it (a worker in another process). Its lease is
          // taken/<name>~<its id>; from the next check on it expires like any other if nobody renews it. If there
          // is no such file, the name below matches none, and the next check finds the lease gone and stalls the jobs.
          live.state = 'taken';
          live.takenName = this.files.findTaken(live.name) ?? `${live.name}~`;
          continue;
        }
        live.state = 'cutting'; // no file any more
        for (const [id, attempt] of [...live.jobs]) void this.#owner.release(ticket, id, attempt);
      } else if (live.state === 'taken') {
        const age = this.files.leaseAge(live.takenName!, now, live.since);
        if (age !== undefined && age <= leaseMs) continue;
        this.files.recycle(this.files.takenPath(live.takenName!));
        this.#live.delete(ticket);
        for (const id of live.jobs.keys()) {
          const job = this.#owner.table.jobs.get(id);
          if (job && job.state === 'active' && job.ticket === ticket) this.#owner.settleOrphan(job, true);
        }
      }
    }
  }

  /**
   * The owner is closing (every worker in this process has closed): tickets cut but not claimed yet, whose offer
   * is still in flight or unanswered, are taken back and their jobs RELEASEd, since they never ran. Left active in
   * the log, the next owner would release them too (unclaimed), but only when it opens.
   */
  close(): void {
    this.#closed = true;
    for (const [ticket, live] of [...this.#live]) {
      if (live.state === 'taken') continue;
      for (const [id, attempt] of [...live.jobs]) void this.#owner.release(ticket, id, attempt);
    }
  }
}
