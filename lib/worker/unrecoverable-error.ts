/**
 * UnrecoverableError: what a processor throws to fail a job for good, without the retries its `attempts` allow.
 *
 * Recognised by name, not by class: a processor in a worker_thread may import it from a different copy of the
 * package than the pool's, and structured clone drops classes anyway (see error-wire.ts). Any error whose name is
 * 'UnrecoverableError', or that carries `unrecoverable: true`, counts.
 */
export class UnrecoverableError extends Error {
  override name = 'UnrecoverableError';
}
