/**
 * Queue-level events, derived from the fold's transitions (job-table.ts, Transition) in this one place: BullMQ's
 * QueueEvents names and payloads. Pure: a transition in, events out through a sink; no clock, no I/O. The same
 * log folded twice gives the same events in the same order, which is what lets a reader in another process
 * (queue/queue-events.ts) emit what the owner emits, and resume from a position.
 *
 *   transition                 events, in this order
 *   ADDED                      added {jobId, name}; then waiting {jobId} or delayed {jobId, delay}
 *   ACTIVATED                  active {jobId, prev} for each job of the ticket, in ticket order
 *   COMPLETED                  completed {jobId, returnvalue, prev: 'active'}
 *   FAILED, final              failed {jobId, failedReason, prev: 'active'}; retries-exhausted {jobId, attemptsMade}
 *                              when the job used all its attempts (not after an UnrecoverableError)
 *   FAILED, retried            waiting {jobId, prev: 'failed'} or delayed {jobId, delay}   (no 'failed', as BullMQ)
 *   STALLED                    stalled {jobId}; then failed {…, prev: 'active'} (stalled too often) or
 *                              waiting {jobId, prev: 'active'} (or delayed)
 *   PROGRESS                   progress {jobId, data}
 *   REMOVED                    removed {jobId, prev} for each job removed
 *   PROMOTED                   waiting {jobId, prev: 'delayed'} for each job (a PROMOTE record, or promoteDue)
 *   RETRIED                    waiting {jobId, prev: 'failed' | 'completed'}
 *   RELEASED                   waiting {jobId, prev: 'active'} (or delayed: a delayed job handed out early)
 *   PAUSED, RESUMED            paused {}, resumed {}
 *   LOGGED, NONE               nothing
 *   any, when drained is set   drained, last
 *
 * `delay` is BullMQ's: the time the job runs at, in ms since the epoch (not a duration), so that it is the same
 * whoever derives it, whenever. Jobs deleted by their own retention rule as they finish (removeOnComplete/Fail as
 * true or a count) get no 'removed', as in BullMQ; REMOVE records (remove, clean, drain, retention by age) do.
 */
import { TRANSITION, type JobState, type Transition } from './job-table.js';
import type { CompleteEvent } from './events.js';

/** Each event's payload, as BullMQ's QueueEvents passes it (its first listener argument). */
export interface QueueEventPayloads {
  added: { jobId: string; name: string };
  waiting: { jobId: string; prev?: JobState };
  delayed: { jobId: string; delay: number };
  active: { jobId: string; prev: JobState };
  progress: { jobId: string; data: unknown };
  completed: { jobId: string; returnvalue: unknown; prev: 'active' };
  failed: { jobId: string; failedReason: string; prev: 'active' };
  'retries-exhausted': { jobId: string; attemptsMade: number };
  stalled: { jobId: string };
  removed: { jobId: string; prev: JobState };
  paused: Record<string, never>;
  resumed: Record<string, never>;
  /** No payload: BullMQ passes only the event id. */
  drained: undefined;
}

export type QueueEventName = keyof QueueEventPayloads;

export type EventSink = <E extends QueueEventName>(event: E, payload: QueueEventPayloads[E]) => void;

/**
 * Calls `emit` for each event the transition stands for, in order. `heard`, when given, says which events anybody
 * listens to: the others are not built (a returnvalue or progress payload is not even looked at).
 */
export function deriveEvents(t: Transition, emit: EventSink, heard: (event: QueueEventName) => boolean = ALL): void {
  const job = t.job;
  switch (t.kind) {
    case TRANSITION.NONE:
    case TRANSITION.LOGGED:
      break;
    case TRANSITION.ADDED:
      if (heard('added')) emit('added', { jobId: job!.id, name: job!.name });
      ready(t.to!, job!.id, undefined, job!.runAt, emit, heard);
      break;
    case TRANSITION.ACTIVATED:
      if (heard('active')) for (let i = 0; i < t.jobs.length; i++) emit('active', { jobId: t.jobs[i]!.id, prev: t.froms[i]! });
      break;
    case TRANSITION.COMPLETED:
      if (heard('completed')) emit('completed', { jobId: job!.id, returnvalue: (t.event as CompleteEvent).rv, prev: 'active' });
      break;
    case TRANSITION.FAILED:
    case TRANSITION.STALLED:
      if (t.kind === TRANSITION.STALLED && heard('stalled')) emit('stalled', { jobId: job!.id });
      if (t.to === 'failed') {
        if (heard('failed')) emit('failed', { jobId: job!.id, failedReason: job!.failedReason ?? '', prev: 'active' });
        if (t.kind === TRANSITION.FAILED && job!.attemptsMade >= (job!.opts.attempts ?? 1) && heard('retries-exhausted')) {
          emit('retries-exhausted', { jobId: job!.id, attemptsMade: job!.attemptsMade });
        }
      } else {
        ready(t.to!, job!.id, t.kind === TRANSITION.FAILED ? 'failed' : 'active', t.retryAt ?? 0, emit, heard);
      }
      break;
    case TRANSITION.PROGRESS:
      if (heard('progress')) emit('progress', { jobId: job!.id, data: (t.event as { p: unknown }).p });
      break;
    case TRANSITION.REMOVED:
      if (heard('removed')) for (let i = 0; i < t.jobs.length; i++) emit('removed', { jobId: t.jobs[i]!.id, prev: t.froms[i]! });
      break;
    case TRANSITION.PROMOTED:
      if (heard('waiting')) for (let i = 0; i < t.jobs.length; i++) emit('waiting', { jobId: t.jobs[i]!.id, prev: 'delayed' });
      break;
    case TRANSITION.RETRIED:
      ready('waiting', job!.id, t.from, 0, emit, heard);
      break;
    case TRANSITION.RELEASED:
      ready(t.to!, job!.id, 'active', job!.runAt, emit, heard);
      break;
    case TRANSITION.PAUSED:
      if (heard('paused')) emit('paused', {});
      break;
    case TRANSITION.RESUMED:
      if (heard('resumed')) emit('resumed', {});
      break;
  }
  if (t.drained && heard('drained')) emit('drained', undefined);
}

/** A job that became waiting (from `prev`, none for a new job) or delayed until `runAt`. */
function ready(to: JobState, jobId: string, prev: JobState | undefined, runAt: number, emit: EventSink, heard: (e: QueueEventName) => boolean): void {
  if (to === 'delayed') {
    if (heard('delayed')) emit('delayed', { jobId, delay: runAt });
  } else if (heard('waiting')) {
    emit('waiting', prev === undefined ? { jobId } : { jobId, prev });
  }
}

const ALL = (): boolean => true;
