/**
 * Turns a plain payload into the stored bytes of a whole record and back: LZ4 first (when it pays), then
 * AES-256-GCM with the record header as associated data, then the record crc. Pure: Buffer in, Buffer out.
 *
 * Stored payload when FLAG_AES is set:  nonce (12) ‖ ciphertext (len of input) ‖ GCM tag (16).
 * When FLAG_LZ4 is set, the (decrypted) payload is an lz4-napi block: a 4-byte uncompressed size, then LZ4.
 *
 * Compression is tried only at or above `compressThreshold` bytes and kept only if it is smaller, so a record
 * never grows by compressing. The outer crc is computed over what is stored, so a reader tells a torn or
 * damaged record (crc) from a wrong key or tampering (GCM tag) without needing the key.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { compressSync, uncompressSync } from 'lz4-napi';
import { SpoolError } from '../errors.js';
import {
  FLAG_AES,
  FLAG_LZ4,
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  readRecordHeader,
  readU64,
  recordAad,
  sealRecord,
  writeRecordHeaderFields,
} from '../format/record.js';
import { KeyRing, NONCE_BYTES, type EncryptionOptions } from './keyring.js';

const TAG_BYTES = 16;
const AES_OVERHEAD = NONCE_BYTES + TAG_BYTES;

export interface CodecOptions {
  /** Compress payloads of at least this many bytes; false never compresses. */
  compressThreshold: number | false;
  encryption?: EncryptionOptions;
}

/** The fields of a record the writer chooses; flags and keyId are the codec's. */
export interface EntryMeta {
  type: number;
  seq: number;
  segmentId: number;
  epoch: number;
}

/** The largest plain payload a record can carry. */
export const MAX_PLAIN_BYTES = MAX_PAYLOAD_BYTES - AES_OVERHEAD;

/** A plain payload: bytes, or a string that stands for its UTF-8 bytes. */
export type Payload = Buffer | string;

/** The most bytes a payload can be: its length for a Buffer, 3 per UTF-16 unit of a string as UTF-8. */
export function maxPayloadBytes(plain: Payload): number {
  return typeof plain === 'string' ? plain.length * 3 : plain.length;
}

/** Decodes a plain payload found at buf[start, end) in the record numbered seq. Must not keep or write to buf. */
export type PayloadDecoder<T> = (buf: Buffer, seq: number, start: number, end: number) => T;

export class RecordCodec {
  readonly #threshold: number;
  readonly #ring: KeyRing | undefined;

  constructor(opts: CodecOptions) {
    this.#threshold = opts.compressThreshold === false ? Infinity : opts.compressThreshold;
    this.#ring = opts.encryption ? new KeyRing(opts.encryption) : undefined;
  }

  get encrypted(): boolean {
    return this.#ring !== undefined;
  }

