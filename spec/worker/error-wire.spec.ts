import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpoolError } from '../../lib/errors.js';
import { fromWire, toWire, type WireError } from '../../lib/worker/error-wire.js';
import { UnrecoverableError } from '../../lib/worker/unrecoverable-error.js';

/** What the receiving thread gets: toWire, then a real structured clone, then fromWire. */
function acrossThreads(thrown: unknown): ReturnType<typeof fromWire> {
  return fromWire(structuredClone(toWire(thrown)));
}

class CustomError extends Error {
  override name = 'CustomError';
  readonly code = 'E_CUSTOM';
}

describe('error-wire', () => {
  for (const [what, thrown, expected] of [
    ['an Error', new Error('plain'), { name: 'Error', message: 'plain', code: undefined, cls: Error }],
    ['a TypeError with a code', Object.assign(new TypeError('typed'), { code: 'E_TYPE' }), { name: 'TypeError', message: 'typed', code: 'E_TYPE', cls: TypeError }],
    ['a SpoolError', new SpoolError('ERR_IO', 'disk'), { name: 'SpoolError', message: 'disk', code: 'ERR_IO', cls: SpoolError }],
    ['a subclass the receiver does not know', new CustomError('mine'), { name: 'CustomError', message: 'mine', code: 'E_CUSTOM', cls: Error }],
    ['an error with a numeric code', Object.assign(new Error('n'), { code: 25 }), { name: 'Error', message: 'n', code: 25, cls: Error }],
  ] as const) {
    it(`rebuilds ${what} with its class, name, message and code`, () => {
      const rebuilt = acrossThreads(thrown);
      assert.ok(rebuilt instanceof expected.cls);
      assert.equal(rebuilt.name, expected.name);
      assert.equal(rebuilt.message, expected.message);
      assert.equal(rebuilt.code, expected.code);
      assert.equal(rebuilt.unrecoverable, undefined);
    });
  }

  it('keeps the stack of the thread that threw, not the receiver’s', () => {
    const thrown = new Error('where');
    thrown.stack = 'Error: where\n    at processor (file:///app/send.js:3:9)';
    assert.equal(acrossThreads(thrown).stack, thrown.stack);
  });

  it('gives an error that arrived without a stack a one-line stack instead of the receiver’s', () => {
    assert.equal(fromWire({ name: 'Error', message: 'bare' }).stack, 'Error: bare');
  });

  it('rebuilds an UnrecoverableError as one, flagged unrecoverable', () => {
    const rebuilt = acrossThreads(new UnrecoverableError('stop'));
    assert.ok(rebuilt instanceof UnrecoverableError);
    assert.equal(rebuilt.unrecoverable, true);
    assert.equal(rebuilt.message, 'stop');
  });

  it('recognises an UnrecoverableError by name, from another copy of the class', () => {
    class UnrecoverableError extends Error {
      override name = 'UnrecoverableError';
    }
    assert.equal(acrossThreads(new UnrecoverableError('other copy')).unrecoverable, true);
  });

  for (const [what, thrown, message, code] of [
    ['a string', 'plain string', 'plain string', undefined],
    ['an object with a code', { code: 1 }, 'non-Error thrown: { code: 1 }', 1],
    ['undefined', undefined, 'non-Error thrown: undefined', undefined],
    ['null', null, 'non-Error thrown: null', undefined],
    ['a number', 42, 'non-Error thrown: 42', undefined],
  ] as const) {
    it(`turns a thrown ${what} into an Error with a readable message`, () => {
      const rebuilt = acrossThreads(thrown);
      assert.ok(rebuilt instanceof Error);
      assert.equal(rebuilt.name, 'Error');
      assert.equal(rebuilt.message, message);
      assert.equal(rebuilt.code, code);
    });
  }

  it('treats an object with a string message as an error', () => {
    const rebuilt = acrossThreads({ name: 'HttpError', message: 'teapot', code: 'E418' });
    assert.equal(rebuilt.name, 'HttpError');
    assert.equal(rebuilt.message, 'teapot');
    assert.equal(rebuilt.code, 'E418');
  });

  it('carries a chain of causes, rebuilt', () => {
    const root = new SpoolError('ERR_IO', 'fsync');
    const rebuilt = acrossThreads(new Error('outer', { cause: new TypeError('middle', { cause: root }) }));
    const middle = rebuilt.cause as Error;
    assert.ok(middle instanceof TypeError);
    assert.equal(middle.message, 'middle');
    assert.ok(middle.cause instanceof SpoolError);
    assert.equal((middle.cause as SpoolError).code, 'ERR_IO');
  });

  it('cuts a cyclic cause chain instead of looping', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    let depth = 0;
    for (let w: WireError | undefined = toWire(a); w !== undefined; w = w.cause) depth++;
    assert.equal(depth, 5);
  });

  it('never throws for a value whose getters throw', () => {
    const hostile = new Proxy({}, { get() { throw new Error('no reading me'); }, has() { throw new Error('nor this'); } });
    const wire = toWire(hostile);
    assert.equal(wire.name, 'Error');
    assert.equal(typeof wire.message, 'string');
  });

  it('produces plain data that structured clone copies exactly', () => {
    const wire = toWire(Object.assign(new UnrecoverableError('x', { cause: 'why' }), { code: 'E_X' }));
    assert.deepEqual(structuredClone(wire), wire);
    assert.deepEqual(Object.keys(wire).sort(), ['cause', 'code', 'message', 'name', 'stack', 'unrecoverable']);
  });
});
