/**
 * The owner's read commands (commands.ts): jobs as records (JobRecord, backend.ts), read from the table and, for
 * their data, results and failures, from the log. Nothing here writes.
 *
 * A damaged record (ERR_CORRUPT_RECORD: it fails its checksum, or was quarantined) does not stop a listing: the
 * record is built from what the table knows, the part that record held is left empty, and `unreadable` says which
 * (job.ts). Only reading the data itself, a worker running the job, fails with ERR_CORRUPT_RECORD.
 */
import { SpoolError } from '../../errors.js';
import type { CompleteEvent, FailEvent } from '../../store/events.js';
import type { JobMeta, JobState } from '../../store/job-table.js';
import type { JobFields, JobRecord, JobType } from '../backend.js';
import type { Owner } from './owner.js';

/** A job's fields as a plain record (what a transport sends of a JobMeta). */
export function jobFields(m: JobFields): JobFields {
  return {
    id: m.id, name: m.name, opts: m.opts, numericId: m.numericId, timestamp: m.timestamp, attemptsMade: m.attemptsMade,
    progress: m.progress, failedReason: m.failedReason, processedOn: m.processedOn, finishedOn: m.finishedOn,
    logCount: m.logCount,
  };
}

/**
 * The whole job: its fields, and its data, result or failure read from the log. A damaged record
 * (ERR_CORRUPT_RECORD) does not fail the read: what it held is left empty and `unreadable` says which (job.ts).
 */
export async function loadRecord(owner: Owner, meta: JobMeta): Promise<JobRecord> {
  let unreadable: { code: string; message: string } | undefined;
  const damaged = (what: string) => (err: unknown): undefined => {
    if (!(err instanceof SpoolError) || err.code !== 'ERR_CORRUPT_RECORD') throw err;
    unreadable ??= { code: 'ERR_CORRUPT_RECORD', message: `job ${meta.id}: its ${what} cannot be read: ${err.message}` };
    return undefined;
  };
  const add = await owner.reads.readAdd(meta).catch(damaged('data'));
  const fields = jobFields(meta); // as the table has them once the data is read, as Job.load took them
  let stacktrace: string[] = [];
  let origin: JobRecord['origin'];
  if (add?.dl) {
    origin = { queue: add.dl.q, jobId: add.dl.id };
    if (add.dl.e.stack && meta.failedReason !== undefined) stacktrace = [add.dl.e.stack]; // not once retried
  }
  let returnvalue: unknown;
  if (meta.resultPtr) {
    const complete = await owner.reads.readEvent<CompleteEvent>(() => meta.resultPtr!).catch(damaged('return value'));
    returnvalue = complete?.rv;
  }
  if (meta.failPtr && meta.failPtr.seq) {
    const fail = await owner.reads.readEvent<FailEvent>(() => meta.failPtr!).catch(damaged('failure record'));
    if (fail?.e?.stack) stacktrace = [fail.e.stack];
  }
  return { ...fields, data: add?.d, returnvalue, stacktrace, origin, unreadable };
}

export async function getJob(owner: Owner, id: string): Promise<JobRecord | undefined> {
  const meta = owner.table.jobs.get(id);
  return meta ? loadRecord(owner, meta) : undefined;
}

/**
 * Jobs in the given states (checked by the facade). As in BullMQ, [start, end] applies to each state's list (in its
 * order: waiting by priority, delayed by run time, the others oldest first, reversed unless asc) and the slices are
 * concatenated. 'paused' lists the waiting jobs while the queue is paused, and 'waiting' lists them only while not.
 */
export function getJobs(owner: Owner, types: JobType[], start: number, end: number, asc: boolean): Promise<JobRecord[]> {
  const metas: JobMeta[] = [];
  const seen = new Set<JobType>();
  for (const t of types) {
    if (seen.has(t)) continue;
    seen.add(t);
    if ((t === 'paused') !== owner.table.paused && (t === 'paused' || t === 'waiting')) continue;
    const ordered = orderedState(owner, t === 'paused' ? 'waiting' : t);
    if (!asc) ordered.reverse();
    metas.push(...ordered.slice(start, end < 0 ? undefined : end + 1));
  }
  return Promise.all(metas.map((m) => loadRecord(owner, m)));
}

export function getJobCounts(owner: Owner, types: JobType[]): Record<string, number> {
  const t = owner.table;
  const all: Record<string, number> = {
    waiting: t.paused ? 0 : t.count('waiting'),
    paused: t.paused ? t.count('waiting') : 0,
    delayed: t.count('delayed'),
    active: t.count('active'),
    completed: t.count('completed'),
    failed: t.count('failed'),
  };
  if (types.length === 0) return all;
  return Object.fromEntries(types.map((k) => [k, all[k] ?? 0]));
}

export function count(owner: Owner): number {
  const c = getJobCounts(owner, ['waiting', 'paused', 'delayed']);
  return c.waiting! + c.paused! + c.delayed!;
}

/** A state's jobs in their natural order: waiting by priority then order, delayed by run time, others as kept. */
export function orderedState(owner: Owner, state: JobState): JobMeta[] {
  const list = [...owner.table.jobsIn(state)];
  if (state === 'waiting') list.sort((a, b) => a.priority - b.priority || a.order - b.order);
  else if (state === 'delayed') list.sort((a, b) => a.runAt - b.runAt || a.order - b.order);
  return list;
}
