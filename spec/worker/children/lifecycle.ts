/**
 * Child process for worker-lifecycle.spec.ts: what keeps a process alive, and what a Worker that cannot start
 * does, observed in a real process. Each line is written synchronously, so a line in the output happened.
 * argv: <mode> <dir> [processor module URL]
 *
 *   hold          opens queue q and holds it (its owner lock) until killed; prints `holding` once it is open
 *   delayed       a Worker, and a Queue that adds one job delayed by 1 s and closes: from then on only the Worker
 *                 holds the process. Prints `added`, `done <result>` when the job completes, `closed`. Nothing
 *                 else keeps the process alive: without a Worker that holds it, the process ends before `done`.
 *   queue-only    opens a Queue, adds a job, prints `added`, and never closes it
 *   worker-closed a Worker runs one job (its Queue closed first), then closes; prints `done`, `closed`
 *   locked        a Worker, with no 'error' listener, on a queue another process holds; prints `rejected <code>`
 *                 when waitUntilReady() rejects, then `running <isRunning>`
 *   threads       a thread Worker on the module given runs one `echo` job; prints `done <result>`, `closed`
 *   spawn-fails   like threads, but first makes process.execArgv something no thread can be spawned with (as if
 *                 node had been started with flags a worker_thread refuses), with a backlog of 10 jobs and
 *                 autorun off; prints `rejected <code>`, `running <isRunning>`, `errors <n>`, `jobs <json>`
 */
import * as fs from 'node:fs';

const [mode, dir, processor] = process.argv.slice(2) as [string, string, string | undefined];
const say = (line: string): void => void fs.writeSync(1, `${line}\n`);

if (mode === 'spawn-fails') {
  // Read when thread-flags.ts is first imported, hence before the import below: --input-type makes the pool pass
  // its flags explicitly, and --conditions without its value is refused whatever is left out.
  process.execArgv.push('--input-type=module', '--conditions');
}
const { Queue, Worker } = await import('../../../lib/index.js');
const opts = { dir, durability: 'none' } as const;

switch (mode) {
  case 'hold': {
    const q = new Queue('q', opts);
    await q.waitUntilReady();
    say('holding');
    setInterval(() => undefined, 1_000);
    break;
  }
  case 'delayed': {
    const w = new Worker('q', async (job) => `ran ${String(job.data)}`, opts);
    const q = new Queue('q', opts);
    await q.add('later', 'late', { delay: 1_000 });
    await q.close();
    say('added');
    w.on('completed', (_job, result) => {
      say(`done ${String(result)}`);
      void w.close().then(() => say('closed'));
    });
    break;
  }
  case 'queue-only': {
    const q = new Queue('q', opts);
    await q.add('j', 1);
    say('added');
    break;
  }
  case 'worker-closed': {
    const w = new Worker('q', async () => 'ok', opts);
    const q = new Queue('q', opts);
    await q.add('j', 1);
    await q.close();
    w.once('completed', () => {
      say('done');
      void w.close().then(() => say('closed'));
    });
    break;
  }
  case 'locked': {
    const w = new Worker('q', async () => 'never', opts);
    await w.waitUntilReady().catch((err: { code?: string }) => say(`rejected ${err.code}`));
    say(`running ${w.isRunning}`);
    break;
  }
  case 'threads': {
    const q = new Queue('q', opts);
    const w = new Worker('q', new URL(processor!), { ...opts, threads: 1 });
    w.once('completed', (_job, result) => {
      say(`done ${String(result)}`);
      void w.close().then(() => q.close()).then(() => say('closed'));
    });
    await q.add('echo', 'flagged');
    break;
  }
  case 'spawn-fails': {
    const q = new Queue('q', opts);
    await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'echo', data: i, opts: { attempts: i === 0 ? 3 : 1 } })));
    const w = new Worker('q', new URL(processor!), { ...opts, threads: 1, autorun: false });
    let errors = 0;
    w.on('error', () => void errors++);
    await w.run().catch((err: { code?: string }) => say(`rejected ${err.code}`));
    say(`running ${w.isRunning}`);
    say(`errors ${errors}`);
    const jobs = await q.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed'], 0, -1);
    say(`jobs ${JSON.stringify(await Promise.all(jobs.map(async (j) => [await j.getState(), j.attemptsMade])))}`);
    await w.close();
    await q.close();
    break;
  }
  default:
    throw new Error(`lifecycle child has no mode ${mode}`);
}
