/**
 * backoffDelay (lib/queue/backoff.ts): the wait before the next attempt, with the random source injected so
 * jitter's bounds are exact. The Worker's use of it is in spec/queue/job-options.spec.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, type BackoffStrategy } from '../../lib/queue/backoff.js';

const err = new Error('failed');
const job = { id: '7', name: 'send', data: { to: 'x' } };
const never = (): number => assert.fail('random must not be drawn without jitter');

describe('backoffDelay', () => {
  it('retries at once without a backoff option', () => {
    assert.equal(backoffDelay(undefined, 3, err, job, undefined, never), 0);
  });

  for (const attemptsMade of [1, 2, 5]) {
    it(`waits the fixed delay after attempt ${attemptsMade}`, () => {
      assert.equal(backoffDelay({ type: 'fixed', delay: 250 }, attemptsMade, err, job, undefined, never), 250);
    });
  }

  for (const [attemptsMade, ms] of [[1, 100], [2, 200], [3, 400], [10, 51_200]] as const) {
    it(`waits delay × 2^(attempts − 1) = ${ms} ms exponentially after attempt ${attemptsMade}`, () => {
      assert.equal(backoffDelay({ type: 'exponential', delay: 100 }, attemptsMade, err, job, undefined, never), ms);
    });
  }

  it('treats a missing delay as 0', () => {
    assert.equal(backoffDelay({ type: 'exponential' }, 4, err, job, undefined, never), 0);
  });

  for (const [jitter, random, ms] of [
    [0.5, 0, 1000], [0.5, 0.999999, 500], [0.5, 0.5, 750], [1, 0.999999, 0], [1, 0, 1000], [0.2, 0.5, 900],
  ] as const) {
    it(`spreads a 1000 ms delay to ${ms} ms with jitter ${jitter} and random ${random}`, () => {
      assert.equal(backoffDelay({ type: 'fixed', delay: 1000, jitter }, 1, err, job, undefined, () => random), ms);
    });
  }

  it('keeps jittered delays within [d × (1 − jitter), d] for any random draw', () => {
    for (let i = 0; i <= 100; i++) {
      const r = i / 100.5;
      const ms = backoffDelay({ type: 'exponential', delay: 300, jitter: 0.4 }, 2, err, job, undefined, () => r)!;
      assert.ok(ms >= 360 && ms <= 600, `${ms} out of [360, 600] for random ${r}`);
    }
  });

  it('calls a named strategy with attempts, error and job, and rounds what it returns', () => {
    const calls: unknown[] = [];
    const strategies: Record<string, BackoffStrategy> = {
      linear: (attemptsMade, e, j) => {
        calls.push([attemptsMade, e, j]);
        return attemptsMade * 10.4;
      },
    };
    assert.equal(backoffDelay({ type: 'linear' }, 3, err, job, strategies, never), 31);
    assert.deepEqual(calls, [[3, err, job]]);
  });

  it('jitters what a named strategy returns', () => {
    const strategies = { flat: (): number => 800 };
    assert.equal(backoffDelay({ type: 'flat', jitter: 0.5 }, 1, err, job, strategies, () => 0.5), 600);
  });

  for (const [what, value] of [['negative', -1], ['NaN', Number.NaN], ['infinite', Infinity], ['not a number', '10']] as const) {
    it(`says not to retry when a named strategy returns a ${what} value`, () => {
      const strategies = { odd: (() => value) as unknown as BackoffStrategy };
      assert.equal(backoffDelay({ type: 'odd' }, 1, err, job, strategies, never), undefined);
    });
  }

  it('retries at once for a strategy that is not registered', () => {
    assert.equal(backoffDelay({ type: 'missing', delay: 5000 }, 1, err, job, { other: () => 1 }, never), 0);
    assert.equal(backoffDelay({ type: 'missing', delay: 5000 }, 1, err, job, undefined, never), 0);
  });

  it('lets an error thrown by a named strategy through to the caller', () => {
    const strategies = { boom: (): number => { throw new Error('strategy bug'); } };
    assert.throws(() => backoffDelay({ type: 'boom' }, 1, err, job, strategies, never), /strategy bug/);
  });
});
