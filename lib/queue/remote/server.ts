/**
 * RemoteServer: the owner's end of its local socket (protocol.ts has the messages and the failure story). Owns
 * listening, the handshake, reading requests into batches for the handler, writing each reply once it settles,
 * pushing notes, and closing. Does not own what a request means, nor whether a repeated key was applied: the
 * handler does (it is the owner's one request handler, the same in-process callers use).
 *
 * A connection: accepted → HELLO checked (version, queue, epoch) → WELCOME, or REFUSED and ended → open:
 * every REQUESTS message is one call of `handle(batch)`, which returns one reply per request, a value or a
 * promise that settles when the owner's records for it are as durable as the mode promises. Each reply goes into
 * the connection's Outbox as it settles, so replies of one turn go out in one write, in the order they settled
 * (not necessarily the order of the requests: the client matches them by seq).
 *
 * Errors from a client (a bad frame, JSON that is not a message, a second HELLO) refuse that connection alone
 * with ERR_PROTOCOL: nothing a peer sends can throw out of a socket callback. A handler that throws fails every
 * request of its batch with what it threw; a reply JSON cannot encode fails that reply with ERR_INVALID_ARG.
 *
 * Backpressure: when a write is buffered past the socket's high-water mark, the connection stops being read until
 * it drains, so a client that sends but does not read cannot grow the server's memory without bound.
 *
 * close(graceMs): stops accepting and reading, waits up to graceMs for the replies still owed, writes them, ends
 * every connection, and removes the socket file. Replies owed past the grace are dropped; their clients send
 * those requests again to the next owner, which tells the repeats by key.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SpoolError, ioError } from '../../errors.js';
import { prepareSocketPath, removeSocketFile, removeStaleSocket, sweepStaleSockets } from './address.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from './frame.js';
import { Outbox } from './outbox.js';
import {
  encodeRefused, encodeWelcome, pairsOf, parseHello, parseMessage, protocolError, PROTOCOL_VERSION, REPLIES, REQUESTS,
  type Hello,
} from './protocol.js';
import { errorToWire } from './reply-error.js';

/** The requests of one REQUESTS message. The request key of requests[i] is (connection.clientId, seqs[i]). */
export interface RequestBatch {
  readonly connection: ServerConnection;
  readonly seqs: readonly number[];
  readonly requests: readonly unknown[];
}

/** One reply per request, in the batch's order: a JSON value, or a promise of one; a rejection is an error reply. */
export type RequestHandler = (batch: RequestBatch) => ReadonlyArray<unknown>;

export interface RemoteServerOptions {
  /** A socket path or pipe name, e.g. from prepareSocketPath(). */
  address: string;
  queue: string;
  epoch: number;
  handle: RequestHandler;
  /** A client completed its handshake. */
  onConnection?: (conn: ServerConnection) => void;
  /** A client's connection ended, for whatever reason (`cause` when it was an error). */
  onDisconnect?: (conn: ServerConnection, cause?: Error) => void;
  maxFrameBytes?: number;
  /** A connection that has not sent its HELLO by then is dropped. Default 10 s. */
  helloTimeoutMs?: number;
}

export class RemoteServer {
  readonly address: string;
  readonly #opts: RemoteServerOptions;
  readonly #server: net.Server;
  readonly #connections = new Set<ServerConnection>();
  /** Sockets accepted but not yet through the handshake. */
  readonly #greeting = new Set<net.Socket>();
  #closing: Promise<void> | undefined;

  private constructor(opts: RemoteServerOptions, server: net.Server) {
    this.address = opts.address;
    this.#opts = opts;
    this.#server = server;
  }

