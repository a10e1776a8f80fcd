/**
 * How long a failed attempt waits before the next: the built-in strategies and the hook for named custom ones.
 *
 *   fixed        delay
 *   exponential  delay × 2^(attemptsMade − 1)   (attemptsMade counts the attempt that just failed)
 *   jitter j     the result × (1 − j·random), so j = 0.5 spreads retries over [½·d, d]
 *   <name>       a function registered on the Worker as settings.backoffStrategies[name]
 *                (attemptsMade, err, job) => ms; a negative or non-finite result fails the job for good.
 * No backoff option means retry at once.
 */
import type { BackoffOptions } from './options.js';

export type BackoffStrategy = (attemptsMade: number, err: Error, job: { id: string; name: string; data: unknown }) => number;

/** ms to wait, or undefined when the job must not be retried (a custom strategy said so). */
export function backoffDelay(
  backoff: BackoffOptions | undefined,
  attemptsMade: number,
  err: Error,
  job: { id: string; name: string; data: unknown },
  custom: Record<string, BackoffStrategy> | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (!backoff) return 0;
  const delay = backoff.delay ?? 0;
  let ms: number;
  if (backoff.type === 'fixed') ms = delay;
  else if (backoff.type === 'exponential') ms = delay * 2 ** Math.max(0, attemptsMade - 1);
  else {
    const fn = custom?.[backoff.type];
    if (!fn) return 0; // unknown strategy: BullMQ retries at once too; the worker warns through 'error'
    ms = fn(attemptsMade, err, job);
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return undefined;
  }
  if (backoff.jitter) ms = ms * (1 - backoff.jitter * random());
  return Math.round(ms);
}
