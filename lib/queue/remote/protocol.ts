/**
 * protocol: the messages on the owner's socket (DESIGN §2), and their failure story. Framing is frame.ts, the
 * per-turn batching outbox.ts, the two ends server.ts and client.ts. What a request body means is not the
 * transport's business: bodies and replies are opaque JSON values for the owner's request handler.
 *
 * Every frame's payload is a JSON array whose first element is the message kind:
 *
 *   kind          dir   layout                                  when
 *   HELLO     0   c→s   [0, version, queue, epoch, clientId, pid]  first frame of a connection, alone
 *   WELCOME   1   s→c   [1, version, epoch, pid]                 the HELLO is accepted
 *   REFUSED   2   s→c   [2, wireError]                          the HELLO (or a later frame) is refused; the
 *                                                                server then ends the connection
 *   REQUESTS  3   c→s   [3, [seq, body, seq, body, …]]          the requests of one turn of the client's loop
 *   REPLIES   4   s→c   [4, [key, value, key, value, …]]        the replies and notes of one turn of the server's:
 *                                                                key > 0  reply to request `key`, value its result
 *                                                                key < 0  request `-key` failed, value a WireError
 *                                                                key = 0  a notification (server push), value any
 *
 * Pairs are flat (no array per request) so a batch of a thousand costs one array, one JSON.stringify, one Buffer,
 * one write. JSON rules apply: `undefined` in a body or reply arrives as null; a value JSON cannot encode (a
 * BigInt, a cycle) fails that one request or reply with ERR_INVALID_ARG, the rest of its batch goes.
 *
 * Handshake. The client states the protocol version, the queue and the owner epoch it expects (read from the
 * owner's lock directory), its id and pid. The server refuses a mismatch with a code: ERR_UNSUPPORTED_VERSION,
 * ERR_WRONG_QUEUE, ERR_EPOCH_MISMATCH (an epoch mismatch means a takeover happened: the client must find the
 * current owner again). Anything other than HELLO first, or a frame before WELCOME on the client's side, is
 * ERR_PROTOCOL.
 *
 * Request keys. seq counts the requests of one client object from 1 and is never reused, across reconnects too,
 * so (clientId, seq) names one request for the client's whole life. Within one connection a seq is sent once;
 * after a reconnect every request whose reply never came is sent again, in seq order, before any newer one, so a
 * server may see a key twice (the new owner, or the same one after a dropped connection). The handler tells a
 * repeat by its key and applies it at most once (the owner records keys with what it wrote); the transport makes
 * sure only that the client's promise settles once, on the first reply; a later one for the same seq is dropped.
 *
 * Failure story (every wait has a bound):
 *   - connect + handshake: within connectTimeoutMs, else ERR_OWNER_UNREACHABLE naming the pid in the lock.
 *   - a request: within requestTimeoutMs of the call, else ERR_TIMEOUT; it is then forgotten (not sent again)
 *     and whether the owner applied it is unknown.
 *   - the connection is lost: the client keeps every unanswered request and asks its `reconnect()` for the
 *     current owner's address and epoch (failover decides who that is), a bounded number of times; requests made
 *     meanwhile wait behind the kept ones. Without `reconnect`, or when it gives up, they fail with its error.
 *   - the server: a bad frame or message from one client (over the limit, not JSON, out of place) gets REFUSED
 *     with ERR_PROTOCOL and that connection alone is closed; a client that sends no HELLO within helloTimeoutMs is
 *     dropped; replies for a client that went away are dropped (the work they report stays done).
 *   - the server keeps reading only while its writes drain: a client that stops reading its replies stops being
 *     read from (backpressure), instead of growing the server's memory.
 */
import { SpoolError } from '../../errors.js';
import type { WireError } from './reply-error.js';

/** Bumped by any change of the messages above; both ends must speak the same. */
export const PROTOCOL_VERSION = 1;

export const HELLO = 0;
export const WELCOME = 1;
export const REFUSED = 2;
export const REQUESTS = 3;
export const REPLIES = 4;

export interface Hello {
  version: number;
  queue: string;
  epoch: number;
  clientId: string;
  pid: number;
}

export interface Welcome {
  version: number;
  epoch: number;
  pid: number;
}

export function encodeHello(h: Hello): string {
  return JSON.stringify([HELLO, h.version, h.queue, h.epoch, h.clientId, h.pid]);
}

export function encodeWelcome(w: Welcome): string {
  return JSON.stringify([WELCOME, w.version, w.epoch, w.pid]);
}

export function encodeRefused(err: WireError): string {
  return JSON.stringify([REFUSED, err]);
}

/** Parses one frame's payload into [kind, ...fields]; ERR_PROTOCOL if it is not JSON or has no kind. */
export function parseMessage(payload: Buffer): unknown[] {
  let msg: unknown;
  try {
    msg = JSON.parse(payload.toString('utf8'));
  } catch (cause) {
    throw new SpoolError('ERR_PROTOCOL', 'a frame on the owner socket is not JSON', { cause });
  }
  if (!Array.isArray(msg) || !Number.isInteger(msg[0])) throw protocolError('a message without a kind');
  return msg;
}

export function parseHello(msg: unknown[]): Hello {
  const [kind, version, queue, epoch, clientId, pid] = msg;
  if (kind !== HELLO) throw protocolError(`message kind ${String(kind)} before the HELLO`);
  if (!Number.isSafeInteger(version) || typeof queue !== 'string' || !Number.isSafeInteger(epoch) ||
      typeof clientId !== 'string' || clientId === '' || clientId.length > 64 || !Number.isSafeInteger(pid)) {
    throw protocolError('a HELLO with missing or mistyped fields');
  }
  return { version: version as number, queue, epoch: epoch as number, clientId, pid: pid as number };
}

export function parseWelcome(msg: unknown[]): Welcome {
  const [, version, epoch, pid] = msg;
  if (!Number.isSafeInteger(version) || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(pid)) {
    throw protocolError('a WELCOME with missing or mistyped fields');
  }
  return { version: version as number, epoch: epoch as number, pid: pid as number };
}

/** The flat [key, value, …] list of a REQUESTS or REPLIES message; ERR_PROTOCOL if it is not one. */
export function pairsOf(msg: unknown[]): unknown[] {
  const flat = msg[1];
  if (msg.length !== 2 || !Array.isArray(flat) || flat.length % 2 !== 0) throw protocolError(`a kind ${String(msg[0])} message that holds no pairs`);
  return flat;
}

export function protocolError(what: string): SpoolError {
  return new SpoolError('ERR_PROTOCOL', `${what} on the owner socket`);
}
