/**
 * plainjob under test: a SQLite job queue on better-sqlite3, in this process, one database file per store in the
 * child's temp dir. plainjob's defineQueue sets `journal_mode = WAL` and `synchronous = 1` (NORMAL) itself; the
 * pairing's synchronous level (FULL or NORMAL) is set right after it and read back, so the settings line shows what
 * was in force.
 *
 * How plainjob's API maps onto the workloads:
 * - add is synchronous (one INSERT, its own transaction, committed before it returns); "1,000 in flight" is 1,000
 *   such calls in a row, as an app issuing 1,000 adds gets; addBulk is addMany (one transaction).
 * - A plainjob worker runs one job at a time and polls when idle; concurrency c is c workers in this process, each
 *   polling every 1 ms (pollIntervall; the default is 1,000 ms, which would put ~500 ms on the idle latency).
 * - It has no pause: the timed jobs are added before their workers exist, and the clock runs from starting them.
 * - plainjob hands the processor the stored JSON string, not a parsed object.
 */
import Database from 'better-sqlite3';
import { better, defineQueue, defineWorker, type Logger, type Queue as PlainQueue, type Worker as PlainWorker } from 'plainjob';
import * as path from 'node:path';
import { ADD_BATCH, Completions, packageVersion, sampleLatency, type Peer, type PeerContext, type Store } from './peer.js';
import { JOB_DATA, JOB_NAME, type LatencyResult, type LatencySpec, type ProcessSpec, type RateResult } from './workload.js';

const POLL_MS = 1;
const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

/** plainjob logs every job at debug level to the console by default: keep errors, drop the rest. */
function quietLogger(errors: string[]): Logger {
  const none = (): void => undefined;
  return { error: (m: string) => errors.push(m), warn: none, info: none, debug: none };
}

interface Opened {
  db: Database.Database;
  queue: PlainQueue;
  errors: string[];
  close(): void;
}

export async function openPlainjob(ctx: PeerContext): Promise<Peer> {
  const level = ctx.pairing.sqliteSynchronous;
  let n = 0;
  let inForce = '';

  const open = (label: string): Opened => {
    const db = new Database(path.join(ctx.dir, `${++n}-${label}.db`));
    const errors: string[] = [];
    const queue = defineQueue({ connection: better(db), logger: quietLogger(errors) });
    db.pragma(`synchronous = ${level}`);
    const journal = String(db.pragma('journal_mode', { simple: true }));
    const sync = SYNCHRONOUS_NAMES[Number(db.pragma('synchronous', { simple: true }))] ?? '?';
    if (journal !== 'wal' || sync !== level) throw new Error(`SQLite runs with journal_mode ${journal}, synchronous ${sync}; expected wal, ${level}`);
    inForce = `journal_mode ${journal}, synchronous ${sync} (read back with PRAGMA), wal_autocheckpoint and cache_size default`;
    return {
      db,
      queue,
      errors,
      close: () => {
        queue.close();
        db.close();
      },
    };
  };

  const dataOf = (count: number): unknown[] => Array.from({ length: count }, () => JOB_DATA);
  const bulkData = dataOf(ADD_BATCH);

  /** Starts `count` workers for `type`; returns a stop function that waits for their loops to end. */
  const startWorkers = (o: Opened, type: string, count: number, processor: () => Promise<void>, done: Completions): (() => Promise<void>) => {
    const workers: PlainWorker[] = [];
    const loops: Array<Promise<void>> = [];
    for (let i = 0; i < count; i++) {
      const w = defineWorker(type, processor, {
        queue: o.queue,
        pollIntervall: POLL_MS,
        logger: quietLogger(o.errors),
        onCompleted: () => done.hit(),
        onFailed: (_job, error) => done.fail(new Error(error)),
      });
      workers.push(w);
      loops.push(w.start().catch((err: Error) => done.fail(err)));
    }
    return async () => {
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.all(loops);
    };
  };

  // Open one store up front, so the settings line can say what SQLite runs with.
  open('probe').close();
  const sqliteVersion = (() => {
    const db = new Database(':memory:');
    const v = (db.prepare('select sqlite_version() as v').get() as { v: string }).v;
    db.close();
    return v;
  })();

  return {
    settings: {
      plainjob: `${packageVersion('plainjob')} on better-sqlite3 ${packageVersion('better-sqlite3')} (SQLite ${sqliteVersion})`,
      sqlite: inForce,
      worker: `plainjob workers (one job at a time each; concurrency c = c workers), pollIntervall ${POLL_MS} ms, async no-op processor, in one process with the queue`,
    },

    async openStore(label: string): Promise<Store> {
      const o = open(label);
      return {
        addOne: async () => o.queue.add(JOB_NAME, JOB_DATA),
        addInFlight: async (count) => {
          for (let i = 0; i < count; i++) o.queue.add(JOB_NAME, JOB_DATA);
        },
        addBulk: async (count) => o.queue.addMany(JOB_NAME, count === ADD_BATCH ? bulkData : dataOf(count)),
        close: async () => o.close(),
      };
    },

    async process(label: string, spec: ProcessSpec): Promise<RateResult> {
      const o = open(label);
      const done = new Completions();
      const noop = async (): Promise<void> => undefined;
      try {
        const warm = done.waitFor(spec.warmupJobs, 60_000);
        for (let i = 0; i < spec.warmupJobs; i += ADD_BATCH) o.queue.addMany('warm', dataOf(Math.min(ADD_BATCH, spec.warmupJobs - i)));
        const stopWarm = startWorkers(o, 'warm', spec.concurrency, noop, done);
        const warmCapped = await warm;
        await stopWarm();
        if (warmCapped) throw new Error('warm-up jobs did not complete within 60 s');
        for (let i = 0; i < spec.jobs; i += ADD_BATCH) o.queue.addMany(JOB_NAME, i + ADD_BATCH <= spec.jobs ? bulkData : dataOf(spec.jobs - i));
        done.reset();
        const all = done.waitFor(spec.jobs, spec.maxMs);
        const t0 = performance.now();
        const stop = startWorkers(o, JOB_NAME, spec.concurrency, noop, done);
        const capped = await all;
        const ms = performance.now() - t0;
        const jobs = done.done;
        await stop();
        if (o.errors.length) throw new Error(`plainjob logged errors: ${o.errors.slice(0, 3).join('; ')}`);
        return { jobs, ms, capped };
      } finally {
        o.close();
      }
    },

    async latency(label: string, spec: LatencySpec): Promise<LatencyResult> {
      const o = open(label);
      let onStart: (t: number) => void = () => undefined;
      const done = new Completions();
      const stop = startWorkers(
        o,
        JOB_NAME,
        1,
        async () => {
          onStart(performance.now());
        },
        done,
      );
      try {
        return await sampleLatency(spec, async () => {
          const started = new Promise<number>((resolve) => (onStart = resolve));
          const completed = done.waitFor(done.done + 1, 10_000);
          const t0 = performance.now();
          o.queue.add(JOB_NAME, JOB_DATA);
          const start = await started;
          if (await completed) throw new Error('a job did not complete within 10 s');
          return start - t0;
        });
      } finally {
        await stop();
        o.close();
      }
    },

    async close(): Promise<void> {},
  };
}