  /**
   * Listens at opts.address (POSIX: its directory must be private; removes a stale socket there first and sweeps
   * older owners' stale sockets beside it). Resolves once listening, the socket file 0600.
   */
  static async listen(opts: RemoteServerOptions): Promise<RemoteServer> {
    const posix = !opts.address.startsWith('\\\\');
    if (posix) {
      assertPrivateDir(path.dirname(opts.address));
      await removeStaleSocket(opts.address);
      await sweepStaleSockets(opts.address);
    }
    let self: RemoteServer | undefined;
    const server = net.createServer((socket) => self!.#accept(socket));
    self = new RemoteServer(opts, server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.address, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err) => {
      throw (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
        ? new SpoolError('ERR_ADDRESS_IN_USE', `another process listens at ${opts.address}`, { cause: err })
        : ioError(`listen at ${opts.address}`, err);
    });
    if (posix) {
      try {
        // The directory (0700, address.ts) keeps everyone else out until this chmod; the file is private after.
        fs.chmodSync(opts.address, 0o600);
      } catch (err) {
        server.close();
        throw ioError(`make ${opts.address} private`, err);
      }
    }
    server.on('error', () => undefined); // errors of an accepting server after listen are per connection
    return self;
  }

  /** prepareSocketPath + listen, for an owner of `queueDir`. */
  static async listenFor(queueDir: string, opts: Omit<RemoteServerOptions, 'address'>): Promise<RemoteServer> {
    return RemoteServer.listen({ ...opts, address: prepareSocketPath(queueDir, opts.epoch) });
  }

  get connections(): ReadonlySet<ServerConnection> {
    return this.#connections;
  }

  close(graceMs = 5_000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#greeting) socket.destroy();
    await Promise.all([...this.#connections].map((c) => c.drain(graceMs)));
    await stopped;
    if (!this.address.startsWith('\\\\')) removeSocketFile(this.address);
  }

  #accept(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#greeting.add(socket);
    const decoder = new FrameDecoder(this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES);
    const timer = setTimeout(() => socket.destroy(), this.#opts.helloTimeoutMs ?? 10_000);
    const done = (): void => {
      clearTimeout(timer);
      this.#greeting.delete(socket);
      socket.off('data', onData);
    };
    const refuse = (err: SpoolError): void => {
      done();
      socket.end(encodeFrame(encodeRefused(errorToWire(err))));
      socket.destroySoon();
    };
    const onData = (chunk: Buffer): void => {
      let hello: Hello | undefined;
      let rest: Buffer[] = [];
      try {
        decoder.push(chunk, (payload) => {
          if (hello === undefined) hello = parseHello(parseMessage(payload));
          else rest.push(Buffer.from(payload)); // pipelined behind the HELLO: the connection reads these next
        });
      } catch (err) {
        refuse(err instanceof SpoolError ? err : protocolError('a bad HELLO'));
        return;
      }
      if (hello === undefined) return;
      const refusal = this.#check(hello);
      if (refusal) {
        refuse(refusal);
        return;
      }
      done();
      const conn = new ServerConnection(this, socket, hello, decoder, this.#opts);
      this.#connections.add(conn);
      socket.write(encodeFrame(encodeWelcome({ version: PROTOCOL_VERSION, epoch: this.#opts.epoch, pid: process.pid })));
      this.#opts.onConnection?.(conn);
      for (const payload of rest) conn.receive(payload);
      rest = [];
    };
    socket.on('data', onData);
    socket.on('error', () => undefined); // a reset client: 'close' follows, and the connection is dropped there
    socket.once('close', () => done());
  }

  #check(h: Hello): SpoolError | undefined {
    if (h.version !== PROTOCOL_VERSION) {
      return new SpoolError('ERR_UNSUPPORTED_VERSION', `the owner speaks protocol version ${PROTOCOL_VERSION}, the client ${h.version}: run the same spoolq version in both`);
    }
    if (h.queue !== this.#opts.queue) return new SpoolError('ERR_WRONG_QUEUE', `this owner serves queue '${this.#opts.queue}', not '${h.queue}'`);
    if (h.epoch !== this.#opts.epoch) {
      return new SpoolError('ERR_EPOCH_MISMATCH', `the owner of '${this.#opts.queue}' (pid ${process.pid}) is at epoch ${this.#opts.epoch}, the client expected ${h.epoch}`);
    }
    return undefined;
  }

  /** @internal */
  forget(conn: ServerConnection, cause?: Error): void {
    if (this.#connections.delete(conn)) this.#opts.onDisconnect?.(conn, cause);
  }
}

/** A client's connection, past its handshake. Lives until either end closes it. */
export class ServerConnection {
  readonly clientId: string;
  /** The client's process id, as it said in its HELLO (for diagnostics and for telling whose work was whose). */
  readonly pid: number;
  readonly #server: RemoteServer;
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  readonly #handle: RequestHandler;
  readonly #outbox: Outbox;
  /** Replies the handler owes this connection. */
  #owed = 0;
  #draining: (() => void) | undefined;
  #closed = false;

  /** @internal */
  constructor(server: RemoteServer, socket: net.Socket, hello: Hello, decoder: FrameDecoder, opts: RemoteServerOptions) {
    this.clientId = hello.clientId;
    this.pid = hello.pid;
    this.#server = server;
    this.#socket = socket;
    this.#decoder = decoder;
    this.#handle = opts.handle;
    this.#outbox = new Outbox(REPLIES, {
      write: (buf) => {
        if (!socket.write(buf) && !this.#closed) socket.pause();
      },
      reject: (key, err) => {
        if (key !== 0) this.#outbox.push(-key, errorToWire(err));
      },
    }, opts.maxFrameBytes ?? MAX_FRAME_BYTES);
    socket.on('drain', () => {
      if (!this.#draining) socket.resume();
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (payload) => this.receive(payload));
      } catch (err) {
        this.#refuse(err instanceof SpoolError ? err : protocolError('a frame that could not be read'));
      }
    });
    socket.once('close', () => this.#gone());
  }

  /** Pushes a note to the client (a REPLIES pair with key 0), in this turn's write. Dropped once closed. */
  notify(message: unknown): void {
    this.#outbox.push(0, message);
  }

  /** Ends the connection now: replies still owed are dropped (the client sends those requests again). */
  close(): void {
    this.#socket.destroy();
  }

  /** @internal One whole frame from the client, after the handshake. */
  receive(payload: Buffer): void {
    if (this.#closed || this.#draining) return;
    let seqs: number[];
    let requests: unknown[];
    try {
      const msg = parseMessage(payload);
      if (msg[0] !== REQUESTS) throw protocolError(`message kind ${String(msg[0])} from a client`);
      const flat = pairsOf(msg);
      const n = flat.length >> 1;
      seqs = new Array<number>(n);
      requests = new Array<unknown>(n);
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        const seq = flat[j];
        if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= 0) throw protocolError(`a request seq ${String(seq)}`);
        seqs[i] = seq;
        requests[i] = flat[j + 1];
      }
    } catch (err) {
      this.#refuse(err instanceof SpoolError ? err : protocolError('a bad message'));
      return;
    }
    let replies: ReadonlyArray<unknown>;
    try {
      replies = this.#handle({ connection: this, seqs, requests });
      if (!Array.isArray(replies)) throw new TypeError('the request handler returned no array of replies');
    } catch (err) {
      const wire = errorToWire(err);
      for (const seq of seqs) this.#outbox.push(-seq, wire);
      return;
    }
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      const r = i < replies.length ? replies[i] : Promise.reject(new Error(`the request handler gave no reply to request ${seq}`));
      if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') {
        this.#owed++;
        (r as PromiseLike<unknown>).then(
          (value) => this.#settle(seq, value),
          (err: unknown) => this.#settle(-seq, errorToWire(err)),
        );
      } else {
        this.#outbox.push(seq, r);
      }
    }
  }

  #settle(key: number, value: unknown): void {
    this.#owed--;
    this.#outbox.push(key, value);
    if (this.#owed === 0 && this.#draining) this.#draining();
  }

  /**
   * @internal For the server's close: stop reading, wait up to graceMs for owed replies, write them, end; a
   * client that does not end its side within another graceMs is cut off.
   */
  drain(graceMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#closed) return resolve();
      this.#socket.pause();
      let cutOff: NodeJS.Timeout | undefined;
      this.#socket.once('close', () => {
        clearTimeout(timer);
        clearTimeout(cutOff);
        resolve();
      });
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        this.#socket.end();
        // Read again, to see the client's end (what it sends now is dropped: receive() refuses while draining).
        this.#socket.resume();
        cutOff = setTimeout(() => this.#socket.destroy(), graceMs);
      };
      const timer = setTimeout(end, graceMs);
      // Run after the outbox's flush, which the last reply queued as a microtask before this one.
      this.#draining = () => queueMicrotask(end);
      if (this.#owed === 0) this.#draining();
    });
  }

  #refuse(err: SpoolError): void {
    if (this.#closed) return;
    this.#outbox.close();
    this.#closed = true;
    this.#socket.end(encodeFrame(encodeRefused(errorToWire(err))));
    this.#socket.destroySoon();
    this.#server.forget(this, err);
  }

  #gone(): void {
    this.#closed = true;
    this.#outbox.close();
    this.#server.forget(this);
  }
}

/** The "no window" of the header rests on this: nobody but us may enter the socket's directory before the chmod. */
function assertPrivateDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    throw ioError(`stat the socket directory ${dir}`, err);
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new SpoolError('ERR_INVALID_ARG', `the owner socket's directory ${dir} must be this user's and private (0700); use prepareSocketPath()`);
  }
}
