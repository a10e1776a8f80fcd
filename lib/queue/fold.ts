/**
 * The owner's fold of its log into a job table at open (and again after a cut back, owner/owner.ts), including what a
 * damaged ADD record leaves behind.
 *
 * Damage. Recovery quarantines a damaged range and every reader steps over it (log/recovery.ts). With the index,
 * a job whose ADD lies in such a range before the index's position is in the table (the snapshot holds its pointer),
 * and only reading its data fails: a worker fails it with ERR_CORRUPT_RECORD, a listing shows it with its data
 * unreadable (job.ts). Replay must give the same job, not lose it, so for each stretch it steps over
 * (Log.replay's onDamaged) the fold names the ADDs that were in it:
 *   - a record there whose header is whole and says ADD (only its checksum fails) gives the seq; its id is read
 *     from the payload's first key when that is plain JSON: a generated id is its seq's digits, so a damaged one is
 *     put right from the seq; a custom id is taken as read;
 *   - otherwise (encrypted, compressed, or the id itself damaged) the id comes from a later record that names a
 *     job the table does not know: ACTIVE, COMPLETE, FAIL, STALL, RELEASE, PROMOTE and RETRY are written only for
 *     jobs that exist, so such a record after damage names a job whose ADD was lost. An integer id is a generated
 *     one (custom ids never are, options.ts), the seq of its ADD: it is matched to the damaged ADD of that seq, or
 *     to a stretch whose lost seqs include it. A custom id goes to the oldest damaged ADD not named yet, else to
 *     the oldest stretch with lost seqs;
 *   - a damaged ADD whose header is whole that no later record names is the generated-id job String(seq): a custom
 *     id would be no different to what the index path keeps (the job, failed once its data is read), so it is kept;
 *   - records whose header cannot be read at all (their seqs are between the stretch's neighbours and not among
 *     its readable records) are lost seqs: reported as a range (Owner's damage report), a job among them is kept
 *     only when a later record names it (above).
 * The job then enters the table as its ADD would have (name and time when they can be read, no options), with
 * its pointer at the damaged bytes, so that later records fold onto it as before. One that no later record moved
 * (still waiting at the end of the replay) can never run, its data being unreadable: it is failed with the same
 * reason a worker would give.
 */
import type { Log } from '../log/log.js';
import type { DamagedStretch } from '../log/damaged-stretch.js';
import type { LogEntry } from '../log/log-scan.js';
import type { RecordPointer } from '../log/writer.js';
import { REC, decodeEvent, type AddEvent } from '../store/events.js';
import { JobTable, type JobMeta } from '../store/job-table.js';
import { RECORD_HEADER_BYTES } from '../format/record.js';
import { decodeSnapshot } from '../store/snapshot.js';

/** A job whose ADD record was found damaged: its id when known, and where the damage lies. */
export interface DamagedJob {
  id: string | undefined;
  seq: number;
  ptr: RecordPointer;
}

/** Seqs from..to (inclusive) of records in a damaged stretch whose header cannot be read: what they were is lost. */
export interface LostSeqs {
  segmentId: number;
  /** The stretch's bytes. */
  offset: number;
  end: number;
  from: number;
  to: number;
}

export interface Fold {
  table: JobTable;
  last: RecordPointer | undefined;
  replayed: number;
  damaged: DamagedJob[];
  lost: LostSeqs[];
}

