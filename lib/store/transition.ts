/**
 * The transition the fold applied (JobTable.transition): one reused object, filled by each apply(), read by
 * transitions.ts to derive events. Shapes only; the fold itself is job-table.ts.
 */
import type { RecordPointer } from '../log/writer.js';
import type { JobMeta, JobState } from './job-meta.js';

/** What a transition was: one small constant per kind of change (TRANSITION below). */
export const TRANSITION = {
  /** The record changed no job's state (unknown job, a result that no longer applies, START, an unknown type). */
  NONE: 0,
  /** ADD: a new job, waiting or delayed. */
  ADDED: 1,
  /** ACTIVE: jobs (`jobs`, each from `froms`) handed out in ticket `event.t`. */
  ACTIVATED: 2,
  /** COMPLETE: returnvalue in `event.rv`, the record at `ptr`. */
  COMPLETED: 3,
  /** FAIL: to waiting or delayed (a retry at `retryAt`) or failed (`final`). */
  FAILED: 4,
  /** STALL: likewise, a stall counted; `final` when it stalled too often. */
  STALLED: 5,
  /** PROGRESS: data in `event.p`. */
  PROGRESS: 6,
  /** LOG: a log line (no queue-level event). */
  LOGGED: 7,
  /** REMOVE: the jobs found (`jobs`, each from `froms`); they are gone from the table. */
  REMOVED: 8,
  /** PROMOTE, or promoteDue (the scheduler's clock): delayed jobs (`jobs`) made waiting. */
  PROMOTED: 9,
  PAUSED: 10,
  RESUMED: 11,
  /** RETRY: a failed or completed job back to waiting. */
  RETRIED: 12,
  /** RELEASE: an attempt handed back with nothing counted, to waiting or delayed. */
  RELEASED: 13,
} as const;
export type TransitionKind = (typeof TRANSITION)[keyof typeof TRANSITION];

/**
 * The change one apply() made (header: Transitions). The table owns one and refills it: read it before the next
 * apply, copy what you keep. Single-job kinds set `job`, `from` and `to`; ACTIVATED, REMOVED and PROMOTED set
 * `jobs` and `froms` (one entry per job that moved, in record order; `job` is the last of them), since one record
 * may move many jobs. Facts of the record (returnvalue, progress data, the error) are read from `event`, the
 * record's decoded payload as given to apply(), so nothing is copied for them.
 */
export class Transition {
  kind: TransitionKind = TRANSITION.NONE;
  /** The record's seq (0 for promoteDue, which is no record). */
  seq = 0;
  /** The job (single-job kinds), or the last of `jobs`. */
  job: JobMeta | undefined = undefined;
  /** Its state before; undefined for ADDED. */
  from: JobState | undefined = undefined;
  /** Its state after (REMOVED: undefined). A job deleted by retention right after it finished still says so here. */
  to: JobState | undefined = undefined;
  /** The attempt the record was about (ACTIVE, COMPLETE, FAIL, STALL, RELEASE): 1 for the first. */
  attempt = 0;
  /** FAILED, STALLED: the retry time (ms since the epoch), or null when final. */
  retryAt: number | null = null;
  /** The record's payload as decoded (the event given to apply()); undefined for promoteDue. */
  event: unknown = undefined;
  /** The record (COMPLETED: the returnvalue's; FAILED/STALLED: the failure's). */
  ptr: RecordPointer | undefined = undefined;
  /** The queue went idle with this change: nothing waiting, nothing active, and it was not so before. */
  drained = false;
  /** ACTIVATED, REMOVED, PROMOTED: the jobs moved, and the state each came from (reused arrays). */
  readonly jobs: JobMeta[] = [];
  readonly froms: JobState[] = [];

  /** FAILED, STALLED: no retry follows (the job is failed). */
  get final(): boolean {
    return this.to === 'failed';
  }
}
