/**
 * The dead-letter move (job option deadLetter): a job whose attempts are exhausted is moved, once its FAIL is
 * durable, to its dead-letter queue (same root directory): added there with its name and data under the id
 * "<queue>:<id>", its ADD keeping where it came from, its attempts and its last error (DeadLetterOrigin,
 * store/events.ts); then, once that ADD is durable, removed here.
 *
 * Crash story: a crash between the two leaves it in both, never in neither; a repeat of the move (the same job id)
 * adds nothing there, as the id exists. Nothing repeats a move cut off by a crash: the job then stays failed here
 * beside its copy there. A job retried or removed here while the move waited is left alone.
 *
 * The dead-letter queue's owner is reached through the process's registry (registry.ts hands in an OwnerSource),
 * and appended to through DeadLetterSink: its addDeadLetter command (commands.ts), one request like any other.
 * This module imports neither the owner nor any facade.
 */
import { SpoolError } from '../../errors.js';
import type { AddEvent, FailEvent, WireError } from '../../store/events.js';
import type { JobMeta, JobTable } from '../../store/job-table.js';
import type { RecordPointer } from '../../log/writer.js';
import type { Clock } from '../clock.js';
import { INTERNAL_CLOCK, NO_JOB_OPTS, resolveQueueOptions, type ResolvedQueueOptions } from '../options.js';

/** The owner of a dead-letter queue, as the move uses it. */
export interface DeadLetterSink {
  readonly opts: ResolvedQueueOptions;
  /** Adds the dead letter unless a job with its id exists there; resolves once durable. */
  appendDeadLetter(ev: AddEvent): Promise<unknown>;
}

/** Where owners come from (registry.ts): a holder's share of the process's owner of a queue, and its release. */
export interface OwnerSource {
  acquire(name: string, opts: ResolvedQueueOptions): { key: string; owner: Promise<DeadLetterSink> };
  release(key: string): Promise<void>;
}

/**
 * The source of an owner opened outside the registry (a test that drives an Owner directly): it reaches no other
 * owner, so a move to a dead-letter queue fails (ERR_OWNER_UNREACHABLE, reported as 'error'; the job stays failed).
 */
export const NO_OWNERS: OwnerSource = {
  acquire: (name) => ({
    key: '',
    owner: Promise.reject(new SpoolError('ERR_OWNER_UNREACHABLE', `dead-letter queue ${name}: this owner was opened outside the registry, and reaches no other owner`)),
  }),
  release: () => Promise.resolve(),
};

/** What the move uses of the owner whose job it moves. */
export interface DeadLetterHost {
  readonly name: string;
  readonly opts: ResolvedQueueOptions;
  readonly clock: Clock;
  readonly table: JobTable;
  readonly reads: { readAdd(job: JobMeta): Promise<AddEvent>; readEvent<T>(where: () => RecordPointer): Promise<T> };
  removeJobs(ids: string[]): { done: Promise<unknown> };
  emit(event: 'error', err: Error): boolean;
}

export class DeadLetters {
  readonly #host: DeadLetterHost;
  readonly #source: OwnerSource;
  readonly #held = new Map<string, { key: string; owner: Promise<DeadLetterSink> }>();

  constructor(host: DeadLetterHost, source: OwnerSource) {
    this.#host = host;
    this.#source = source;
  }

  /** Moves a job that failed for good to its dead-letter queue (header). Errors go to 'error'. */
  async move(job: JobMeta): Promise<void> {
    const host = this.#host;
    try {
      const failed = (): boolean => host.table.jobs.get(job.id) === job && job.state === 'failed';
      const [add, fail] = await Promise.all([
        host.reads.readAdd(job),
        job.failPtr ? host.reads.readEvent<FailEvent>(() => job.failPtr!) : undefined,
      ]);
      const dlq = await this.#owner(job.opts.deadLetter!);
      if (!failed()) return;
      const e: WireError = fail?.e ?? { name: 'Error', message: job.failedReason ?? 'job failed' };
      // d last, as Queue.add writes it (decodeAddData reads only the data).
      const ev: AddEvent = { id: `${host.name}:${job.id}`, n: add.n, o: NO_JOB_OPTS, ts: host.clock.now(), dl: { q: host.name, id: job.id, a: job.attemptsMade, e }, d: add.d };
      await dlq.appendDeadLetter(ev);
      if (failed()) await host.removeJobs([job.id]).done;
    } catch (err) {
      host.emit('error', err as Error);
    }
  }

  /**
   * The process's owner of a dead-letter queue, acquired on first use and released when this owner closes. One
   * already open here (the user's own Queue on it) is shared as it is; one that is not is opened with this queue's
   * durability, encryption and compression (a handle the user opens on it later must agree: registry.ts). An
   * encrypted queue's jobs are never moved into one that is not encrypted: ERR_OPTIONS_CONFLICT, reported as
   * 'error', and the job stays failed here.
   */
  async #owner(name: string): Promise<DeadLetterSink> {
    let held = this.#held.get(name);
    if (!held) {
      const o = this.#host.opts;
      const opts = resolveQueueOptions({ dir: o.dir, durability: o.durability, encryption: o.encryption, compression: o.compression, [INTERNAL_CLOCK]: o.clock });
      const acquired = this.#source.acquire(name, opts);
      held = acquired;
      this.#held.set(name, acquired);
      // A queue that failed to open (ERR_LOCKED…) is reported by the move that awaits it; the next move tries
      // afresh. It needs no release: the registry has dropped it.
      acquired.owner.catch(() => {
        if (this.#held.get(name) === acquired) this.#held.delete(name);
      });
    }
    const dlq = await held.owner;
    if (this.#host.opts.encryption && !dlq.opts.encryption) {
      throw new SpoolError('ERR_OPTIONS_CONFLICT', `queue ${this.#host.name} is encrypted and its dead-letter queue ${name} is open without encryption: its failed jobs stay here`);
    }
    return dlq;
  }

  /** The owner is closing: the dead-letter owners it acquired are released. */
  async close(): Promise<void> {
    for (const { key } of this.#held.values()) await this.#source.release(key);
  }
}
