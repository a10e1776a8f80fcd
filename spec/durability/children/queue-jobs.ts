/**
 * The jobs of the queue kill tests, made deterministically from (run, i): the child that adds them and the parent
 * that checks them after a kill both call jobFor, so the parent can tell a job that was really added from
 * anything else, and check every field of it, without being told more than the id the child was given back.
 */
import { createHash } from 'node:crypto';

export interface PlannedJob {
  name: string;
  data: { r: number; i: number; fp: string; pad: string };
  opts: { jobId?: string; priority?: number; delay?: number; attempts?: number };
}

/** An hour: delayed jobs stay delayed for the whole test. */
export const LONG_DELAY_MS = 3_600_000;

export function fingerprint(run: number, i: number): string {
  return createHash('sha256').update(`spoolq-queue-kill:${run}:${i}`).digest('hex').slice(0, 16);
}

/** Job i of child run `run`: about one in four has a custom id, one in six is delayed, one in five prioritized. */
export function jobFor(run: number, i: number): PlannedJob {
  const opts: PlannedJob['opts'] = {};
  if (i % 4 === 1) opts.jobId = customId(run, i);
  if (i % 6 === 2) opts.delay = LONG_DELAY_MS;
  if (i % 5 === 3) opts.priority = 1 + (i % 9);
  if (i % 7 === 0) opts.attempts = 3;
  return {
    name: `n${(run * 7 + i) % 5}`,
    data: { r: run, i, fp: fingerprint(run, i), pad: 'x'.repeat((i * 37) % 400) },
    opts,
  };
}

export function customId(run: number, i: number): string {
  return `c-${run}-${i}`;
}
