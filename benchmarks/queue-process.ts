/**
 * Question: how many no-op jobs per second does a Worker get through, end to end, from waiting to completed?
 *
 * Ours, one repetition: a fresh queue directory; a Queue and a Worker on it in this process (they share the
 * process's owner, the common setup); 1,000 warm-up jobs processed first (JIT, and the thread pool's threads
 * started); then the queue is paused, N jobs with 100 B of data are added with addBulk (not timed), and the clock
 * runs from resume() until the Worker has emitted 'completed' for all N. A whole run is the unit: the figure is
 * N / the median run time over the repetitions.
 *
 * What one job costs on that path: an ACTIVE record for its ticket (durable before the ticket is published), the
 * ticket file (written, renamed into ready/, claimed by rename, recycled by rename), the ADD record read back
 * for the data, the processor call (inline, or a message to a worker_thread and back), and a COMPLETE record
 * that is durable before 'completed' is emitted and the slot freed.
 *
 * Baseline, "log floor": the same records with lib/log alone. A Log in the same durability mode, pre-filled with
 * N ADD records of the same bytes; then the same number of chains as the worker's slots (concurrency, or
 * threads × concurrency) each take the next job and await an ACTIVE append, read the ADD record by pointer and
 * parse it, and await a COMPLETE append (payloads shaped like the queue's). What it leaves out is the queue
 * layer: tickets and their files, leases, the job table, the worker's bookkeeping, events, Job objects.
 * Repetitions alternate ours / baseline (A B A B).
 *
 * For scale (not measured here; the side-by-side peer benchmark is separate): on this machine BullMQ on a local
 * Redis does about 20,000 jobs/s at concurrency 50, and a SQLite-backed queue about 11,000.
 */
import * as path from 'node:path';
import { Log, Queue, Worker } from '../lib/index.js';
import type { Durability, RecordPointer } from '../lib/index.js';
import { encodeEvent } from '../lib/store/events.js';
import {
  fmtInt,
  fmtRatio,
  loadAverage,
  makeTempDir,
  markdownTable,
  median,
  printHeader,
  removeTempDir,
  writeResults,
  type Row,
} from './harness.js';
import { JOB_DATA_BYTES, JOB_NAME, QUEUE_NAME, addRecordPayload, bulk, collect, fmtSpread, profiled, rateTarget, within } from './queue-common.js';

const FIXTURE = new URL('./queue-fixture-noop.js', import.meta.url);
const WARMUP_JOBS = 1_000;
const ADD_BATCH = 10_000;
const REPS = Number(process.env.BENCH_REPS ?? 5);

interface Scenario {
  id: string;
  mode: Durability;
  concurrency: number;
  /** worker_threads running the fixture module; undefined: an inline processor function. */
  threads?: number;
  jobs: number;
  target?: number;
  note?: string;
}

const SCENARIOS: Scenario[] = [
  { id: 'p1', mode: 'batch', concurrency: 1, jobs: 20_000, target: 30_000 },
  { id: 'p2', mode: 'batch', concurrency: 50, jobs: 100_000, target: 100_000 },
  { id: 'p3', mode: 'fsync', concurrency: 50, jobs: 50_000, note: 'secondary' },
  { id: 'p4', mode: 'batch', concurrency: 50, threads: 2, jobs: 100_000 },
];

function slots(s: Scenario): number {
  return s.concurrency * (s.threads ?? 1);
}

function describe(s: Scenario): string {
  return s.threads ? `${s.threads} threads × ${s.concurrency} (module)` : `inline, concurrency ${s.concurrency}`;
}

interface Run {
  ms: number;
  /** Process CPU time (user + system, all threads) in the measured window, µs. */
  cpuUs: number;
}

