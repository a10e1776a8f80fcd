/**
 * Outcomes: how the owner logs the end of an attempt, whoever reports it (a worker's finish or release, a lease
 * the desk takes back, a new owner settling what the previous one left active). The rule of which applies when a
 * lease is taken back (STALL if the attempt had started, RELEASE if not) is the start protocol's (starts.ts).
 *
 * Every outcome checks that the attempt still holds (the job is active, in that ticket, at that attempt): a late
 * result, for a lease the owner has already taken back or a job removed meanwhile, is ignored, never logged. It
 * resolves when its record is durable (owner.ts, Durability), and settles the job at the desk (desk.ts), which
 * recycles the ticket's file once every job of it is settled. While the owner cools after a cut back, an outcome
 * is not written: the job is handed back as if its record had been cut (cut-back.ts).
 */
import { REC, encodeComplete } from '../../store/events.js';
import { STALLED_TOO_OFTEN, type JobMeta, type JobTable } from '../../store/job-table.js';
import type { Payload } from '../../codec/record-codec.js';
import type { RecordPointer } from '../../log/writer.js';
import type { Clock } from '../clock.js';
import type { ResolvedQueueOptions } from '../options.js';
import type { Outcome, OwnerEventMap } from '../backend.js';
import type { CutBack } from './cut-back.js';

/** What outcomes use of their owner (owner.ts). */
export interface OutcomeHost {
  readonly clock: Clock;
  readonly opts: ResolvedQueueOptions;
  readonly table: JobTable;
  readonly desk: { settled(ticket: string, id: string): void };
  /** After a cut back: while cooling, outcomes are not written but handed back (cut-back.ts). */
  readonly cutBack: CutBack;
  record(type: number, event: object, payload?: Payload): { job: JobMeta | undefined; done: Promise<RecordPointer> };
  recordUntracked(type: number, event: object, payload?: Payload): JobMeta | undefined;
  /** One promise for every record appended so far in this batch (Log.whenAppendedDurable). */
  whenAppendedDurable(): Promise<unknown>;
  heard(event: keyof OwnerEventMap): boolean;
  emit<K extends keyof OwnerEventMap>(event: K, ...args: OwnerEventMap[K]): boolean;
  stall(job: JobMeta, why?: string): Promise<unknown>;
  release(ticket: string, id: string, attempt: number, why?: string, orphaned?: boolean): Promise<unknown> | undefined;
  /** A job became ready (scheduler.ts). */
  afterReady(job: JobMeta | undefined): void;
  /** A job failed for good with a deadLetter option (dead-letter.ts). */
  moveToDeadLetter(job: JobMeta): Promise<void>;
}

/** Whether attempt `attempt` of `job` is the one active in `ticket`. */
function holds(job: JobMeta | undefined, ticket: string, attempt: number): job is JobMeta {
  return job !== undefined && job.state === 'active' && job.ticket === ticket && job.attemptsMade + 1 === attempt;
}

/**
 * Logs the outcome of attempt `attempt` of job `id` held in ticket `ticket`. Returns undefined when it no
 * longer applies (the lease was taken back, the job removed): a late result is ignored, never logged.
 */
export function finish(o: OutcomeHost, ticket: string, id: string, attempt: number, outcome: Outcome): Promise<unknown> | undefined {
  const job = o.table.jobs.get(id);
  if (!holds(job, ticket, attempt)) return undefined;
  const cut = o.cutBack;
  if (cut.until !== 0 && cut.cooling) return cut.lost(ticket, id);
  const ts = o.clock.now();
  let done: Promise<unknown>;
  if (outcome.kind === 'completed') {
    const event = { id, a: attempt, rv: outcome.result, ts };
    // The same bytes encodeEvent would make, without serializing the result a second time.
    const payload = outcome.resultJson === undefined ? undefined : encodeComplete(id, attempt, outcome.resultJson, ts);
    // One promise for all the outcomes logged in this batch, rather than one per job.
    o.recordUntracked(REC.COMPLETE, event, payload);
    done = o.whenAppendedDurable();
    if (o.heard('completed')) o.emit('completed', { jobId: id, returnvalue: outcome.result });
  } else {
    const maxAttempts = job.opts.attempts ?? 1;
    const retry = outcome.retryDelay !== undefined && attempt < maxAttempts;
    const r = retry ? ts + outcome.retryDelay! : null;
    done = o.record(REC.FAIL, { id, a: attempt, e: outcome.error, r, ts }).done;
    o.emit('failed', { jobId: id, failedReason: outcome.error.message, final: !retry });
    if (!retry && job.opts.deadLetter) done = done.then(() => o.moveToDeadLetter(job));
    if (retry) o.afterReady(job);
  }
  o.desk.settled(ticket, id);
  return done;
}

/**
 * Logs a stall of the job's current, started attempt (its lease expired or its owner died), BullMQ's rule: back
 * to waiting, or failed once it has stalled more than maxStalledCount times. No attempt counts (starts.ts).
 */
export function stall(o: OutcomeHost, job: JobMeta, why?: string): Promise<unknown> {
  const ts = o.clock.now();
  const attempt = job.attemptsMade + 1;
  const retry = job.stalls + 1 <= o.opts.maxStalledCount;
  const r = retry ? ts : null;
  const { done } = o.record(REC.STALL, why === undefined ? { id: job.id, a: attempt, r, ts, s: 1 } : { id: job.id, a: attempt, r, ts, why, s: 1 });
  o.emit('stalled', { jobId: job.id });
  if (!retry) o.emit('failed', { jobId: job.id, failedReason: job.failedReason ?? STALLED_TOO_OFTEN, final: true });
  else o.afterReady(job);
  return done;
}

/**
 * A lease taken back (expired, or left by a dead owner): stalls the job if it had started, releases it if not
 * (starts.ts), orphaned if its ticket was claimed (`claimed`: its holder may have started it unseen). Errors go to
 * 'error' (the log refused the record).
 */
export function settleOrphan(o: OutcomeHost, job: JobMeta, claimed: boolean, why?: string): void {
  try {
    if (o.table.isStarted(job, claimed)) {
      void o.stall(job, why).catch((err: Error) => o.emit('error', err));
    } else {
      void o.release(job.ticket!, job.id, job.attemptsMade + 1, 'not started when its lease was taken back', claimed)?.catch((err: Error) => o.emit('error', err));
    }
  } catch (err) {
    o.emit('error', err as Error); // the log refused the record (closed, or failed): nothing was changed
  }
}

/**
 * Hands an attempt back without counting anything: it never started (a worker closing gracefully, a lease taken
 * back before the start), or it was the victim of a neighbour in its thread (`why` says so in the log).
 * `orphaned`: unstarted in a claimed ticket whose holder died, so it may have started unseen (starts.ts).
 */
export function release(o: OutcomeHost, ticket: string, id: string, attempt: number, why?: string, orphaned = false): Promise<unknown> | undefined {
  const job = o.table.jobs.get(id);
  if (!holds(job, ticket, attempt)) return undefined;
  const cut = o.cutBack;
  if (cut.until !== 0 && cut.cooling) {
    // Written when cooling ends (cut-back.ts, handBackLost); nothing the caller does waits on its durability.
    cut.lost(ticket, id).catch(() => undefined);
    return Promise.resolve();
  }
  const ev = why === undefined ? { id, a: attempt } : orphaned ? { id, a: attempt, why, o: 1 } : { id, a: attempt, why };
  const { done } = o.record(REC.RELEASE, ev);
  o.desk.settled(ticket, id);
  o.afterReady(job);
  return done;
}

