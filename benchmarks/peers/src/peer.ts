/**
 * The one shape every queue under test is driven through (spoolq-peer.ts, bullmq-peer.ts, plainjob-peer.ts), and
 * the little helpers they share. The timing of the add workloads is done once, in child.ts, over Store; the
 * processing and latency workloads differ in how each queue holds jobs back and starts a worker, so each peer
 * times them itself, following the same recipe (see processRecipe below).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LatencyResult, LatencySpec, Pairing, ProcessSpec, RateResult } from './workload.js';

/** A fresh, empty queue store. Safe to call close() once; nothing after it. */
export interface Store {
  /** One add of the benchmark job, resolved when the queue acknowledges it. */
  addOne(): Promise<unknown>;
  /** `n` adds issued together, resolved when all are acknowledged. */
  addInFlight(n: number): Promise<unknown>;
  /** `n` jobs in one bulk call. */
  addBulk(n: number): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * processRecipe, what every peer's process() does: a fresh store; a Queue and a Worker with `concurrency` in this
 * process; `warmupJobs` processed first (not timed); the queue held back (paused, or no worker yet); `jobs` added in
 * bulk batches of 1,000 (not timed); the clock runs from letting the worker go until it has reported `jobs`
 * completions, or until `maxMs` (then the rate is done / elapsed, marked capped).
 */
export interface Peer {
  /** The settings in force, shown in the results (versions, durability settings as read back). */
  readonly settings: Record<string, string>;
  /** A fresh store: a new directory (spoolq), a flushed Redis and a new queue name (BullMQ), a new SQLite file (plainjob). */
  openStore(label: string): Promise<Store>;
  /** End-to-end throughput of a no-op processor, per processRecipe. */
  process(label: string, spec: ProcessSpec): Promise<RateResult>;
  /** From just before add() to the processor's first line, with a worker (concurrency 1) idle and waiting. */
  latency(label: string, spec: LatencySpec): Promise<LatencyResult>;
  close(): Promise<void>;
}

export interface PeerContext {
  pairing: Pairing;
  /** This child's temp dir (fresh, removed by the runner). */
  dir: string;
  spoolqDist: string;
  redis?: { port: number; pid: number };
}

export const ADD_BATCH = 1_000;

/**
 * Counts completions and lets a caller wait for a number of them with a time limit. The first failure reported
 * rejects the wait in progress (a no-op job must never fail).
 */
export class Completions {
  done = 0;
  #target = Infinity;
  #resolve: (() => void) | undefined;
  #reject: ((err: Error) => void) | undefined;

  hit(): void {
    if (++this.done >= this.#target) this.#resolve?.();
  }

  fail(err: Error): void {
    this.#reject?.(err);
  }

  /** Resolves with false when `target` completions (counted from reset) are in, or true when `maxMs` passed first. */
  waitFor(target: number, maxMs: number): Promise<boolean> {
    this.#target = target;
    return new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => resolve(true), maxMs);
      this.#resolve = () => {
        clearTimeout(timer);
        resolve(false);
      };
      this.#reject = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      if (this.done >= target) this.#resolve();
    });
  }

  reset(): void {
    this.done = 0;
    this.#target = Infinity;
    this.#resolve = undefined;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `one` (which returns start − t0 in ms) `spec.warmup` times untimed, then up to `spec.samples` times. */
export async function sampleLatency(spec: LatencySpec, one: () => Promise<number>): Promise<LatencyResult> {
  for (let i = 0; i < spec.warmup; i++) {
    await one();
    await sleep(spec.gapMs);
  }
  const samples: number[] = [];
  const t0 = performance.now();
  let capped = false;
  for (let i = 0; i < spec.samples; i++) {
    if (performance.now() - t0 > spec.maxMs) {
      capped = true;
      break;
    }
    samples.push(await one());
    await sleep(spec.gapMs);
  }
  return { samples, capped };
}

/** benchmarks/peers/, where its node_modules are. */
export const PEERS_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The installed version of a package of benchmarks/peers, or 'unknown'. */
export function packageVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(PEERS_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