  /** An upper bound on the bytes encodeInto writes for a plain payload of `plainBytes`. */
  maxRecordBytes(plainBytes: number): number {
    return RECORD_HEADER_BYTES + plainBytes + (this.#ring ? AES_OVERHEAD : 0);
  }

  /** Encodes a whole sealed record into buf at off (which must have maxRecordBytes room); returns its size. */
  encodeInto(buf: Buffer, off: number, meta: EntryMeta, plain: Buffer): number {
    return this.encodeFields(buf, off, meta.type, meta.seq, meta.segmentId, meta.epoch, plain);
  }

  /**
   * encodeInto with positional fields: the writer's per-append path, free of temporary objects. buf must have
   * maxRecordBytes(maxPayloadBytes(plain)) room at off. A string that is neither compressed nor encrypted is
   * written into buf as UTF-8 directly, without a Buffer of its own.
   */
  encodeFields(buf: Buffer, off: number, type: number, seq: number, segmentId: number, epoch: number, plain: Payload): number {
    if (typeof plain === 'string') {
      const most = plain.length * 3;
      if (!this.#ring && most < this.#threshold && most <= MAX_PLAIN_BYTES) {
        const n = buf.write(plain, off + RECORD_HEADER_BYTES, 'utf8');
        writeRecordHeaderFields(buf, off, type, 0, 0, n, seq, segmentId, epoch);
        return sealRecord(buf, off);
      }
      plain = Buffer.from(plain, 'utf8');
    }
    if (plain.length > MAX_PLAIN_BYTES) {
      throw new SpoolError('ERR_TOO_LARGE', `record payload of ${plain.length} bytes is over ${MAX_PLAIN_BYTES}`);
    }
    let stored = plain;
    let flags = 0;
    if (plain.length >= this.#threshold) {
      const packed = compressSync(plain);
      if (packed.length < plain.length) {
        stored = packed;
        flags |= FLAG_LZ4;
      }
    }
    const ring = this.#ring;
    const body = off + RECORD_HEADER_BYTES;
    if (!ring) {
      writeRecordHeaderFields(buf, off, type, flags, 0, stored.length, seq, segmentId, epoch);
      if (stored.length <= 64) for (let k = 0; k < stored.length; k++) buf[body + k] = stored[k]!;
      else stored.copy(buf, body);
    } else {
      flags |= FLAG_AES;
      writeRecordHeaderFields(buf, off, type, flags, ring.currentId, stored.length + AES_OVERHEAD, seq, segmentId, epoch);
      ring.nextNonce(buf, body);
      const cipher = createCipheriv('aes-256-gcm', ring.currentKey, buf.subarray(body, body + NONCE_BYTES));
      cipher.setAAD(recordAad(buf, off));
      let at = body + NONCE_BYTES;
      at += cipher.update(stored).copy(buf, at);
      at += cipher.final().copy(buf, at);
      cipher.getAuthTag().copy(buf, at);
    }
    return sealRecord(buf, off);
  }

  /** Encodes into a fresh buffer of exactly the record's size. */
  encode(meta: EntryMeta, plain: Buffer): Buffer {
    const buf = Buffer.allocUnsafe(this.maxRecordBytes(plain.length));
    return buf.subarray(0, this.encodeInto(buf, 0, meta, plain));
  }

  /**
   * The plain payload of the crc-checked record at buf[off]. Throws ERR_KEY_MISSING when the record is encrypted
   * and this codec has no key of its id, ERR_DECRYPT when authentication fails, ERR_CORRUPT_RECORD when an LZ4
   * block does not decode.
   */
  decode(buf: Buffer, off: number): Buffer {
    const h = readRecordHeader(buf, off);
    const body = off + RECORD_HEADER_BYTES;
    let stored = buf.subarray(body, body + h.length);
    if (h.flags & FLAG_AES) {
      const key = this.#ring?.get(h.keyId);
      if (!key) {
        throw new SpoolError('ERR_KEY_MISSING', `record ${h.seq} is encrypted with key ${h.keyId}, which was not given`);
      }
      if (h.length < AES_OVERHEAD) throw new SpoolError('ERR_DECRYPT', `record ${h.seq} is too short to be sealed`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, stored.subarray(0, NONCE_BYTES));
        decipher.setAAD(recordAad(buf, off));
        decipher.setAuthTag(stored.subarray(h.length - TAG_BYTES));
        const head = decipher.update(stored.subarray(NONCE_BYTES, h.length - TAG_BYTES));
        const tail = decipher.final();
        stored = tail.length ? Buffer.concat([head, tail]) : head;
      } catch (cause) {
        throw new SpoolError('ERR_DECRYPT', `record ${h.seq} failed authentication (wrong key or tampered)`, { cause });
      }
    }
    if (h.flags & FLAG_LZ4) {
      if (stored.length < 4 || stored.readUInt32LE(0) > MAX_PLAIN_BYTES) {
        throw new SpoolError('ERR_CORRUPT_RECORD', `record ${h.seq}: LZ4 block claims an impossible size`);
      }
      try {
        return uncompressSync(stored);
      } catch (cause) {
        throw new SpoolError('ERR_CORRUPT_RECORD', `record ${h.seq}: LZ4 block does not decode`, { cause });
      }
    }
    return Buffer.from(stored);
  }

  /**
   * decoder(plain payload, seq, start, end) of the crc-checked record at buf[off]: a plain payload is passed in
   * place (buf itself), an encrypted or compressed one as the fresh Buffer decode() makes. Throws as decode().
   */
  decodeWith<T>(buf: Buffer, off: number, decoder: PayloadDecoder<T>): T {
    const seq = readU64(buf, off + 16);
    if ((buf[off + 8]! & (FLAG_AES | FLAG_LZ4)) === 0) {
      const body = off + RECORD_HEADER_BYTES;
      return decoder(buf, seq, body, body + buf.readUInt32LE(off + 12));
    }
    const plain = this.decode(buf, off);
    return decoder(plain, seq, 0, plain.length);
  }
}