/** One repetition of ours: the ms from resume() to the N-th 'completed', and the CPU time spent meanwhile. */
async function runQueue(s: Scenario): Promise<Run> {
  const dir = makeTempDir('qproc-ours');
  const queue = new Queue(QUEUE_NAME, { dir, durability: s.mode });
  let worker: Worker | undefined;
  try {
    await queue.waitUntilReady();
    const processor = s.threads ? FIXTURE : (): null => null;
    const opts = s.threads
      ? { dir, durability: s.mode, concurrency: s.concurrency, threads: s.threads }
      : { dir, durability: s.mode, concurrency: s.concurrency };
    worker = new Worker(QUEUE_NAME, processor, opts);
    let done = 0;
    let target = WARMUP_JOBS;
    let finished: () => void = () => undefined;
    let failed: (err: Error) => void = () => undefined;
    const until = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        finished = resolve;
        failed = reject;
      });
    worker.on('error', (err: Error) => failed(err));
    worker.on('failed', (_job: unknown, err: Error) => failed(err));
    worker.on('completed', () => {
      if (++done === target) finished();
    });
    const warm = until();
    await queue.addBulk(bulk(WARMUP_JOBS));
    await within(warm, 60_000, `${s.id}: the ${WARMUP_JOBS} warm-up jobs`);

    await queue.pause();
    for (let added = 0; added < s.jobs; added += ADD_BATCH) await queue.addBulk(bulk(Math.min(ADD_BATCH, s.jobs - added)));
    done = 0;
    target = s.jobs;
    const all = until();
    collect();
    const run = await profiled(`process-${s.id}`, async () => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await queue.resume();
      await within(all, 300_000, `${s.id}: ${s.jobs} jobs`);
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      return { ms, cpuUs: c.user + c.system };
    });
    const counts = await queue.getJobCounts();
    if (counts.completed !== s.jobs + WARMUP_JOBS) throw new Error(`expected ${s.jobs + WARMUP_JOBS} completed, got ${JSON.stringify(counts)}`);
    return run;
  } finally {
    await worker?.close();
    await queue.close();
    removeTempDir(dir);
  }
}

/** One repetition of the log floor: N jobs' ACTIVE append, ADD read, COMPLETE append. */
async function runLogFloor(s: Scenario, addPayload: Buffer): Promise<Run> {
  const dir = makeTempDir('qproc-base');
  const log = await Log.open(path.join(dir, QUEUE_NAME), { durability: s.mode });
  try {
    const ptrs: RecordPointer[] = new Array(s.jobs);
    for (let i = 0; i < s.jobs; i += ADD_BATCH) {
      const batch: Array<Promise<RecordPointer>> = [];
      for (let j = i; j < Math.min(i + ADD_BATCH, s.jobs); j++) batch.push(log.append(1, addPayload));
      (await Promise.all(batch)).forEach((p, k) => (ptrs[i + k] = p));
    }
    await log.sync();
    let next = 0;
    const chain = async (): Promise<void> => {
      for (let i = next++; i < s.jobs; i = next++) {
        const id = String(ptrs[i]!.seq);
        await log.append(2, encodeEvent({ t: `1x${i.toString(36)}`, j: [[id, 1]], ts: Date.now() }));
        const add = log.decode(ptrs[i]!, (buf, _seq, start, end) => JSON.parse(buf.toString('utf8', start, end)) as { d: unknown });
        if (!add.d) throw new Error('no data');
        await log.append(3, encodeEvent({ id, a: 1, rv: null, ts: Date.now() }));
      }
    };
    collect();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: slots(s) }, chain));
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { ms, cpuUs: c.user + c.system };
  } finally {
    await log.close();
    removeTempDir(dir);
  }
}

interface Outcome {
  s: Scenario;
  ours: Run[];
  base: Run[];
}

function row(o: Outcome): Row {
  const rate = (ms: number): number => (o.s.jobs * 1000) / ms;
  const ours = rate(median(o.ours.map((r) => r.ms)));
  const base = o.base.length ? rate(median(o.base.map((r) => r.ms))) : NaN; // NaN: the floor was skipped
  const cpu = (runs: Run[]): string => (runs.length ? (median(runs.map((r) => r.cpuUs)) / o.s.jobs).toFixed(1) : '');
  return {
    scenario: o.s.id,
    mode: o.s.mode,
    worker: describe(o.s),
    jobs: fmtInt(o.s.jobs),
    'jobs/s': fmtInt(ours),
    'µs/job': (1e6 / ours).toFixed(2),
    'run ms: median [range]': fmtSpread(o.ours.map((r) => r.ms)),
    'CPU µs/job': cpu(o.ours),
    'log floor jobs/s': o.base.length ? fmtInt(base) : '',
    'floor CPU µs/job': cpu(o.base),
    'ours/floor': o.base.length ? fmtRatio(ours / base) : '',
    'vs BullMQ ≈ 20k (not run here)': o.s.concurrency === 50 && !o.s.threads ? `${(ours / 20_000).toFixed(1)}×` : '',
    target: o.s.target ? rateTarget(ours, o.s.target) : (o.s.note ?? ''),
  };
}

