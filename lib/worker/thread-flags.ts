/**
 * thread-flags: the node flags a ThreadPool thread starts with, so that threads start under every flag Node accepts
 * for the main thread. Owns only that choice; the pool (thread-pool.ts) decides what a failed spawn means.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The execArgv threads are spawned with. Undefined, the default, makes Node give each thread this process's flags,
 * and Node then accepts every flag the main thread started with. Given explicitly, Node refuses V8 options
 * (--max-old-space-size, --expose-gc, --prof, --stack-size, --abort-on-uncaught-exception…) and per-process ones
 * (--title…) with ERR_WORKER_INVALID_EXEC_ARGV (worker_threads docs, `execArgv`): those act on the whole process,
 * threads included, anyway. So flags are given explicitly only to leave out --input-type: it is only valid with
 * -e/stdin input, and a thread inheriting it from `node --input-type=module -e …` dies resolving its own script.
 * Then the rest (loaders, --conditions, --enable-source-maps…) is passed on, minus what Node names as refused at
 * the first spawn (startThread); if it still refuses, the spawn throws, which the pool treats as a load failure.
 */
let threadExecArgv: string[] | undefined = (() => {
  const kept = process.execArgv.filter((arg, i, all) => !arg.startsWith('--input-type') && !(i > 0 && all[i - 1] === '--input-type'));
  return kept.length === process.execArgv.length ? undefined : kept;
})();

/** new Worker(entry) with threadExecArgv; drops the flags Node refuses from it once (see threadExecArgv). */
export function startThread(entry: URL, opts: Omit<WorkerOptions, 'execArgv'>): Worker {
  try {
    return new Worker(entry, { ...opts, execArgv: threadExecArgv });
  } catch (err) {
    if (threadExecArgv === undefined || (err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    // Node's message lists the refused flags after the colon, comma-separated, each as it was given.
    const refused = new Set(String((err as Error).message).replace(/^[^:]*:\s*/, '').split(/,\s*/));
    const kept = threadExecArgv.filter((arg) => !refused.has(arg));
    if (kept.length === threadExecArgv.length) throw err;
    threadExecArgv = kept;
    return new Worker(entry, { ...opts, execArgv: threadExecArgv });
  }
}
