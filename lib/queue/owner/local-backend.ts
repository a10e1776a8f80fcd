/**
 * LocalBackend: the backend (backend.ts) of Queues, Jobs and Workers in the owner's own process. Each call is the
 * owner's command (commands.ts) called directly: nothing is serialized, no request object is made, and replies are
 * handed over as they are (a job's JobFields is its JobMeta, read at once by the caller). One per owner, shared by
 * every handle on the queue in this process (registry.ts).
 *
 * The worker's side: claims and renewals are the worker's own file operations on the owner's ticket folders
 * (tickets.ts, through the desk's TicketFiles, so the queue's Fs seam covers them); attach, detach and dispatch
 * reach the desk; outcomes, progress, logs and start tallies are commands.
 */
import type { JobMeta } from '../../store/job-table.js';
import type { Clock } from '../clock.js';
import type { TicketJob } from '../tickets.js';
import type {
  AddBulkReply, AddRequest, JobFields, JobRecord, JobType, Outcome, PublicJobState, QueueBackend, OwnerEventName, OwnerEventMap,
  StartTally, WorkerBackend, WorkerPort,
} from '../backend.js';
import type { JobState } from '../../store/job-table.js';
import { COMMANDS as C } from './commands.js';
import type { Owner } from './owner.js';

export class LocalBackend implements QueueBackend, WorkerBackend {
  readonly #owner: Owner;
  readonly queueName: string;
  readonly clock: Clock;
  readonly leaseMs: number;
  readonly maxDataBytes: number;

  constructor(owner: Owner) {
    this.#owner = owner;
    this.queueName = owner.name;
    this.clock = owner.clock;
    this.leaseMs = owner.opts.leaseMs;
    this.maxDataBytes = owner.opts.maxDataBytes;
  }

  // ---- Queue

  add<R>(req: AddRequest, reply: (fields: JobFields, req: AddRequest) => R): Promise<R> {
    return C.addOne(this.#owner, req, reply);
  }

  addBulk(reqs: AddRequest[]): Promise<AddBulkReply> {
    return C.add(this.#owner, reqs);
  }

  getJob(id: string): Promise<JobRecord | undefined> {
    return C.getJob(this.#owner, id);
  }

  getJobs(types: JobType[], start: number, end: number, asc: boolean): Promise<JobRecord[]> {
    return C.getJobs(this.#owner, types, start, end, asc);
  }

  async getJobCounts(types: JobType[]): Promise<Record<string, number>> {
    return C.getJobCounts(this.#owner, types);
  }

  pause(): Promise<void> {
    return C.pause(this.#owner);
  }

  resume(): Promise<void> {
    return C.resume(this.#owner);
  }

  async isPaused(): Promise<boolean> {
    return C.isPaused(this.#owner);
  }

  remove(id: string): Promise<boolean> {
    return C.remove(this.#owner, id);
  }

  promote(id: string): Promise<void> {
    return C.promote(this.#owner, id);
  }

  retryJobs(state: 'failed' | 'completed', batch: number, before: number): Promise<number> {
    return C.retryJobs(this.#owner, state, batch, before);
  }

  drain(delayed: boolean): Promise<void> {
    return C.drain(this.#owner, delayed);
  }

  clean(grace: number, limit: number, state: JobState): Promise<string[]> {
    return C.clean(this.#owner, grace, limit, state);
  }

  obliterate(force: boolean): Promise<void> {
    return C.obliterate(this.#owner, force);
  }

  compact(): ReturnType<QueueBackend['compact']> {
    return C.compact(this.#owner);
  }

  on<E extends OwnerEventName>(event: E, listener: (...args: OwnerEventMap[E]) => void): void {
    this.#owner.on(event, listener as never);
  }

  off<E extends OwnerEventName>(event: E, listener: (...args: OwnerEventMap[E]) => void): void {
    this.#owner.off(event, listener as never);
  }

  // ---- Job

  async getState(id: string): Promise<PublicJobState> {
    return C['job.getState'](this.#owner, id);
  }

  updateProgress(id: string, progress: unknown): Promise<void> {
    return C['job.updateProgress'](this.#owner, id, progress);
  }

  log(id: string, line: string): Promise<number> {
    return C['job.log'](this.#owner, id, line);
  }

  logCount(id: string): number {
    return C['job.logCount'](this.#owner, id);
  }

  getLogs(id: string): Promise<string[]> {
    return C['job.getLogs'](this.#owner, id);
  }

  removeJob(id: string): Promise<void> {
    return C['job.remove'](this.#owner, id);
  }

  retryJob(id: string): Promise<void> {
    return C['job.retry'](this.#owner, id);
  }

  // ---- Worker

  attach(port: WorkerPort): void {
    this.#owner.attach(port);
  }

  detach(port: WorkerPort): void {
    this.#owner.detach(port);
  }

  dispatch(): void {
    this.#owner.desk.dispatch();
  }

  claim(name: string, workerId: string): string | undefined {
    return this.#owner.desk.files.claim(name, workerId);
  }

  claimed(ticket: string, takenName: string): void {
    this.#owner.desk.claimed(ticket, takenName);
  }

  renew(takenName: string, now: number): boolean {
    return this.#owner.desk.files.renew(takenName, now);
  }

  runnable(ticket: string, tj: TicketJob): JobFields | undefined {
    const meta = this.#owner.table.jobs.get(tj.id);
    return meta && meta.state === 'active' && meta.ticket === ticket ? meta : undefined;
  }

  // `job` is the JobMeta runnable() handed out (in process, the fields are the table's entry).
  dataWritten(job: JobFields): boolean {
    return this.#owner.reads.addWritten(job as JobMeta);
  }

  readDataNow(job: JobFields): unknown {
    return this.#owner.reads.readDataNow(job as JobMeta);
  }

  readData(job: JobFields): Promise<unknown> {
    return this.#owner.reads.readData(job as JobMeta);
  }

  ticketOf(id: string): string | undefined {
    return this.#owner.table.jobs.get(id)?.ticket;
  }

  finish(ticket: string, id: string, attempt: number, outcome: Outcome): Promise<unknown> | undefined {
    return C.finish(this.#owner, ticket, id, attempt, outcome);
  }

  release(ticket: string, id: string, attempt: number, why?: string): Promise<unknown> | undefined {
    return C.release(this.#owner, ticket, id, attempt, why);
  }

  started(tally: StartTally): void {
    C.started(this.#owner, tally);
  }
}
