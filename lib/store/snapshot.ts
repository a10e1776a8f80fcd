/**
 * The job table as checkpoint state (the opaque `state` of the log's index file) and back. Pure.
 *
 * Binary, because a queue of a million jobs must reopen in well under a second: JSON of that many rows alone
 * takes longer to parse. All integers little-endian; f64 for times and seqs, which exceed 32 bits.
 *
 *   header   "SQJT" | u16 version (2) | u8 paused | u8 0 | u32 jobs | u32 names | u32 opts
 *   names    names × (u32 length, UTF-8)            job names, each once
 *   opts     opts × (u32 length, UTF-8 JSON)        distinct option objects, each once
 *   jobs     jobs × row, state by state in each state's set order (completed and failed keep finish order)
 *
 *   row      id | u32 name | u32 opts | u8 state | u8 flags | u32 priority | f64 order
 *            | f64 runAt | u32 attemptsMade | u32 stalls | f64 timestamp | f64 processedOn | f64 finishedOn
 *            | ptr (the ADD record)
 *            | [flags & 1] ptr resultPtr | [flags & 2] ptr failPtr | [flags & 4] u32 len, failedReason UTF-8
 *            | [flags & 8] u32 len, progress JSON | [flags & 16] u32 n, n × ptr logPtrs
 *            | [flags & 32] u16 len, ticket UTF-8 | u32 slot | u32 atClaim | u32 started   (version 2)
 *            flags & 64: orphaned (JobMeta.orphaned), no bytes of its own
 *   ptr      f64 seq | f64 segmentId | f64 offset | u32 size
 *   id       u16 0xffff, f64 n: a generated id, String(n) (rebuilt twice as fast as from UTF-8 bytes);
 *            or u16 length (< 0xffff; job ids are at most 256 characters), UTF-8
 *
 * Active jobs are written as they are; the owner that loads a snapshot settles them (their leases belonged to
 * the previous owner): it needs to know which had started, so an active job of a tracked ticket (job-table.ts,
 * Starts) carries its ticket, its position in it and the ticket's start counts (flag 32). Version 1 (before
 * starts were tracked) is still read: its active jobs count as started, as they did when it was written.
 * Flag 64 (the orphan mark, queue/owner/starts.ts) adds no bytes, so the layout and the version stay: a reader
 * from before it ignores the bit, losing only the mark (its job may then once more run claimed ahead).
 */
import { SpoolError } from '../errors.js';
import type { RecordPointer } from '../log/writer.js';
import type { StoredJobOpts } from './events.js';
import { JOB_STATES, JobMeta, JobTable, type JobState } from './job-table.js';

const MAGIC = 0x544a5153; // "SQJT"
const VERSION = 2;
/** The versions decodeSnapshot reads; version 1 has no flag 32. */
const READABLE = new Set([1, 2]);
const STATE_CODE: Record<JobState, number> = { waiting: 0, delayed: 1, active: 2, completed: 3, failed: 4 };
const HAS_RESULT = 1;
const HAS_FAIL = 2;
const HAS_REASON = 4;
const HAS_PROGRESS = 8;
const HAS_LOGS = 16;
const HAS_RUN = 32;
const ORPHANED = 64;

