/**
 * reply-error: how a failed request's error crosses the owner's socket, so a client gets the same SpoolError
 * code as a caller in the owner's process.
 *
 * The shape is lib/worker/error-wire.ts's WireError ({ name, message, code?, stack?, cause? }), so a worker's
 * error and an owner's reply read alike; it is written again here because lib/queue sits below lib/worker and
 * may not import it. What is rebuilt: SpoolError (instanceof and code), and the built-in Error subclasses; any
 * other name is kept as the `name` of a plain Error, with its `code`. Causes go along, at most MAX_CAUSE_DEPTH
 * deep. The stack is the owner's (it says where the request failed); the client's own call site is lost, as with
 * any reply from another process.
 */
import { SpoolError, type SpoolErrorCode } from '../../errors.js';

export interface WireError {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
  cause?: WireError;
}

const MAX_CAUSE_DEPTH = 4;

const BUILT_IN_ERRORS: Record<string, ErrorConstructor> = {
  TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
};

/** Turns what a handler threw into plain data. Never throws. */
export function errorToWire(thrown: unknown, depth = 0): WireError {
  try {
    if (thrown instanceof Error) {
      const e = thrown as Error & { code?: unknown };
      const wire: WireError = { name: e.name || 'Error', message: String(e.message) };
      if (typeof e.code === 'string' || typeof e.code === 'number') wire.code = e.code;
      if (typeof e.stack === 'string') wire.stack = e.stack;
      if (e.cause !== undefined && depth < MAX_CAUSE_DEPTH) wire.cause = errorToWire(e.cause, depth + 1);
      return wire;
    }
    return { name: 'Error', message: typeof thrown === 'string' ? thrown : `non-Error thrown: ${String(thrown)}` };
  } catch {
    // A throwing getter or a hostile Proxy: nothing more can be read, and the request must still fail cleanly.
    return { name: 'Error', message: 'a value that could not be read was thrown' };
  }
}

/** Rebuilds an error sent by errorToWire. Tolerates a malformed value (a peer's bug) by describing it. */
export function errorFromWire(value: unknown): Error {
  const wire = value as Partial<WireError> | null;
  if (wire === null || typeof wire !== 'object' || typeof wire.message !== 'string') {
    return new SpoolError('ERR_PROTOCOL', 'the owner sent an error reply that is not an error');
  }
  const options = wire.cause !== undefined ? { cause: errorFromWire(wire.cause) } : undefined;
  const name = typeof wire.name === 'string' ? wire.name : 'Error';
  let err: Error & { code?: string | number };
  if (name === 'SpoolError' && typeof wire.code === 'string') {
    err = new SpoolError(wire.code as SpoolErrorCode, wire.message, options);
  } else if (Object.hasOwn(BUILT_IN_ERRORS, name)) {
    err = new BUILT_IN_ERRORS[name]!(wire.message, options);
  } else {
    err = new Error(wire.message, options);
    if (name !== 'Error') Object.defineProperty(err, 'name', { value: name, writable: true, configurable: true });
  }
  if ((typeof wire.code === 'string' || typeof wire.code === 'number') && err.code === undefined) err.code = wire.code;
  err.stack = typeof wire.stack === 'string' ? wire.stack : `${name}: ${wire.message}`;
  return err;
}
