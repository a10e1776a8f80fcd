/**
 * Checkpoints and compaction of the owner's log (DESIGN §3: the index is a cache of the fold at a log position;
 * compaction reclaims the records of deleted jobs). Every max(checkpointEvery, jobs) records the owner appends
 * (`since` counts them) it calls due(): a checkpoint, or, when enough jobs were deleted since the last compaction
 * for their records to be worth reclaiming, a compaction, which ends with a checkpoint. A checkpoint costs O(jobs);
 * taking one every max(checkpointEvery, jobs) records keeps its cost per record constant however large the queue
 * grows, and bounds replay on open to about as many records as there are jobs.
 *
 * Crash story: the log is the truth; a crash during either leaves the last complete index (log/checkpoint) and
 * segments that recovery puts right (log/compactor.ts), so nothing here needs undoing.
 */
import type { Log } from '../../log/log.js';
import type { CompactionResult } from '../../log/compactor.js';
import type { JobTable } from '../../store/job-table.js';
import { QueueLiveness } from '../../store/liveness.js';
import { encodeSnapshot } from '../../store/snapshot.js';

/** What maintenance uses of its owner (owner.ts). */
export interface MaintenanceHost {
  readonly closed: boolean;
  readonly table: JobTable;
  emit(event: 'error', err: Error): boolean;
}

export class Maintenance {
  /** Records appended since the last checkpoint began (the owner raises it per record, header). */
  since = 0;
  readonly #log: Log;
  readonly #host: MaintenanceHost;
  #checkpointing: Promise<void> | undefined;
  #compacting: Promise<CompactionResult | undefined> | undefined;
  #deletionsAtCompaction = 0;

  constructor(log: Log, host: MaintenanceHost) {
    this.#log = log;
    this.#host = host;
  }

  /** A checkpoint is due (header): it, or a compaction when enough jobs were deleted. */
  due(): void {
    const table = this.#host.table;
    const deleted = table.deletions - this.#deletionsAtCompaction;
    if (deleted >= Math.max(1_000, table.jobs.size / 4)) void this.compact();
    else void this.checkpoint();
  }

  /**
   * Reclaims the log space of deleted jobs (store/liveness.ts says which records may go; log/compactor.ts does
   * it in sealed segments while appends go on), then checkpoints: a rewritten segment's new generation makes the
   * old index unusable. Runs one at a time; resolves undefined when it could not run or failed (reported).
   */
  compact(): Promise<CompactionResult | undefined> {
    if (this.#compacting) return this.#compacting;
    const host = this.#host;
    if (host.closed) return Promise.resolve(undefined);
    this.#deletionsAtCompaction = host.table.deletions;
    const liveness = new QueueLiveness(host.table);
    this.#compacting = (async () => {
      try {
        return await this.#log.compact((e) => liveness.isLive(e), {
          onSegment: (_id, action, moved) => liveness.segmentDone(action, moved),
          mustRewrite: () => liveness.mustRewrite(),
        });
      } catch (err) {
        host.emit('error', err as Error); // relocations already made were applied segment by segment
        return undefined;
      } finally {
        await this.#checkpointing;
        await this.checkpoint();
        this.#compacting = undefined;
      }
    })();
    return this.#compacting;
  }

  checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing;
    this.since = 0;
    // The snapshot and the position (taken inside checkpoint() before its first await) describe the same moment.
    const state = encodeSnapshot(this.#host.table);
    this.#checkpointing = this.#log
      .checkpoint(state)
      .catch((err) => void this.#host.emit('error', err))
      .finally(() => {
        this.#checkpointing = undefined;
      });
    return this.#checkpointing;
  }

  /** Closing: waits for what runs, then checkpoints what is not covered yet (unless the log failed). */
  async close(): Promise<void> {
    await this.#compacting;
    await this.#checkpointing;
    if (this.since > 0 && !this.#log.failure) await this.checkpoint();
  }
}
