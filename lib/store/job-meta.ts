/**
 * A job as the job table holds it (JobMeta), the rarely set fields apart (JobExtra), and a tracked ticket's start
 * state (TicketRun): the rows of the fold (job-table.ts), kept small because a queue of a million waiting jobs is a
 * million of these. No logic of the fold lives here; only the shapes and their field-by-field accessors.
 */
import type { RecordPointer } from '../log/writer.js';
import type { HeapItem } from './heap.js';
import { MAX_INDEX, isIndex } from './job-index.js';
import type { StoredJobOpts } from './events.js';

export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';
export const JOB_STATES: readonly JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed'];

/** Fields most jobs never set (a waiting job has none of them): kept apart so a waiting job stays small. */
class JobExtra {
  stalls = 0;
  processedOn = 0;
  finishedOn = 0;
  progress: unknown = 0;
  resultPtr: RecordPointer | undefined = undefined;
  failedReason: string | undefined = undefined;
  failPtr: RecordPointer | undefined = undefined;
  ticket: string | undefined = undefined;
  /** The tracked ticket it is active in, and its position there (ACTIVE's j order). */
  run: TicketRun | undefined = undefined;
  slot = 0;
  logPtrs: RecordPointer[] | undefined = undefined;
  /** Released unstarted by a crash it may have caused (RELEASE o: 1); cleared by COMPLETE or FAIL (header). */
  orphaned = false;
}

/** What the log says about the starts of one tracked ticket (header: Starts). */
export class TicketRun {
  readonly id: string;
  /** Jobs (a prefix) that start as the ticket is claimed: ACTIVE's `s`. */
  readonly atClaim: number;
  /** Jobs (a prefix) that START records say have started. */
  started: number;
  /** Its jobs still active in it. */
  open = 0;

  constructor(id: string, atClaim: number, started = 0) {
    this.id = id;
    this.atClaim = atClaim;
    this.started = started;
  }
}

/**
 * One job in the table. A class with a fixed shape: the ADD record's pointer is held inline (four numbers, not
 * an object), a generated id is held as a number, and the rarely set fields live in a JobExtra made on first
 * write, because a queue of a million waiting jobs is a million of these (see benchmarks/README.md, queue scale).
 */
export class JobMeta implements HeapItem {
  /** The id: a number for a canonical integer id (a generated one), which saves a string per job. */
  readonly #id: string | number;
  name: string;
  opts: StoredJobOpts;
  state: JobState;
  /** Seq of the record that last made the job wait (its ADD, or a RETRY): FIFO order among equal priorities. */
  order: number;
  /** When a delayed job becomes ready (ms since the epoch); 0 when not delayed. */
  runAt: number;
  attemptsMade = 0;
  timestamp: number;
  stamp = 0;
  #addSeq: number;
  #addSegment: number;
  #addOffset: number;
  #addSize: number;
  #x: JobExtra | undefined = undefined;

  /** `id` may be given as the number of a generated id. */
  constructor(id: string | number, name: string, opts: StoredJobOpts, state: JobState, order: number,
    runAt: number, timestamp: number, ptr: RecordPointer) {
    this.#id = typeof id === 'number' ? (Number.isInteger(id) && id >= 0 && id <= MAX_INDEX ? id : String(id)) : isIndex(id) ? Number(id) : id;
    this.name = name;
    this.opts = opts;
    this.state = state;
    this.order = order;
    this.runAt = runAt;
    this.timestamp = timestamp;
    this.#addSeq = ptr.seq;
    this.#addSegment = ptr.segmentId;
    this.#addOffset = ptr.offset;
    this.#addSize = ptr.size;
  }

  /** Lower runs first. Fixed when the job is added, so it is read from the options rather than kept twice. */
  get priority(): number {
    return this.opts.priority ?? 0;
  }

  get id(): string {
    const id = this.#id;
    return typeof id === 'number' ? String(id) : id;
  }