/** Records the owner writes only for a job that exists: one naming an unknown job follows its lost ADD. */
const NAMING = new Set<number>([REC.ACTIVE, REC.COMPLETE, REC.FAIL, REC.STALL, REC.RELEASE, REC.PROMOTE, REC.RETRY]);
const FIRST_KEYS = /^\{"id":"((?:[^"\\]|\\.){1,300})"(?:,"n":"((?:[^"\\]|\\.){0,1100})")?(?:,"o":\{[^{}]*\})?(?:,"ts":(\d{1,16}))?/;

/**
 * Folds the log into a new table: from the index when `fromStart` is false and the log has one (open), else from
 * the first record (the index may be older than records compacted away since).
 */
export function foldLog(log: Log, fromStart: boolean): Fold {
  const cp = fromStart ? undefined : log.takeCheckpointState();
  const table = cp && cp.length > 0 ? decodeSnapshot(cp) : new JobTable();
  const damaged: DamagedJob[] = [];
  /** Damaged ADDs whose id is not known yet, oldest first. */
  const unnamed: DamagedJob[] = [];
  const entered: JobMeta[] = [];
  const enter = (d: DamagedJob, id: string, name = '', ts = 0): void => {
    d.id = id;
    const job = table.apply(REC.ADD, { id, n: name, o: {}, ts, d: undefined } satisfies AddEvent, d.ptr);
    if (job) entered.push(job);
  };
  const lost: LostSeqs[] = [];
  /** The damaged ADD a later record naming unknown job `id` stands for (header, above), taken off the lists. */
  const claim = (id: string): DamagedJob | undefined => {
    if (/^\d+$/.test(id)) {
      const seq = Number(id);
      const k = unnamed.findIndex((d) => d.seq === seq);
      if (k >= 0) return unnamed.splice(k, 1)[0];
      const range = lost.find((l) => l.from <= seq && seq <= l.to);
      return range && inStretch(range, seq);
    }
    return unnamed.shift() ?? (lost.length > 0 ? inStretch(lost[0]!, lost[0]!.from) : undefined);
  };
  const inStretch = (l: LostSeqs, seq: number): DamagedJob => {
    const d: DamagedJob = { id: undefined, seq, ptr: { seq, segmentId: l.segmentId, offset: l.offset, size: Math.max(RECORD_HEADER_BYTES, l.end - l.offset) } };
    damaged.push(d);
    return d;
  };
  let replayed = 0;
  let last: RecordPointer | undefined;
  log.replay((e: LogEntry) => {
    const ptr = { seq: e.seq, segmentId: e.segmentId, offset: e.offset, size: e.size };
    const ev = decodeEvent<Record<string, unknown>>(e.payload(), e.seq);
    // Before the record is folded, so that it folds onto the jobs it names once (an ACTIVE names several).
    if ((unnamed.length > 0 || lost.length > 0) && NAMING.has(e.type)) {
      const ids = e.type === REC.ACTIVE ? (ev.j as Array<[string, number]>).map(([id]) => id) : [ev.id as string];
      for (const id of ids) {
        if (typeof id !== 'string' || table.jobs.has(id)) continue;
        const d = claim(id);
        if (d) enter(d, id);
      }
    }
    table.apply(e.type, ev, ptr);
    last = ptr;
    replayed++;
  }, fromStart, (stretch: DamagedStretch) => {
    // Seqs between the neighbours that no readable header accounts for, as ranges (the records come in seq order).
    let from = stretch.afterSeq + 1;
    for (const seq of [...stretch.records.map((r) => r.seq), stretch.beforeSeq]) {
      if (seq > from) lost.push({ segmentId: stretch.segmentId, offset: stretch.offset, end: stretch.end, from, to: seq - 1 });
      from = Math.max(from, seq + 1);
    }
    for (const r of stretch.records) {
      if (r.type !== REC.ADD) continue;
      const d: DamagedJob = { id: undefined, seq: r.seq, ptr: { seq: r.seq, segmentId: stretch.segmentId, offset: r.offset, size: r.size } };
      damaged.push(d);
      const keys = r.flags === 0 ? FIRST_KEYS.exec(r.payload.toString('latin1', 0, Math.min(r.payload.length, 1600))) : null;
      const id = keys ? jsonString(keys[1]!) : undefined;
      if (id === undefined) unnamed.push(d);
      else {
        const generated = /^\d+$/.test(id); // custom ids are never integers (options.ts)
        const name = keys![2] === undefined ? undefined : jsonString(keys![2]);
        enter(d, generated ? String(r.seq) : id, name, keys![3] === undefined ? 0 : Number(keys![3]));
      }
    }
  });
  for (const d of unnamed) if (!table.jobs.has(String(d.seq))) enter(d, String(d.seq));
  for (const job of entered) {
    if (job.state !== 'waiting') continue;
    const p = job.ptr;
    table.failDamaged(job, `no valid record ${p.seq} at segment ${p.segmentId} offset ${p.offset} (damaged): the job's ADD record cannot be read`);
  }
  return { table, last, replayed, damaged, lost };
}

/** The string a JSON string body stands for (latin1-read, so non-ASCII is re-read as UTF-8), or undefined. */
function jsonString(body: string): string | undefined {
  try {
    const s = JSON.parse(`"${body}"`) as string;
    return Buffer.from(s, 'latin1').toString('utf8');
  } catch {
    return undefined;
  }
}
