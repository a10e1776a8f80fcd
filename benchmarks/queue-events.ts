/**
 * Question: how long from an append in the owner until a QueueEvents in another process emits its event?
 *
 * Ours: a Queue (the owner) in this process; a QueueEvents in a child process (queue-events-reader.ts) and one in
 * this process. Each sample adds one job (100 B of data) and stamps the time just before queue.add(); the
 * latencies run from that stamp to: the owner's own 'waiting' event (Queue.on, in this process: fired as the ADD
 * is appended, before it is written), add() resolving (the record durable as the mode promises), the QueueEvents
 * in this process, and the QueueEvents in the child. The child stamps its event with the same clock
 * (performance.timeOrigin + performance.now(), both from the system clock; a cross-process error of a few µs).
 * Then it waits for both QueueEvents and 1 ms more, so every sample starts idle. Warm-up samples first.
 *
 * What lies on the reader's path: the owner's write() of the group commit (fsync mode: the reader may see the
 * record before its fsync returns), an inotify event on the log directory (fs.watch), one turn of the reader's
 * event loop, a listing of log/, the head segment opened and read from the last position, the record decoded and
 * folded into the reader's own job table, the event derived.
 *
 * Target (issue 10): QueueEvents in another process, p50 ≤ 2 ms.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Queue, QueueEvents } from '../lib/index.js';
import type { Durability } from '../lib/index.js';
import { fmtInt, loadAverage, makeTempDir, markdownTable, printHeader, removeTempDir, writeResults, type Row } from './harness.js';
import { JOB_DATA, JOB_DATA_BYTES, JOB_NAME, QUEUE_NAME, fmtMs, maxTarget, percentile, within } from './queue-common.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 2_000);
const WARMUP = 200;
const GAP_MS = 1;
const MODES: Durability[] = ['batch', 'fsync'];
const READER = new URL('./queue-events-reader.js', import.meta.url);

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Samples {
  owner: number[];
  added: number[];
  local: number[];
  remote: number[];
}

/** Resolvers for per-job arrivals, filled by whichever comes first: the arrival or the wait for it. */
class Arrivals {
  readonly #seen = new Map<string, number>();
  readonly #waiting = new Map<string, (t: number) => void>();
  arrived(id: string, t: number): void {
    const w = this.#waiting.get(id);
    if (w) {
      this.#waiting.delete(id);
      w(t);
    } else this.#seen.set(id, t);
  }
  wait(id: string): Promise<number> {
    const t = this.#seen.get(id);
    if (t !== undefined) {
      this.#seen.delete(id);
      return Promise.resolve(t);
    }
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }
}

async function measure(mode: Durability): Promise<Samples> {
  const dir = makeTempDir('qevents');
  const queue = new Queue(QUEUE_NAME, { dir, durability: mode });
  await queue.waitUntilReady();
  const remote = new Arrivals();
  const local = new Arrivals();
  const child: ChildProcess = fork(READER, [dir], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let rest = '';
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    const lines = (rest + c).split('\n');
    rest = lines.pop()!;
    for (const l of lines) {
      if (l === 'ready') ready();
      else {
        const [id, t] = l.split(' ');
        remote.arrived(id!, Number(t));
      }
    }
  });
  const qe = new QueueEvents(QUEUE_NAME, { dir });
  qe.on('waiting', ({ jobId }) => local.arrived(jobId, now()));
  let ownerAt = 0;
  queue.on('waiting', () => (ownerAt = now()));
  const out: Samples = { owner: [], added: [], local: [], remote: [] };
  try {
    await within(isReady, 20_000, 'the reader process starting');
    await qe.waitUntilReady();
    const one = async (): Promise<[number, number, number, number]> => {
      const t0 = now();
      const job = await queue.add(JOB_NAME, JOB_DATA);
      const added = now();
      const [l, r] = await within(Promise.all([local.wait(job.id!), remote.wait(job.id!)]), 10_000, 'both QueueEvents');
      return [ownerAt - t0, added - t0, l - t0, r - t0];
    };
    for (let i = 0; i < WARMUP; i++) {
      await one();
      await sleep(GAP_MS);
    }
    for (let i = 0; i < SAMPLES; i++) {
      const [o, a, l, r] = await one();
      out.owner.push(o);
      out.added.push(a);
      out.local.push(l);
      out.remote.push(r);
      await sleep(GAP_MS);
    }
    return out;
  } finally {
    child.disconnect();
    child.kill();
    await qe.close();
    await queue.close();
    removeTempDir(dir);
  }
}

