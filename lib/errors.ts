/**
 * SpoolError: the one error class spoolq throws on purpose.
 *
 * The `code` is the API and never changes meaning; the message is for people and may change. Each code below
 * says when it is returned. Failures of the file system are wrapped as ERR_IO with the original error kept as
 * `cause`, so `err.cause.code` still says ENOSPC or EIO.
 */

export const ERROR_CODES = {
  /** An argument or option at the public boundary is missing, of the wrong type, or out of range. */
  ERR_INVALID_ARG: 'ERR_INVALID_ARG',
  /** A record, segment header or index file fails its checksum or its framing cannot be trusted. */
  ERR_CORRUPT_RECORD: 'ERR_CORRUPT_RECORD',
  /** An encrypted record cannot be authenticated with the key named by its key id (wrong key or tampering). */
  ERR_DECRYPT: 'ERR_DECRYPT',
  /** An encrypted record names a key id that was not supplied. */
  ERR_KEY_MISSING: 'ERR_KEY_MISSING',
  /** Another process holds the lock that this operation needs. */
  ERR_LOCKED: 'ERR_LOCKED',
  /** A file-system call failed; `cause` holds the original error. Sticky for a writer until it is reopened. */
  ERR_IO: 'ERR_IO',
  /** The log, queue or worker was closed before or during the call. */
  ERR_CLOSED: 'ERR_CLOSED',
  /** A file begins with a known magic but a format version this build cannot read, or a process on the owner's
   *  socket speaks a protocol version this build does not (the two processes run different spoolq versions). */
  ERR_UNSUPPORTED_VERSION: 'ERR_UNSUPPORTED_VERSION',
  /** A directory that should hold a spoolq log or queue does not, or holds something else. */
  ERR_NOT_A_LOG: 'ERR_NOT_A_LOG',
  /** A record payload is larger than the format allows. */
  ERR_TOO_LARGE: 'ERR_TOO_LARGE',
  /** A record was asked for at a position that holds no such record: past the end, another seq, or a segment that
   *  no longer exists. (Bytes there that fail their checksum are ERR_CORRUPT_RECORD instead.) */
  ERR_NOT_FOUND: 'ERR_NOT_FOUND',
  /** The job is being processed: it cannot be removed (or obliterated without force) now. */
  ERR_JOB_ACTIVE: 'ERR_JOB_ACTIVE',
  /** A job ran past its `timeout`; its signal was aborted. */
  ERR_JOB_TIMEOUT: 'ERR_JOB_TIMEOUT',
  /** The worker's claim on the job was taken back (its lease expired) or the worker is closing. */
  ERR_LEASE_LOST: 'ERR_LEASE_LOST',
  /** A job's signal was aborted by its Worker (lease lost, close) and, in a thread, it did not stop in time. */
  ERR_JOB_ABORTED: 'ERR_JOB_ABORTED',
  /** The worker_thread running a job died: process.exit, an uncaught error, out of memory, or a neighbouring job
   *  that ignored its abort got the thread terminated. The job counts as stalled. */
  ERR_THREAD_CRASHED: 'ERR_THREAD_CRASHED',
  /** A processor module does not exist (refused when the Worker is made), or could not be loaded in a worker
   *  thread: it threw at import, exports no processor, or no thread could be spawned to load it. */
  ERR_PROCESSOR_LOAD: 'ERR_PROCESSOR_LOAD',
  /** A second Queue or Worker on a queue already open in this process asks for options that shape its owner
   *  (durability, encryption, compression, segment size, leases…) differently from those it was opened with. */
  ERR_OPTIONS_CONFLICT: 'ERR_OPTIONS_CONFLICT',
  /** No processor handles a job of this name (a map of handlers without one for it). */
  ERR_NO_HANDLER: 'ERR_NO_HANDLER',
  /** A peer on the owner's socket sent bytes that are not the protocol: a frame over the size limit, a frame that
   *  is not a message, or a message out of place. The connection is closed. */
  ERR_PROTOCOL: 'ERR_PROTOCOL',
  /** The process at the owner's socket address serves another queue than the one the client named. */
  ERR_WRONG_QUEUE: 'ERR_WRONG_QUEUE',
  /** The owner at the socket address has another epoch than the client expected: one of them is out of date (a
   *  takeover happened), and the client must find the current owner in the lock again. */
  ERR_EPOCH_MISMATCH: 'ERR_EPOCH_MISMATCH',
  /** The owner's socket could not be reached, or its connection was lost and not re-established; the message
   *  names the pid that holds the queue when the lock says. (Also: an owner opened outside the registry, as a test
   *  may, reaches no dead-letter queue's owner.) */
  ERR_OWNER_UNREACHABLE: 'ERR_OWNER_UNREACHABLE',
  /** A request to the owner got no reply within its timeout; whether the owner applied it is unknown. */
  ERR_TIMEOUT: 'ERR_TIMEOUT',
  /** The owner's socket path is held by a live listener or by a file that is not a socket, which is left alone. */
  ERR_ADDRESS_IN_USE: 'ERR_ADDRESS_IN_USE',
} as const;

export type SpoolErrorCode = keyof typeof ERROR_CODES;

export class SpoolError extends Error {
  readonly code: SpoolErrorCode;

  constructor(code: SpoolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpoolError';
    this.code = code;
  }
}

/** Wraps a failed fs call as ERR_IO, keeping the original as `cause`. A SpoolError passes through unchanged. */
export function ioError(what: string, cause: unknown): SpoolError {
  if (cause instanceof SpoolError) return cause;
  const sys = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new SpoolError('ERR_IO', `${what} failed${sys ? ` (${sys})` : ''}`, { cause });
}

export function invalidArg(message: string): SpoolError {
  return new SpoolError('ERR_INVALID_ARG', message);
}
