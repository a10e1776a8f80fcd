/**
 * The owner's commands (issue 10, STYLE "One command path"): one function per operation, in a table of names as
 * Redis keeps its commands, which in-process callers (LocalBackend, local-backend.ts) and socket requests from other
 * processes (queue/remote/) both reach, so that each operation is written and tested once.
 *
 * Contract of every command: it takes the owner and serializable arguments that the facade has already validated
 * and resolved (queue.ts, options.ts: commands trust them), refuses what only the owner can check (an unknown job,
 * an active one) with the SpoolError code a caller in this process has always had, and resolves with a
 * serializable reply (plain values, job records: JobRecord in backend.ts) once the owner's records for it are as
 * durable as the queue's mode promises. Two replies are not plain in process, to keep the per-job path as cheap as
 * it was: the JobFields of an add are the table's JobMeta itself (read at once by the caller), and addOne hands its
 * reply to the caller's `reply` builder. A transport turns those into records (jobFields, job-records.ts).
 *
 * A command's state change is visible in memory at once (a later command sees it); nothing it wrote leaves the
 * owner before it is durable (owner.ts, Durability).
 */
import { SpoolError, invalidArg } from '../../errors.js';
import { REC, encodeAdd, type AddEvent, type StoredJobOpts } from '../../store/events.js';
import { JobMeta, type JobState } from '../../store/job-table.js';
import { NO_JOB_OPTS } from '../options.js';
import type { AddBulkReply, AddRequest, JobFields, JobRecord, Outcome, PublicJobState, StartTally } from '../backend.js';
import type { Owner } from './owner.js';
import { count, getJob, getJobCounts, getJobs, loadRecord, orderedState } from './job-records.js';

// ---- adding

/** The ADD payload of a request (encodeAdd, store/events.ts): the facade made the JSON of its data and name. */
function addPayload(ev: AddEvent, req: AddRequest, generatedId: boolean): string | object {
  if (req.json === undefined) return encodeAdd(ev, undefined); // no data: JSON leaves the key out
  const id = generatedId ? `"${ev.id}"` : JSON.stringify(ev.id); // a generated id is digits only
  return encodeAdd(ev, req.json, req.nameJson, id, ev.o === NO_JOB_OPTS ? '{}' : JSON.stringify(ev.o));
}

/**
 * One job with a generated id, the common case: addBulk's plan without its batch bookkeeping (a Map of ids seen,
 * plan entries, Promise.all), which cost more than the append itself (benchmarks/README.md, queue-add). The same
 * steps in the same order: the id is the seq the record gets, and nothing is awaited in between. Resolves with
 * `reply(fields, req)`; a job already gone again (removeOnComplete ran first) replies its fields as added.
 */
async function addOne<R>(owner: Owner, req: AddRequest, reply: (fields: JobFields, req: AddRequest) => R): Promise<R> {
  const ev: AddEvent = { id: String(owner.nextSeq), n: req.name, d: req.data, o: req.o, ts: owner.clock.now() };
  const { job, done } = owner.record(REC.ADD, ev, addPayload(ev, req, true) as string);
  owner.jobAdded(job!, done);
  await done;
  return reply(owner.table.jobs.get(ev.id) ?? synthetic(ev), req);
}

/**
 * Jobs added together, in one group commit. With an existing jobId, a job adds nothing and replies the existing
 * job; a jobId repeated in the batch replies the first of them (AddBulkReply).
 */
async function add(owner: Owner, reqs: AddRequest[]): Promise<AddBulkReply> {
  // Plan first, append after: ids are fixed (a generated id is the seq its ADD record will get, known because
  // nothing else is appended until the loop below is done), every payload is made once, and nothing awaits.
  const ts = owner.clock.now();
  const start = owner.nextSeq;
  const plan: Array<{ existing?: JobMeta; sameAs?: number; ev?: AddEvent; req?: AddRequest }> = [];
  const seen = new Map<string, number>();
  let appended = 0;
  for (const req of reqs) {
    const custom = req.o.jobId;
    if (custom !== undefined) {
      const existing = owner.table.jobs.get(custom);
      if (existing) {
        plan.push({ existing });
        continue;
      }
      const first = seen.get(custom);
      if (first !== undefined) {
        plan.push({ sameAs: first });
        continue;
      }
      seen.set(custom, plan.length);
    }
    const ev: AddEvent = { id: custom ?? String(start + appended), n: req.name, d: req.data, o: withoutJobId(req.o), ts };
    appended++;
    plan.push({ ev, req });
  }
  if (owner.nextSeq !== start) throw new Error('the log moved while a batch was planned'); // planning never awaits
  const added: JobMeta[] = [];
  let last: Promise<unknown> = Promise.resolve();
  for (let i = 0, left = appended; i < plan.length; i++) {
    const p = plan[i]!;
    if (!p.ev) continue;
    const payload = addPayload(p.ev, p.req!, p.req!.o.jobId === undefined) as string;
    if (--left > 0) {
      added.push(owner.recordUntracked(REC.ADD, p.ev, payload)!);
      continue;
    }
    // Group commit settles records in log order: the last one's promise settles after all the others.
    const { job, done } = owner.record(REC.ADD, p.ev, payload);
    last = done;
    added.push(job!);
  }
  owner.jobsAdded(added, last);
  await last;
  if (appended === plan.length) return { added, others: undefined };
  // The metas of `added` in plan order; one that was removed meanwhile (removeOnComplete) keeps its last state.
  const others = new Array<JobRecord | number | undefined>(plan.length);
  const loads: Array<Promise<void>> = [];
  for (let i = 0; i < plan.length; i++) {
    const p = plan[i]!;
    if (p.existing) loads.push(loadRecord(owner, p.existing).then((r) => void (others[i] = r)));
    else if (p.sameAs !== undefined) others[i] = p.sameAs;
  }
  await Promise.all(loads);
  return { added, others };
}

