/**
 * error-wire: errors across the thread boundary, and the errors the thread pool makes itself.
 *
 * Structured clone keeps an Error's message and stack but drops its class, `code` and other fields, so the pool
 * never posts an Error: the sending side turns whatever was thrown into a WireError with `toWire`, the receiving
 * side rebuilds it with `fromWire`. Both directions use this: job failures go thread → main, abort reasons go
 * main → thread (the processor sees `signal.reason` with its code intact).
 *
 * What survives: name, message, stack, `code` (string or number), `unrecoverable`, and a chain of causes (at most
 * MAX_CAUSE_DEPTH deep, so a cyclic cause cannot loop). Rebuilt classes: SpoolError (instanceof and code),
 * UnrecoverableError, and the built-in Error subclasses; any other name is kept as the `name` of a plain Error.
 * Thrown values that are not errors (`throw 'x'`, `throw { code: 1 }`, `throw undefined`) become errors: a string is
 * the message; anything else is described with util.inspect, and its `code` is kept if it has one.
 *
 * Does not own: deciding what an error means for a job (the Worker does that).
 */
import { inspect } from 'node:util';
import { SpoolError, type SpoolErrorCode } from '../errors.js';
import { UnrecoverableError } from './unrecoverable-error.js';

/** An error as it crosses threads: plain data that structured clone copies exactly. */
export interface WireError {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
  /** Present (true) when the processor threw an UnrecoverableError: the job must not be retried. */
  unrecoverable?: true;
  cause?: WireError;
}

/** An error rebuilt by `fromWire`: whatever class fits, plus the fields that crossed. */
export type RebuiltError = Error & { code?: string | number; unrecoverable?: true };

const MAX_CAUSE_DEPTH = 4;

const BUILT_IN_ERRORS: Record<string, ErrorConstructor> = {
  TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
};

/** Turns anything thrown into a WireError. Never throws, whatever the value's getters do. */
export function toWire(thrown: unknown, depth = 0): WireError {
  try {
    if (isErrorLike(thrown)) {
      const e = thrown as { name?: unknown; message: string; code?: unknown; stack?: unknown; unrecoverable?: unknown; cause?: unknown };
      const wire: WireError = { name: typeof e.name === 'string' && e.name !== '' ? e.name : 'Error', message: e.message };
      if (typeof e.code === 'string' || typeof e.code === 'number') wire.code = e.code;
      if (typeof e.stack === 'string') wire.stack = e.stack;
      if (wire.name === 'UnrecoverableError' || e.unrecoverable === true) wire.unrecoverable = true;
      if (e.cause !== undefined && depth < MAX_CAUSE_DEPTH) wire.cause = toWire(e.cause, depth + 1);
      return wire;
    }
    if (typeof thrown === 'string') return { name: 'Error', message: thrown };
    const wire: WireError = { name: 'Error', message: `non-Error thrown: ${inspect(thrown, { depth: 2, breakLength: Infinity })}` };
    const code = typeof thrown === 'object' && thrown !== null ? (thrown as { code?: unknown }).code : undefined;
    if (typeof code === 'string' || typeof code === 'number') wire.code = code;
    return wire;
  } catch {
    // A throwing getter or a hostile Proxy: there is nothing more to read, and the job must still fail cleanly.
    return { name: 'Error', message: 'a value that could not be read was thrown' };
  }
}

/** Rebuilds an error sent by `toWire` on the other side. The stack is the original one, not the receiver's. */
export function fromWire(wire: WireError): RebuiltError {
  const options = wire.cause !== undefined ? { cause: fromWire(wire.cause) } : undefined;
  let err: RebuiltError;
  if (wire.name === 'UnrecoverableError') {
    err = new UnrecoverableError(wire.message, options);
  } else if (wire.name === 'SpoolError' && typeof wire.code === 'string') {
    err = new SpoolError(wire.code as SpoolErrorCode, wire.message, options);
  } else if (Object.hasOwn(BUILT_IN_ERRORS, wire.name)) {
    err = new BUILT_IN_ERRORS[wire.name](wire.message, options);
  } else {
    err = new Error(wire.message, options);
    // Non-enumerable, like Error.prototype.name, so the rebuilt error prints and compares like the original.
    if (wire.name !== 'Error') Object.defineProperty(err, 'name', { value: wire.name, writable: true, configurable: true });
  }
  if (wire.code !== undefined && err.code === undefined) err.code = wire.code;
  if (wire.unrecoverable) err.unrecoverable = true;
  // Without a stack from the other side, say so rather than show this thread's stack, which would mislead.
  err.stack = wire.stack ?? `${wire.name}: ${wire.message}`;
  return err;
}

function isErrorLike(value: unknown): boolean {
  return value instanceof Error || (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string');
}

/** The codes the thread pool reports (their "when" lines are in lib/errors.ts). */
export type PoolErrorCode =
  | 'ERR_JOB_TIMEOUT' | 'ERR_JOB_ABORTED' | 'ERR_THREAD_CRASHED' | 'ERR_PROCESSOR_LOAD' | 'ERR_NO_HANDLER' | 'ERR_CLOSED';

export function poolError(code: PoolErrorCode, message: string, options?: { cause?: unknown }): SpoolError {
  return new SpoolError(code, message, options);
}
