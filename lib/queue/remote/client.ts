/**
 * RemoteClient: a non-owner process's end of the owner's socket (protocol.ts has the messages and the failure
 * story). Owns the connection, request keys, matching replies to requests, re-sending across reconnects, and the
 * bounds on every wait. Does not own finding the owner after a loss: the caller's `reconnect()` does (failover:
 * take the lock or read the new owner's address), nor what requests mean.
 *
 * States: open (a connection past its handshake) → lost → reconnecting → open again, or broken (reconnect gave
 * up; the next request tries again) → closing → closed.
 *
 * Requests. request(body) takes the next seq (1, 2, …, never reused by this object, so (clientId, seq) is the
 * request's key for the owner's at-most-once check) and waits in `#pending`, a Map in seq order, until its reply
 * comes, its timeout passes, or the client gives up on the owner. While open it also goes into this turn's
 * Outbox, so the requests of a turn leave in one write. A reply settles its request once; a second reply to the
 * same seq (possible after a re-send) finds nothing pending and is dropped.
 *
 * Connection loss. Every pending request, sent or not, stays pending. reconnect(cause) is asked for the current
 * owner's address and epoch; the client connects and shakes hands there, then puts every pending request into
 * the outbox in seq order, synchronously on WELCOME, so the re-sent ones leave in one write ahead of anything
 * newer. A failed attempt (refused, unreachable, timed out) asks reconnect again, up to maxReconnects times; then
 * every pending request fails with the last error and the client is broken until the next request.
 *
 * Bounds: connect + handshake within connectTimeoutMs (ERR_OWNER_UNREACHABLE, naming the pid in the queue's lock
 * when `queueDir` is given); each request within requestTimeoutMs of its call (ERR_TIMEOUT; then forgotten, not
 * re-sent). One timer serves all timeouts: requests are pending in call order and share one timeout, so the
 * oldest expires first; the timer fires at the oldest deadline, fails what has expired, and re-arms for the next.
 * close() waits for pending requests, each bounded by its timeout, then ends the connection (destroyed if the
 * owner does not close its side within connectTimeoutMs).
 *
 * Event loop: the socket and the timer hold the process open only while requests are pending; an idle client
 * does not keep a process alive (close() it anyway).
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { SpoolError } from '../../errors.js';
import { isPidAlive, readOwnerPid } from '../../log/owner-lock.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from './frame.js';
import { Outbox } from './outbox.js';
import {
  encodeHello, pairsOf, parseMessage, parseWelcome, protocolError, PROTOCOL_VERSION, REFUSED, REPLIES, REQUESTS, WELCOME,
} from './protocol.js';
import { errorFromWire } from './reply-error.js';

export interface OwnerTarget {
  address: string;
  epoch: number;
}

export interface RemoteClientOptions extends OwnerTarget {
  queue: string;
  /** Part of every request key; unique per client object. Default: 12 random base64url characters. */
  clientId?: string;
  /** The queue's directory: error messages then name the pid in its owner lock. */
  queueDir?: string;
  /** Bound on connect + handshake. Default 5 s. */
  connectTimeoutMs?: number;
  /** Bound on each request, from its call to its reply. Default 30 s. */
  requestTimeoutMs?: number;
  /** After a lost connection: where the current owner listens. Without it a loss fails the pending requests. */
  reconnect?: (cause: Error) => Promise<OwnerTarget>;
  /** Attempts per loss before giving up. Default 5. */
  maxReconnects?: number;
  /** Notes the owner pushes (REPLIES pairs with key 0), in the order sent. Must not throw. */
  onNotify?: (message: unknown) => void;
  maxFrameBytes?: number;
  /** The clock of the request deadlines (tests). Default Date.now. */
  now?: () => number;
}

interface Pending {
  body: unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  deadline: number;
}

/** One connection past its handshake. */
interface Link {
  socket: net.Socket;
  outbox: Outbox;
  /** Why it ended, when the owner said (REFUSED) or the socket failed. */
  cause?: Error;
}

export class RemoteClient {
  readonly clientId: string;
  readonly queue: string;
  readonly #opts: RemoteClientOptions;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #maxFrameBytes: number;
  readonly #now: () => number;
  #target: OwnerTarget;
  #ownerPid = 0;
  #seq = 0;
  readonly #pending = new Map<number, Pending>();
  #link: Link | undefined;
  #reconnecting = false;
  /** Set when reconnect gave up: what requests fail with until a reconnect succeeds. */
  #broken: Error | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  #onIdle: (() => void) | undefined;

  private constructor(opts: RemoteClientOptions) {
    this.#opts = opts;
    this.queue = opts.queue;
    this.clientId = opts.clientId ?? randomBytes(9).toString('base64url');
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#now = opts.now ?? Date.now;
    this.#target = { address: opts.address, epoch: opts.epoch };
  }

