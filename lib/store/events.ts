/**
 * The queue's record vocabulary: the log record types a queue writes and the shape of each payload. Pure.
 *
 * Every change to a queue's state is one of these records, and the state is the fold of them in log order
 * (job-table.ts). Payloads are UTF-8 JSON objects with short keys (they are written once per job event and
 * parsed once per replay). A record's type byte says which shape its payload has:
 *
 *   type  name      payload                                   meaning
 *   1     ADD       {id, n: name, o: opts, ts, dl?, d: data}  a job was added (o holds only non-default options; d is
 *                                                             written last, see decodeAddData); dl only in a
 *                                                             dead-letter queue: where the job failed (DeadLetterOrigin)
 *   2     ACTIVE    {t: ticket, j: [[id, attempt]...], ts,    the owner handed these jobs out in a ticket; s: how many
 *                   s?: count}                                of them (a prefix) the claimant starts as it claims it.
 *                                                             s present = the ticket's starts are tracked (START, below)
 *   3     COMPLETE  {id, a: attempt, rv: result, ts}          an attempt completed
 *   4     FAIL      {id, a, e: error, r: retryAt|null, ts}    an attempt failed; r = when to retry, null = final
 *   5     STALL     {id, a, r: retryAt|null, ts, why?, s?: 1} a started attempt's lease expired or its owner died.
 *                                                             s: 1 (written since issue 9) counts a stall only, against
 *                                                             maxStalledCount; without s (older writers) it also
 *                                                             counts an attempt, and still folds that way
 *   6     PROGRESS  {id, p}
 *   7     LOG       {id, l: line}
 *   8     REMOVE    {ids}                                     jobs removed (by remove, clean, drain, retention)
 *   9     PROMOTE   {id}                                      a delayed job made ready now
 *   10    PAUSE     {}
 *   11    RESUME    {}
 *   12    RETRY     {id, ts}                                  a failed or completed job sent back to waiting
 *   13    RELEASE   {id, a, why?, o?: 1}                      an attempt handed back with nothing counted: it never
 *                                                             started (graceful close, unclaimed or unstarted at a
 *                                                             crash or lease expiry), or it was the victim of another
 *                                                             job that crashed or overran its thread. o: 1, orphaned:
 *                                                             unstarted in a claimed ticket whose holder died; it may
 *                                                             have started (queue/owner/starts.ts, Starts)
 *   14    START     {t: ticket, n}                            the first n jobs of ticket t have started (ticket order);
 *                                                             the claim itself covers the first s (ACTIVE). Written by
 *                                                             the owner for its workers, one per ticket per log
 *                                                             batch (queue/owner/starts.ts, "Starts")
 *
 * Encoders beside decoders: every payload is the event's JSON (encodeEvent); the two written once per job, ADD and
 * COMPLETE, are put together from their parts by encodeAdd and encodeComplete, which write the same bytes.
 *
 * Unknown types are skipped by the fold (a newer writer may add some); records naming an unknown job are
 * ignored, which is what makes it safe for compaction to drop every record of a removed job.
 */
import { SpoolError } from '../errors.js';
import type { Payload } from '../codec/record-codec.js';

export const REC = {
  ADD: 1,
  ACTIVE: 2,
  COMPLETE: 3,
  FAIL: 4,
  STALL: 5,
  PROGRESS: 6,
  LOG: 7,
  REMOVE: 8,
  PROMOTE: 9,
  PAUSE: 10,
  RESUME: 11,
  RETRY: 12,
  RELEASE: 13,
  START: 14,
} as const;

/** Errors as stored and as they cross threads. */
export interface WireError {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
}

/** Job options as stored: only what differs from the defaults. */
export interface StoredJobOpts {
  priority?: number;
  delay?: number;
  attempts?: number;
  backoff?: { type: string; delay?: number; jitter?: number };
  timeout?: number;
  removeOnComplete?: boolean | number | { age?: number; count?: number };
  removeOnFail?: boolean | number | { age?: number; count?: number };
  deadLetter?: string;
  jobId?: string;
}

export interface AddEvent {
  id: string;
  n: string;
  d: unknown;
  o: StoredJobOpts;
  ts: number;
  /** Set when the job was moved here as a dead letter. */
  dl?: DeadLetterOrigin;
}

/**
 * What the ADD of a dead-lettered job keeps of it from the queue it failed in (queue/owner/dead-letter.ts moves it): enough to
 * show why it failed and to send it back (a redrive). The fold starts the job with `a` attempts made and `e`'s
 * message as its failedReason; the stack is read from here when the Job is loaded (it is data the key protects,
 * so it stays in the encrypted record, not in the job table).
 */