/** Appends little-endian fields to a growing buffer, through a DataView (which V8 compiles to plain stores). */
class Writer {
  buf: Buffer;
  #dv: DataView;
  at = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.#dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
    this.#dv = new DataView(bigger.buffer, bigger.byteOffset, bigger.length);
  }

  u8(v: number): void {
    this.room(1);
    this.#u8(v);
  }

  // Unchecked stores, for a row's fixed part after one room(FIXED_ROW_BYTES).
  #u8(v: number): void {
    this.buf[this.at++] = v;
  }

  #u32(v: number): void {
    this.#dv.setUint32(this.at, v, true);
    this.at += 4;
  }

  #f64(v: number): void {
    this.#dv.setFloat64(this.at, v, true);
    this.at += 8;
  }

  /** A row's fixed part, from its name on (header). */
  fixed(j: JobMeta, name: number, opts: number, flags: number): void {
    this.room(FIXED_ROW_BYTES);
    this.#u32(name);
    this.#u32(opts);
    this.#u8(STATE_CODE[j.state]);
    this.#u8(flags);
    this.#u32(j.priority);
    this.#f64(j.order);
    this.#f64(j.runAt);
    this.#u32(j.attemptsMade);
    this.#u32(j.stalls);
    this.#f64(j.timestamp);
    this.#f64(j.processedOn);
    this.#f64(j.finishedOn);
    this.#f64(j.addSeq);
    this.#f64(j.addSegment);
    this.#f64(j.addOffset);
    this.#u32(j.addSize);
  }

  u16(v: number): void {
    this.room(2);
    this.#dv.setUint16(this.at, v, true);
    this.at += 2;
  }

  u32(v: number): void {
    this.room(4);
    this.#u32(v);
  }

  f64(v: number): void {
    this.room(8);
    this.#f64(v);
  }

  str(s: string, lenBytes: 2 | 4): void {
    const n = Buffer.byteLength(s);
    this.room(n + lenBytes);
    if (lenBytes === 2) this.u16(n);
    else this.u32(n);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  ptr(p: RecordPointer): void {
    this.f64(p.seq);
    this.f64(p.segmentId);
    this.f64(p.offset);
    this.u32(p.size);
  }
}

/** Bytes of a row from its name to its ADD pointer. */
const FIXED_ROW_BYTES = 4 + 4 + 1 + 1 + 4 + 8 + 8 + 4 + 4 + 8 + 8 + 8 + 28;

export function encodeSnapshot(table: JobTable): Buffer {
  // Names and options numbered in a first pass. Neighbouring jobs mostly share both (added together), so the
  // maps are consulted only when they change: a checkpoint costs O(jobs) and runs every max(100k, jobs) records.
  const names = new Map<string, number>();
  const opts = new Map<StoredJobOpts, number>();
  let lastName: string | undefined;
  let lastOpts: StoredJobOpts | undefined;
  for (const state of JOB_STATES) {
    for (const j of table.jobsIn(state)) {
      if (j.name !== lastName) {
        lastName = j.name;
        if (!names.has(lastName)) names.set(lastName, names.size);
      }
      if (j.opts !== lastOpts) {
        lastOpts = j.opts;
        if (!opts.has(lastOpts)) opts.set(lastOpts, opts.size);
      }
    }
  }
  const w = new Writer(64 + table.jobs.size * 112);
  w.u32(MAGIC);
  w.u16(VERSION);
  w.u8(table.paused ? 1 : 0);
  w.u8(0);
  w.u32(table.jobs.size);
  w.u32(names.size);
  w.u32(opts.size);
  for (const n of names.keys()) w.str(n, 4);
  for (const o of opts.keys()) w.str(JSON.stringify(o), 4);
  lastName = undefined;
  lastOpts = undefined;
  let nameNo = 0;
  let optsNo = 0;
  for (const state of JOB_STATES) {
    for (const j of table.jobsIn(state)) {
      const n = j.numericId;
      if (n !== undefined) {
        w.u16(0xffff);
        w.f64(n);
      } else {
        w.str(j.id, 2);
      }
      if (j.name !== lastName) {
        lastName = j.name;
        nameNo = names.get(lastName)!;
      }
      if (j.opts !== lastOpts) {
        lastOpts = j.opts;
        optsNo = opts.get(lastOpts)!;
      }
      const progress = j.progress === 0 || j.progress === undefined ? undefined : JSON.stringify(j.progress);
      const flags =
        (j.resultPtr ? HAS_RESULT : 0) | (j.failPtr ? HAS_FAIL : 0) | (j.failedReason !== undefined ? HAS_REASON : 0) |
        (progress !== undefined ? HAS_PROGRESS : 0) | (j.logPtrs ? HAS_LOGS : 0) | (j.run ? HAS_RUN : 0) | (j.orphaned ? ORPHANED : 0);
      w.fixed(j, nameNo, optsNo, flags);
      if (j.resultPtr) w.ptr(j.resultPtr);
      if (j.failPtr) w.ptr(j.failPtr);
      if (j.failedReason !== undefined) w.str(j.failedReason, 4);
      if (progress !== undefined) w.str(progress, 4);
      if (j.logPtrs) {
        w.u32(j.logPtrs.length);
        for (const p of j.logPtrs) w.ptr(p);
      }
      const run = j.run;
      if (run) {
        w.str(run.id, 2);
        w.u32(j.slot);
        w.u32(run.atClaim);
        w.u32(run.started);
      }
    }
  }
  return w.buf.subarray(0, w.at);
}

