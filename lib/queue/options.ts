/**
 * Validation and defaults for Queue, Worker and job options: everything the public boundary accepts is checked
 * here, once, and turned into resolved values the internals trust. Bad input is ERR_INVALID_ARG and nothing is
 * written.
 *
 * Choices where BullMQ leaves room (the README lists them):
 *   - unknown option keys are refused (a typo like `attempt: 3` would otherwise silently do nothing); a BullMQ
 *     option that spoolq does not take (`connection`, `lockDuration`, `limiter`…) is refused with what to use
 *     instead (MOVED_OPTIONS, one table for Queue and Worker);
 *   - `defaultJobOptions` on a Queue are merged under each job's own options as BullMQ does
 *     (`{ ...defaultJobOptions, ...opts }`: an option the job gives wins, nested objects such as `backoff` are
 *     replaced, not merged), validated once when the Queue is made (resolveDefaultJobOptions);
 *   - custom job ids may not be integers (generated ids are integers), as in BullMQ;
 *   - removeOnComplete/removeOnFail ages are in seconds, as in BullMQ;
 *   - priority 0 (the default) runs before 1, which runs before 2 …; equal priorities run in the order added.
 */
import { invalidArg } from '../errors.js';
import type { EncryptionOptions } from '../codec/keyring.js';
import { resolveLogOptions } from '../log/log.js';
import type { Durability } from '../log/writer.js';
import type { Fs } from '../log/fs.js';
import type { StoredJobOpts } from '../store/events.js';
import { systemClock, type Clock } from './clock.js';

export const MAX_PRIORITY = 2_097_152;
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface QueueOptions {
  /** The root directory; the queue lives in <dir>/<name>. */
  dir: string;
  durability?: Durability;
  encryption?: EncryptionOptions;
  compression?: boolean | { threshold: number };
  maxSegmentBytes?: number;
  batchIntervalMs?: number;
  /** Largest job data (and result) as JSON, in bytes. Default 4 MiB. */
  maxDataBytes?: number;
  /** How long a worker's claim stays valid without renewal. Default 30 s. */
  leaseMs?: number;
  /** Stalls allowed before a job fails for stalling. Default 1. */
  maxStalledCount?: number;
  /** Write a checkpoint after this many records. Default 100,000. */
  checkpointEvery?: number;
  /** Options every job added through this Queue gets unless it gives its own (BullMQ's meaning). Queue only. */
  defaultJobOptions?: JobsOptions;
}

/**
 * The file-system seam (lib/log/fs.ts) for a queue's log: an internal option under a symbol, so that fault tests
 * can hand a Queue an Fs that fails on purpose. Not public API: lib/index.ts does not export it, and a symbol key
 * is invisible to the unknown-key check (Object.keys) and to JSON.
 */
export const INTERNAL_FS: unique symbol = Symbol('spoolq internal fs');

/**
 * The clock seam (clock.ts), handed down the same way as INTERNAL_FS: tests give a Queue or Worker a TestClock and
 * advance it instead of sleeping. Not public API.
 */
export const INTERNAL_CLOCK: unique symbol = Symbol('spoolq internal clock');

export interface ResolvedQueueOptions {
  dir: string;
  /** The Fs seam (INTERNAL_FS); undefined: node:fs. */
  fs: Fs | undefined;
  /** The clock seam (INTERNAL_CLOCK); systemClock unless a test gives one. */
  clock: Clock;
  durability: Durability;
  encryption: EncryptionOptions | undefined;
  compression: boolean | { threshold: number } | undefined;
  maxSegmentBytes: number | undefined;
  batchIntervalMs: number | undefined;
  maxDataBytes: number;
  leaseMs: number;
  maxStalledCount: number;
  checkpointEvery: number;
  /**
   * The owner options this handle set (not undefined): the only ones it must agree on with an owner already open
   * in the process (registry.ts). One it leaves out it shares with that owner, as a BullMQ Worker given only its
   * connection would.
   */
  given: ReadonlySet<string>;
}

/** Options that shape the owner (its files, its scheduler): every handle on one queue in a process must agree. */
const OWNER_KEYS = new Set([
  'dir', 'durability', 'encryption', 'compression', 'maxSegmentBytes', 'batchIntervalMs', 'maxDataBytes',
  'leaseMs', 'maxStalledCount', 'checkpointEvery',
]);

