/**
 * The public types of Queue and Worker events. The checks are made by the compiler: this file is part of the
 * build (tsconfig includes spec/), so `npm test`, which builds first, fails when a positive use stops compiling
 * or when a line marked `@ts-expect-error` (a misspelled event, a wrong payload) starts to. The runtime test at the
 * end runs the same listeners against a real queue, so the types describe what is really emitted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Job, Queue, QueueEvents, Worker, type QueueEventMap, type WorkerEventMap } from '../lib/index.js';
import { SAFETY, setup, waitFor } from './helpers/queue.js';

interface Data {
  to: string;
}
type Result = { sent: number };

/** true when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function same<A, B>(_proof: Equal<A, B>): void {}

/** Never called: compiled for its types. */
export function queueEventsTypes(qe: QueueEvents<Result>): void {
  qe.on('completed', ({ jobId, returnvalue, prev }, id) => {
    same<typeof jobId, string>(true);
    same<typeof returnvalue, Result>(true);
    same<typeof prev, 'active'>(true);
    same<typeof id, string>(true);
  });
  qe.on('failed', ({ failedReason }) => same<typeof failedReason, string>(true));
  qe.on('delayed', ({ delay }) => same<typeof delay, number>(true));
  qe.on('retries-exhausted', ({ attemptsMade }) => same<typeof attemptsMade, number>(true));
  qe.on('drained', (id) => same<typeof id, string>(true));
  qe.on('error', (err) => same<typeof err, Error>(true));
  // @ts-expect-error a misspelled event name does not compile
  qe.on('complete', () => undefined);
  // @ts-expect-error the returnvalue is a Result, not a number
  qe.on('completed', (_p: { jobId: string; returnvalue: number }) => undefined);
}

/** Never called: compiled for its types. */
export function workerEventTypes(w: Worker<Data, Result>): void {
  w.on('completed', (job, result, prev) => {
    same<typeof job, Job<Data, Result>>(true);
    same<typeof result, Result>(true);
    same<typeof prev, 'active'>(true);
  });
  w.on('failed', (job, err) => {
    same<typeof job, Job<Data, Result>>(true);
    same<typeof err, Error>(true);
  });
  w.on('active', (job) => same<typeof job.data, Data>(true));
  w.on('progress', (job, progress) => {
    same<typeof job, Job<Data, Result>>(true);
    same<typeof progress, number | object>(true);
  });
  w.once('stalled', (jobId) => same<typeof jobId, string>(true));
  w.on('error', (err) => same<typeof err, Error>(true));
  w.on('drained', () => undefined).on('ready', () => undefined).off('closed', () => undefined);
  same<WorkerEventMap<Data, Result>['completed'], [job: Job<Data, Result>, result: Result, prev: 'active']>(true);
  // @ts-expect-error a misspelled event name does not compile
  w.on('complete', () => undefined);
  // @ts-expect-error nor does an event BullMQ's Worker has and this one does not emit
  w.on('lockRenewalFailed', () => undefined);
  // @ts-expect-error the result is a Result, not a number
  w.on('completed', (_job, _result: number) => undefined);
  // @ts-expect-error 'stalled' gives the job's id, not a Job
  w.on('stalled', (_job: Job) => undefined);
  // @ts-expect-error the job's data is a Data
  w.on('active', (_job: Job<{ other: boolean }, Result>) => undefined);
}

/** Never called: compiled for its types. */
export function queueEventTypes(q: Queue<Data, Result>): void {
  q.on('completed', ({ jobId, returnvalue }) => {
    same<typeof jobId, string>(true);
    same<typeof returnvalue, Result>(true);
  });
  q.on('failed', ({ jobId, failedReason, final }) => {
    same<[typeof jobId, typeof failedReason, typeof final], [string, string, boolean]>(true);
  });
  q.on('delayed', ({ delay }) => same<typeof delay, number>(true));
  q.on('progress', ({ data }) => same<typeof data, unknown>(true));
  q.on('waiting', ({ jobId }) => same<typeof jobId, string>(true));
  q.once('removed', ({ jobId }) => same<typeof jobId, string>(true));
  q.on('paused', () => undefined).on('resumed', () => undefined).on('drained', () => undefined);
  q.on('error', (err) => same<typeof err, Error>(true));
  same<QueueEventMap<Result>['completed'], [{ jobId: string; returnvalue: Result }]>(true);
  // @ts-expect-error a misspelled event name does not compile
  q.on('complted', () => undefined);
  // @ts-expect-error a Queue event carries { jobId, … }, not a Job
  q.on('completed', (_job: Job) => undefined);
  // @ts-expect-error jobId is a string
  q.on('failed', (_e: { jobId: number }) => undefined);
  // @ts-expect-error 'paused' has no argument to take
  q.on('paused', (_e: { jobId: string }) => undefined);
}

describe('typed events', () => {
  it('gives the listeners the arguments their types say', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue<Data, Result>();
    const w = s.worker<Data, Result>('q', async (job) => ({ sent: job.data.to.length }));
    const seen: unknown[] = [];
    const queueCompleted = new Promise<void>((resolve) => {
      q.on('completed', ({ jobId, returnvalue }) => {
        seen.push(['queue', jobId, returnvalue.sent]);
        resolve();
      });
    });
    w.on('completed', (job, result, prev) => seen.push(['worker', job.data.to, result.sent, prev, job instanceof Job]));
    const workerCompleted = waitFor(w, 'completed');
    const job = await q.add('mail', { to: 'ada@example.com' });
    await Promise.all([queueCompleted, workerCompleted]);
    assert.deepEqual(seen.sort(), [['queue', job.id, 15], ['worker', 'ada@example.com', 15, 'active', true]]);
  });
});
