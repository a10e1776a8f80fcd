/**
 * spoolq under test: the root build (dist/lib/index.js, or PEERS_SPOOLQ_DIST), imported at run time so this package
 * compiles against its .d.ts files without depending on the root's tsconfig. Queue and Worker share the process's
 * owner, the common setup (as in benchmarks/queue-process.ts). Default options otherwise: plain codec, 64 MiB
 * segments, batchIntervalMs 5.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ADD_BATCH, Completions, sampleLatency, type Peer, type PeerContext, type Store } from './peer.js';
import { JOB_DATA, JOB_NAME, bulkOf, type LatencyResult, type LatencySpec, type ProcessSpec, type RateResult } from './workload.js';

type Spoolq = typeof import('../../../dist/lib/index.js');

const QUEUE = 'bench';

export async function openSpoolq(ctx: PeerContext): Promise<Peer> {
  const lib = (await import(pathToFileURL(path.join(ctx.spoolqDist, 'lib', 'index.js')).href)) as Spoolq;
  const durability = ctx.pairing.spoolq;
  let n = 0;
  const freshDir = (label: string): string => path.join(ctx.dir, `${++n}-${label}`);
  const bulk = bulkOf(ADD_BATCH);

  return {
    settings: {
      spoolq: `${path.relative(process.cwd(), ctx.spoolqDist) || ctx.spoolqDist}/lib (this repository's build)`,
      durability: `'${durability}' (batchIntervalMs 5, the default)`,
      worker: 'inline processor function, Queue and Worker in one process (shared owner)',
    },

    async openStore(label: string): Promise<Store> {
      const queue = new lib.Queue(QUEUE, { dir: freshDir(label), durability });
      await queue.waitUntilReady();
      return {
        addOne: () => queue.add(JOB_NAME, JOB_DATA),
        addInFlight: (count) => {
          const pending = new Array<Promise<unknown>>(count);
          for (let i = 0; i < count; i++) pending[i] = queue.add(JOB_NAME, JOB_DATA);
          return Promise.all(pending);
        },
        addBulk: (count) => queue.addBulk(count === ADD_BATCH ? bulk : bulkOf(count)),
        close: () => queue.close(),
      };
    },

    async process(label: string, spec: ProcessSpec): Promise<RateResult> {
      const dir = freshDir(label);
      const queue = new lib.Queue(QUEUE, { dir, durability });
      const worker = new lib.Worker(QUEUE, () => null, { dir, durability, concurrency: spec.concurrency });
      const done = new Completions();
      worker.on('completed', () => done.hit());
      worker.on('failed', (_job: unknown, err: Error) => done.fail(err));
      worker.on('error', (err: Error) => done.fail(err));
      try {
        await queue.waitUntilReady();
        await worker.waitUntilReady();
        const warm = done.waitFor(spec.warmupJobs, 60_000);
        for (let i = 0; i < spec.warmupJobs; i += ADD_BATCH) await queue.addBulk(bulkOf(Math.min(ADD_BATCH, spec.warmupJobs - i)));
        if (await warm) throw new Error('warm-up jobs did not complete within 60 s');
        await queue.pause();
        for (let i = 0; i < spec.jobs; i += ADD_BATCH) await queue.addBulk(i + ADD_BATCH <= spec.jobs ? bulk : bulkOf(spec.jobs - i));
        done.reset();
        const all = done.waitFor(spec.jobs, spec.maxMs);
        const t0 = performance.now();
        await queue.resume();
        const capped = await all;
        return { jobs: done.done, ms: performance.now() - t0, capped };
      } finally {
        await worker.close();
        await queue.close();
      }
    },

    async latency(label: string, spec: LatencySpec): Promise<LatencyResult> {
      const dir = freshDir(label);
      const queue = new lib.Queue(QUEUE, { dir, durability });
      let onStart: (t: number) => void = () => undefined;
      let onFailure: (err: Error) => void = () => undefined;
      const done = new Completions();
      const worker = new lib.Worker(
        QUEUE,
        () => {
          onStart(performance.now());
          return null;
        },
        { dir, durability, concurrency: 1 },
      );
      worker.on('completed', () => done.hit());
      worker.on('failed', (_job: unknown, err: Error) => onFailure(err));
      worker.on('error', (err: Error) => onFailure(err));
      try {
        await queue.waitUntilReady();
        await worker.waitUntilReady();
        return await sampleLatency(spec, async () => {
          const started = new Promise<number>((resolve, reject) => {
            onStart = resolve;
            onFailure = reject;
          });
          const completed = done.waitFor(done.done + 1, 10_000);
          const t0 = performance.now();
          await queue.add(JOB_NAME, JOB_DATA);
          const start = await started;
          if (await completed) throw new Error('a job did not complete within 10 s');
          return start - t0;
        });
      } finally {
        await worker.close();
        await queue.close();
      }
    },

    async close(): Promise<void> {},
  };
}
