/**
 * Question: on this machine, in one run, how does spoolq compare with the queues people would otherwise use,
 * BullMQ on a local Redis and plainjob on SQLite (better-sqlite3), at paired durability levels?
 *
 * The runner. For each repetition, each pairing and each queue, in that order (A B C A B C …, so a slow stretch
 * of the shared disk hits all three), it starts a fresh child process (child.ts) that runs every workload on
 * fresh stores, then a second fresh child that reads the RSS of the queue holding waiting jobs. BullMQ children
 * get a redis-server of their own, started here on a free loopback port and stopped by its pid afterwards. Each
 * figure is the median over the repetitions; the tables and the machine go to benchmarks/results/peers.md.
 *
 * Bounded: every child runs under a time limit (killed past it), every workload inside a child under its own,
 * redis-server gets 5 s to answer and 5 s to stop; processes.ts kills whatever is still alive on any exit. A queue
 * whose packages are missing or whose server cannot start is reported and skipped, not fatal.
 *
 * Environment: PEERS_REPS (default 3), PEERS_ONLY=spoolq,bullmq (queues), PEERS_PAIRINGS=fsync (pairings),
 * PEERS_SCALE=0.2 (smaller counts, for trying things out), PEERS_SPOOLQ_DIST (the root build to measure, default
 * <repo>/dist) and PEERS_SPOOLQ_LABEL (what the header's "lib" line says of it), PEERS_CPU_PROF=<dir> (spoolq
 * children run with --cpu-prof into <dir>), REDIS_SERVER (the binary).
 * Any of them makes a partial run: printed, but results/peers.md is left alone unless PEERS_WRITE=1.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PEERS_ROOT } from './peer.js';
import { makeTempDir, removeTempDir, runNode } from './processes.js';
import { redisServerVersion, startRedis, type RedisServer } from './redis-server.js';
import { cellKey, mainTable, rssTable, spreadTable, workloadLines, type Collected, type Row } from './report.js';
import {
  PAIRINGS,
  PEERS,
  PEER_LABEL,
  type ChildArgs,
  type ChildReport,
  type PairingName,
  type PeerName,
  type RssReport,
  type WorkloadsReport,
} from './workload.js';

type Harness = typeof import('../../../dist/benchmarks/harness.js');

const REPO_ROOT = path.resolve(PEERS_ROOT, '..', '..');
const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
const WORKLOADS_CHILD_MS = 180_000;
const RSS_CHILD_MS = 90_000;

const env = process.env;
const REPS = Number(env.PEERS_REPS ?? 3);
const SPOOLQ_DIST = path.resolve(env.PEERS_SPOOLQ_DIST ?? path.join(REPO_ROOT, 'dist'));
const listEnv = <T extends string>(name: string, all: T[]): T[] => {
  const v = env[name]?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!v?.length) return all;
  const bad = v.filter((x) => !all.includes(x as T));
  if (bad.length) throw new Error(`${name}: unknown ${bad.join(', ')} (known: ${all.join(', ')})`);
  return v as T[];
};
const WANTED_PEERS = listEnv<PeerName>('PEERS_ONLY', PEERS);
const WANTED_PAIRINGS = listEnv<PairingName>('PEERS_PAIRINGS', PAIRINGS.map((p) => p.name));
const PARTIAL = ['PEERS_REPS', 'PEERS_ONLY', 'PEERS_PAIRINGS', 'PEERS_SCALE', 'PEERS_CPU_PROF'].filter((k) => env[k] !== undefined);

/** Can this peer run here? undefined if yes, else why not (one line). */
function probe(peer: PeerName): string | undefined {
  if (peer === 'spoolq') {
    return fs.existsSync(path.join(SPOOLQ_DIST, 'lib', 'index.js')) ? undefined : `no build at ${SPOOLQ_DIST}/lib/index.js (run npm run build)`;
  }
  if (peer === 'bullmq' && !redisServerVersion()) {
    return `redis-server not found on PATH${env.REDIS_SERVER ? ` (REDIS_SERVER=${env.REDIS_SERVER})` : ''}; install it with \`sudo apt-get install -y redis-server\` (Debian/Ubuntu) or \`brew install redis\``;
  }
  const code =
    peer === 'bullmq'
      ? "await import('bullmq'); await import('ioredis');"
      : "await import('plainjob'); const D = (await import('better-sqlite3')).default; new D(':memory:').close();";
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: PEERS_ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return undefined;
  const lines = (r.stderr || r.error?.message || 'unknown error').trim().split('\n');
  const why = lines.find((l) => /^\s*\w*Error\b.*:/.test(l)) ?? lines.find((l) => /rror/.test(l)) ?? 'failed to load';
  return `its packages do not load (${why.trim().slice(0, 200)}); run \`npm install --prefix benchmarks/peers\``;
}