export interface DeadLetterOrigin {
  /** The queue it failed in. */
  q: string;
  /** Its id there. */
  id: string;
  /** Attempts it made there. */
  a: number;
  /** The error of its final attempt. */
  e: WireError;
}
export interface ActiveEvent {
  t: string;
  j: Array<[string, number]>;
  ts: number;
  /** Jobs (a prefix of j) that start as the ticket is claimed; present when the ticket's starts are tracked. */
  s?: number;
}
export interface StartEvent {
  t: string;
  /** The first n jobs of the ticket have started. */
  n: number;
}
export interface ReleaseEvent {
  id: string;
  a: number;
  why?: string;
  /** 1: orphaned, unstarted in a claimed ticket whose holder died (queue/owner/starts.ts, Starts). */
  o?: 1;
}
export interface CompleteEvent {
  id: string;
  a: number;
  rv: unknown;
  ts: number;
}
export interface FailEvent {
  id: string;
  a: number;
  e: WireError;
  r: number | null;
  ts: number;
}
export interface StallEvent {
  id: string;
  a: number;
  r: number | null;
  ts: number;
  /** Why, when it was not an expired lease (an owner that died). */
  why?: string;
  /** 1: a stall only (no attempt counted). Absent in records of older writers, which counted an attempt. */
  s?: 1;
}

/** Any record's payload: the event's JSON. The records below that have their own encoder write the same bytes. */
export function encodeEvent(event: object): Buffer {
  return Buffer.from(JSON.stringify(event), 'utf8');
}

/**
 * The ADD payload of `ev`: exactly JSON.stringify(ev) for an event built in the order {id, n, o, ts, dl?, d}, so
 * that d is the last key (decodeAddData below reads only the data), put together from its parts because
 * serializing the envelope object costs more than the data of a small job (benchmarks/README.md, queue-add).
 * `data` is JSON.stringify(ev.d), which the caller has made already to check its size (undefined: data JSON
 * leaves out, and so does the record). The other parts are the JSON of ev.id, ev.n and ev.o when the caller has
 * them at hand (a name made once per batch, '{}' for the shared no-options object, a generated id that is digits);
 * left out, they are made here. A string: the log writes it as UTF-8 straight into its batch
 * (RecordCodec.encodeFields). Throws what JSON.stringify throws for options or an origin that are not JSON.
 */
export function encodeAdd(
  ev: AddEvent,
  data: string | undefined,
  name: string = JSON.stringify(ev.n),
  id: string = JSON.stringify(ev.id),
  opts: string = JSON.stringify(ev.o),
): Payload {
  if (data === undefined) return encodeEvent(ev);
  if (ev.dl !== undefined) return `{"id":${id},"n":${name},"o":${opts},"ts":${ev.ts},"dl":${JSON.stringify(ev.dl)},"d":${data}}`;
  return `{"id":${id},"n":${name},"o":${opts},"ts":${ev.ts},"d":${data}}`;
}

/**
 * The COMPLETE payload {id, a, rv, ts}: the same bytes encodeEvent would make of that event, from the result's JSON
 * already made (the worker makes it to check its size), so the result is not serialized a second time.
 */
export function encodeComplete(id: string, attempt: number, resultJson: string, ts: number): string {
  return `{"id":${JSON.stringify(id)},"a":${attempt},"rv":${resultJson},"ts":${ts}}`;
}

/** The event in payload[start, end) of record seq (the whole payload by default). */
export function decodeEvent<T>(payload: Buffer, seq: number, start = 0, end = payload.length): T {
  try {
    return JSON.parse(payload.toString('utf8', start, end)) as T;
  } catch (cause) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `record ${seq}: payload is not a queue event`, { cause });
  }
}

/**
 * The data of an ADD payload without decoding the rest of it. The queue writes `d` as the envelope's last key
 * (queue.ts), so its value runs from just after `"d":` to the closing brace: finding that key is a walk over the
 * few bytes before it (strings skipped, nesting counted), and only the data is turned into a string and parsed.
 * A worker needs nothing else of the record, and parsing the envelope cost more than the data of a small job
 * (benchmarks/README.md, queue-process). A payload laid out otherwise (d absent, or not last) is decoded whole.
 * A wrong guess cannot give wrong data: a slice from anywhere but the value of a last top-level key to the closing
 * brace is not one JSON value (something follows it, or it closes a bracket it did not open), so its parse throws.
 */
export function decodeAddData(payload: Buffer, seq: number, start = 0, end = payload.length): unknown {
  const at = dataValueStart(payload, start, end);
  if (at > 0) {
    try {
      return JSON.parse(payload.toString('utf8', at, end - 1));
    } catch {
      // Not the last key: decoded whole below.
    }
  }
  return decodeEvent<AddEvent>(payload, seq, start, end).d;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const LETTER_D = 0x64;

/** Where the value of the top-level key "d" starts in the compact JSON object at b[start, end), or -1. Bytes, not
 * characters: every byte this looks for is ASCII, and no byte of a multi-byte UTF-8 sequence is. */
function dataValueStart(b: Buffer, start: number, end: number): number {
  if (end - start < 6 || b[start] !== OPEN_BRACE || b[end - 1] !== CLOSE_BRACE) return -1;
  let depth = 0;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c === QUOTE) {
      // At depth 1 a string right after '{' or ',' is a key.
      if (depth === 1 && b[i + 1] === LETTER_D && b[i + 2] === QUOTE && b[i + 3] === COLON && (b[i - 1] === OPEN_BRACE || b[i - 1] === COMMA)) {
        return i + 4;
      }
      for (i++; i < end && b[i] !== QUOTE; i++) if (b[i] === BACKSLASH) i++;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return -1;
}
