/**
 * What the queue benchmarks (queue-add, queue-process, queue-latency, queue-scale) share on top of harness.ts:
 * the job they all add, the ADD record payload it becomes (the bytes their Log.append baselines write), whole-run
 * timing with medians, percentiles, and PASS/MISS text. Not a benchmark itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeEvent, type AddEvent } from '../lib/store/events.js';
import { fmtInt, median } from './harness.js';

export const QUEUE_NAME = 'bench';
export const JOB_NAME = 'noop';

/** The data of every benchmark job: exactly 100 bytes of JSON. */
export const JOB_DATA: { s: string } = { s: 'x'.repeat(92) };
export const JOB_DATA_BYTES = Buffer.byteLength(JSON.stringify(JOB_DATA));
if (JOB_DATA_BYTES !== 100) throw new Error(`job data is ${JOB_DATA_BYTES} B, meant to be 100`);

/**
 * The payload of the ADD record a queue writes for one such job (id, name, options, timestamp, data as JSON, see
 * lib/store/events.ts): what the Log.append baselines append, so both sides write the same bytes per job.
 */
export function addRecordPayload(id = 1_000_000): Buffer {
  const ev: AddEvent = { id: String(id), n: JOB_NAME, o: {}, ts: Date.now(), d: JOB_DATA };
  return encodeEvent(ev);
}

/** `n` jobs as addBulk takes them. */
export function bulk(n: number): Array<{ name: string; data: typeof JOB_DATA }> {
  return Array.from({ length: n }, () => ({ name: JOB_NAME, data: JOB_DATA }));
}

/** The p-th percentile (0–100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export function fmtMs(ms: number, digits = 3): string {
  return ms.toFixed(digits);
}

/** `≥ 100,000 jobs/s: PASS (1.4×)` or `…: MISS (0.7×)`. */
export function rateTarget(rate: number, min: number, unit = 'jobs/s'): string {
  return `≥ ${fmtInt(min)} ${unit}: ${rate >= min ? 'PASS' : 'MISS'} (${(rate / min).toFixed(1)}×)`;
}

/** `≤ 1 ms: PASS` or `…: MISS`, for latencies, sizes and times where lower is better. */
export function maxTarget(value: number, max: number, unit: string, shown = `${max} ${unit}`): string {
  return `≤ ${shown}: ${value <= max ? 'PASS' : 'MISS'}`;
}

/** Median of `values` and its range, as `median [min–max]` with `digits` decimals. */
export function fmtSpread(values: number[], digits = 0, fmt: (n: number) => string = (n) => n.toFixed(digits)): string {
  return `${fmt(median(values))} [${fmt(Math.min(...values))}–${fmt(Math.max(...values))}]`;
}

/** Bytes of all files under `dir`. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

/** Runs `fn` and returns its wall time in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Lets the event loop run once (pending setImmediate and I/O callbacks) before the next measurement. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A full GC when node runs with --expose-gc; nothing otherwise. */
export function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * BENCH_PROFILE=<dir>: records a CPU profile of only the measured window (not the setup, not the baseline), with
 * node:inspector, into <dir>/<label>.cpuprofile; open it in Chrome DevTools or speedscope. Unset: runs `fn` as is.
 * Profiling slows the run: the figures of a profiled run are not results.
 */
export async function profiled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return fn();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${label}-${process.pid}-${Date.now()}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    console.error(`  (profile of the measured window: ${file})`);
  }
}

/**
 * Rejects with a clear error if `p` has not settled within `ms`. A hung run would otherwise just end the process
 * quietly once nothing is left on the event loop (the queue's timers are unref'd), with no result and no error.
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
