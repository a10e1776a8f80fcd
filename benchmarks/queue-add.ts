/**
 * Question: how fast does Queue.add / addBulk go in each durability mode, and what does the queue layer cost on top
 * of the log it writes to?
 *
 * Ours: a fresh Queue in a fresh directory per tinybench phase (warmup, run), adding no-op jobs with 100 B of data
 *   one   await queue.add() one job at a time;
 *   ×1000 issue 1,000 queue.add() calls, then await them together (1,000 in flight);
 *   bulk  await queue.addBulk() of 1,000 jobs.
 *
 * Baseline: a fresh Log (lib/log, the same default options the queue opens its log with) appending the very
 * payload bytes a queue's ADD record holds for such a job (id, name, data, options, timestamp as JSON), one at a
 * time or 1,000 in flight, in the same durability mode. The log is the floor the queue is built on, so
 * ours/base is the share of the log's rate the queue keeps: what is left out of the baseline is the queue layer
 * (validation, planning the batch, the job table fold, the events, building the Job objects returned).
 *
 * Not in the timed part: opening and closing (close writes a checkpoint). Inside it: the checkpoints the owner
 * takes every max(checkpointEvery = 100,000, jobs) records, at the rate they fall due.
 */
import * as path from 'node:path';
import { Log, Queue } from '../lib/index.js';
import type { Durability } from '../lib/index.js';
import { RECORD_HEADER_BYTES } from '../lib/format/record.js';
import {
  fmtInt,
  fmtRatio,
  fmtRoundRatios,
  loadAverage,
  makeTempDir,
  markdownTable,
  median,
  printHeader,
  removeTempDir,
  runInterleaved,
  writeResults,
  type Row,
  type Side,
} from './harness.js';
import { JOB_DATA, JOB_DATA_BYTES, JOB_NAME, QUEUE_NAME, addRecordPayload, bulk, rateTarget } from './queue-common.js';

const MODES: Durability[] = ['fsync', 'batch', 'none'];
const IN_FLIGHT = 1_000;
const ROUNDS = { rounds: 10, timeMs: 150, iterations: 5, warmupMs: 30, warmupIterations: 2 };

type Variant = 'one' | 'inflight' | 'bulk';

interface Scenario {
  id: string;
  mode: Durability;
  /** Our variants measured against one baseline, interleaved in one bench. */
  ours: Variant[];
  /** Jobs per iteration (both sides). */
  jobs: number;
}

/** Targets (benchmarks/README.md, Queue): by mode and variant. */
const TARGETS: Partial<Record<string, number>> = {
  'fsync/inflight': 200_000,
  'fsync/bulk': 500_000,
  'batch/bulk': 500_000,
  'none/bulk': 500_000,
};

const SCENARIOS: Scenario[] = MODES.flatMap((mode, i) => [
  { id: `${'abc'[i]}1`, mode, ours: ['one'] as Variant[], jobs: 1 },
  { id: `${'abc'[i]}2`, mode, ours: ['inflight', 'bulk'] as Variant[], jobs: IN_FLIGHT },
]);

const VARIANT_TEXT: Record<Variant | 'base', string> = {
  one: 'await queue.add() one at a time',
  inflight: `queue.add() × ${IN_FLIGHT.toLocaleString('en-US')} in flight`,
  bulk: `queue.addBulk(${IN_FLIGHT.toLocaleString('en-US')})`,
  base: 'Log.append',
};

function queueSide(mode: Durability, variant: Variant): Side {
  let dir = '';
  let queue: Queue | undefined;
  const jobs = bulk(IN_FLIGHT);
  const fns: Record<Variant, () => Promise<unknown>> = {
    one: () => queue!.add(JOB_NAME, JOB_DATA),
    inflight: () => {
      const pending = new Array<Promise<unknown>>(IN_FLIGHT);
      for (let i = 0; i < IN_FLIGHT; i++) pending[i] = queue!.add(JOB_NAME, JOB_DATA);
      return Promise.all(pending);
    },
    bulk: () => queue!.addBulk(jobs),
  };
  return {
    fn: fns[variant],
    async: true,
    beforeAll: async () => {
      dir = makeTempDir('qadd-ours');
      queue = new Queue(QUEUE_NAME, { dir, durability: mode });
      await queue.waitUntilReady();
    },
    afterAll: async () => {
      await queue!.close();
      queue = undefined;
      removeTempDir(dir);
    },
  };
}

function logSide(mode: Durability, inFlight: number, payload: Buffer): Side {
  let dir = '';
  let log: Log | undefined;
  const one = (): Promise<unknown> => log!.append(1, payload);
  const many = (): Promise<unknown> => {
    const pending = new Array<Promise<unknown>>(inFlight);
    for (let i = 0; i < inFlight; i++) pending[i] = log!.append(1, payload);
    return Promise.all(pending);
  };
  return {
    fn: inFlight === 1 ? one : many,
    async: true,
    beforeAll: async () => {
      dir = makeTempDir('qadd-base');
      log = await Log.open(path.join(dir, QUEUE_NAME), { durability: mode });
    },
    afterAll: async () => {
      await log!.close();
      log = undefined;
      removeTempDir(dir);
    },
  };
}

