/**
 * The no-op processor module that queue-process.ts runs in worker_threads (a Worker given a module path). Not a
 * benchmark: it does nothing, so a run measures the queue, the tickets and the thread hop, not the job.
 */
export default function noop(): null {
  return null;
}
