/**
 * BullMQ under test, on the redis-server the runner started for this child alone (127.0.0.1, a free port,
 * `--appendonly yes --appendfsync always|everysec --save ""`, see redis-server.ts). BullMQ's defaults otherwise
 * (ioredis connections it makes itself; jobs kept after completion, as spoolq keeps them). Each store is a new
 * queue name on a FLUSHALLed server.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { ADD_BATCH, Completions, packageVersion, sampleLatency, type Peer, type PeerContext, type Store } from './peer.js';
import { JOB_DATA, JOB_NAME, bulkOf, type LatencyResult, type LatencySpec, type ProcessSpec, type RateResult } from './workload.js';

export async function openBullmq(ctx: PeerContext): Promise<Peer> {
  if (!ctx.redis) throw new Error('no redis-server was started for BullMQ');
  const connection = { host: '127.0.0.1', port: ctx.redis.port, maxRetriesPerRequest: null };
  const admin = new Redis({ ...connection, lazyConnect: true });
  await admin.connect();
  const config = (key: string): Promise<string> => admin.config('GET', key).then((kv) => String((kv as string[])[1]));
  const appendonly = await config('appendonly');
  const appendfsync = await config('appendfsync');
  if (appendonly !== 'yes' || appendfsync !== ctx.pairing.redisAppendfsync) {
    throw new Error(`redis-server runs with appendonly ${appendonly}, appendfsync ${appendfsync}; expected yes, ${ctx.pairing.redisAppendfsync}`);
  }
  const info = await admin.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  let n = 0;
  const freshQueueName = async (label: string): Promise<string> => {
    await admin.flushall();
    return `bench-${++n}-${label}`;
  };
  const bulk = bulkOf(ADD_BATCH);

  return {
    settings: {
      bullmq: `${packageVersion('bullmq')} (ioredis ${packageVersion('ioredis')})`,
      redis: `redis-server ${redisVersion} on 127.0.0.1:${ctx.redis.port}, appendonly ${appendonly}, appendfsync ${appendfsync}, save "" (read back with CONFIG GET)`,
      worker: 'BullMQ Worker with an async no-op processor, Queue and Worker in one process, default options',
    },

    async openStore(label: string): Promise<Store> {
      const queue = new Queue(await freshQueueName(label), { connection });
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
      const name = await freshQueueName(label);
      const queue = new Queue(name, { connection });
      const worker = new Worker(name, async () => null, { connection, concurrency: spec.concurrency });
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
        // A global pause: added jobs wait in the paused list; resume() moves them back and wakes the worker.
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
      const name = await freshQueueName(label);
      const queue = new Queue(name, { connection });
      let onStart: (t: number) => void = () => undefined;
      let onFailure: (err: Error) => void = () => undefined;
      const done = new Completions();
      const worker = new Worker(
        name,
        async () => {
          onStart(performance.now());
          return null;
        },
        { connection, concurrency: 1 },
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

    async close(): Promise<void> {
      await admin.quit();
    },
  };
}