async function runChild(args: Omit<ChildArgs, 'dir' | 'spoolqDist'>, failures: string[]): Promise<ChildReport | undefined> {
  const dir = makeTempDir(`${args.peer}-${args.role}`);
  const what = `${PEER_LABEL[args.peer]} ${args.pairing} ${args.role}`;
  const flags = ['--expose-gc'];
  if (env.PEERS_CPU_PROF && args.peer === 'spoolq' && args.role === 'workloads') {
    flags.push('--cpu-prof', '--cpu-prof-dir', path.resolve(env.PEERS_CPU_PROF));
  }
  try {
    const full: ChildArgs = { ...args, dir, spoolqDist: SPOOLQ_DIST };
    const out = await runNode([...flags, CHILD, JSON.stringify(full)], {
      timeoutMs: args.role === 'rss' ? RSS_CHILD_MS : WORKLOADS_CHILD_MS,
      cwd: PEERS_ROOT,
    });
    const reportFile = path.join(dir, 'report.json');
    if (out.code === 0 && fs.existsSync(reportFile)) return JSON.parse(fs.readFileSync(reportFile, 'utf8')) as ChildReport;
    const why = out.timedOut ? `killed after its ${(args.role === 'rss' ? RSS_CHILD_MS : WORKLOADS_CHILD_MS) / 1000} s limit` : `exited ${out.code ?? out.signal}`;
    failures.push(`${what}: ${why}${out.stderrTail ? `: ${out.stderrTail.replace(/\n/g, ' | ')}` : ''}`);
    return undefined;
  } finally {
    removeTempDir(dir);
  }
}

function oneLine(r: WorkloadsReport): string {
  const rate = (k: keyof WorkloadsReport['rates']): string => {
    const x = r.rates[k];
    return x ? Math.round((x.jobs * 1000) / x.ms).toLocaleString('en-US') + (x.capped ? '†' : '') : '✗';
  };
  const lat = r.latency?.samples.length ? [...r.latency.samples].sort((a, b) => a - b)[Math.floor(r.latency.samples.length / 2)]!.toFixed(2) : '✗';
  return `add1 ${rate('addOne')}  ×1000 ${rate('addInFlight')}  bulk ${rate('addBulk')}  c1 ${rate('process1')}  c50 ${rate('process50')} jobs/s  p50 ${lat} ms`;
}

