/**
 * queueStats: the log's statistics (log/stats.ts) judged with what the queue knows: record types by name
 * (events.ts), and the records of jobs that are gone (removed, or dropped by retention) counted as dead, by the
 * same rule compaction uses (liveness.ts). Read-only and lock-free like logStats, so it runs beside a live owner.
 *
 * Two passes over the log. The first folds every record into a job table of its own, as an open without an
 * index does (the fold from the first record gives the owner's table; liveness.ts relies on that too), and notes
 * the last seq it folded. The second counts, asking QueueLiveness about each record up to that seq. Records past
 * it were appended between the passes, for jobs the table has not seen: they count as live, and so do records of
 * a job removed between the passes (conservative, as compaction is beside appends).
 *
 * Telling jobs apart needs the payloads. When they cannot be read (an encrypted log without its key, a key id
 * missing, a payload that is not a queue event: a log written with Log directly), every record a reader accepts
 * counts as live, as in logStats, and `liveness` says why.
 */
import { SpoolError } from '../errors.js';
import type { EncryptionOptions } from '../codec/keyring.js';
import type { Fs } from '../log/fs.js';
import { readLog } from '../log/read-log.js';
import { logStats, type LogStats } from '../log/stats.js';
import { REC, decodeEvent } from './events.js';
import { JobTable } from './job-table.js';
import { QueueLiveness } from './liveness.js';

export interface QueueStats extends Omit<LogStats, 'types'> {
  /** Records per type by name (ADD, ACTIVE, …), `type-N` for a type this version does not know. */
  types: Record<string, number>;
  /**
   * How live and dead records were told apart: by job ('jobs': a record of a job that is gone is dead; `jobs` is
   * how many the log holds), or by the log alone ('log': every record a reader accepts is live), and why.
   */
  liveness: { by: 'jobs'; jobs: number } | { by: 'log'; reason: string };
}

const TYPE_NAMES = new Map<number, string>(Object.entries(REC).map(([name, type]) => [type, name]));

/** The name of a queue record type: ADD, ACTIVE, … or `type-N`. */
export function recordTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `type-${type}`;
}

const NO_MOVES = new Map<number, never>();

export function queueStats(dir: string, opts: { fs?: Fs; encryption?: EncryptionOptions } = {}): QueueStats {
  const table = new JobTable();
  let foldedTo = 0;
  let unreadable: string | undefined;
  readLog(dir, {
    fs: opts.fs,
    encryption: opts.encryption,
    onEntry: (e) => {
      try {
        const event = decodeEvent<unknown>(e.payload(), e.seq);
        if (typeof event !== 'object' || event === null || Array.isArray(event)) {
          throw new SpoolError('ERR_CORRUPT_RECORD', `record ${e.seq}: payload is not a queue event`);
        }
        table.apply(e.type, event, { seq: e.seq, segmentId: e.segmentId, offset: e.offset, size: e.size });
      } catch (err) {
        if (!(err instanceof SpoolError)) throw err;
        unreadable =
          err.code === 'ERR_KEY_MISSING' && !opts.encryption
            ? 'the log is encrypted: give its keys to tell live jobs from removed ones'
            : `${err.code}: ${err.message}`;
        return false;
      }
      foldedTo = e.seq;
    },
  });

  let isLive: ((e: Parameters<QueueLiveness['isLive']>[0]) => boolean) | undefined;
  if (unreadable === undefined) {
    const liveness = new QueueLiveness(table);
    let segmentId = -1;
    isLive = (e) => {
      if (e.seq > foldedTo) return true;
      // The per-segment bookkeeping is compaction's (lingering ids, relocations): here each segment is simply
      // closed as one that nothing was kept from, which resets it.
      if (e.segmentId !== segmentId) {
        liveness.segmentDone('deleted', NO_MOVES);
        segmentId = e.segmentId;
      }
      return liveness.isLive(e);
    };
  }
  const stats = logStats(dir, { fs: opts.fs, encryption: opts.encryption, isLive });
  const types: Record<string, number> = {};
  for (const [type, n] of Object.entries(stats.types)) types[recordTypeName(Number(type))] = n;
  return {
    ...stats,
    types,
    liveness: unreadable === undefined ? { by: 'jobs', jobs: table.jobs.size } : { by: 'log', reason: unreadable },
  };
}