  /** The id as a number when it is a canonical integer, else undefined. */
  get numericId(): number | undefined {
    const id = this.#id;
    return typeof id === 'number' ? id : undefined;
  }

  /** The ADD record: name, data, options. */
  get ptr(): RecordPointer {
    return { seq: this.#addSeq, segmentId: this.#addSegment, offset: this.#addOffset, size: this.#addSize };
  }

  /** Seq of the ADD record: records of this incarnation of the job have this seq or a later one. */
  get addSeq(): number {
    return this.#addSeq;
  }

  // The rest of the ADD pointer field by field, for the checkpoint's rows (no object per job).
  get addSegment(): number {
    return this.#addSegment;
  }

  get addOffset(): number {
    return this.#addOffset;
  }

  get addSize(): number {
    return this.#addSize;
  }

  /** Compaction moved the record `seq` (this job's ADD, result, failure or a log line) to `ptr`. */
  relocate(seq: number, ptr: RecordPointer): void {
    if (seq === this.#addSeq) {
      this.#addSegment = ptr.segmentId;
      this.#addOffset = ptr.offset;
      this.#addSize = ptr.size;
      return;
    }
    const x = this.#x;
    if (!x) return;
    if (x.resultPtr?.seq === seq) x.resultPtr = ptr;
    else if (x.failPtr?.seq === seq) x.failPtr = ptr;
    else if (x.logPtrs) x.logPtrs = x.logPtrs.map((p) => (p.seq === seq ? ptr : p));
  }

  #extra(): JobExtra {
    return (this.#x ??= new JobExtra());
  }

  get stalls(): number { return this.#x?.stalls ?? 0; }
  set stalls(v: number) { if (v !== 0 || this.#x) this.#extra().stalls = v; }
  get processedOn(): number { return this.#x?.processedOn ?? 0; }
  set processedOn(v: number) { if (v !== 0 || this.#x) this.#extra().processedOn = v; }
  get finishedOn(): number { return this.#x?.finishedOn ?? 0; }
  set finishedOn(v: number) { if (v !== 0 || this.#x) this.#extra().finishedOn = v; }
  get progress(): unknown { return this.#x?.progress ?? 0; }
  set progress(v: unknown) { if (v !== 0 || this.#x) this.#extra().progress = v; }
  get resultPtr(): RecordPointer | undefined { return this.#x?.resultPtr; }
  set resultPtr(v: RecordPointer | undefined) { if (v !== undefined || this.#x) this.#extra().resultPtr = v; }
  get failedReason(): string | undefined { return this.#x?.failedReason; }
  set failedReason(v: string | undefined) { if (v !== undefined || this.#x) this.#extra().failedReason = v; }
  get failPtr(): RecordPointer | undefined { return this.#x?.failPtr; }
  set failPtr(v: RecordPointer | undefined) { if (v !== undefined || this.#x) this.#extra().failPtr = v; }
  /** The ticket holding the job while active. */
  get ticket(): string | undefined { return this.#x?.ticket; }
  set ticket(v: string | undefined) { if (v !== undefined || this.#x) this.#extra().ticket = v; }
  get run(): TicketRun | undefined { return this.#x?.run; }
  set run(v: TicketRun | undefined) { if (v !== undefined || this.#x) this.#extra().run = v; }
  get slot(): number { return this.#x?.slot ?? 0; }
  set slot(v: number) { if (v !== 0 || this.#x) this.#extra().slot = v; }
  get logPtrs(): RecordPointer[] | undefined { return this.#x?.logPtrs; }
  /** Lines in the job's log (JobFields.logCount, queue/backend.ts). */
  get logCount(): number { return this.#x?.logPtrs?.length ?? 0; }
  get orphaned(): boolean { return this.#x?.orphaned ?? false; }
  set orphaned(v: boolean) { if (v || this.#x) this.#extra().orphaned = v; }
  set logPtrs(v: RecordPointer[] | undefined) { if (v !== undefined || this.#x) this.#extra().logPtrs = v; }
}
