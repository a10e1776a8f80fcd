/**
 * node dist/examples/demo.js --log — the log underneath spoolq, doing its job on a real directory (./spool-data/demo-log):
 *
 *   1. appends 200,000 records of ~100 B in fsync mode, 1,000 in flight, with a live progress line;
 *   2. runs a child process that appends, and kills it with SIGKILL mid-stream, several times;
 *   3. reopens after each kill: recovery cuts the torn tail by itself, and every append the child saw
 *      acknowledged is checked to be there;
 *   4. compacts away half of the records (as if those jobs were done and removed), checkpoints, reopens from the
 *      checkpoint, and ends with verify and stats.
 *
 * (npm run demo shows the Queue and Worker API built on this log.)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Log, logStats, verifyLog } from '../lib/index.js';

const DIR = path.resolve('spool-data', 'demo-log');
const RECORDS = 200_000;
const IN_FLIGHT = 1_000;
const SEGMENT_BYTES = 4 * 1024 * 1024;

function payload(i: number): Buffer {
  return Buffer.from(JSON.stringify({ job: 'email', to: `user${i}@example.com`, n: i }).padEnd(100, ' '));
}

async function child(dir: string): Promise<void> {
  const log = await Log.open(dir, { durability: 'fsync', maxSegmentBytes: SEGMENT_BYTES });
  let i = 0;
  const lane = async (): Promise<never> => {
    for (;;) {
      const n = i++;
      const ptr = await log.append(2, payload(1_000_000 + n));
      fs.writeSync(1, `${ptr.seq} ${1_000_000 + n}\n`);
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
}

function progress(line: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K`);
}

async function appendPhase(): Promise<void> {
  const log = await Log.open(DIR, { durability: 'fsync', maxSegmentBytes: SEGMENT_BYTES });
  console.log(`opened ${path.relative(process.cwd(), DIR)} (epoch ${log.epoch}, next seq ${log.nextSeq})`);
  const started = performance.now();
  let done = 0;
  while (done < RECORDS) {
    const n = Math.min(IN_FLIGHT, RECORDS - done);
    await Promise.all(Array.from({ length: n }, (_, k) => log.append(1, payload(done + k))));
    done += n;
    if (done % 20_000 === 0) {
      const rate = done / ((performance.now() - started) / 1000);
      progress(`appending  ${done.toLocaleString()} / ${RECORDS.toLocaleString()}  ${Math.round(rate).toLocaleString()} records/s (fsync)`);
    }
  }
  const secs = (performance.now() - started) / 1000;
  progress('');
  console.log(`appended ${RECORDS.toLocaleString()} records in ${secs.toFixed(2)} s: ` +
    `${Math.round(RECORDS / secs).toLocaleString()} records/s, each acknowledged after the fdatasync covering it`);
  await log.close();
}

function runChildAndKill(afterLines: number): Promise<Map<number, number>> {
  return new Promise((resolve) => {
    const script = fileURLToPath(import.meta.url);
    const proc = spawn(process.execPath, [script, '--child', DIR], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (c: string) => {
      out += c;
      if (out.split('\n').length > afterLines) proc.kill('SIGKILL');
    });
    proc.on('close', () => {
      const acked = new Map<number, number>();
      for (const line of out.split('\n').slice(0, -1)) {
        const [seq, n] = line.split(' ').map(Number);
        acked.set(seq!, n!);
      }
      resolve(acked);
    });
  });
}

async function crashPhase(): Promise<void> {
  for (let round = 1; round <= 5; round++) {
    const acked = await runChildAndKill(500 + round * 731);
    const log = await Log.open(DIR, { durability: 'fsync', maxSegmentBytes: SEGMENT_BYTES });
    const found = new Map<number, number>();
    log.replay((e) => {
      if (e.type === 2) found.set(e.seq, JSON.parse(e.payload().toString()).n);
    });
    const missing = [...acked].filter(([seq, n]) => found.get(seq) !== n).length;
    const cut = log.recovery.truncated.reduce((s, t) => s + Math.max(0, t.bytes), 0);
    console.log(`kill -9 #${round}: child had ${acked.size} appends acknowledged; reopened by itself ` +
      `(torn tail cut: ${cut} B), missing acknowledged: ${missing}`);
    await log.close();
    if (missing > 0) throw new Error('an acknowledged append was lost');
  }
}

async function compactPhase(): Promise<void> {
  const log = await Log.open(DIR, { durability: 'fsync', maxSegmentBytes: SEGMENT_BYTES });
  const before = logStats(DIR);
  // Pretend every even-numbered job finished and was removed: those records are dead.
  const isLive = (e: { payload(): Buffer }): boolean => JSON.parse(e.payload().toString()).n % 2 === 1;
  const t0 = performance.now();
  const result = await log.compact(isLive, { sparseRatio: 0.75 });
  let live = 0;
  log.replay((e) => void (isLive(e) && live++));
  await log.checkpoint(Buffer.from(JSON.stringify({ live })));
  console.log(`compaction: ${result.rewritten.length} segments rewritten, ${result.deleted.length} deleted, ` +
    `${((before.bytes - logStats(DIR).bytes) / 1e6).toFixed(1)} MB given back in ${(performance.now() - t0).toFixed(0)} ms`);
  await log.close();
  const t1 = performance.now();
  const again = await Log.open(DIR, { durability: 'fsync' });
  const { state } = again.replay(() => undefined);
  console.log(`reopened from the checkpoint in ${(performance.now() - t1).toFixed(0)} ms (state: ${state?.toString()})`);
  await again.close();
}

async function main(): Promise<void> {
  fs.rmSync(DIR, { recursive: true, force: true });
  console.log(`spoolq demo — node ${process.version}, ${process.platform}\n`);
  await appendPhase();
  await crashPhase();
  await compactPhase();
  const report = verifyLog(DIR);
  const stats = logStats(DIR);
  console.log(`\nsummary: ${stats.records.toLocaleString()} records in ${stats.segments} segments, ` +
    `${(stats.bytes / 1e6).toFixed(1)} MB on disk; verify: ${report.ok ? 'clean' : 'DAMAGED'}`);
  console.log(`inspect it yourself: npx spoolq stats ${path.relative(process.cwd(), DIR)}`);
  if (!report.ok) process.exitCode = 1;
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
else await main();
