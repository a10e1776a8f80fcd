/**
 * Outbox: one connection's outgoing [key, value] pairs, collected during a turn of the event loop and written as
 * one message, in one Buffer, by one write, once the turn's microtasks have run (as the thread pool batches its
 * runs: lib/worker/thread-pool.ts #flush). The client uses one for its REQUESTS, the server one per connection for
 * its REPLIES and notes (protocol.ts).
 *
 * Why a microtask and not setImmediate: a caller that issues a thousand requests in a loop, or a thousand
 * replies settled by one durability promise, pushes them all before the microtask runs, so they go in one
 * write; and a lone request goes out in the same turn, with no trip through the poll phase (that is the
 * one-at-a-time round trip). Pairs pushed by continuations further down a promise chain than the first push may
 * land in the next write; that costs a write, never order: pairs leave in push order.
 *
 * The fast path is one JSON.stringify of the whole batch and one Buffer. When that throws (a value JSON cannot
 * encode) or the batch is over the frame limit, the slow path encodes pair by pair: a pair that cannot be encoded,
 * or is over the limit alone, is handed to `reject` (the owner of the pair fails that one request or reply), and
 * the rest are packed greedily into as many frames as they need, still one Buffer and one write.
 *
 * Contract: push() after close() is ignored; close() drops what was not written yet (the connection is gone, and
 * the client sends its unanswered requests again on the next one).
 */
import { SpoolError } from '../../errors.js';
import { encodeFrame, encodeFrames, MAX_FRAME_BYTES } from './frame.js';

export interface OutboxSink {
  /** Writes one Buffer of whole frames. */
  write(buf: Buffer): void;
  /** A pair that could not go: not JSON-encodable (ERR_INVALID_ARG) or over the frame limit alone (ERR_TOO_LARGE). */
  reject(key: number, err: SpoolError): void;
}

/** Room in a frame for `[k,[` … `]]` around the pairs. */
const ENVELOPE_BYTES = 16;

export class Outbox {
  readonly #kind: number;
  readonly #sink: OutboxSink;
  readonly #maxFrameBytes: number;
  #flat: unknown[] = [];
  #queued = false;
  #closed = false;

  constructor(kind: number, sink: OutboxSink, maxFrameBytes = MAX_FRAME_BYTES) {
    this.#kind = kind;
    this.#sink = sink;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Pairs waiting for this turn's write. */
  get size(): number {
    return this.#flat.length >> 1;
  }

  push(key: number, value: unknown): void {
    if (this.#closed) return;
    this.#flat.push(key, value);
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(this.#flush);
    }
  }

  close(): void {
    this.#closed = true;
    this.#flat = [];
  }

  readonly #flush = (): void => {
    this.#queued = false;
    const flat = this.#flat;
    if (this.#closed || flat.length === 0) return;
    this.#flat = [];
    let text: string | undefined;
    try {
      text = JSON.stringify([this.#kind, flat]);
    } catch {
      // A value JSON cannot encode: the slow path below finds which one.
    }
    if (text !== undefined && (text.length * 3 <= this.#maxFrameBytes || Buffer.byteLength(text) <= this.#maxFrameBytes)) {
      this.#sink.write(encodeFrame(text));
      return;
    }
    this.#writeSplit(flat);
  };

  #writeSplit(flat: unknown[]): void {
    const frames: string[] = [];
    let pieces: string[] = [];
    let bytes = ENVELOPE_BYTES;
    const limit = this.#maxFrameBytes;
    for (let i = 0; i < flat.length; i += 2) {
      const key = flat[i] as number;
      let json: string | undefined;
      try {
        json = JSON.stringify(flat[i + 1]);
      } catch (cause) {
        this.#sink.reject(key, new SpoolError('ERR_INVALID_ARG', `a value that JSON cannot encode (${(cause as Error).message})`, { cause }));
        continue;
      }
      const piece = `${key},${json ?? 'null'}`;
      const n = Buffer.byteLength(piece) + 1;
      if (n + ENVELOPE_BYTES > limit) {
        this.#sink.reject(key, new SpoolError('ERR_TOO_LARGE', `a message of ${n} bytes, over the owner socket's frame limit of ${limit}`));
        continue;
      }
      if (bytes + n > limit) {
        frames.push(`[${this.#kind},[${pieces.join(',')}]]`);
        pieces = [];
        bytes = ENVELOPE_BYTES;
      }
      pieces.push(piece);
      bytes += n;
    }
    if (pieces.length > 0) frames.push(`[${this.#kind},[${pieces.join(',')}]]`);
    if (frames.length > 0) this.#sink.write(encodeFrames(frames));
  }
}
