/**
 * The queue's record vocabulary: the log record types a queue writes and the shape of each payload. Pure.
 *
 * Every change to a queue's state is one of these records, and the state is the fold of them in log order
 * (job-table.ts). Payloads are UTF-8 JSON objects with short keys (they are written once per job event and
 * parsed once per replay). A record's type byte says which shape its payload has:
 *
 *   type  name      payload                                   meaning
 *   1     ADD       {id, n: name, d: data, o: opts, ts}       a job was added (o holds only non-default options)
 *   2     ACTIVE    {t: ticket, j: [[id, attempt]...], ts}    the owner handed these jobs out in a ticket
 *   3     COMPLETE  {id, a: attempt, rv: result, ts}          an attempt completed
 *   4     FAIL      {id, a, e: error, r: retryAt|null, ts}    an attempt failed; r = when to retry, null = final
 *   5     STALL     {id, a, r: retryAt|null, ts, why?}        an attempt's lease expired, its thread crashed or its
 *                                                             owner died (counts as an attempt)
 *   6     PROGRESS  {id, p}
 *   7     LOG       {id, l: line}
 *   8     REMOVE    {ids}                                     jobs removed (by remove, clean, drain, retention)
 *   9     PROMOTE   {id}                                      a delayed job made ready now
 *   10    PAUSE     {}
 *   11    RESUME    {}
 *   12    RETRY     {id, ts}                                  a failed or completed job sent back to waiting
 *   13    RELEASE   {id, a}                                   an attempt handed back unrun (graceful close)
 *
 * Unknown types are skipped by the fold (a newer writer may add some); records naming an unknown job are
 * ignored, which is what makes it safe for compaction to drop every record of a removed job.
 */
import { SpoolError } from '../errors.js';

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
}
export interface ActiveEvent {
  t: string;
  j: Array<[string, number]>;
  ts: number;
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
  /** Why, when it was not an expired lease (a crashed thread, an owner that died). */
  why?: string;
}

export function encodeEvent(event: object): Buffer {
  return Buffer.from(JSON.stringify(event), 'utf8');
}

export function decodeEvent<T>(payload: Buffer, seq: number): T {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch (cause) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `record ${seq}: payload is not a queue event`, { cause });
  }
}