/** A job that is already gone again (removeOnComplete ran before add() resolved): its fields as added. */
function synthetic(ev: AddEvent): JobMeta {
  return new JobMeta(ev.id, ev.n, ev.o, 'completed', 0, 0, ev.ts, { seq: 0, segmentId: 0, offset: 0, size: 0 });
}

function withoutJobId(o: StoredJobOpts): StoredJobOpts {
  if (o.jobId === undefined) return o;
  const { jobId: _omit, ...rest } = o;
  return rest;
}

// ---- the queue

async function pause(owner: Owner): Promise<void> {
  if (owner.table.paused) return;
  const { done } = owner.record(REC.PAUSE, {});
  owner.emit('paused');
  await done;
}

async function resume(owner: Owner): Promise<void> {
  if (!owner.table.paused) return;
  const { done } = owner.record(REC.RESUME, {});
  owner.emit('resumed');
  owner.desk.dispatch();
  await done;
}

function isPaused(owner: Owner): boolean {
  return owner.table.paused;
}

/** Removes a job; false when there was none. ERR_JOB_ACTIVE while it is being processed. */
async function remove(owner: Owner, id: string): Promise<boolean> {
  const meta = owner.table.jobs.get(id);
  if (!meta) return false;
  if (meta.state === 'active') throw new SpoolError('ERR_JOB_ACTIVE', `job ${id} is being processed`);
  await owner.removeJobs([meta.id]).done;
  return true;
}

/** Makes a delayed job ready now. ERR_INVALID_ARG when it is not delayed. */
async function promote(owner: Owner, id: string): Promise<void> {
  const meta = owner.table.jobs.get(id);
  if (!meta || meta.state !== 'delayed') throw invalidArg(`job ${id} is not delayed`);
  const { job, done } = owner.record(REC.PROMOTE, { id: meta.id });
  if (job) owner.jobAdded(job, done);
  await done;
}

/** Every failed (or completed) job that finished before `before` back to waiting, oldest first, `batch` per commit. */
async function retryJobs(owner: Owner, state: 'failed' | 'completed', batch: number, before: number): Promise<number> {
  const ids = [...owner.table.byState[state]].filter((j) => j.finishedOn < before).map((j) => j.id);
  for (let i = 0; i < ids.length; i += batch) {
    const ts = owner.clock.now();
    let done: Promise<unknown> = Promise.resolve();
    for (const id of ids.slice(i, i + batch)) {
      const r = owner.record(REC.RETRY, { id, ts });
      done = r.done;
      if (r.job) owner.jobAdded(r.job, r.done);
    }
    await done;
  }
  return ids.length;
}

/** Removes every waiting job (and delayed ones too with delayed = true). Active and finished jobs stay. */
async function drain(owner: Owner, delayed: boolean): Promise<void> {
  const ids = [...owner.table.jobsIn('waiting')].map((j) => j.id);
  if (delayed) ids.push(...[...owner.table.jobsIn('delayed')].map((j) => j.id));
  await owner.removeJobs(ids).done;
}

/** Removes up to `limit` jobs of `state` older than `grace` ms (by finish time, or add time). Replies their ids. */
async function clean(owner: Owner, grace: number, limit: number, state: JobState): Promise<string[]> {
  const cutoff = owner.clock.now() - grace;
  const ids: string[] = [];
  for (const job of orderedState(owner, state)) {
    if (limit > 0 && ids.length >= limit) break;
    if ((job.finishedOn || job.timestamp) <= cutoff && job.state !== 'active') ids.push(job.id);
  }
  await owner.removeJobs(ids).done;
  return ids;
}

/** Removes every job. ERR_JOB_ACTIVE while jobs are active unless force. */
async function obliterate(owner: Owner, force: boolean): Promise<void> {
  if (owner.table.count('active') > 0 && !force) {
    throw new SpoolError('ERR_JOB_ACTIVE', `queue ${owner.name} has active jobs; pass { force: true }`);
  }
  const { done } = owner.removeJobs([...owner.table.jobs.keys()]);
  // removeJobs skips active jobs; with force they go too. Their workers' outcomes then find no job and are
  // ignored (Owner.finish), and their tickets are recycled when the leases lapse.
  const active = [...owner.table.byState.active].map((j) => j.id);
  if (active.length > 0) {
    await owner.record(REC.REMOVE, { ids: active }).done;
    for (const id of active) owner.emit('removed', { jobId: id });
  }
  await done;
  if (owner.table.paused) await owner.record(REC.RESUME, {}).done;
}