/** A Worker's own options (the rest of its options are the queue's: OWNER_KEYS). */
export const WORKER_KEYS = new Set([
  'concurrency', 'threads', 'maxJobsPerThread', 'maxHeapMb', 'abortGraceMs', 'autorun', 'closeTimeoutMs', 'settings',
]);

const CONNECTION = 'spoolq has no server to connect to: pass `dir`, the directory its queues live in';
const LEASES = 'the owner checks leases by itself; `leaseMs` says how long a claim lasts without renewal';
const RETENTION = 'set it per job (job options) or in the Queue\'s `defaultJobOptions`';
/**
 * BullMQ options (QueueOptions, WorkerOptions and their base) that spoolq does not take, with what to do instead:
 * a user carrying options over from BullMQ learns the spoolq way rather than "unknown option". For a Queue and a
 * Worker alike (refuseKey).
 */
const MOVED_OPTIONS: Record<string, string> = {
  connection: CONNECTION,
  blockingConnection: CONNECTION,
  sharedConnection: CONNECTION,
  prefix: 'queues live in <dir>/<name>: pass `dir` (a different `dir` is a different namespace)',
  skipVersionCheck: 'there is no server whose version to check; leave it out',
  skipMetasUpdate: 'there is no meta key to update; leave it out',
  streams: 'events are read from the log, there is no stream to trim; leave it out',
  telemetry: 'telemetry is not supported',
  lockDuration: 'use `leaseMs`',
  lockRenewTime: 'leases are renewed automatically every leaseMs/3; leave it out',
  stalledInterval: LEASES,
  skipStalledCheck: LEASES,
  skipLockRenewal: 'a running job\'s lease is always renewed; leave it out',
  maxStartedAttempts: 'not supported: `attempts` and `maxStalledCount` bound a job\'s runs',
  limiter: 'rate limiting is not supported yet',
  metrics: 'metrics are not supported yet',
  removeOnComplete: RETENTION,
  removeOnFail: RETENTION,
  drainDelay: 'workers are woken when a job is ready, they do not poll; leave it out',
  runRetryDelay: 'there is no connection to retry; leave it out',
  useWorkerThreads: 'pass the processor as a module path or URL to run it in worker_threads (`threads`)',
  workerThreadsOptions: 'not supported: `threads`, `maxHeapMb` and `maxJobsPerThread` shape the pool',
  workerForkOptions: 'processors run in worker_threads, not child processes: pass a module path or URL',
  useWorkerFork: 'processors run in worker_threads, not child processes: pass a module path or URL',
  name: 'a Worker has a generated `id`; it takes no name',
};