function row(mode: Durability, what: string, ms: number[], target: boolean): Row {
  const p50 = percentile(ms, 50);
  return {
    mode,
    'from the append to': what,
    samples: fmtInt(ms.length),
    'p50 ms': fmtMs(p50),
    'p90 ms': fmtMs(percentile(ms, 90)),
    'p99 ms': fmtMs(percentile(ms, 99)),
    'max ms': fmtMs(Math.max(...ms)),
    target: target ? `p50 ${maxTarget(p50, 2, 'ms')}` : '',
  };
}

async function main(): Promise<void> {
  const probe = makeTempDir('qevents-probe');
  const title = 'queue-events: from an append in the owner to a QueueEvents event in another process';
  const header = printHeader({
    title,
    question: "p50 / p99 latency from queue.add() to 'waiting' in a QueueEvents in another process, beside the owner's own event and a QueueEvents in the owner's process.",
    dir: path.dirname(probe),
    facts: [
      ['job', `name '${JOB_NAME}', data ${JOB_DATA_BYTES} B of JSON, default options`],
      ['samples', `${fmtInt(SAMPLES)} per mode (after ${WARMUP} warm-up), one job at a time, ${GAP_MS} ms idle between samples`],
      ['durability', MODES.join(', ')],
      ['processes', 'this one (the owner: a Queue, and a QueueEvents), a child with a QueueEvents only'],
      ['codec', 'plain (no compression, no encryption); defaults otherwise'],
      ['method', 'times from performance.timeOrigin + performance.now() in both processes; percentiles by nearest rank'],
    ],
  });
  removeTempDir(probe);
  const rows: Row[] = [];
  for (const mode of MODES) {
    const s = await measure(mode);
    rows.push(
      row(mode, "the owner's 'waiting' (Queue.on, in-process)", s.owner, false),
      row(mode, 'add() resolved', s.added, false),
      row(mode, "QueueEvents 'waiting', same process", s.local, false),
      row(mode, "QueueEvents 'waiting', another process", s.remote, true),
    );
    console.log(`  ${mode.padEnd(5)} another process p50 ${fmtMs(percentile(s.remote, 50))} ms p99 ${fmtMs(percentile(s.remote, 99))} ms; same process p50 ${fmtMs(percentile(s.local, 50))} ms; owner's event p50 ${fmtMs(percentile(s.owner, 50))} ms`);
  }
  const table = markdownTable(rows);
  console.log('\n' + table + '\n');
  if (process.env.BENCH_SAMPLES) {
    console.log('BENCH_SAMPLES is set: results/queue-events.md left as it was');
    return;
  }
  const file = writeResults('queue-events', title, header, [
    '## Results',
    `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
    table,
    '## Reading it',
    [
      "- the owner's 'waiting': Queue.on in the owner's process, emitted as the ADD is appended (before it is written).",
      '- QueueEvents: a reader of the log (lib/queue/queue-events.ts), woken by fs.watch on log/; it sees a record once',
      '  written, which in fsync mode may be before its fsync returns (so it may come before add() resolves).',
      '',
      'Target (issue 10; informational, benchmarks are not tests): QueueEvents in another process, p50 ≤ 2 ms.',
    ].join('\n'),
  ]);
  console.log(`results written to ${file}`);
}

await main();