  /** Connects and shakes hands; rejects with the owner's refusal or ERR_OWNER_UNREACHABLE. */
  static async connect(opts: RemoteClientOptions): Promise<RemoteClient> {
    const client = new RemoteClient(opts);
    await client.#connectTo(client.#target);
    return client;
  }

  /** The owner currently connected to (or last connected to, while reconnecting). */
  get owner(): { address: string; epoch: number; pid: number } {
    return { ...this.#target, pid: this.#ownerPid };
  }

  /** Requests sent or waiting to be, whose replies have not come. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Sends one request; resolves with its reply, rejects with its error reply (SpoolErrors keep their code). */
  request(body: unknown): Promise<unknown> {
    if (this.#closing) return Promise.reject(new SpoolError('ERR_CLOSED', `the client of '${this.queue}' is closed`));
    if (this.#broken && !this.#opts.reconnect) return Promise.reject(this.#broken);
    const seq = ++this.#seq;
    return new Promise<unknown>((resolve, reject) => {
      this.#pending.set(seq, { body, resolve, reject, deadline: this.#now() + this.#requestTimeoutMs });
      if (this.#pending.size === 1) this.#busy();
      if (this.#link) this.#link.outbox.push(seq, body);
      else if (!this.#reconnecting) void this.#reconnect(this.#broken ?? new Error('not connected'));
    });
  }

  /** Graceful: refuses new requests, waits for the pending ones (each within its timeout), then disconnects. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#pending.size > 0) await new Promise<void>((resolve) => (this.#onIdle = resolve));
    this.#closed = true;
    clearTimeout(this.#timer);
    const link = this.#link;
    this.#link = undefined;
    if (!link) return;
    link.outbox.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => link.socket.destroy(), this.#connectTimeoutMs);
      link.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      link.socket.end();
    });
  }

  /** Connects to `target` and shakes hands; on WELCOME installs the link and re-sends everything pending. */
  #connectTo(target: OwnerTarget): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = net.connect(target.address);
      const decoder = new FrameDecoder(this.#maxFrameBytes);
      let link: Link | undefined;
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(this.#unreachable(`the owner of '${this.queue}' at ${target.address} did not answer within ${this.#connectTimeoutMs} ms`)),
        this.#connectTimeoutMs,
      );
      socket.once('connect', () => {
        socket.write(encodeFrame(encodeHello({
          version: PROTOCOL_VERSION, queue: this.queue, epoch: target.epoch, clientId: this.clientId, pid: process.pid,
        })));
      });
      const onFrame = (payload: Buffer): void => {
        if (link) return this.#receive(link, payload);
        const msg = parseMessage(payload);
        if (msg[0] === REFUSED) throw errorFromWire(msg[1]);
        if (msg[0] !== WELCOME) throw protocolError(`message kind ${String(msg[0])} before the WELCOME`);
        const welcome = parseWelcome(msg);
        if (welcome.version !== PROTOCOL_VERSION) {
          throw new SpoolError('ERR_UNSUPPORTED_VERSION', `the owner speaks protocol version ${welcome.version}, this client ${PROTOCOL_VERSION}`);
        }
        if (welcome.epoch !== target.epoch) throw new SpoolError('ERR_EPOCH_MISMATCH', `the owner is at epoch ${welcome.epoch}, the client expected ${target.epoch}`);
        clearTimeout(timer);
        if (this.#closed) {
          socket.destroy();
          return resolve();
        }
        link = this.#install(socket, target, welcome.pid);
        resolve();
      };
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk, onFrame);
        } catch (err) {
          if (!link) return fail(err as Error);
          link.cause = err as Error;
          socket.destroy();
        }
      });
      socket.on('error', (err) => {
        if (!link) fail(this.#unreachable(`cannot reach the owner of '${this.queue}' at ${target.address} (${(err as NodeJS.ErrnoException).code ?? err.message})`, err));
        else link.cause ??= err;
      });
      socket.once('close', () => {
        if (!link) fail(this.#unreachable(`the owner of '${this.queue}' at ${target.address} closed the connection before its WELCOME`));
        else this.#lost(link);
      });
    });
  }

  #install(socket: net.Socket, target: OwnerTarget, pid: number): Link {
    const outbox = new Outbox(REQUESTS, {
      write: (buf) => void socket.write(buf),
      reject: (seq, err) => this.#settle(seq)?.reject(err),
    }, this.#maxFrameBytes);
    const link: Link = { socket, outbox };
    this.#link = link;
    this.#target = target;
    this.#ownerPid = pid;
    this.#broken = undefined;
    for (const [seq, p] of this.#pending) outbox.push(seq, p.body);
    if (this.#pending.size === 0) socket.unref();
    return link;
  }

  #receive(link: Link, payload: Buffer): void {
    const msg = parseMessage(payload);
    if (msg[0] === REFUSED) {
      // The owner refuses to go on (it was fenced, or found our frames bad); it ends the connection next.
      link.cause = errorFromWire(msg[1]);
      return;
    }
    if (msg[0] !== REPLIES) throw protocolError(`message kind ${String(msg[0])} from the owner`);
    const flat = pairsOf(msg);
    for (let i = 0; i < flat.length; i += 2) {
      const key = flat[i];
      if (typeof key !== 'number') throw protocolError(`a reply key ${String(key)}`);
      if (key > 0) this.#settle(key)?.resolve(flat[i + 1]);
      else if (key < 0) this.#settle(-key)?.reject(errorFromWire(flat[i + 1]));
      else this.#notify(flat[i + 1]);
    }
  }

  #notify(message: unknown): void {
    try {
      this.#opts.onNotify?.(message);
    } catch (err) {
      queueMicrotask(() => {
        throw err; // a throwing listener is the caller's bug: surface it as EventEmitter would, not in our reads
      });
    }
  }

  /** Takes request `seq` out of the pending set (undefined if it is not there: answered, timed out). */
  #settle(seq: number): Pending | undefined {
    const p = this.#pending.get(seq);
    if (p === undefined) return undefined;
    this.#pending.delete(seq);
    if (this.#pending.size === 0) this.#idle();
    return p;
  }

  #busy(): void {
    this.#link?.socket.ref();
    if (this.#timer) this.#timer.ref();
    else this.#arm(this.#requestTimeoutMs);
  }

  #idle(): void {
    this.#link?.socket.unref();
    this.#timer?.unref();
    const onIdle = this.#onIdle;
    this.#onIdle = undefined;
    onIdle?.();
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(1, ms));
    if (this.#pending.size === 0) this.#timer.unref();
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#now();
    for (const [seq, p] of this.#pending) {
      if (p.deadline > now) {
        this.#arm(p.deadline - now);
        return;
      }
      this.#settle(seq);
      p.reject(new SpoolError('ERR_TIMEOUT', `no reply from the owner of '${this.queue}' to request ${seq} within ${this.#requestTimeoutMs} ms`));
    }
  };

  #lost(link: Link): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    link.outbox.close();
    if (this.#closed) return;
    const cause = link.cause ?? new Error('the connection closed');
    if (this.#closing && this.#pending.size === 0) return; // close() is ending it
    if (this.#opts.reconnect) {
      void this.#reconnect(cause);
      return;
    }
    this.#broken = this.#lostError(cause);
    this.#failAll(this.#broken);
  }

  async #reconnect(cause: Error): Promise<void> {
    if (!this.#opts.reconnect) return;
    this.#reconnecting = true;
    let last = cause;
    try {
      for (let attempt = 0; attempt < (this.#opts.maxReconnects ?? 5); attempt++) {
        if (this.#closed || this.#link) return;
        let target: OwnerTarget;
        try {
          target = await this.#opts.reconnect(last);
        } catch (err) {
          last = err as Error;
          break; // reconnect itself gave up: nothing more to try
        }
        try {
          await this.#connectTo(target);
          return;
        } catch (err) {
          last = err as Error;
        }
      }
      this.#broken = this.#lostError(last);
      this.#failAll(this.#broken);
    } finally {
      this.#reconnecting = false;
    }
  }

  #failAll(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    this.#idle();
    for (const p of all) p.reject(err);
  }

  /** What pending requests fail with after a loss: the owner's own refusal if it gave one, else unreachable. */
  #lostError(cause: Error): Error {
    if (cause instanceof SpoolError && cause.code !== 'ERR_PROTOCOL') return cause;
    return this.#unreachable(`lost the connection to the owner of '${this.queue}' at ${this.#target.address}`, cause);
  }

  #unreachable(what: string, cause?: unknown): SpoolError {
    if (cause instanceof SpoolError && cause.code === 'ERR_OWNER_UNREACHABLE') return cause;
    return new SpoolError('ERR_OWNER_UNREACHABLE', `${what}${this.#holder()}`, cause === undefined ? undefined : { cause });
  }

  #holder(): string {
    if (this.#opts.queueDir === undefined) return '';
    const pid = readOwnerPid(this.#opts.queueDir);
    if (pid === undefined) return '; no process holds its lock now';
    return isPidAlive(pid) ? `; pid ${pid} holds its lock` : `; its lock names pid ${pid}, which is not running`;
  }
}
