/**
 * From the children's reports to the tables: the metrics (one row each per pairing), medians over repetitions,
 * spoolq's ratio to each peer, and the issue-3 targets spoolq is held to. Pure functions; run.ts prints and writes.
 *
 * Ratios always read "how many times better spoolq is": jobs/s spoolq ÷ peer; ms and MB peer ÷ spoolq. Below 1,
 * spoolq is behind.
 */
import {
  ADD_SPECS,
  LATENCY_SPEC,
  PEER_LABEL,
  PROCESS_SPECS,
  RSS_JOBS,
  median,
  percentile,
  type PairingName,
  type PeerName,
  type RssReport,
  type WorkloadsReport,
} from './workload.js';

export type Row = Record<string, string>;

export interface Collected {
  workloads: Map<string, WorkloadsReport[]>;
  rss: Map<string, RssReport[]>;
}

export const cellKey = (pairing: PairingName, peer: PeerName): string => `${pairing}/${peer}`;

type Unit = 'jobs/s' | 'ms' | 'MB';

interface Metric {
  id: string;
  label: string;
  unit: Unit;
  /** One value per repetition (undefined: that repetition failed this workload). */
  values(c: Collected, pairing: PairingName, peer: PeerName): Array<number | undefined>;
  capped?(c: Collected, pairing: PairingName, peer: PeerName): boolean;
  /** issue 3's target for spoolq, if any at this pairing. */
  target?(pairing: PairingName): { text: string; pass: (v: number) => boolean } | undefined;
}

const MB = 1024 * 1024;
const n = (v: number): string => v.toLocaleString('en-US');

function rateMetric(id: 'addOne' | 'addInFlight' | 'addBulk' | 'process1' | 'process50', label: string, target?: Metric['target']): Metric {
  return {
    id,
    label,
    unit: 'jobs/s',
    values: (c, pairing, peer) =>
      (c.workloads.get(cellKey(pairing, peer)) ?? []).map((r) => {
        const x = r.rates[id];
        return x && x.jobs > 0 ? (x.jobs * 1000) / x.ms : undefined;
      }),
    capped: (c, pairing, peer) => (c.workloads.get(cellKey(pairing, peer)) ?? []).some((r) => r.rates[id]?.capped),
    target,
  };
}

function latencyMetric(p: 50 | 99): Metric {
  return {
    id: `latency-p${p}`,
    label: `idle latency, add → processor start, p${p}`,
    unit: 'ms',
    values: (c, pairing, peer) =>
      (c.workloads.get(cellKey(pairing, peer)) ?? []).map((r) => (r.latency?.samples.length ? percentile(r.latency.samples, p) : undefined)),
    capped: (c, pairing, peer) => (c.workloads.get(cellKey(pairing, peer)) ?? []).some((r) => r.latency?.capped),
    target: (pairing) => (pairing === 'fsync' ? { text: `≤ ${p === 50 ? 1 : 5} ms`, pass: (v) => v <= (p === 50 ? 1 : 5) } : undefined),
  };
}

const atLeast = (min: number): { text: string; pass: (v: number) => boolean } => ({ text: `≥ ${n(min)} jobs/s`, pass: (v) => v >= min });

export const METRICS: Metric[] = [
  rateMetric('addOne', 'add, one at a time, awaited'),
  rateMetric('addInFlight', 'add, 1,000 in flight', (p) => (p === 'fsync' ? atLeast(200_000) : undefined)),
  rateMetric('addBulk', 'addBulk, batches of 1,000', () => atLeast(500_000)),
  rateMetric('process1', 'process, concurrency 1', (p) => (p === 'batch' ? atLeast(30_000) : undefined)),
  rateMetric('process50', 'process, concurrency 50', (p) => (p === 'batch' ? atLeast(100_000) : undefined)),
  latencyMetric(50),
  latencyMetric(99),
  {
    id: 'rss',
    label: `RSS holding ${n(RSS_JOBS)} waiting jobs (process + redis-server)`,
    unit: 'MB',
    values: (c, pairing, peer) => (c.rss.get(cellKey(pairing, peer)) ?? []).map((r) => (r.error ? undefined : (r.rss + (r.serverRss ?? 0)) / MB)),
  },
];

export function fmtValue(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return '—';
  if (unit === 'jobs/s') return n(Math.round(v));
  if (unit === 'ms') return v < 10 ? v.toFixed(2) : v.toFixed(1);
  return v.toFixed(0);
}

const unitText: Record<Unit, string> = { 'jobs/s': 'jobs/s', ms: 'ms', MB: 'MB' };

function medianOf(values: Array<number | undefined>): number {
  const ok = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return ok.length ? median(ok) : NaN;
}

/** spoolq's advantage: > 1 means spoolq is ahead. */
export function advantage(unit: Unit, spoolq: number, peer: number): number {
  return unit === 'jobs/s' ? spoolq / peer : peer / spoolq;
}

export interface MainTableResult {
  rows: Row[];
  /** Metrics where spoolq misses its target or is behind a peer, for the closing summary. */
  shortfalls: string[];
}