async function main(): Promise<void> {
  const harness = (await import(pathToFileURL(path.join(SPOOLQ_DIST, 'benchmarks', 'harness.js')).href)) as Harness;
  const skipped: string[] = [];
  const peers: PeerName[] = [];
  for (const peer of WANTED_PEERS) {
    const why = probe(peer);
    if (why) skipped.push(`${PEER_LABEL[peer]} skipped: ${why}`);
    else peers.push(peer);
  }
  const pairings = PAIRINGS.filter((p) => WANTED_PAIRINGS.includes(p.name));
  const title = 'peers: spoolq beside BullMQ (Redis) and plainjob (SQLite), in one run';
  const header = harness.headerLines({
    title,
    question: '',
    dir: os.tmpdir(),
    facts: [
      ['spoolq build', path.relative(REPO_ROOT, SPOOLQ_DIST).startsWith('..') ? SPOOLQ_DIST : `${path.relative(REPO_ROOT, SPOOLQ_DIST)}/ of this repository`],
      ['queues', peers.map((p) => PEER_LABEL[p]).join(', ') + (skipped.length ? ` (skipped: ${skipped.map((s) => s.split(' ')[0]).join(', ')})` : '')],
      ['redis-server', redisServerVersion() ?? 'not installed'],
      ['job', 'name "noop", data 100 B of JSON ({ s: "x" × 92 }), default job options, a processor that returns at once'],
      ['method', `${REPS} repetitions; per repetition, per pairing, each queue in a fresh child process (A B C A B C …); every workload on a fresh store; figures are medians over repetitions`],
    ],
  });
  // A build from elsewhere (PEERS_SPOOLQ_DIST, e.g. a commit exported with git archive) says which lib it holds.
  if (env.PEERS_SPOOLQ_LABEL) for (const line of header) if (line[0] === 'lib') line[1] = env.PEERS_SPOOLQ_LABEL;
  console.log(`# ${title}\n`);
  const width = Math.max(...header.map(([k]) => k.length));
  for (const [k, v] of header) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log('\nDurability pairing:');
  for (const p of pairings) console.log(`  ${p.name.padEnd(5)}  spoolq '${p.spoolq}'  ↔  Redis appendfsync ${p.redisAppendfsync}  ↔  SQLite synchronous=${p.sqliteSynchronous} (WAL): ${p.promise}`);
  for (const s of skipped) console.log(`\n  ${s}`);
  console.log('');

  const collected: Collected = { workloads: new Map(), rss: new Map() };
  const failures: string[] = [];
  const settings = new Map<string, Record<string, string>>();
  const t0 = performance.now();
  for (let rep = 1; rep <= REPS; rep++) {
    for (const pairing of pairings) {
      for (const peer of peers) {
        for (const role of ['workloads', 'rss'] as const) {
          let redis: RedisServer | undefined;
          try {
            if (peer === 'bullmq') redis = await startRedis(pairing.redisAppendfsync);
          } catch (err) {
            failures.push(`BullMQ ${pairing.name} ${role} (rep ${rep}): redis-server did not start: ${(err as Error).message}`);
            continue;
          }
          try {
            const report = await runChild({ role, peer, pairing: pairing.name, redis: redis && { port: redis.port, pid: redis.pid } }, failures);
            if (!report) continue;
            settings.set(cellKey(pairing.name, peer), report.settings);
            const key = cellKey(pairing.name, peer);
            const elapsed = `${((performance.now() - t0) / 1000).toFixed(0)} s`.padStart(6);
            if (report.role === 'workloads') {
              collected.workloads.set(key, [...(collected.workloads.get(key) ?? []), report]);
              for (const [w, e] of Object.entries(report.errors)) failures.push(`${PEER_LABEL[peer]} ${pairing.name} ${w} (rep ${rep}): ${e}`);
              console.log(`  ${elapsed}  rep ${rep}  ${pairing.name.padEnd(5)}  ${PEER_LABEL[peer].padEnd(8)}  ${oneLine(report)}`);
            } else {
              collected.rss.set(key, [...(collected.rss.get(key) ?? []), report as RssReport]);
              const r = report as RssReport;
              console.log(`  ${elapsed}  rep ${rep}  ${pairing.name.padEnd(5)}  ${PEER_LABEL[peer].padEnd(8)}  RSS ${(r.rss / 2 ** 20).toFixed(0)} MB${r.serverRss ? ` + redis-server ${(r.serverRss / 2 ** 20).toFixed(0)} MB` : ''} holding ${r.jobs.toLocaleString('en-US')} jobs`);
            }
          } finally {
            await redis?.stop();
          }
        }
      }
    }
  }

  const pairingNames = pairings.map((p) => p.name);
  const table = mainTable(collected, pairingNames, peers);
  const mainMd = harness.markdownTable(table.rows);
  const spreadMd = harness.markdownTable(spreadTable(collected, pairingNames, peers));
  const rssMd = harness.markdownTable(rssTable(collected, pairingNames, peers));
  const pairingMd = harness.markdownTable(
    pairings.map((p): Row => ({
      pairing: p.name,
      spoolq: `durability '${p.spoolq}'`,
      'BullMQ (Redis)': `appendonly yes, appendfsync ${p.redisAppendfsync}`,
      'plainjob (SQLite)': `journal_mode WAL, synchronous ${p.sqliteSynchronous}`,
      'what an acknowledged add survives': p.promise,
    })),
  );
  const settingsLines = [...settings.entries()].flatMap(([key, s]) => [`- **${key}**: ${Object.entries(s).map(([k, v]) => `${k}: ${v}`).join('; ')}`]);
  const problems = [...skipped, ...failures];

  console.log('\n' + mainMd + '\n');
  console.log('† a time limit stopped this run before its planned count; the rate is jobs done / time.');
  console.log('spoolq vs X: how many times better spoolq is (jobs/s: spoolq ÷ X; ms and MB: X ÷ spoolq); below 1, spoolq is behind.\n');
  console.log('Per repetition:\n' + spreadMd + '\n');
  console.log('RSS:\n' + rssMd + '\n');
  if (problems.length) console.log('Failed or skipped:\n' + problems.map((p) => `  - ${p}`).join('\n') + '\n');
  if (table.shortfalls.length) console.log('Where spoolq is not ahead or misses its target:\n' + table.shortfalls.map((s) => `  - ${s}`).join('\n') + '\n');
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);

  if (PARTIAL.length && env.PEERS_WRITE !== '1') {
    console.log(`\n${PARTIAL.join(', ')} set: a partial run, results/peers.md left as it was (PEERS_WRITE=1 writes it anyway)`);
    return;
  }
  const file = path.join(REPO_ROOT, 'benchmarks', 'results', 'peers.md');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    [
      `# ${title}`,
      '',
      'Generated by `npm run bench:peers` (benchmarks/peers/). One run on the machine below; believe the ratios more than the absolute numbers.',
      '',
      ...header.map(([k, v]) => `- **${k}**: ${v}`),
      `- **load average at the end**: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}; the run took ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      '',
      '## Durability pairing',
      '',
      pairingMd,
      '',
      `## Results (medians of ${REPS} repetitions)`,
      '',
      mainMd,
      '',
      '† a time limit stopped this run before its planned count; the rate is jobs done / time.',
      '"spoolq vs X" is how many times better spoolq is: jobs/s spoolq ÷ X; ms and MB X ÷ spoolq. Below 1, spoolq is behind.',
      'Targets are those of issue 3 (Queue and Worker), for spoolq alone; informational, as every benchmark here.',
      '',
      '## Every repetition (in run order; ✗ = that repetition failed the workload)',
      '',
      spreadMd,
      '',
      '## RSS in detail (medians)',
      '',
      rssMd,
      '',
      '## Workloads',
      '',
      ...workloadLines(),
      '',
      '## Settings in force (as each child read them back)',
      '',
      ...settingsLines,
      '',
      '## Where spoolq is not ahead, or misses its target',
      '',
      ...(table.shortfalls.length ? table.shortfalls.map((s) => `- ${s}`) : ['Nowhere.']),
      '',
      'Profiles of these, with their causes and proposed changes: [peers-profile.md](peers-profile.md).',
      '',
      '## Failed or skipped',
      '',
      ...(problems.length ? problems.map((p) => `- ${p}`) : ['Nothing.']),
      '',
    ].join('\n'),
  );
  console.log(`\nresults written to ${path.relative(process.cwd(), file)}`);
}

await main();
