/**
 * Question: how fast does Log.append go, in each durability mode, next to the raw syscalls that write the same
 * bytes?
 *
 * Ours: a fresh Log per phase (tinybench warmup, run), plain codec, appending records of 100 B or 64 KiB either
 * one at a time (await each append) or N at a time (issue N appends, await Promise.all, repeat), so N promises are
 * outstanding and the writer's group commit sees them in one turn.
 *
 * Baseline: the same bytes (36-byte record header + payload, the records encoded once up front) written to a file
 * with fs.writeSync, N records per writeSync, and
 *   fsync  fdatasyncSync after every writeSync (the same batch ours commits with one fdatasync);
 *   batch  fdatasyncSync when BATCH_INTERVAL_MS have passed since the last one (ours syncs that often, in the
 *          background on libuv's thread pool; the baseline blocks on it, so ours may beat it here);
 *   none   no fdatasync.
 * The baseline rolls to a new file at the same segment size as ours, with the fsyncs a durable roll needs (old
 * file, new file, directory) in fsync and batch modes, so both sides pay for file creation; in none mode it never
 * fsyncs, since nothing in that mode's promise needs it.
 *
 * What the baseline leaves out, and is therefore ours' overhead: the promise per append, encoding (header, crc),
 * the copy into the batch buffer, the setImmediate that gathers a batch, how the writer schedules its syncs
 * (inline or on libuv's thread pool, see lib/log/writer.ts), and any fsync the writer adds at a roll.
 *
 * Scenario a also runs two more raw variants, interleaved with the others, that add one scheduling cost at a time
 * (fdatasync on the thread pool; then the write deferred by setImmediate), so the table shows what each costs on
 * this machine and the writer's choices can be judged by it.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Log } from '../lib/index.js';
import type { Durability } from '../lib/index.js';
import { RECORD_HEADER_BYTES, encodeRecord } from '../lib/format/record.js';
import {
  fmtInt,
  fmtMB,
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

const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
const BATCH_INTERVAL_MS = 5;
const SEGMENT_HEADER_BYTES = 64;
// Many short rounds rather than a few long ones: the disk is shared, and its latency comes in bursts (another
// process's fsyncs); finer interleaving gives both sides the same share of them.
const ROUNDS = { rounds: 16, timeMs: 110, iterations: 5, warmupMs: 20, warmupIterations: 2 };

interface Scenario {
  id: string;
  durability: Durability;
  payloadBytes: number;
  /** 1: one appender awaiting each append. N > 1: N appends issued, then awaited together. */
  inFlight: number;
  target?: Target;
  /** Also run the raw variants that show where ours' extra time goes (thread-pool fdatasync, setImmediate). */
  decompose?: boolean;
}

type Target = { kind: 'ratio'; min: number } | { kind: 'rate'; min: number };

const SMALL = 100;
const LARGE = 64 * 1024;

const SCENARIOS: Scenario[] = [
  { id: 'a', durability: 'fsync', payloadBytes: SMALL, inFlight: 1, target: { kind: 'ratio', min: 0.9 }, decompose: true },
  { id: 'b', durability: 'fsync', payloadBytes: SMALL, inFlight: 1000, target: { kind: 'rate', min: 200_000 } },
  { id: 'c', durability: 'batch', payloadBytes: SMALL, inFlight: 1000 },
  { id: 'd', durability: 'none', payloadBytes: SMALL, inFlight: 1000, target: { kind: 'rate', min: 1_000_000 } },
  { id: 'e1', durability: 'fsync', payloadBytes: LARGE, inFlight: 1 },
  { id: 'e2', durability: 'fsync', payloadBytes: LARGE, inFlight: 64 },
  { id: 'e3', durability: 'batch', payloadBytes: LARGE, inFlight: 64 },
  { id: 'e4', durability: 'none', payloadBytes: LARGE, inFlight: 64 },
];

/** The baseline's "log": segment-sized files written with plain syscalls. */
class RawSegments {
  readonly #dir: string;
  readonly #durable: boolean;
  #fd: number;
  #size = 0;
  #n = 0;
  #lastSync = performance.now();