interface Line {
  s: Scenario;
  variant: Variant;
  rate: number;
  base: number;
  roundRatios: number[];
  jobs: number;
}

function row(l: Line): Row {
  const target = TARGETS[`${l.s.mode}/${l.variant}`];
  return {
    scenario: l.s.id + (l.s.ours.length > 1 ? (l.variant === 'inflight' ? 'a' : 'b') : ''),
    mode: l.s.mode,
    ours: VARIANT_TEXT[l.variant],
    'jobs/s': fmtInt(l.rate),
    'µs/job': (1e6 / l.rate).toFixed(2),
    baseline: `${VARIANT_TEXT.base} ${l.s.jobs === 1 ? 'one at a time' : `× ${IN_FLIGHT.toLocaleString('en-US')} in flight`}`,
    'base rec/s': fmtInt(l.base),
    'ours/base': fmtRatio(l.rate / l.base),
    'round ratios: median [range]': fmtRoundRatios(l.roundRatios),
    'jobs (ours)': fmtInt(l.jobs),
    target: target === undefined ? '' : rateTarget(l.rate, target),
  };
}

/** BENCH_ONLY=a2,c1 runs only those scenarios; a partial run prints its table but leaves results/queue-add.md alone. */
const only = process.env.BENCH_ONLY?.split(',').map((id) => id.trim()).filter(Boolean);
const selected = only?.length ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS;

async function main(): Promise<void> {
  if (selected.length === 0) throw new Error(`BENCH_ONLY=${process.env.BENCH_ONLY} matches no scenario`);
  const payload = addRecordPayload();
  const probe = makeTempDir('qadd-probe');
  const header = printHeader({
    title: 'queue-add: Queue.add / addBulk throughput vs Log.append of the same bytes',
    question: 'Jobs/s added per durability mode, one at a time, 1,000 in flight and in bulk, beside the log they write to.',
    dir: path.dirname(probe),
    facts: [
      ['job', `name '${JOB_NAME}', data ${JOB_DATA_BYTES} B of JSON, default options; the ADD record payload is ${payload.length} B (${RECORD_HEADER_BYTES + payload.length} B on disk)`],
      ['jobs per iteration', `1 (await each add), ${IN_FLIGHT.toLocaleString('en-US')} (in flight, or one addBulk)`],
      ['durability', MODES.join(', ') + ' (each measured separately; batchIntervalMs 5)'],
      ['codec', 'plain (no compression, no encryption); maxSegmentBytes 64 MiB (defaults)'],
      [
        'method',
        `tinybench, ${ROUNDS.rounds} rounds × ${ROUNDS.timeMs} ms per side, interleaved ours/baseline; fresh Queue (Log) per phase; ` +
          'rate = jobs per iteration / median iteration latency (pooled over rounds); round ratios = ours/baseline per round',
      ],
    ],
  });
  removeTempDir(probe);

  const lines: Line[] = [];
  for (const s of selected) {
    const sides: Record<string, Side> = {};
    for (const v of s.ours) sides[v] = queueSide(s.mode, v);
    sides['base'] = logSide(s.mode, s.jobs, payload);
    const res = await runInterleaved(sides, ROUNDS);
    const rate = (ms: number): number => (s.jobs * 1000) / ms;
    const base = rate(median(res['base']!.samples));
    for (const v of s.ours) {
      const l: Line = {
        s,
        variant: v,
        rate: rate(median(res[v]!.samples)),
        base,
        roundRatios: res[v]!.roundMedians.map((m, i) => rate(m) / rate(res['base']!.roundMedians[i]!)),
        jobs: res[v]!.samples.length * s.jobs,
      };
      lines.push(l);
      const r = row(l);
      console.log(`  ${r.scenario!.padEnd(4)} ${s.mode.padEnd(5)} ${VARIANT_TEXT[v].padEnd(34)} ${r['jobs/s']!.padStart(11)} jobs/s  base ${r['base rec/s']!.padStart(11)} rec/s  ratio ${r['ours/base']}`);
    }
  }

  const table = markdownTable(lines.map(row));
  console.log('\n' + table + '\n');
  if (selected !== SCENARIOS) {
    console.log('BENCH_ONLY is set: a partial run, results/queue-add.md left as it was');
    return;
  }
  const file = writeResults('queue-add', 'queue-add: Queue.add / addBulk throughput vs Log.append of the same bytes', header, [
    '## Results (medians)',
    `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
    table,
    '## Scenarios',
    [
      '- **a** fsync, **b** batch, **c** none. **1**: one job at a time, each add awaited, vs one Log.append at a time.',
      `- **2a** ${IN_FLIGHT.toLocaleString('en-US')} queue.add() in flight, **2b** one addBulk of ${IN_FLIGHT.toLocaleString('en-US')}, both vs ${IN_FLIGHT.toLocaleString('en-US')} Log.append in flight.`,
      '- ours/base: the share of the log\'s own rate the queue keeps; the baseline appends the same ADD payload bytes.',
      '',
      'Targets are informational (benchmarks are not tests): fsync with 1,000 adds in flight ≥ 200,000 jobs/s; addBulk ≥ 500,000 jobs/s.',
    ].join('\n'),
  ]);
  console.log(`results written to ${file}`);
}

await main();
