/**
 * What every benchmark file shares: the environment header, temp dirs, interleaved rounds on tinybench, medians,
 * and the markdown written to benchmarks/results/. Not a benchmark itself (no question of its own).
 *
 * Noise. These machines are small shared VMs, so ours and the baseline run interleaved in one process: round 1
 * ours, round 1 baseline, round 2 ours, … (A B A B). A slow stretch of the disk or a noisy neighbour then hits
 * both sides instead of skewing the ratio. Every number reported is a median: of all iteration samples of a side
 * pooled over its rounds, and the spread column shows how far the per-round ratios wander.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Bench, type Task } from 'tinybench';

/** A temp dir under os.tmpdir(), removed by removeTempDirs() and, as a last resort, at exit. */
const tempDirs = new Set<string>();

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `spoolq-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The file system that holds `dir`: the /proc/mounts entry with the longest mount point above it (Linux), else
 * `stat -f`'s type name, else 'unknown'. Results depend on it more than on anything else, so the header says it.
 */
export function fileSystemOf(dir: string): string {
  const real = fs.realpathSync(dir);
  try {
    let best: { point: string; text: string } | undefined;
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, point, type, options] = line.split(' ');
      if (!device || !point || !type) continue;
      const inside = point === '/' || real === point || real.startsWith(point + '/');
      if (inside && (!best || point.length > best.point.length)) {
        best = { point, text: `${type} (${device} on ${point}, ${options ?? ''})` };
      }
    }
    if (best) return best.text;
  } catch {
    // No /proc/mounts (macOS, BSD): fall through to the portable answer below.
  }
  try {
    return `statfs type 0x${fs.statfsSync(real).type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}

/** The source tree this file was built from: benchmarks run from dist/benchmarks/ or a private dist-bench/benchmarks/. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Which lib/ was measured: the commit, and whether lib/ had uncommitted changes (the build compiles the working
 * tree, so a dirty lib/ means the numbers belong to code no commit holds).
 */
export function libVersion(): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'lib').split('\n').filter(Boolean).length;
    return dirty ? `${commit} + uncommitted changes in ${dirty} lib/ file(s)` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

export interface Header {
  title: string;
  /** What the file measures, one sentence. */
  question: string;
  dir: string;
  /** Extra lines: payload sizes, record counts, codec, … */
  facts: Array<[string, string]>;
}

export function headerLines(h: Header): Array<[string, string]> {
  const cpus = os.cpus();
  return [
    ['node', process.version],
    ['platform', `${os.platform()} ${os.release()} ${os.arch()}`],
    ['cpu', `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`],
    ['memory', `${Math.round(os.totalmem() / 2 ** 30)} GiB`],
    ['temp dir', h.dir],
    ['file system', fileSystemOf(h.dir)],
    ['lib', libVersion()],
    ['date', new Date().toISOString()],
    ['load average', `${loadAverage()} (1, 5, 15 min, at start; ${os.cpus().length} cores)`],
    ...h.facts,
  ];
}

export function printHeader(h: Header): Array<[string, string]> {
  const lines = headerLines(h);
  console.log(`# ${h.title}\n${h.question}\n`);
  const width = Math.max(...lines.map(([k]) => k.length));
  for (const [k, v] of lines) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log('');
  return lines;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One side of a comparison: a task function plus the hooks that give each phase (warmup, run) fresh state. */
export interface Side {
  fn: () => unknown;
  async: boolean;
  beforeAll?: () => void | Promise<void>;
  afterAll?: () => void | Promise<void>;
}

export interface RoundsOptions {
  rounds: number;
  /** tinybench time budget per task per round, ms. */
  timeMs: number;
  /** Minimum iterations per task per round. */
  iterations: number;
  warmupMs: number;
  warmupIterations: number;
}

export interface SideSamples {
  /** Every iteration's latency in ms, pooled over the rounds. */
  samples: number[];
  /** The median latency of each round, in round order. */
  roundMedians: number[];
}

/**
 * Runs `sides` in rounds, interleaved (A B A B …) in one tinybench Bench, and returns each side's latency samples.
 * Tasks are named `<side> #<round>`; the bench throws on the first failing task.
 */
export async function runInterleaved<K extends string>(
  sides: Record<K, Side>,
  opts: RoundsOptions,
): Promise<Record<K, SideSamples>> {
  const bench = new Bench({
    throws: true,
    retainSamples: true,
    time: opts.timeMs,
    iterations: opts.iterations,
    warmupTime: opts.warmupMs,
    warmupIterations: opts.warmupIterations,
  });
  const names = Object.keys(sides) as K[];
  for (let r = 1; r <= opts.rounds; r++) {
    for (const name of names) {
      const side = sides[name];
      bench.add(`${name} #${r}`, side.fn, {
        async: side.async,
        beforeAll: side.beforeAll ? async () => side.beforeAll!() : undefined,
        afterAll: side.afterAll ? async () => side.afterAll!() : undefined,
      });
    }
  }
  await bench.run();
  const out = {} as Record<K, SideSamples>;
  for (const name of names) out[name] = { samples: [], roundMedians: [] };
  for (const task of bench.tasks) {
    const name = task.name.replace(/ #\d+$/, '') as K;
    const samples = samplesOf(task);
    out[name].samples.push(...samples);
    out[name].roundMedians.push(median(samples));
  }
  return out;
}

function samplesOf(task: Task): number[] {
  const r = task.result;
  if (r.state !== 'completed') throw new Error(`task ${task.name} ended ${r.state}`);
  const samples = r.latency.samples;
  if (!samples || samples.length === 0) throw new Error(`task ${task.name} kept no samples`);
  return [...samples];
}

export type Row = Record<string, string>;

/** A markdown table (also what the console shows: it reads fine as plain text). */
export function markdownTable(rows: Row[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join(' | ') + ' |';
  return [
    line(cols),
    '|' + width.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|',
    ...rows.map((r) => line(cols.map((c) => r[c] ?? ''))),
  ].join('\n');
}

/** Writes benchmarks/results/<name>.md: the header as a list, then the given sections. Returns the path. */
export function writeResults(name: string, title: string, header: Array<[string, string]>, sections: string[]): string {
  const dir = path.join(REPO_ROOT, 'benchmarks', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.md`);
  const text = [
    `# ${title}`,
    '',
    `Generated by \`benchmarks/${name}.ts\`. Numbers from one run on the machine below; compare ratios, not absolutes.`,
    '',
    ...header.map(([k, v]) => `- **${k}**: ${v}`),
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
  fs.writeFileSync(file, text);
  return file;
}

/** Formats a rate with thousands separators and no decimals (records/s), or one decimal for MB/s. */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMB(bytesPerSec: number): string {
  return (bytesPerSec / 1e6).toFixed(1);
}

export function fmtRatio(r: number): string {
  return r.toFixed(2);
}

/** Per-round ratios as `median [min–max]`: how much the pairing of rounds wandered. */
export function fmtRoundRatios(r: number[]): string {
  return `${fmtRatio(median(r))} [${fmtRatio(Math.min(...r))}–${fmtRatio(Math.max(...r))}]`;
}

/** os.loadavg() as text: on a shared machine, the first thing to look at when numbers jump between runs. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}
