/**
 * Question: how fast does a full read-only scan of a log (verifyLog) go when the segments are in the page cache,
 * next to reading the same files raw and checksumming every byte?
 *
 * Fixtures: two logs of about 256 MiB each, one of 100 B records and one of 64 KiB records, written first with
 * durability 'none' (the writing is not measured) and closed. One untimed raw pass then pulls them into the page
 * cache, so what is measured is CPU: framing, crc and bookkeeping, not the disk.
 *
 * Ours: verifyLog(dir) without a codec (framing, crc and placement of every record; payloads not decoded).
 * Baseline: every segment file read front to back with fs.readSync into a 4 MiB buffer (the scanner's chunk size)
 * and zlib.crc32 run over the bytes read: the least work any checksumming scan must do. The gap between the two is
 * the per-record cost of the scanner.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Log, verifyLog } from '../lib/index.js';
import { LOG_DIR, parseSegmentFileName } from '../lib/format/names.js';
import { RECORD_HEADER_BYTES } from '../lib/format/record.js';
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

const LOG_BYTES = 256 * 1024 * 1024;
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
const TARGET_MB_PER_S = 500;
const ROUNDS = { rounds: 3, timeMs: 1, iterations: 3, warmupMs: 0, warmupIterations: 1 };

interface Fixture {
  label: string;
  payloadBytes: number;
  /** Appends per Promise.all while writing the fixture. */
  inFlight: number;
  records: number;
  dir: string;
  files: string[];
  bytes: number;
  writeMs: number;
}

async function writeFixture(label: string, payloadBytes: number, inFlight: number): Promise<Fixture> {
  const records = Math.floor(LOG_BYTES / (RECORD_HEADER_BYTES + payloadBytes));
  const dir = makeTempDir(`scan-${payloadBytes}`);
  const payload = crypto.randomBytes(payloadBytes);
  const t0 = performance.now();
  const log = await Log.open(dir, { durability: 'none' });
  for (let done = 0; done < records; ) {
    const n = Math.min(inFlight, records - done);
    const pending = new Array<Promise<unknown>>(n);
    for (let i = 0; i < n; i++) pending[i] = log.append(1, payload);
    await Promise.all(pending);
    done += n;
  }
  await log.close();
  const writeMs = performance.now() - t0;
  const logDir = path.join(dir, LOG_DIR);
  const files = fs
    .readdirSync(logDir)
    .filter((f) => parseSegmentFileName(f) !== undefined)
    .sort()
    .map((f) => path.join(logDir, f));
  const bytes = files.reduce((sum, f) => sum + fs.statSync(f).size, 0);
  if (files.length === 0) throw new Error(`no segment files in ${logDir}`);
  return { label, payloadBytes, inFlight, records, dir, files, bytes, writeMs };
}

/** The baseline: read every file into a 4 MiB buffer and crc the bytes. Returns the crc so nothing is skipped. */
function readAndCrc(files: string[], buf: Buffer): number {
  let crc = 0;
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (let pos = 0; ; ) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) break;
        crc = zlib.crc32(n === buf.length ? buf : buf.subarray(0, n), crc);
        pos += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return crc;
}

interface Outcome {
  f: Fixture;
  oursMs: number;
  baseMs: number;
  roundRatios: number[];
}

function row(o: Outcome): Row {
  const mbps = (ms: number): number => (o.f.bytes * 1000) / ms;
  const ours = mbps(o.oursMs);
  return {
    log: o.f.label,
    records: fmtInt(o.f.records),
    MB: fmtMB(o.f.bytes),
    'ours MB/s': fmtMB(ours),
    'ours rec/s': fmtInt((o.f.records * 1000) / o.oursMs),
    'base MB/s': fmtMB(mbps(o.baseMs)),
    'base rec/s': fmtInt((o.f.records * 1000) / o.baseMs),
    'ours/base': fmtRatio(o.baseMs / o.oursMs),
    'round ratios: median [range]': fmtRoundRatios(o.roundRatios),
    target: `≥ ${TARGET_MB_PER_S} MB/s: ${ours / 1e6 >= TARGET_MB_PER_S ? 'PASS' : 'MISS'}`,
  };
}

async function main(): Promise<void> {
  const fixtures = [await writeFixture('100 B records', 100, 10_000), await writeFixture('64 KiB records', 64 * 1024, 64)];
  const header = printHeader({
    title: 'scan: verifyLog throughput from the page cache vs raw read + crc32',
    question: 'MB/s and records/s of a full read-only scan (verifyLog) of a log in the page cache, beside raw reads.',
    dir: path.dirname(fixtures[0]!.dir),
    facts: [
      ...fixtures.map((f): [string, string] => [
        f.label,
        `${fmtInt(f.records)} records of ${f.payloadBytes} B (+${RECORD_HEADER_BYTES} B header), ` +
          `${f.files.length} segments, ${fmtMB(f.bytes)} MB; written with durability none in ${(f.writeMs / 1000).toFixed(1)} s`,
      ]),
      ['codec', 'plain (no compression, no encryption); verify checks framing and crc, does not decode payloads'],
      ['baseline', `fs.readSync into a ${READ_CHUNK_BYTES / 2 ** 20} MiB buffer + zlib.crc32 over every byte`],
      [
        'method',
        `tinybench, ${ROUNDS.rounds} rounds × ${ROUNDS.iterations} scans per side after a warmup scan, interleaved ` +
          'ours/baseline; rates from the median scan time; MB = 10^6 bytes',
      ],
    ],
  });

  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const outcomes: Outcome[] = [];
  for (const f of fixtures) {
    readAndCrc(f.files, buf); // pulls the files into the page cache
    const ours: Side = {
      async: false,
      fn: () => {
        const report = verifyLog(f.dir);
        if (!report.ok || report.records !== f.records) {
          throw new Error(`verify of ${f.label}: ok=${report.ok}, ${report.records} records, expected ${f.records}`);
        }
      },
    };
    const baseline: Side = { async: false, fn: () => readAndCrc(f.files, buf) };
    const res = await runInterleaved({ ours, baseline }, ROUNDS);
    const o: Outcome = {
      f,
      oursMs: median(res.ours.samples),
      baseMs: median(res.baseline.samples),
      roundRatios: res.ours.roundMedians.map((m, i) => res.baseline.roundMedians[i]! / m),
    };
    outcomes.push(o);
    const r = row(o);
    console.log(`  ${f.label.padEnd(15)} ours ${r['ours MB/s']!.padStart(7)} MB/s  base ${r['base MB/s']!.padStart(7)} MB/s  ratio ${r['ours/base']}`);
    removeTempDir(f.dir);
  }

  const table = markdownTable(outcomes.map(row));
  console.log('\n' + table + '\n');
  const file = writeResults('scan', 'scan: verifyLog throughput from the page cache vs raw read + crc32', header, [
    '## Results (medians)',
    `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
    table,
    `Target (informational; benchmarks are not tests): a full scan from the page cache at ≥ ${TARGET_MB_PER_S} MB/s.`,
  ]);
  console.log(`results written to ${file}`);
}

await main();
