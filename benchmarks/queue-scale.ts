/**
 * Question: what does a queue of 1,000,000 waiting jobs cost its owner, in memory and in time to reopen?
 *
 * Build (a child process): a Queue in durability none, 1,000,000 no-op jobs (100 B of data) added with addBulk in
 * batches of 10,000, then closed (close writes the checkpoint, the index file).
 *
 * Ours (a fresh child process per repetition, so the RSS is the owner's alone and nothing is warm): new Queue +
 * waitUntilReady() on that directory, timed; then gc() (node --expose-gc) and process.memoryUsage(): RSS, V8 heap
 * used, external + array buffers. The job counts are checked (1,000,000 waiting) and the queue closed.
 *
 * Baselines, each in fresh child processes too, alternating with ours:
 *   empty  the same child with spoolq imported and nothing opened: what any Node process costs, so
 *          "RSS − empty" is what the queue's state costs;
 *   log    Log.open on the queue's log directory (manifest, lock, recovery, the index file read) and a replay of
 *          the records after the checkpoint, holding the checkpoint's bytes: the log layer's share of a reopen,
 *          without decoding the job table.
 * Figures are medians of REPS repetitions.
 *
 * BENCH_PROFILE=<dir> writes a CPU profile of each ours child's reopen (new Queue + waitUntilReady) there.
 * BENCH_HEAP=<dir> writes a heap snapshot of each ours child after the gc(), for finding what the RSS is made of.
 * To profile one side by hand, run the children yourself: `node --expose-gc queue-scale.js child build <dir>` once,
 * then e.g. `node --expose-gc --cpu-prof queue-scale.js child queue <dir>` (each prints its figures as JSON).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { Log, Queue } from '../lib/index.js';
import {
  fmtInt,
  loadAverage,
  makeTempDir,
  markdownTable,
  median,
  printHeader,
  removeTempDir,
  writeResults,
  type Row,
} from './harness.js';
import { JOB_DATA_BYTES, JOB_NAME, QUEUE_NAME, bulk, collect, dirBytes, fmtSpread, maxTarget, profiled } from './queue-common.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 1_000_000);
const ADD_BATCH = 10_000;
const REPS = 3;
const MB = 1024 * 1024;
const SELF = fileURLToPath(import.meta.url);

type Role = 'build' | 'queue' | 'log' | 'empty';

interface Measured {
  role: Role;
  /** ms: build (add + close), or open (new Queue + waitUntilReady / Log.open + replay). */
  ms: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  info: Record<string, number>;
}

function usage(): Pick<Measured, 'rss' | 'heapUsed' | 'heapTotal' | 'external' | 'arrayBuffers'> {
  collect();
  collect();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

// ---- child side

async function child(role: Role, root: string): Promise<Measured> {
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') throw new Error('run with node --expose-gc');
  const info: Record<string, number> = {};
  if (role === 'build') {
    const t0 = performance.now();
    const queue = new Queue(QUEUE_NAME, { dir: root, durability: 'none' });
    const jobs = bulk(ADD_BATCH);
    for (let added = 0; added < JOBS; added += ADD_BATCH) await queue.addBulk(added + ADD_BATCH <= JOBS ? jobs : jobs.slice(0, JOBS - added));
    const addMs = performance.now() - t0;
    await queue.close();
    info.addMs = addMs;
    info.bytes = dirBytes(path.join(root, QUEUE_NAME));
    return { role, ms: performance.now() - t0, ...usage(), info };
  }
  if (role === 'empty') return { role, ms: 0, ...usage(), info };
  if (role === 'log') {
    const t0 = performance.now();
    const log = await Log.open(path.join(root, QUEUE_NAME), { durability: 'none', create: false });
    const state = log.takeCheckpointState();
    let replayed = 0;
    log.replay(() => void replayed++);
    const ms = performance.now() - t0;
    const u = usage();
    info.stateBytes = state?.length ?? 0;
    info.replayed = replayed;
    await log.close();
    return { role, ms, ...u, info };
  }
  const t0 = performance.now();
  const queue = await profiled('scale-reopen', async () => {
    const q = new Queue(QUEUE_NAME, { dir: root, durability: 'none' });
    await q.waitUntilReady();
    return q;
  });
  const ms = performance.now() - t0;
  const u = usage();
  const counts = await queue.getJobCounts();
  if (counts.waiting !== JOBS) throw new Error(`expected ${JOBS} waiting, got ${JSON.stringify(counts)}`);
  if (process.env.BENCH_HEAP) info.heapSnapshot = v8.writeHeapSnapshot(path.join(process.env.BENCH_HEAP, `queue-scale-${process.pid}.heapsnapshot`)).length;
  const c0 = performance.now();
  await queue.close();
  info.closeMs = performance.now() - c0;
  return { role, ms, ...u, info };
}

// ---- parent side

function runChild(role: Role, root: string): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', SELF, 'child', role, root], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child ${role} exited with ${code}: ${out}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as Measured);
    });
  });
}

const mb = (bytes: number): string => (bytes / MB).toFixed(1);