  constructor(dir: string, durable: boolean) {
    this.#dir = dir;
    this.#durable = durable;
    this.#fd = this.#create();
  }

  #create(): number {
    const fd = fs.openSync(path.join(this.#dir, `${String(this.#n++).padStart(20, '0')}.raw`), 'wx+');
    fs.writeSync(fd, Buffer.alloc(SEGMENT_HEADER_BYTES, 0x5a), 0, SEGMENT_HEADER_BYTES, 0);
    this.#size = SEGMENT_HEADER_BYTES;
    if (this.#durable) {
      fs.fsyncSync(fd);
      const dfd = fs.openSync(this.#dir, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    }
    return fd;
  }

  write(buf: Buffer): void {
    if (this.#size + buf.length > MAX_SEGMENT_BYTES && this.#size > SEGMENT_HEADER_BYTES) {
      if (this.#durable) fs.fsyncSync(this.#fd);
      const old = this.#fd;
      this.#fd = this.#create();
      fs.closeSync(old);
    }
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.#fd, buf, off, buf.length - off, this.#size + off);
    this.#size += buf.length;
  }

  datasync(): void {
    fs.fdatasyncSync(this.#fd);
    this.#lastSync = performance.now();
  }

  datasyncAsync(done: () => void): void {
    fs.fdatasync(this.#fd, (err) => {
      if (err) throw err;
      done();
    });
  }

  datasyncEvery(ms: number): void {
    if (performance.now() - this.#lastSync >= ms) this.datasync();
  }

  close(): void {
    fs.fsyncSync(this.#fd);
    fs.closeSync(this.#fd);
  }
}

function oursSide(s: Scenario, payload: Buffer): Side {
  let dir = '';
  let log: Log | undefined;
  const append = (): Promise<unknown> => log!.append(1, payload);
  const appendMany = (): Promise<unknown> => {
    const pending = new Array<Promise<unknown>>(s.inFlight);
    for (let i = 0; i < s.inFlight; i++) pending[i] = log!.append(1, payload);
    return Promise.all(pending);
  };
  return {
    fn: s.inFlight === 1 ? append : appendMany,
    async: true,
    beforeAll: async () => {
      dir = makeTempDir('append-ours');
      log = await Log.open(dir, {
        durability: s.durability,
        maxSegmentBytes: MAX_SEGMENT_BYTES,
        batchIntervalMs: BATCH_INTERVAL_MS,
      });
    },
    afterAll: async () => {
      await log!.close();
      log = undefined;
      removeTempDir(dir);
    },
  };
}

function baselineSide(s: Scenario, payload: Buffer): Side {
  let dir = '';
  let raw: RawSegments | undefined;
  const record = encodeRecord({ type: 1, flags: 0, keyId: 0, seq: 1, segmentId: 1, epoch: 1 }, payload);
  const batch = Buffer.concat(new Array<Buffer>(s.inFlight).fill(record));
  const fn =
    s.durability === 'fsync'
      ? () => {
          raw!.write(batch);
          raw!.datasync();
        }
      : s.durability === 'batch'
        ? () => {
            raw!.write(batch);
            raw!.datasyncEvery(BATCH_INTERVAL_MS);
          }
        : () => raw!.write(batch);
  return {
    fn,
    async: false,
    beforeAll: () => {
      dir = makeTempDir('append-base');
      raw = new RawSegments(dir, s.durability !== 'none');
    },
    afterAll: () => {
      raw!.close();
      raw = undefined;
      removeTempDir(dir);
    },
  };
}

/**
 * The raw fsync path with ours' two scheduling costs added one at a time: fdatasync on libuv's thread pool
 * (fs.fdatasync with a callback) instead of on the main thread, and then the write deferred by setImmediate as
 * the writer's group commit does. One record per iteration, like scenario a.
 */
function rawAsyncSide(payload: Buffer, deferred: boolean): Side {
  let dir = '';
  let raw: RawSegments | undefined;
  const record = encodeRecord({ type: 1, flags: 0, keyId: 0, seq: 1, segmentId: 1, epoch: 1 }, payload);
  const writeAndSync = (done: () => void): void => {
    raw!.write(record);
    raw!.datasyncAsync(done);
  };
  return {
    fn: deferred
      ? () => new Promise<void>((resolve) => setImmediate(() => writeAndSync(resolve)))
      : () => new Promise<void>((resolve) => writeAndSync(resolve)),
    async: true,
    beforeAll: () => {
      dir = makeTempDir('append-base');
      raw = new RawSegments(dir, true);
    },
    afterAll: () => {
      raw!.close();
      raw = undefined;
      removeTempDir(dir);
    },
  };
}

interface Outcome {
  s: Scenario;
  ours: number;
  base: number;
  roundRatios: number[];
  records: number;
}

function recordBytes(s: Scenario): number {
  return RECORD_HEADER_BYTES + s.payloadBytes;
}

function targetText(o: Outcome): string {
  const t = o.s.target;
  if (!t) return '';
  const pass = t.kind === 'ratio' ? o.ours / o.base >= t.min : o.ours >= t.min;
  const want = t.kind === 'ratio' ? `≥ ${Math.round(t.min * 100)}% of baseline` : `≥ ${fmtInt(t.min)} rec/s`;
  return `${want}: ${pass ? 'PASS' : 'MISS'}`;
}

function decompositionRows(s: Scenario, res: Record<string, { samples: number[] }>): Row[] {
  const names = Object.keys(res);
  const order = ['baseline', ...names.filter((n) => n !== 'ours' && n !== 'baseline'), 'ours'];
  const syncUs = median(res['baseline']!.samples) * 1000;
  return order.map((name) => {
    const us = median(res[name]!.samples) * 1000;
    return {
      variant: name === 'baseline' ? 'raw, writeSync + fdatasyncSync (the baseline)' : name === 'ours' ? 'ours: await log.append()' : name,
      'µs/record': us.toFixed(0),
      'rec/s': fmtInt((s.inFlight * 1e6) / us),
      'vs baseline': `${us >= syncUs ? '+' : '−'}${Math.abs(us - syncUs).toFixed(0)} µs`,
    };
  });
}

function row(o: Outcome): Row {
  const bytes = recordBytes(o.s);

  return {
    scenario: o.s.id,
    mode: o.s.durability,
    payload: o.s.payloadBytes === LARGE ? '64 KiB' : `${o.s.payloadBytes} B`,
    'in flight': String(o.s.inFlight),
    'ours rec/s': fmtInt(o.ours),
    'ours MB/s': fmtMB(o.ours * bytes),
    'base rec/s': fmtInt(o.base),
    'base MB/s': fmtMB(o.base * bytes),
    'ours/base': fmtRatio(o.ours / o.base),
    'round ratios: median [range]': fmtRoundRatios(o.roundRatios),
    'records (ours)': fmtInt(o.records),
    target: targetText(o),
  };
}

/**
 * BENCH_ONLY=a,e4 runs only those scenarios (for profiling one of them with node --cpu-prof); a partial run
 * prints its table but does not overwrite results/append.md.
 */
const only = process.env.BENCH_ONLY?.split(',').map((id) => id.trim()).filter(Boolean);
const selected = only?.length ? SCENARIOS.filter((s) => only.includes(s.id)) : SCENARIOS;

async function main(): Promise<void> {
  if (selected.length === 0) throw new Error(`BENCH_ONLY=${process.env.BENCH_ONLY} matches no scenario`);
  const probe = makeTempDir('append-probe');
  const header = printHeader({
    title: 'append: Log.append throughput vs raw writeSync (+ fdatasync)',
    question: 'Records/s and MB/s of appends per durability mode, beside raw syscalls writing the same bytes.',
    dir: path.dirname(probe),
    facts: [
      ['payloads', `${SMALL} B and ${LARGE} B; on disk each record is ${RECORD_HEADER_BYTES} B header + payload`],
      ['records per iteration', '1 (one appender awaiting each append), 1,000 (100 B) or 64 (64 KiB) in flight'],
      ['codec', 'plain (no compression, no encryption)'],
      ['segments', `maxSegmentBytes ${MAX_SEGMENT_BYTES} (both sides roll at this size); batchIntervalMs ${BATCH_INTERVAL_MS}`],
      [
        'method',
        `tinybench, ${ROUNDS.rounds} rounds × ${ROUNDS.timeMs} ms per side, interleaved ours/baseline; ` +
          'rate = records per iteration / median iteration latency (pooled over rounds); ' +
          'round ratios = ours/baseline per round; MB = 10^6 bytes',
      ],
    ],
  });
  removeTempDir(probe);

  const outcomes: Outcome[] = [];
  const decomposition: Row[] = [];
  for (const s of selected) {
    const payload = crypto.randomBytes(s.payloadBytes);
    const sides: Record<string, Side> = { ours: oursSide(s, payload), baseline: baselineSide(s, payload) };
    if (s.decompose) {
      sides['raw, fdatasync on the thread pool'] = rawAsyncSide(payload, false);
      sides['raw, fdatasync on the thread pool, write after setImmediate'] = rawAsyncSide(payload, true);
    }
    const res = await runInterleaved(sides, ROUNDS);
    if (s.decompose) decomposition.push(...decompositionRows(s, res));
    const rate = (ms: number): number => (s.inFlight * 1000) / ms;
    const o: Outcome = {
      s,
      ours: rate(median(res.ours.samples)),
      base: rate(median(res.baseline.samples)),
      roundRatios: res.ours.roundMedians.map((m, i) => rate(m) / rate(res.baseline.roundMedians[i]!)),
      records: res.ours.samples.length * s.inFlight,
    };
    outcomes.push(o);
    const r = row(o);
    console.log(
      `  ${s.id.padEnd(3)} ${s.durability.padEnd(5)} ${r.payload!.padStart(6)} ×${String(s.inFlight).padEnd(5)}` +
        ` ours ${r['ours rec/s']!.padStart(11)} rec/s  base ${r['base rec/s']!.padStart(11)} rec/s  ratio ${r['ours/base']}`,
    );
  }

  const table = markdownTable(outcomes.map(row));
  console.log('\n' + table + '\n');
  const parts = decomposition.length ? markdownTable(decomposition) : '';
  if (parts) console.log('Where the time of one fsync append goes (scenario a):\n' + parts + '\n');
  if (selected !== SCENARIOS) {
    console.log('BENCH_ONLY is set: a partial run, results/append.md left as it was');
    return;
  }
  const file = writeResults('append', 'append: Log.append throughput vs raw writeSync (+ fdatasync)', header, [
    '## Results (medians)',
    `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}. Anything near or above the core count means ` +
      'other processes shared the CPU and the disk during the run; the per-round range shows how much that moved things.',
    table,
    '## Where the time of one fsync append goes (scenario a)',
    'The same record written raw, adding one scheduling cost at a time; µs are medians per record, "vs baseline" ' +
      'is the difference of medians (noise on a shared disk can make it negative).',
    parts,
    '## Scenarios',
    [
      '- **a** one appender awaiting each append (fsync) vs writeSync + fdatasyncSync per record.',
      '- **b** 1,000 appends in flight (fsync) vs 1,000 records in one writeSync + one fdatasyncSync.',
      `- **c** batch mode, 1,000 in flight vs one writeSync per 1,000 records and an fdatasyncSync every ${BATCH_INTERVAL_MS} ms.`,
      '- **d** none mode, 1,000 in flight vs one writeSync per 1,000 records.',
      '- **e1–e4** 64 KiB records: one appender (fsync), then 64 in flight in fsync, batch and none modes.',
      '',
      'Targets are informational (benchmarks are not tests): fsync with one appender ≥ 90% of the baseline rate;',
      'fsync with 1,000 in flight ≥ 200,000 records/s of 100 B; none ≥ 1,000,000 records/s of 100 B.',
    ].join('\n'),
  ]);
  console.log(`results written to ${file}`);
}

await main();