/**
 * BENCH_ONLY=p2 runs only those scenarios; BENCH_REPS=n changes the repetitions; BENCH_NO_FLOOR=1 skips the
 * baseline; BENCH_PROFILE=<dir> profiles ours' measured window (and skips the baseline). Any of them makes a
 * partial run, which prints its table but leaves results/queue-process.md alone.
 */
const only = process.env.BENCH_ONLY?.split(',').map((id) => id.trim()).filter(Boolean);
const selected = only?.length ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS;

async function main(): Promise<void> {
  if (selected.length === 0) throw new Error(`BENCH_ONLY=${process.env.BENCH_ONLY} matches no scenario`);
  const addPayload = addRecordPayload();
  const probe = makeTempDir('qproc-probe');
  const header = printHeader({
    title: 'queue-process: end-to-end jobs/s of a Worker on no-op jobs vs the log floor',
    question: 'Jobs/s from waiting to completed, inline (concurrency 1 and 50) and in 2 worker_threads × 50, beside the same records written with lib/log alone.',
    dir: path.dirname(probe),
    facts: [
      ['job', `name '${JOB_NAME}', data ${JOB_DATA_BYTES} B of JSON, default options, a processor that returns null`],
      ['jobs per run', selected.map((s) => `${s.id}: ${fmtInt(s.jobs)}`).join(', ') + ` (after ${fmtInt(WARMUP_JOBS)} warm-up jobs)`],
      ['durability', 'batch (batchIntervalMs 5), and fsync for concurrency 50 as a secondary line'],
      ['codec', 'plain (no compression, no encryption); defaults otherwise (leaseMs 30 s, checkpointEvery 100,000)'],
      ['method', `${REPS} repetitions per side, alternating ours / log floor; a repetition is one whole run in a fresh directory; rate = jobs / median run time; CPU µs/job = process user + system time in the window (all threads) / jobs, median`],
      ['for scale', 'not measured here: BullMQ on a local Redis ≈ 20,000 jobs/s at concurrency 50, a SQLite queue ≈ 11,000 (this machine)'],
    ],
  });
  removeTempDir(probe);

  const outcomes: Outcome[] = [];
  for (const s of selected) {
    const o: Outcome = { s, ours: [], base: [] };
    for (let r = 0; r < REPS; r++) {
      o.ours.push(await runQueue(s));
      if (!process.env.BENCH_PROFILE && !process.env.BENCH_NO_FLOOR) o.base.push(await runLogFloor(s, addPayload));
    }
    outcomes.push(o);
    const r = row(o);
    console.log(`  ${s.id} ${s.mode.padEnd(5)} ${describe(s).padEnd(28)} ${r['jobs/s']!.padStart(9)} jobs/s  runs ${r['run ms: median [range]']} ms  CPU ${r['CPU µs/job']} µs/job  floor ${r['log floor jobs/s']!.padStart(9)} jobs/s  ratio ${r['ours/floor']}`);
  }

  const table = markdownTable(outcomes.map(row));
  console.log('\n' + table + '\n');
  if (selected !== SCENARIOS || process.env.BENCH_REPS || process.env.BENCH_NO_FLOOR || process.env.BENCH_PROFILE) {
    console.log('a partial run (BENCH_ONLY, BENCH_REPS, BENCH_NO_FLOOR or BENCH_PROFILE): results/queue-process.md left as it was');
    return;
  }
  const file = writeResults('queue-process', 'queue-process: end-to-end jobs/s of a Worker on no-op jobs vs the log floor', header, [
    '## Results (medians)',
    `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
    table,
    '## Scenarios',
    [
      '- **p1** inline processor, concurrency 1, batch. **p2** concurrency 50, batch. **p3** concurrency 50, fsync (secondary).',
      '- **p4** the processor as a module in 2 worker_threads × concurrency 50, batch.',
      '- log floor: per job an ACTIVE append (awaited), a read of the ADD record, a COMPLETE append (awaited), with as many',
      '  chains as the worker has slots, on lib/log alone. ours/floor is the share of that rate the queue keeps.',
      '- BullMQ ≈ 20,000 jobs/s at concurrency 50 on a local Redis and a SQLite queue ≈ 11,000 were measured on this machine',
      '  separately; the side-by-side peer benchmark is a later suite.',
      '',
      'Targets are informational (benchmarks are not tests): ≥ 100,000 jobs/s at concurrency 50 (batch); ≥ 30,000 at concurrency 1.',
    ].join('\n'),
  ]);
  console.log(`results written to ${file}`);
}

await main();