async function main(): Promise<void> {
  const root = makeTempDir('qscale');
  const header = printHeader({
    title: 'queue-scale: owner memory and reopen time with 1,000,000 waiting jobs',
    question: 'RSS of the owning process and the time to reopen a queue of a million waiting jobs, each in a fresh child process.',
    dir: path.dirname(root),
    facts: [
      ['job', `name '${JOB_NAME}', data ${JOB_DATA_BYTES} B of JSON, default options`],
      ['jobs', `${fmtInt(JOBS)} waiting, added with addBulk in batches of ${fmtInt(ADD_BATCH)}`],
      ['durability', 'none (build and reopen)'],
      ['codec', 'plain (no compression, no encryption); defaults otherwise (checkpointEvery 100,000)'],
      ['method', `a fresh child process (node --expose-gc) per measurement; ${REPS} repetitions of each of ours, log and empty, alternating; RSS after two gc() calls; MB = 2^20 bytes`],
    ],
  });
  try {
    const build = await runChild('build', root);
    console.log(`  built ${fmtInt(JOBS)} jobs in ${(build.info.addMs! / 1000).toFixed(2)} s of adds (${fmtInt((JOBS * 1000) / build.info.addMs!)} jobs/s) + close; ${mb(build.info.bytes!)} MB on disk`);
    const ours: Measured[] = [];
    const log: Measured[] = [];
    const empty: Measured[] = [];
    for (let r = 0; r < REPS; r++) {
      ours.push(await runChild('queue', root));
      log.push(await runChild('log', root));
      empty.push(await runChild('empty', root));
      const o = ours[ours.length - 1]!;
      console.log(`  rep ${r + 1}: reopen ${o.ms.toFixed(0)} ms, RSS ${mb(o.rss)} MB (heap used ${mb(o.heapUsed)}, total ${mb(o.heapTotal)}, external ${mb(o.external)}); log ${log[log.length - 1]!.ms.toFixed(0)} ms; empty RSS ${mb(empty[empty.length - 1]!.rss)} MB`);
    }
    const med = (xs: Measured[], k: keyof Measured): number => median(xs.map((x) => x[k] as number));
    const rssOurs = med(ours, 'rss');
    const rssEmpty = med(empty, 'rss');
    const openOurs = med(ours, 'ms');
    const rows: Row[] = [
      {
        process: 'ours: new Queue + waitUntilReady',
        'open ms: median [range]': fmtSpread(ours.map((x) => x.ms)),
        'RSS MB: median [range]': fmtSpread(ours.map((x) => x.rss), 1, mb),
        'RSS − empty MB': mb(rssOurs - rssEmpty),
        'heap used MB': mb(med(ours, 'heapUsed')),
        'heap total MB': mb(med(ours, 'heapTotal')),
        'external MB': mb(med(ours, 'external')),
        'bytes/job (RSS − empty)': fmtInt((rssOurs - rssEmpty) / JOBS),
        target: `RSS ${maxTarget(rssOurs, 300 * MB, 'MB', '300 MB')}; reopen ${maxTarget(openOurs, 1000, 'ms', '1 s')}`,
      },
      {
        process: 'log: Log.open + replay, index bytes held',
        'open ms: median [range]': fmtSpread(log.map((x) => x.ms)),
        'RSS MB: median [range]': fmtSpread(log.map((x) => x.rss), 1, mb),
        'RSS − empty MB': mb(med(log, 'rss') - rssEmpty),
        'heap used MB': mb(med(log, 'heapUsed')),
        'heap total MB': mb(med(log, 'heapTotal')),
        'external MB': mb(med(log, 'external')),
        'bytes/job (RSS − empty)': fmtInt((med(log, 'rss') - rssEmpty) / JOBS),
        target: '',
      },
      {
        process: 'empty: spoolq imported, nothing open',
        'open ms: median [range]': '',
        'RSS MB: median [range]': fmtSpread(empty.map((x) => x.rss), 1, mb),
        'RSS − empty MB': '0.0',
        'heap used MB': mb(med(empty, 'heapUsed')),
        'heap total MB': mb(med(empty, 'heapTotal')),
        'external MB': mb(med(empty, 'external')),
        'bytes/job (RSS − empty)': '',
        target: '',
      },
    ];
    const table = markdownTable(rows);
    const facts = [
      `- build: ${fmtInt(JOBS)} addBulk adds in ${(build.info.addMs! / 1000).toFixed(2)} s (${fmtInt((JOBS * 1000) / build.info.addMs!)} jobs/s), ` +
        `close ${((build.ms - build.info.addMs!) / 1000).toFixed(2)} s; the builder's RSS at the end ${mb(build.rss)} MB; queue directory ${mb(build.info.bytes!)} MB.`,
      `- index (checkpoint state) ${mb(log[0]!.info.stateBytes!)} MB; records replayed after it on reopen: ${fmtInt(log[0]!.info.replayed!)}.`,
      `- close after reopen (nothing appended): ${fmtSpread(ours.map((x) => x.info.closeMs!))} ms.`,
    ].join('\n');
    console.log('\n' + table + '\n\n' + facts + '\n');
    if (JOBS !== 1_000_000) {
      console.log('BENCH_JOBS is set: results/queue-scale.md left as it was');
      return;
    }
    const file = writeResults('queue-scale', 'queue-scale: owner memory and reopen time with 1,000,000 waiting jobs', header, [
      '## Results (medians)',
      `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
      table,
      facts,
      '',
      'Targets are informational (benchmarks are not tests): owner RSS ≤ 300 MB with 1,000,000 waiting jobs; reopen ≤ 1 s.',
    ]);
    console.log(`results written to ${file}`);
  } finally {
    removeTempDir(root);
  }
}

if (process.argv[2] === 'child') {
  const m = await child(process.argv[3] as Role, process.argv[4]!);
  process.stdout.write(JSON.stringify(m) + '\n');
} else {
  await main();
}
