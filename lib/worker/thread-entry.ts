/**
 * thread-entry: the script each ThreadPool worker_thread runs. It imports the processor module, runs the jobs the
 * pool posts (many at once, as the pool's concurrency allows; this side never limits), and reports each one's end.
 * The messages are in thread-protocol.ts. Exports nothing.
 *
 * Owns: importing and checking the processor module, the job object and AbortController of each run, turning a
 * processor's result or throw into `done` / `failed`. Does not own: timeouts, limits, crashes — the pool watches
 * this thread from outside, because a thread stuck in a loop or out of memory cannot report anything.
 *
 * What kills this thread, and the pool then finds which of its runs was the cause (thread-pool.ts, Crashes):
 * process.exit() in a processor, an uncaught exception or unhandled rejection outside a job's promise (Node's
 * default in a worker_thread is to end the thread), running out of the pool's maxHeapMb, or the pool's
 * terminate(). Ends still collected for the next batch (thread-protocol.ts) die with the thread, and their runs are
 * run again like the others.
 */
import assert from 'node:assert/strict';
import { parentPort, workerData } from 'node:worker_threads';
import { invalidArg } from '../errors.js';
import { fromWire, poolError, toWire } from './error-wire.js';
import { NEVER_ABORTED, takesSignal } from './never-signal.js';
import type { MainToThread, PoolJob, RunEnd, ThreadData, ThreadJob, ThreadProcessor, ThreadToMain } from './thread-protocol.js';

assert.ok(parentPort, 'thread-entry runs only as a worker_thread of ThreadPool');
const port = parentPort;
const { processorUrl, queueName: threadQueueName } = workerData as ThreadData;

/** The AbortController of each run in flight, by runId. */
const controllers = new Map<number, AbortController>();
/** Set once the module has loaded; the pool posts no run before `ready`, so runJob always finds it. */
let handlerFor: (name: string) => ThreadProcessor | undefined = () => undefined;

/** Ends collected during this turn of the event loop, posted as one `ends` message once its microtasks ran. */
let ends: RunEnd[] = [];
let flushQueued = false;

/** Posts a message other than an end, after the ends collected before it. Throws what structured clone throws. */
function post(msg: ThreadToMain): void {
  flushEnds();
  port.postMessage(msg);
}

function end(e: RunEnd): void {
  ends.push(e);
  if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushEnds);
  }
}

function flushEnds(): void {
  flushQueued = false;
  if (ends.length === 0) return;
  const batch = ends;
  ends = [];
  try {
    port.postMessage({ type: 'ends', ends: batch } satisfies ThreadToMain);
  } catch {
    // A result structured clone refuses (a function, a class instance with private state…): that job fails with
    // the DataCloneError, which names the value, rather than completing with something else; the others go on.
    for (const e of batch) {
      try {
        port.postMessage({ type: 'ends', ends: [e] } satisfies ThreadToMain);
      } catch (err) {
        port.postMessage({ type: 'ends', ends: [{ type: 'failed', runId: e.runId, error: toWire(err) }] } satisfies ThreadToMain);
      }
    }
  }
}

// Listen before importing, so a shutdown reaches a thread whose module is still loading.
port.on('message', (msg: MainToThread) => {
  switch (msg.type) {
    case 'runs':
      for (const r of msg.runs) void runJob(r.runId, r.job);
      return;
    case 'abort':
      controllers.get(msg.runId)?.abort(fromWire(msg.reason));
      return;
    case 'shutdown':
      // Only sent when no run is in flight. process.exit, not port.close: handles the module left open
      // (intervals, sockets) would otherwise keep the thread alive.
      process.exit(0);
  }
});

try {
  handlerFor = pickHandler(await import(processorUrl));
  post({ type: 'ready' });
} catch (err) {
  // The pool terminates this thread when it reads this message.
  post({ type: 'load-failed', error: toWire(err) });
}

/**
 * Finds the processor in a module: a default export that is a function, else a named export `process` that is
 * one, else a default export that maps job names to functions. Throws ERR_PROCESSOR_LOAD for anything else, so a
 * module that exports the wrong thing fails every job with one clear error instead of each with a TypeError.
 */
function pickHandler(mod: Record<string, unknown>): (name: string) => ThreadProcessor | undefined {
  const main = mod.default;
  if (typeof main === 'function') return () => main as ThreadProcessor;
  if (typeof mod.process === 'function') return () => mod.process as ThreadProcessor;
  if (typeof main === 'object' && main !== null) {
    const map = main as Record<string, unknown>;
    const names = Object.keys(map);
    if (names.length > 0 && names.every((name) => typeof map[name] === 'function')) {
      return (name) => (Object.hasOwn(map, name) ? (map[name] as ThreadProcessor) : undefined);
    }
  }
  throw poolError('ERR_PROCESSOR_LOAD', `${processorUrl} exports no processor: expected a default export that is a ` +
    `function or a { [jobName]: function } map, or a named export "process"`);
}

async function runJob(runId: number, wire: PoolJob): Promise<void> {
  let result: unknown;
  try {
    const processor = handlerFor(wire.name);
    if (processor === undefined) {
      throw poolError('ERR_NO_HANDLER', `${processorUrl} has no handler for job name ${JSON.stringify(wire.name)}`);
    }
    // No AbortController for a processor that takes no signal (never-signal.ts): an abort reaches no code of the
    // job then, and the pool still terminates the thread after abortGraceMs.
    let signal = NEVER_ABORTED;
    if (takesSignal(processor)) {
      const controller = new AbortController();
      controllers.set(runId, controller);
      signal = controller.signal;
    }
    result = await processor(makeJob(runId, wire), wire.token ?? '', signal);
  } catch (err) {
    end({ type: 'failed', runId, error: toWire(err) });
    return;
  } finally {
    controllers.delete(runId);
  }
  end({ type: 'done', runId, result });
}

function makeJob(runId: number, wire: PoolJob): ThreadJob {
  // The inline Job's log() resolves with the job's line count; here the count starts from what the job had when
  // it was handed over and counts this run's lines (the main thread logs them in the order they were posted).
  let lines = wire.logCount ?? 0;
  const job: ThreadJob = {
    id: wire.id,
    name: wire.name,
    queueName: wire.queueName ?? threadQueueName ?? '',
    data: wire.data,
    opts: wire.opts,
    attemptsMade: wire.attemptsMade,
    timestamp: wire.timestamp,
    processedOn: wire.processedOn,
    progress: wire.progress ?? 0,
    // Async for parity with the inline Job, but nothing is awaited: the message is queued on the port before this
    // returns, which is all the ordering the pool promises. A value structured clone refuses rejects here.
    async updateProgress(progress) {
      if (typeof progress !== 'number' && (typeof progress !== 'object' || progress === null)) {
        throw invalidArg('job.updateProgress() takes a number or an object');
      }
      post({ type: 'progress', runId, progress });
      job.progress = progress;
    },
    async log(line) {
      post({ type: 'log', runId, line: String(line) });
      return ++lines;
    },
  };
  return job;
}
