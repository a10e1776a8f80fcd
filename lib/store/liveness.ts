/**
 * Which of a queue's log records compaction may drop (log/compactor.ts asks record by record, oldest segment
 * first). The rule that must hold: replaying the compacted log from the start gives the same job table as the
 * uncompacted one. The index usually spares a replay, but a compaction that rewrites a segment invalidates it
 * until the next checkpoint, and an index can be deleted.
 *
 * A record is live when it belongs to a job in the table, in its current incarnation (its seq is at or after the
 * job's ADD: a custom jobId removed and added again starts a new one); an ACTIVE when any job it lists is live;
 * a START while its ticket still has a job active in it (JobTable.tickets: once none has, what it said no longer
 * changes the table); PAUSE, RESUME and unknown types always. Everything else is dead.
 *
 * Why dropping dead records cannot change a replay: only an ADD creates a job, and the fold ignores every other
 * record of a job it does not know. So the one danger is a dead ADD that survives (in a segment dense enough to
 * be kept) while the record that deleted its job is dropped: the job would come back. Deletions come from REMOVE
 * records but also from retention (a COMPLETE or FAIL with removeOnComplete/removeOnFail, including count rules
 * that trim *other* jobs), so guarding deleting records one by one is fragile. Instead no dead ADD is left in a
 * sealed segment: a segment holding one is rewritten even when dense (mustRewrite). A removed job then has no
 * ADD before the head, so nothing can bring it back, and any of its other records that survive are ignored; and
 * retention by count trims only dead jobs once they are gone, since a smaller completed set never trims more.
 *
 * Damaged segments are the exception: compaction leaves them as they are, dead ADDs included. Their ids are
 * "lingering", and every later record naming a lingering id is kept, so their deletions replay as before.
 *
 * The table is the live owner's, read while appends go on: a job removed during the pass has its records kept
 * (judged live earlier), which is only conservative; the head segment, where new records land, is never compacted.
 */
import type { LogEntry } from '../log/log-scan.js';
import type { RecordPointer } from '../log/writer.js';
import { REC, decodeEvent } from './events.js';
import type { JobTable } from './job-table.js';

export class QueueLiveness {
  readonly #table: JobTable;
  readonly #lingering = new Set<string>();
  /** Ids of the dead ADD records seen in the segment being judged. */
  #deadAddsHere: string[] = [];
  /** seq → job id of the live job records of the segment being judged, to apply its relocations. */
  #liveHere = new Map<number, string>();

  constructor(table: JobTable) {
    this.#table = table;
  }

  isLive(entry: LogEntry): boolean {
    switch (entry.type) {
      case REC.PAUSE:
      case REC.RESUME:
        return true;
      case REC.REMOVE: {
        const { ids } = decodeEvent<{ ids: string[] }>(entry.payload(), entry.seq);
        return this.#lingering.size > 0 && ids.some((id) => this.#lingering.has(id));
      }
      case REC.ACTIVE: {
        const { j } = decodeEvent<{ j: Array<[string, number]> }>(entry.payload(), entry.seq);
        return j.some(([id]) => this.#current(id, entry.seq) || this.#lingering.has(id));
      }
      case REC.START: {
        const { t } = decodeEvent<{ t: string }>(entry.payload(), entry.seq);
        return this.#table.tickets.has(t);
      }
      case REC.ADD:
      case REC.COMPLETE:
      case REC.FAIL:
      case REC.STALL:
      case REC.PROGRESS:
      case REC.LOG:
      case REC.PROMOTE:
      case REC.RETRY:
      case REC.RELEASE: {
        const { id } = decodeEvent<{ id: string }>(entry.payload(), entry.seq);
        if (this.#current(id, entry.seq)) {
          this.#liveHere.set(entry.seq, id);
          return true;
        }
        if (entry.type === REC.ADD) this.#deadAddsHere.push(id); // only an ADD can bring a job back
        return this.#lingering.has(id);
      }
      default:
        return true; // a type a newer writer added: not ours to judge
    }
  }

  /** Whether the segment just judged must be rewritten though dense: it holds a dead ADD. */
  mustRewrite(): boolean {
    return this.#deadAddsHere.length > 0;
  }

  /**
   * The segment just judged was dealt with: a damaged one's dead ADDs linger, and the pointers of its records
   * that moved are applied to the table.
   */
  segmentDone(action: 'kept' | 'damaged' | 'deleted' | 'rewritten', moved: Map<number, RecordPointer>): void {
    if (action === 'damaged' || action === 'kept') for (const id of this.#deadAddsHere) this.#lingering.add(id);
    for (const [seq, ptr] of moved) {
      const id = this.#liveHere.get(seq);
      if (id !== undefined) this.#table.jobs.get(id)?.relocate(seq, ptr);
    }
    this.#deadAddsHere = [];
    this.#liveHere = new Map();
  }

  #current(id: string, seq: number): boolean {
    const job = this.#table.jobs.get(id);
    return job !== undefined && seq >= job.addSeq;
  }
}