export function validateQueueName(name: unknown, what = 'queue name'): string {
  if (typeof name !== 'string' || !QUEUE_NAME.test(name) || name === '.' || name === '..') {
    throw invalidArg(`${what} must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * Refuses an option key that `kind` does not take: with what to use instead when it is a BullMQ option spoolq
 * spells otherwise or a job or Worker option given in the wrong place, else as unknown.
 */
function refuseKey(k: string, kind: 'queue' | 'worker'): never {
  const moved = MOVED_OPTIONS[k];
  if (moved !== undefined) {
    throw invalidArg(`${kind} option '${k}' is not supported by spoolq: ${moved}`);
  }
  if (kind === 'queue' && WORKER_KEYS.has(k)) throw invalidArg(`'${k}' is a Worker option, not a Queue option`);
  if (kind === 'worker' && k === 'defaultJobOptions') throw invalidArg("'defaultJobOptions' is a Queue option, not a Worker option");
  if (JOB_KEYS.has(k)) throw invalidArg(`'${k}' is a job option: set it per job or in the Queue's \`defaultJobOptions\``);
  throw invalidArg(`unknown ${kind} option '${k}'`);
}

/**
 * The options that shape the owner, checked and with their defaults filled. `kind` 'worker' is for the queue
 * part of a Worker's options (its own keys, WORKER_KEYS, taken out first): it only changes what refusals say.
 */
export function resolveQueueOptions(opts: unknown, kind: 'queue' | 'worker' = 'queue'): ResolvedQueueOptions {
  if (!opts || typeof opts !== 'object') throw invalidArg('options with a `dir` are required');
  const o = opts as QueueOptions;
  for (const k of Object.keys(o)) {
    if (!OWNER_KEYS.has(k) && !(kind === 'queue' && k === 'defaultJobOptions')) refuseKey(k, kind);
  }
  if (typeof o.dir !== 'string' || o.dir.length === 0) throw invalidArg('options.dir must be a non-empty string');
  // The options the log takes are checked by its own rules, here at the boundary: refused by the constructor,
  // not later by the first call that awaits the open.
  resolveLogOptions({
    durability: o.durability,
    encryption: o.encryption,
    compression: o.compression,
    maxSegmentBytes: o.maxSegmentBytes,
    batchIntervalMs: o.batchIntervalMs,
  });
  return {
    dir: o.dir,
    fs: (o as { [INTERNAL_FS]?: Fs })[INTERNAL_FS],
    clock: (o as { [INTERNAL_CLOCK]?: Clock })[INTERNAL_CLOCK] ?? systemClock,
    durability: o.durability ?? 'fsync',
    encryption: o.encryption,
    compression: o.compression,
    maxSegmentBytes: o.maxSegmentBytes,
    batchIntervalMs: o.batchIntervalMs,
    maxDataBytes: intIn(o.maxDataBytes, 'maxDataBytes', 1, 60 * 1024 * 1024, 4 * 1024 * 1024),
    leaseMs: intIn(o.leaseMs, 'leaseMs', 50, 24 * 3600_000, 30_000),
    maxStalledCount: intIn(o.maxStalledCount, 'maxStalledCount', 0, 1_000_000, 1),
    checkpointEvery: intIn(o.checkpointEvery, 'checkpointEvery', 1, Number.MAX_SAFE_INTEGER, 100_000),
    given: new Set(Object.keys(o).filter((k) => k !== 'dir' && OWNER_KEYS.has(k) && (o as unknown as Record<string, unknown>)[k] !== undefined)),
  };
}

export interface BackoffOptions {
  type: 'fixed' | 'exponential' | string;
  delay?: number;
  /** 0..1: the share of the delay that is randomized (0.5: delay × [0.5, 1]). */
  jitter?: number;
}

type RemoveRule = boolean | number | { age?: number; count?: number };

export interface JobsOptions {
  jobId?: string;
  priority?: number;
  delay?: number;
  attempts?: number;
  backoff?: number | BackoffOptions;
  timeout?: number;
  removeOnComplete?: RemoveRule;
  removeOnFail?: RemoveRule;
  deadLetter?: string;
}

const JOB_KEYS = new Set([
  'jobId', 'priority', 'delay', 'attempts', 'backoff', 'timeout', 'removeOnComplete', 'removeOnFail', 'deadLetter',
]);

/** The stored options of a job that sets none: one shared, frozen object. */
export const NO_JOB_OPTS: StoredJobOpts = Object.freeze({});

/** A Queue's defaultJobOptions: as given (what each job's own options are spread over) and as stored. */
export interface JobDefaults {
  /** A frozen copy of what was given (a copy: the caller changing its object later changes nothing here). */
  given: Readonly<JobsOptions>;
  /** What a job that gives no options of its own stores: one frozen object shared by all of them. */
  stored: StoredJobOpts;
}

/**
 * Checks a Queue's defaultJobOptions once, at construction: undefined when there are none (add() then pays
 * nothing for them). A default jobId is refused: every job would get the same id.
 */
export function resolveDefaultJobOptions(opts: unknown): JobDefaults | undefined {
  if (opts === undefined) return undefined;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw invalidArg('defaultJobOptions must be an object');
  if ((opts as JobsOptions).jobId !== undefined) throw invalidArg('defaultJobOptions may not set jobId: every job would get the same id');
  if (!hasKeys(opts)) return undefined;
  const stored = resolveJobOptions(opts);
  return { given: Object.freeze(structuredClone(opts) as JobsOptions), stored: stored === NO_JOB_OPTS ? stored : Object.freeze(stored) };
}

/**
 * Validates job options and returns them as stored: defaults left out. With `defaults`, the job's options are
 * spread over them first, as BullMQ does: a key the job gives wins (even one given as undefined), and a nested
 * object (backoff, removeOnComplete) replaces the default's whole. A job that gives no options gets
 * `defaults.stored`, which the caller passes instead of calling this (Queue.#prepareOne).
 */
export function resolveJobOptions(opts: unknown, defaults?: JobDefaults): StoredJobOpts {
  if (opts === undefined) return defaults?.stored ?? NO_JOB_OPTS;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw invalidArg('job options must be an object');
  const o = (defaults === undefined ? opts : { ...defaults.given, ...opts }) as JobsOptions;
  const out: StoredJobOpts = {};
  for (const k of Object.keys(o)) {
    if (!JOB_KEYS.has(k)) throw invalidArg(`unknown job option '${k}'`);
  }
  if (o.jobId !== undefined) out.jobId = validateJobId(o.jobId);
  if (o.priority !== undefined && o.priority !== 0) out.priority = intIn(o.priority, 'priority', 0, MAX_PRIORITY, 0);
  if (o.delay !== undefined && o.delay !== 0) out.delay = intIn(o.delay, 'delay', 0, 10 * 365 * 86_400_000, 0);
  if (o.attempts !== undefined && o.attempts !== 1) out.attempts = intIn(o.attempts, 'attempts', 1, 1_000_000, 1);
  if (o.backoff !== undefined) out.backoff = resolveBackoff(o.backoff);
  if (o.timeout !== undefined) out.timeout = intIn(o.timeout, 'timeout', 1, 24 * 3600_000, 0);
  if (o.removeOnComplete !== undefined && o.removeOnComplete !== false) out.removeOnComplete = removeRule(o.removeOnComplete, 'removeOnComplete');
  if (o.removeOnFail !== undefined && o.removeOnFail !== false) out.removeOnFail = removeRule(o.removeOnFail, 'removeOnFail');
  if (o.deadLetter !== undefined) out.deadLetter = validateQueueName(o.deadLetter, 'deadLetter');
  return hasKeys(out) ? out : NO_JOB_OPTS;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

export function validateJobId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
    throw invalidArg('jobId must be a string of 1 to 256 characters');
  }
  if (/^\d+$/.test(id)) throw invalidArg(`jobId ${JSON.stringify(id)} is an integer; custom ids may not be (generated ids are)`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw invalidArg('jobId may not contain control characters');
  return id;
}

function resolveBackoff(b: unknown): BackoffOptions {
  if (typeof b === 'number') return { type: 'fixed', delay: intIn(b, 'backoff', 0, 10 * 365 * 86_400_000, 0) };
  if (!b || typeof b !== 'object') throw invalidArg('backoff must be a number of ms or { type, delay, jitter }');
  const o = b as BackoffOptions;
  if (typeof o.type !== 'string' || o.type.length === 0) throw invalidArg('backoff.type must be a non-empty string');
  const out: BackoffOptions = { type: o.type };
  if (o.delay !== undefined) out.delay = intIn(o.delay, 'backoff.delay', 0, 10 * 365 * 86_400_000, 0);
  if (o.jitter !== undefined) {
    if (typeof o.jitter !== 'number' || !(o.jitter >= 0 && o.jitter <= 1)) throw invalidArg('backoff.jitter must be from 0 to 1');
    out.jitter = o.jitter;
  }
  for (const k of Object.keys(o)) if (k !== 'type' && k !== 'delay' && k !== 'jitter') throw invalidArg(`unknown backoff option '${k}'`);
  return out;
}

function removeRule(r: unknown, what: string): RemoveRule {
  if (r === true) return true;
  if (typeof r === 'number') return intIn(r, what, 0, Number.MAX_SAFE_INTEGER, 0);
  if (r && typeof r === 'object') {
    const o = r as { age?: number; count?: number };
    for (const k of Object.keys(o)) if (k !== 'age' && k !== 'count') throw invalidArg(`unknown ${what} option '${k}'`);
    const out: { age?: number; count?: number } = {};
    if (o.age !== undefined) out.age = intIn(o.age, `${what}.age`, 0, Number.MAX_SAFE_INTEGER, 0);
    if (o.count !== undefined) out.count = intIn(o.count, `${what}.count`, 0, Number.MAX_SAFE_INTEGER, 0);
    return out;
  }
  throw invalidArg(`${what} must be true, false, a count, or { age, count }`);
}

export function intIn(v: unknown, what: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidArg(`${what} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}