export function decodeSnapshot(buf: Buffer): JobTable {
  if (buf.length < 20 || buf.readUInt32LE(0) !== MAGIC) {
    throw new SpoolError('ERR_CORRUPT_RECORD', 'the index holds no job table');
  }
  const version = buf.readUInt16LE(4);
  if (!READABLE.has(version)) throw new SpoolError('ERR_UNSUPPORTED_VERSION', `job table version ${version} is not supported`);
  try {
    return read(buf);
  } catch (cause) {
    if (cause instanceof SpoolError) throw cause;
    throw new SpoolError('ERR_CORRUPT_RECORD', 'the job table in the index is malformed', { cause });
  }
}

function read(buf: Buffer): JobTable {
  let at = 8;
  const u32 = (): number => {
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  const f64 = (): number => {
    const v = buf.readDoubleLE(at);
    at += 8;
    return v;
  };
  const str = (len: number): string => {
    const s = buf.toString('utf8', at, at + len);
    at += len;
    return s;
  };
  const ptr = (): RecordPointer => ({ seq: f64(), segmentId: f64(), offset: f64(), size: u32() });
  const table = new JobTable();
  table.paused = buf[6] === 1;
  const jobCount = u32();
  const names: string[] = [];
  const opts: StoredJobOpts[] = [];
  for (let n = u32(), m = u32(), i = 0; i < n + m; i++) {
    const s = str(u32());
    if (i < n) names.push(s);
    else opts.push(Object.freeze(JSON.parse(s) as StoredJobOpts));
  }
  const jobs: JobMeta[] = new Array(jobCount);
  for (let i = 0; i < jobCount; i++) {
    const idLen = buf.readUInt16LE(at);
    at += 2;
    const id = idLen === 0xffff ? f64() : str(idLen);
    const name = names[u32()]!;
    const o = opts[u32()]!;
    const state = JOB_STATES[buf[at++]!]!;
    const flags = buf[at++]!;
    at += 4; // the priority: the job's options hold it too
    const order = f64();
    const runAt = f64();
    const attemptsMade = u32();
    const stalls = u32();
    const timestamp = f64();
    const processedOn = f64();
    const finishedOn = f64();
    const job = new JobMeta(id, name, o, state, order, runAt, timestamp, ptr());
    job.attemptsMade = attemptsMade;
    job.stalls = stalls;
    job.processedOn = processedOn;
    job.finishedOn = finishedOn;
    if (flags & ORPHANED) job.orphaned = true;
    if (flags & HAS_RESULT) job.resultPtr = ptr();
    if (flags & HAS_FAIL) job.failPtr = ptr();
    if (flags & HAS_REASON) job.failedReason = str(u32());
    if (flags & HAS_PROGRESS) job.progress = JSON.parse(str(u32()));
    if (flags & HAS_LOGS) {
      const n = u32();
      job.logPtrs = [];
      for (let k = 0; k < n; k++) job.logPtrs.push(ptr());
    }
    if (flags & HAS_RUN) {
      const len = buf.readUInt16LE(at);
      at += 2;
      const ticket = str(len);
      const slot = u32();
      const atClaim = u32();
      table.restoreRun(job, ticket, slot, atClaim, u32());
      job.ticket = ticket;
    }
    if (!state) throw new SpoolError('ERR_CORRUPT_RECORD', `job ${id} has an unknown state`);
    jobs[i] = job;
  }
  if (at !== buf.length) throw new SpoolError('ERR_CORRUPT_RECORD', 'the job table has trailing bytes');
  table.loadAll(jobs);
  return table;
}