/** Gives back the disk space of deleted jobs now. ERR_IO when it failed (the owner reported why as 'error'). */
async function compact(owner: Owner): Promise<{ bytesBefore: number; bytesAfter: number; segmentsRewritten: number; segmentsDeleted: number }> {
  const r = await owner.compact();
  if (!r) throw new SpoolError('ERR_IO', `compaction of queue ${owner.name} failed (see the 'error' event)`);
  return { bytesBefore: r.bytesBefore, bytesAfter: r.bytesAfter, segmentsRewritten: r.rewritten.length, segmentsDeleted: r.deleted.length };
}

// ---- one job

function getState(owner: Owner, id: string): PublicJobState {
  const meta = owner.table.jobs.get(id);
  if (!meta) return 'unknown';
  if (meta.state === 'waiting' && owner.table.paused) return 'paused';
  return meta.state;
}

/** Records progress (checked by the facade) and emits 'progress'. */
async function updateProgress(owner: Owner, id: string, progress: unknown): Promise<void> {
  await owner.progress(id, progress);
}

/** Adds a line to the job's log; replies the number of lines then. */
async function log(owner: Owner, id: string, line: string): Promise<number> {
  await owner.log(id, line);
  return logCount(owner, id);
}

function logCount(owner: Owner, id: string): number {
  return owner.table.jobs.get(id)?.logPtrs?.length ?? 0;
}

/** The job's log lines, oldest first. */
async function getLogs(owner: Owner, id: string): Promise<string[]> {
  const meta = owner.table.jobs.get(id);
  const lines: string[] = [];
  for (let i = 0; i < (meta?.logPtrs?.length ?? 0); i++) {
    lines.push((await owner.reads.readEvent<{ l: string }>(() => meta!.logPtrs![i]!)).l);
  }
  return lines;
}

/** Removes the job (none: nothing). ERR_JOB_ACTIVE while it is being processed. */
async function removeJob(owner: Owner, id: string): Promise<void> {
  const meta = owner.table.jobs.get(id);
  if (!meta) return;
  if (meta.state === 'active') throw new SpoolError('ERR_JOB_ACTIVE', `job ${id} is being processed`);
  await owner.removeJobs([id]).done;
}

/** Sends a failed (or completed) job back to waiting with its attempts reset. ERR_INVALID_ARG otherwise. */
async function retryJob(owner: Owner, id: string): Promise<void> {
  const meta = owner.table.jobs.get(id);
  if (!meta || (meta.state !== 'failed' && meta.state !== 'completed')) {
    throw new SpoolError('ERR_INVALID_ARG', `job ${id} is not failed or completed`);
  }
  const { job, done } = owner.record(REC.RETRY, { id, ts: owner.clock.now() });
  if (job) owner.jobAdded(job, done);
  await done;
}

/**
 * A dead letter moved here from another queue (dead-letter.ts): added unless a job with its id exists (a repeated
 * move adds nothing); resolves once durable. `ev` is the ADD the moving owner made, with its origin (`dl`).
 */
async function addDeadLetter(owner: Owner, ev: AddEvent): Promise<void> {
  if (owner.table.jobs.has(ev.id)) return;
  const { job, done } = owner.record(REC.ADD, ev, encodeAdd(ev, JSON.stringify(ev.d)));
  if (job) owner.jobAdded(job, done);
  await done;
}

// ---- workers' reports (owner.ts: outcomes; starts.ts)

function finish(owner: Owner, ticket: string, id: string, attempt: number, outcome: Outcome): Promise<unknown> | undefined {
  return owner.finish(ticket, id, attempt, outcome);
}

function release(owner: Owner, ticket: string, id: string, attempt: number, why?: string): Promise<unknown> | undefined {
  return owner.release(ticket, id, attempt, why);
}

/** A ticket's start tally (Starts, starts.ts). From another process, a plain { ticket, started } the owner keeps. */
function started(owner: Owner, tally: StartTally): void {
  owner.started(tally);
}

/** The owner's commands by name (header). */
export const COMMANDS = {
  addOne,
  add,
  addDeadLetter,
  getJob,
  getJobs,
  getJobCounts,
  count,
  pause,
  resume,
  isPaused,
  remove,
  promote,
  retryJobs,
  drain,
  clean,
  obliterate,
  compact,
  'job.getState': getState,
  'job.updateProgress': updateProgress,
  'job.log': log,
  'job.logCount': logCount,
  'job.getLogs': getLogs,
  'job.remove': removeJob,
  'job.retry': retryJob,
  finish,
  release,
  started,
} as const;

export type CommandName = keyof typeof COMMANDS;
