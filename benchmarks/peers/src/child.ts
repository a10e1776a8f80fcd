/**
 * One child process of the peer benchmark: one queue (peer), one durability pairing, one role, in a fresh process
 * so that every repetition starts cold and RSS belongs to that queue alone. Spawned by run.ts as
 * `node --expose-gc child.js '<ChildArgs as JSON>'`; writes its report as JSON to <dir>/report.json and exits.
 *
 * Roles:
 *   workloads  addOne, addInFlight, addBulk, process1, process50, latency, in that order, each on a fresh store
 *              and under WORKLOAD_DEADLINE_MS; a workload that fails or overruns is reported and the next one runs.
 *   rss        the RSS of this process (and of its redis-server) holding RSS_JOBS waiting jobs, added with addBulk.
 *
 * Only the adapter of the peer named is imported, so a peer whose packages are missing fails its own child, not
 * the run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Peer, PeerContext } from './peer.js';
import { ADD_BATCH, sleep } from './peer.js';
import {
  ADD_SPECS,
  LATENCY_SPEC,
  PAIRINGS,
  PROCESS_SPECS,
  RSS_JOBS,
  WORKLOAD_DEADLINE_MS,
  type AddWorkload,
  type ChildArgs,
  type ChildReport,
  type PeerName,
  type ProcessWorkload,
  type RateResult,
  type WorkloadsReport,
} from './workload.js';

type Opener = (ctx: PeerContext) => Promise<Peer>;

const OPENERS: Record<PeerName, () => Promise<Opener>> = {
  spoolq: async () => (await import('./spoolq-peer.js')).openSpoolq,
  bullmq: async () => (await import('./bullmq-peer.js')).openBullmq,
  plainjob: async () => (await import('./plainjob-peer.js')).openPlainjob,
};

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  gc();
}

/** A /proc/<pid>/status field in bytes (VmRSS, VmHWM), or NaN off Linux. */
function procStatusBytes(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** `p`, or a rejection after `ms`; the abandoned operation is left to the process exit. */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s (time limit)`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Repeats one add step until the spec's minimum time and iterations are met, or its maximum time or jobs. */
async function measureAdds(peer: Peer, workload: AddWorkload): Promise<RateResult> {
  const spec = ADD_SPECS[workload];
  const store = await peer.openStore(workload);
  try {
    const step =
      workload === 'addOne'
        ? () => store.addOne()
        : workload === 'addInFlight'
          ? () => store.addInFlight(spec.jobsPerIteration)
          : () => store.addBulk(spec.jobsPerIteration);
    for (let i = 0; i < spec.warmupIterations; i++) await step();
    collect();
    let iterations = 0;
    let ms = 0;
    const t0 = performance.now();
    for (;;) {
      await step();
      iterations++;
      ms = performance.now() - t0;
      const enough = ms >= spec.minMs && iterations >= spec.minIterations;
      if (enough || ms >= spec.maxMs || iterations * spec.jobsPerIteration >= spec.maxJobs) break;
    }
    return { jobs: iterations * spec.jobsPerIteration, ms, capped: iterations < spec.minIterations };
  } finally {
    await store.close();
  }
}

async function runWorkloads(args: ChildArgs, peer: Peer): Promise<WorkloadsReport> {
  const report: WorkloadsReport = {
    role: 'workloads',
    peer: args.peer,
    pairing: args.pairing,
    settings: peer.settings,
    rates: {},
    errors: {},
    peakRss: NaN,
  };
  const attempt = async (name: keyof WorkloadsReport['errors'], fn: () => Promise<void>): Promise<void> => {
    try {
      collect();
      await withDeadline(fn(), WORKLOAD_DEADLINE_MS, name);
    } catch (err) {
      report.errors[name] = (err as Error).stack?.split('\n').slice(0, 3).join(' | ') ?? String(err);
    }
  };
  for (const w of ['addOne', 'addInFlight', 'addBulk'] as AddWorkload[]) {
    await attempt(w, async () => {
      report.rates[w] = await measureAdds(peer, w);
    });
  }
  for (const w of ['process1', 'process50'] as ProcessWorkload[]) {
    await attempt(w, async () => {
      report.rates[w] = await peer.process(w, PROCESS_SPECS[w]);
    });
  }
  await attempt('latency', async () => {
    report.latency = await peer.latency('latency', LATENCY_SPEC);
  });
  report.peakRss = procStatusBytes('self', 'VmHWM');
  return report;
}

async function runRss(args: ChildArgs, open: Opener, ctx: PeerContext): Promise<ChildReport> {
  collect();
  const rssEmpty = process.memoryUsage().rss;
  const peer = await open(ctx);
  const store = await peer.openStore('rss');
  for (let added = 0; added < RSS_JOBS; added += ADD_BATCH) await store.addBulk(Math.min(ADD_BATCH, RSS_JOBS - added));
  await sleep(100); // batch durability: let the last interval's fsync and any follow-up work finish
  collect();
  await sleep(50);
  const rss = process.memoryUsage().rss;
  const serverRss = args.redis ? procStatusBytes(args.redis.pid, 'VmRSS') : undefined;
  await store.close();
  await peer.close();
  return { role: 'rss', peer: args.peer, pairing: args.pairing, settings: peer.settings, jobs: RSS_JOBS, rssEmpty, rss, serverRss };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as ChildArgs;
  const pairing = PAIRINGS.find((p) => p.name === args.pairing);
  if (!pairing) throw new Error(`unknown pairing ${args.pairing}`);
  const ctx: PeerContext = { pairing, dir: args.dir, spoolqDist: args.spoolqDist, redis: args.redis };
  const reportFile = path.join(args.dir, 'report.json');
  const open = await OPENERS[args.peer]();
  let report: ChildReport;
  if (args.role === 'rss') {
    report = await withDeadline(runRss(args, open, ctx), WORKLOAD_DEADLINE_MS, 'rss');
  } else {
    const peer = await withDeadline(open(ctx), 30_000, `opening ${args.peer}`);
    report = await runWorkloads(args, peer);
    await withDeadline(peer.close(), 10_000, `closing ${args.peer}`);
  }
  fs.writeFileSync(reportFile, JSON.stringify(report));
}

main().then(
  // Exit at once: a workload abandoned at its time limit may still hold sockets or timers.
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack ?? String(err));
    process.exit(1);
  },
);
