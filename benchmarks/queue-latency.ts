/**
 * Question: with a Worker idle and waiting, how long from queue.add() until the processor starts running the job?
 *
 * Ours: a Queue and an inline Worker (concurrency 1) on one queue directory in this process. Each sample adds one
 * no-op job (100 B of data) and notes three times, all from just before the add() call: the processor starting
 * (the first line of the processor function), add() resolving, and the Worker's 'completed' event. Then it waits
 * for the job to finish and 1 ms more, so the next add finds the worker idle again. Warm-up samples first, not
 * counted.
 *
 * What lies on the path to the processor: the ADD record, the ACTIVE record of the one-job ticket cut at once
 * (both in one group commit: one write, one fsync), the ticket file (written, renamed into ready/, claimed by
 * rename), the ADD record read back for the data, and the processor call.
 *
 * Baseline, interleaved sample by sample (A B A B): one Log.append of the same ADD payload bytes, awaited, on a
 * Log of its own in the same mode: the floor, since no job may start before its ADD record is as durable as the
 * mode promises.
 */
import * as path from 'node:path';
import { Log, Queue, Worker } from '../lib/index.js';
import type { Durability } from '../lib/index.js';
import {
  fmtInt,
  loadAverage,
  makeTempDir,
  markdownTable,
  printHeader,
  removeTempDir,
  writeResults,
  type Row,
} from './harness.js';
import { JOB_DATA, JOB_DATA_BYTES, JOB_NAME, QUEUE_NAME, addRecordPayload, fmtMs, maxTarget, percentile, profiled, within } from './queue-common.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 2_000);
const WARMUP = 200;
const GAP_MS = 1;
const MODES: Durability[] = ['fsync', 'batch'];

interface Samples {
  start: number[];
  added: number[];
  completed: number[];
  base: number[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(mode: Durability, payload: Buffer): Promise<Samples> {
  const dir = makeTempDir('qlat');
  const queue = new Queue(QUEUE_NAME, { dir, durability: mode });
  const log = await Log.open(path.join(dir, 'baseline-log'), { durability: mode });
  let onStart: (t: number) => void = () => undefined;
  let onCompleted: (t: number) => void = () => undefined;
  let onFailure: (err: Error) => void = () => undefined;
  const worker = new Worker(
    QUEUE_NAME,
    () => {
      onStart(performance.now());
      return null;
    },
    { dir, durability: mode, concurrency: 1 },
  );
  worker.on('completed', () => onCompleted(performance.now()));
  worker.on('error', (err: Error) => onFailure(err));
  worker.on('failed', (_job: unknown, err: Error) => onFailure(err));
  const out: Samples = { start: [], added: [], completed: [], base: [] };
  try {
    await queue.waitUntilReady();
    await worker.waitUntilReady();
    await sleep(10);
    const one = async (): Promise<[number, number, number]> => {
      const started = new Promise<number>((resolve, reject) => {
        onStart = resolve;
        onFailure = reject;
      });
      const completed = new Promise<number>((resolve) => (onCompleted = resolve));
      const t0 = performance.now();
      await queue.add(JOB_NAME, JOB_DATA);
      const added = performance.now();
      const start = await within(started, 10_000, 'the processor starting');
      const done = await within(completed, 10_000, "the 'completed' event");
      return [start - t0, added - t0, done - t0];
    };
    const base = async (): Promise<number> => {
      const t0 = performance.now();
      await log.append(1, payload);
      return performance.now() - t0;
    };
    for (let i = 0; i < WARMUP; i++) {
      await one();
      await sleep(GAP_MS);
      await base();
      await sleep(GAP_MS);
    }
    await profiled(`latency-${mode}`, async () => {
      for (let i = 0; i < SAMPLES; i++) {
        const [start, added, completed] = await one();
        out.start.push(start);
        out.added.push(added);
        out.completed.push(completed);
        await sleep(GAP_MS);
        out.base.push(await base());
        await sleep(GAP_MS);
      }
    });
    return out;
  } finally {
    await worker.close();
    await queue.close();
    await log.close();
    removeTempDir(dir);
  }
}

function row(mode: Durability, what: string, ms: number[], targets: boolean): Row {
  const p50 = percentile(ms, 50);
  const p99 = percentile(ms, 99);
  return {
    mode,
    'from add() to': what,
    samples: fmtInt(ms.length),
    'p50 ms': fmtMs(p50),
    'p90 ms': fmtMs(percentile(ms, 90)),
    'p99 ms': fmtMs(p99),
    'max ms': fmtMs(Math.max(...ms)),
    target: targets ? `p50 ${maxTarget(p50, 1, 'ms')}; p99 ${maxTarget(p99, 5, 'ms')}` : '',
  };
}

async function main(): Promise<void> {
  const payload = addRecordPayload();
  const probe = makeTempDir('qlat-probe');
  const header = printHeader({
    title: 'queue-latency: from queue.add() to the processor starting, worker idle',
    question: 'p50 / p99 latency from add() to processor start on an idle inline worker, beside one awaited Log.append of the same bytes.',
    dir: path.dirname(probe),
    facts: [
      ['job', `name '${JOB_NAME}', data ${JOB_DATA_BYTES} B of JSON, default options; ADD payload ${payload.length} B`],
      ['jobs', `${fmtInt(SAMPLES)} samples per mode (after ${WARMUP} warm-up), one job at a time, ${GAP_MS} ms idle between samples`],
      ['durability', `${MODES.join(', ')} (targets apply to fsync; batch for comparison)`],
      ['worker', 'inline processor, concurrency 1, in the process of the Queue (shared owner)'],
      ['codec', 'plain (no compression, no encryption); defaults otherwise'],
      ['method', 'ours and the baseline alternate sample by sample; percentiles by nearest rank'],
    ],
  });
  removeTempDir(probe);

  const rows: Row[] = [];
  for (const mode of MODES) {
    const s = await measure(mode, payload);
    const isFsync = mode === 'fsync';
    rows.push(
      row(mode, 'processor start (ours)', s.start, isFsync),
      row(mode, 'add() resolved (ours)', s.added, false),
      row(mode, "'completed' event (ours)", s.completed, false),
      row(mode, 'Log.append resolved (baseline)', s.base, false),
    );
    const p50 = percentile(s.start, 50);
    const b50 = percentile(s.base, 50);
    console.log(`  ${mode.padEnd(5)} processor start p50 ${fmtMs(p50)} ms p99 ${fmtMs(percentile(s.start, 99))} ms; Log.append p50 ${fmtMs(b50)} ms; ours/base p50 ${(p50 / b50).toFixed(2)}`);
  }

  const table = markdownTable(rows);
  console.log('\n' + table + '\n');
  if (process.env.BENCH_SAMPLES || process.env.BENCH_PROFILE) {
    console.log('BENCH_SAMPLES or BENCH_PROFILE is set: results/queue-latency.md left as it was');
    return;
  }
  const file = writeResults('queue-latency', 'queue-latency: from queue.add() to the processor starting, worker idle', header, [
    '## Results',
    `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
    table,
    '## Reading it',
    [
      '- processor start: the first line of the processor, timed from just before queue.add(). The processor can start',
      '  before add() resolves: both wait for the same group commit, and the ticket is published by the same callback.',
      '- Log.append: one record of the same ADD payload bytes, awaited, on its own Log, alternating with ours.',
      '',
      'Targets are informational (benchmarks are not tests): fsync, processor start p50 ≤ 1 ms, p99 ≤ 5 ms.',
    ].join('\n'),
  ]);
  console.log(`results written to ${file}`);
}

await main();