/** One row per pairing × metric: medians, ratios, target. A value that hit a time limit is marked †. */
export function mainTable(c: Collected, pairings: PairingName[], peers: PeerName[]): MainTableResult {
  const rows: Row[] = [];
  const shortfalls: string[] = [];
  const others = peers.filter((p) => p !== 'spoolq');
  for (const pairing of pairings) {
    for (const m of METRICS) {
      const row: Row = { pairing, workload: m.label, unit: unitText[m.unit] };
      const med: Partial<Record<PeerName, number>> = {};
      for (const peer of peers) {
        med[peer] = medianOf(m.values(c, pairing, peer));
        row[PEER_LABEL[peer]] = fmtValue(med[peer]!, m.unit) + (m.capped?.(c, pairing, peer) ? ' †' : '');
      }
      const s = med.spoolq;
      for (const peer of others) {
        const r = s !== undefined ? advantage(m.unit, s, med[peer]!) : NaN;
        row[`spoolq vs ${PEER_LABEL[peer]}`] = Number.isFinite(r) ? `${r.toFixed(r < 10 ? 2 : 1)}×` : '—';
        if (Number.isFinite(r) && r < 1) shortfalls.push(`${pairing} / ${m.label}: behind ${PEER_LABEL[peer]} (${r.toFixed(2)}×)`);
      }
      if (peers.includes('spoolq')) {
        const t = m.target?.(pairing);
        const pass = t && s !== undefined && Number.isFinite(s) ? t.pass(s) : undefined;
        row['spoolq target (issue 3)'] = t ? `${t.text}: ${pass === undefined ? '—' : pass ? 'PASS' : 'MISS'}` : '';
        if (t && pass === false) shortfalls.push(`${pairing} / ${m.label}: target ${t.text} MISSED (${fmtValue(s!, m.unit)} ${unitText[m.unit]})`);
      }
      rows.push(row);
    }
  }
  return { rows, shortfalls };
}

/** Every repetition's value in run order (✗: failed): how much the run wandered. */
export function spreadTable(c: Collected, pairings: PairingName[], peers: PeerName[]): Row[] {
  const rows: Row[] = [];
  for (const pairing of pairings) {
    for (const m of METRICS) {
      const row: Row = { pairing, workload: m.label };
      for (const peer of peers) {
        const values = m.values(c, pairing, peer);
        const ok = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
        row[PEER_LABEL[peer]] = ok.length
          ? `${values.map((v) => (v === undefined ? '✗' : fmtValue(v, m.unit))).join(' / ')}`
          : '—';
      }
      rows.push(row);
    }
  }
  return rows;
}

/** RSS in detail: the process empty, holding the jobs, and redis-server (medians). */
export function rssTable(c: Collected, pairings: PairingName[], peers: PeerName[]): Row[] {
  const rows: Row[] = [];
  for (const pairing of pairings) {
    for (const peer of peers) {
      const reps = (c.rss.get(cellKey(pairing, peer)) ?? []).filter((r) => !r.error);
      const peak = (c.workloads.get(cellKey(pairing, peer)) ?? []).map((r) => r.peakRss / MB);
      const f = (xs: number[]): string => (xs.length ? median(xs).toFixed(0) : '—');
      rows.push({
        pairing,
        queue: PEER_LABEL[peer],
        'node process, empty (MB)': f(reps.map((r) => r.rssEmpty / MB)),
        [`node process, ${n(RSS_JOBS)} waiting (MB)`]: f(reps.map((r) => r.rss / MB)),
        'redis-server (MB)': peer === 'bullmq' ? f(reps.map((r) => (r.serverRss ?? NaN) / MB)) : '',
        'total (MB)': f(reps.map((r) => (r.rss + (r.serverRss ?? 0)) / MB)),
        'peak RSS of the workloads child (MB)': f(peak),
      });
    }
  }
  return rows;
}

export function workloadLines(): string[] {
  const a = ADD_SPECS;
  const p = PROCESS_SPECS;
  return [
    `- **add, one at a time**: \`await add()\` per job, repeated for ≥ ${a.addOne.minMs} ms and ≥ ${n(a.addOne.minIterations)} jobs (≤ ${a.addOne.maxMs} ms, ≤ ${n(a.addOne.maxJobs)} jobs), after ${a.addOne.warmupIterations} warm-up adds.`,
    `- **add, 1,000 in flight**: 1,000 \`add()\` calls issued together, then awaited together; repeated for ≥ ${a.addInFlight.minMs} ms (≤ ${n(a.addInFlight.maxJobs)} jobs). plainjob's add is synchronous: its 1,000 are 1,000 commits in a row.`,
    `- **addBulk**: one \`addBulk\` of 1,000 jobs per iteration (plainjob: \`addMany\`, one transaction); repeated for ≥ ${a.addBulk.minMs} ms (≤ ${n(a.addBulk.maxJobs)} jobs).`,
    `- **process, concurrency c**: a Queue and a Worker in one process; ${n(p.process1.warmupJobs)} (c = 1) or ${n(p.process50.warmupJobs)} (c = 50) warm-up jobs processed first; then ${n(p.process1.jobs)} (c = 1) or ${n(p.process50.jobs)} (c = 50) jobs added while held back (spoolq and BullMQ: queue paused; plainjob: no worker yet), and the clock runs from resume (or starting the workers) to the last 'completed'. A run that hits the ${p.process50.maxMs / 1000} s limit is rated on the jobs done by then (†).`,
    `- **idle latency**: a Worker with concurrency 1, idle; ${n(LATENCY_SPEC.samples)} samples (after ${LATENCY_SPEC.warmup} warm-up) of the time from just before \`add()\` to the processor's first line; ${LATENCY_SPEC.gapMs} ms idle after each job completes. p50/p99 by nearest rank within a repetition, then the median over repetitions.`,
    `- **RSS**: a fresh process opens the queue alone (no worker) and adds ${n(RSS_JOBS)} jobs with addBulk of 1,000; after two gc() calls, its RSS, plus redis-server's RSS (/proc/<pid>/status VmRSS) for BullMQ, whose jobs live in the server. The OS page cache (spoolq's segments, SQLite's file) is not counted for anyone.`,
  ];
}
