/**
 * What the peer benchmark measures, shared by the runner (run.ts) and the child processes (child.ts): the job, the
 * workloads with their sizes and time limits, the durability pairings, and the JSON a child reports. Owns no
 * process, file or server.
 *
 * Sizes are modest on purpose: the full run (3 repetitions × 2 pairings × 3 queues, each a fresh child process)
 * has to finish in about ten minutes on a 2-core machine. Every add workload runs for a minimum time rather than a
 * fixed count, so a fast queue is not timed over a few milliseconds and a slow one does not run for minutes.
 */

export type PeerName = 'spoolq' | 'bullmq' | 'plainjob';
export const PEERS: PeerName[] = ['spoolq', 'bullmq', 'plainjob'];
export const PEER_LABEL: Record<PeerName, string> = { spoolq: 'spoolq', bullmq: 'BullMQ', plainjob: 'plainjob' };

export type PairingName = 'fsync' | 'batch';

/**
 * Durability levels paired as fairly as the three allow. "Acknowledged" means add() resolved (BullMQ: Redis
 * replied; plainjob: the insert's implicit transaction committed).
 */
export interface Pairing {
  name: PairingName;
  spoolq: 'fsync' | 'batch';
  redisAppendfsync: 'always' | 'everysec';
  sqliteSynchronous: 'FULL' | 'NORMAL';
  /** What survives, in words, for the header. */
  promise: string;
}

export const PAIRINGS: Pairing[] = [
  {
    name: 'fsync',
    spoolq: 'fsync',
    redisAppendfsync: 'always',
    sqliteSynchronous: 'FULL',
    promise: 'an acknowledged add survives power loss (fsync before the acknowledgement)',
  },
  {
    name: 'batch',
    spoolq: 'batch',
    redisAppendfsync: 'everysec',
    sqliteSynchronous: 'NORMAL',
    promise: 'survives a crash of the process; power loss may lose the last moments (spoolq ≤ 5 ms, Redis ≤ ~1 s, SQLite WAL until its next checkpoint)',
  },
];

/** The data of every job: exactly 100 bytes of JSON (the same object as benchmarks/queue-common.ts). */
export const JOB_DATA: { s: string } = { s: 'x'.repeat(92) };
export const JOB_NAME = 'noop';
if (Buffer.byteLength(JSON.stringify(JOB_DATA)) !== 100) throw new Error('job data must be 100 B of JSON');

/** `n` jobs as a BullMQ-style addBulk takes them. */
export function bulkOf(n: number): Array<{ name: string; data: typeof JOB_DATA }> {
  return Array.from({ length: n }, () => ({ name: JOB_NAME, data: JOB_DATA }));
}

export type AddWorkload = 'addOne' | 'addInFlight' | 'addBulk';
export type ProcessWorkload = 'process1' | 'process50';
export type WorkloadName = AddWorkload | ProcessWorkload | 'latency';

/** The scale knob for quick trial runs: PEERS_SCALE=0.1 shrinks every count and time (not for results). */
const SCALE = Number(process.env.PEERS_SCALE ?? 1);
const scaled = (n: number): number => Math.max(1, Math.round(n * SCALE));

export interface AddSpec {
  /** Jobs per iteration: 1 (each add awaited), or 1,000 (in flight together, or one addBulk). */
  jobsPerIteration: number;
  warmupIterations: number;
  /** Iterate until at least this long has passed and at least minIterations ran… */
  minMs: number;
  minIterations: number;
  /** …but stop at whichever comes first of these. */
  maxMs: number;
  maxJobs: number;
}

export const ADD_SPECS: Record<AddWorkload, AddSpec> = {
  addOne: { jobsPerIteration: 1, warmupIterations: 500, minMs: scaled(1000), minIterations: 200, maxMs: scaled(6000), maxJobs: scaled(20_000) },
  addInFlight: { jobsPerIteration: 1000, warmupIterations: 10, minMs: scaled(1000), minIterations: 3, maxMs: scaled(6000), maxJobs: scaled(200_000) },
  addBulk: { jobsPerIteration: 1000, warmupIterations: 10, minMs: scaled(1000), minIterations: 3, maxMs: scaled(6000), maxJobs: scaled(200_000) },
};

export interface ProcessSpec {
  concurrency: number;
  /** Jobs processed first, not timed (JIT, connections, the worker's first claims). */
  warmupJobs: number;
  jobs: number;
  /** The timed part stops here even if not all jobs are done; the rate is then done / elapsed, marked "capped". */
  maxMs: number;
}

export const PROCESS_SPECS: Record<ProcessWorkload, ProcessSpec> = {
  process1: { concurrency: 1, warmupJobs: scaled(500), jobs: scaled(5_000), maxMs: scaled(8000) },
  process50: { concurrency: 50, warmupJobs: scaled(1000), jobs: scaled(20_000), maxMs: scaled(8000) },
};

export interface LatencySpec {
  samples: number;
  warmup: number;
  /** Idle time after a job completes before the next add, so the worker is waiting again. */
  gapMs: number;
  maxMs: number;
}

export const LATENCY_SPEC: LatencySpec = { samples: scaled(300), warmup: 30, gapMs: 1, maxMs: scaled(12_000) };

/** Jobs held waiting when a fresh process's RSS is read (the "rss" role). */
export const RSS_JOBS = scaled(100_000);

/** Whole-workload limit inside a child: past it the workload is abandoned and reported as timed out. */
export const WORKLOAD_DEADLINE_MS = 45_000;

// ---- what a child reports (one JSON line on stdout, prefixed RESULT_PREFIX)

export const RESULT_PREFIX = '@@peers-result ';

export interface RateResult {
  jobs: number;
  ms: number;
  /** Stopped by a time limit before the planned count. */
  capped: boolean;
}

export interface LatencyResult {
  /** ms from just before add() to the first line of the processor, one per sample. */
  samples: number[];
  capped: boolean;
}

export interface WorkloadsReport {
  role: 'workloads';
  peer: PeerName;
  pairing: PairingName;
  /** What the peer was set up with (versions, options actually in force). */
  settings: Record<string, string>;
  rates: Partial<Record<AddWorkload | ProcessWorkload, RateResult>>;
  latency?: LatencyResult;
  errors: Partial<Record<WorkloadName, string>>;
  /** Peak RSS of the child over all workloads, bytes (VmHWM). */
  peakRss: number;
}

export interface RssReport {
  role: 'rss';
  peer: PeerName;
  pairing: PairingName;
  settings: Record<string, string>;
  jobs: number;
  /** RSS of the child after imports, before opening anything, bytes. */
  rssEmpty: number;
  /** RSS of the child holding `jobs` waiting jobs, after gc, bytes. */
  rss: number;
  /** RSS of the redis-server process at the same moment (BullMQ only), bytes. */
  serverRss?: number;
  error?: string;
}

export type ChildReport = WorkloadsReport | RssReport;

/** What the runner passes a child (argv[2], JSON). */
export interface ChildArgs {
  role: 'workloads' | 'rss';
  peer: PeerName;
  pairing: PairingName;
  /** A fresh, empty temp dir the child may fill; the runner removes it. */
  dir: string;
  /** The root build's dist/ directory (dist/lib/index.js is spoolq). */
  spoolqDist: string;
  redis?: { port: number; pid: number };
}

/** The p-th percentile (0–100) by nearest rank, as benchmarks/queue-common.ts. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
