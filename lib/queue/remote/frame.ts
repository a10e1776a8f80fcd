/**
 * frame: length-prefixed frames over a byte stream, the lowest layer of the owner's socket (lib/queue/remote/).
 * Owns cutting a stream into frames and putting frames into one buffer. Does not own what a frame says
 * (protocol.ts) or when frames are written (outbox.ts).
 *
 *   offset  size  field
 *   0       4     n, the payload's length in bytes, u32 little-endian; 1 <= n <= maxFrameBytes
 *   4       n     payload: the UTF-8 JSON text of one message (protocol.ts)
 *
 * Reading (FrameDecoder). A stream socket hands over bytes in chunks cut anywhere: a chunk may end inside a
 * length, inside a payload, or hold many frames. The decoder keeps at most one partial frame and waits for more
 * bytes; it never reads past what it was given.
 *   - The length is checked before anything is allocated for it. A length of 0 or over the limit is ERR_PROTOCOL:
 *     after a bad length nothing that follows can be trusted to start a frame, so the decoder is dead from then
 *     on (every later push throws the same error) and its connection must be closed.
 *   - A frame wholly inside one chunk is handed out as a view of that chunk, no copy. A frame that spans chunks is
 *     copied once into a buffer of its exact size, allocated when its 4-byte length is complete (so at most the
 *     limit, never what a hostile length asks for).
 *   - A view is valid only during the onFrame call (the chunk may be reused after); parse it there.
 *
 * Writing (encodeFrames). Several payloads become ONE Buffer, sized once by Buffer.byteLength: one allocation and
 * one socket write for a whole batch, however many frames it needs.
 */
import { SpoolError } from '../../errors.js';

export const FRAME_HEADER_BYTES = 4;
/** Default and largest frame payload: a job's data may be up to the log's 64 MiB record limit, plus the envelope. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024 + 64 * 1024;

export class FrameDecoder {
  readonly #maxFrameBytes: number;
  /** Length bytes collected across chunks (only while #headHave is 1..3). */
  readonly #head = Buffer.alloc(FRAME_HEADER_BYTES);
  #headHave = 0;
  /** The frame being assembled across chunks, and how much of it has arrived. */
  #body: Buffer | undefined;
  #bodyHave = 0;
  #dead: SpoolError | undefined;

  constructor(maxFrameBytes = MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes of a partial frame held, waiting for the rest (0 between frames). */
  get buffered(): number {
    return this.#body ? FRAME_HEADER_BYTES + this.#bodyHave : this.#headHave;
  }

  /**
   * Feeds one chunk; calls onFrame for every frame it completes, in order. Throws ERR_PROTOCOL on a bad length
   * (and on every call after). An exception from onFrame propagates and leaves the rest of the chunk unread; the
   * caller then closes the connection.
   */
  push(chunk: Buffer, onFrame: (payload: Buffer) => void): void {
    if (this.#dead) throw this.#dead;
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.#body) {
        const take = Math.min(this.#body.length - this.#bodyHave, end - off);
        chunk.copy(this.#body, this.#bodyHave, off, off + take);
        this.#bodyHave += take;
        off += take;
        if (this.#bodyHave < this.#body.length) return;
        const body = this.#body;
        this.#body = undefined;
        onFrame(body);
        continue;
      }
      if (this.#headHave === 0 && end - off >= FRAME_HEADER_BYTES) {
        // The usual case: the length is whole in this chunk, and often the payload too.
        const n = this.#check(chunk.readUInt32LE(off));
        off += FRAME_HEADER_BYTES;
        if (end - off >= n) {
          const payload = chunk.subarray(off, off + n);
          off += n;
          onFrame(payload);
        } else {
          this.#startBody(n);
        }
        continue;
      }
      // A length cut between chunks: collect its bytes one at a time (at most 3 of them are ever here).
      this.#head[this.#headHave++] = chunk[off++]!;
      if (this.#headHave === FRAME_HEADER_BYTES) {
        this.#headHave = 0;
        this.#startBody(this.#check(this.#head.readUInt32LE(0)));
      }
    }
  }

  #startBody(n: number): void {
    this.#body = Buffer.allocUnsafe(n);
    this.#bodyHave = 0;
  }

  #check(n: number): number {
    if (n === 0 || n > this.#maxFrameBytes) {
      this.#dead = new SpoolError(
        'ERR_PROTOCOL',
        n === 0 ? 'a frame of length 0 on the owner socket' : `a frame of ${n} bytes on the owner socket, over the limit of ${this.#maxFrameBytes}`,
      );
      throw this.#dead;
    }
    return n;
  }
}

/** Frames the payloads (JSON texts) into one Buffer, in order. The caller keeps each under the frame limit. */
export function encodeFrames(payloads: readonly string[]): Buffer {
  let total = 0;
  const sizes = new Array<number>(payloads.length);
  for (let i = 0; i < payloads.length; i++) {
    sizes[i] = Buffer.byteLength(payloads[i]!, 'utf8');
    total += FRAME_HEADER_BYTES + sizes[i]!;
  }
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < payloads.length; i++) {
    buf.writeUInt32LE(sizes[i]!, off);
    off += FRAME_HEADER_BYTES;
    off += buf.write(payloads[i]!, off, 'utf8');
  }
  return buf;
}

/** One payload as one frame. */
export function encodeFrame(payload: string): Buffer {
  const n = Buffer.byteLength(payload, 'utf8');
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + n);
  buf.writeUInt32LE(n, 0);
  buf.write(payload, FRAME_HEADER_BYTES, 'utf8');
  return buf;
}
