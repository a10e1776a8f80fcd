/**
 * Encryption keys by id, and the nonces used under them. Owns key validation; knows nothing of records.
 *
 * Rotation: records carry the id of the key that sealed them (1..255). A ring holds every key that may still be
 * needed to read, and seals new records with the current one (by default the highest id). Dropping a key from the
 * ring makes the records it sealed unreadable (ERR_KEY_MISSING), so drop one only after compaction has rewritten
 * or retired everything it sealed.
 *
 * Nonces: AES-GCM must never see the same (key, nonce) twice. A nonce here is 8 random bytes chosen when the
 * ring is made, then a 32-bit counter; when the counter wraps, new random bytes are drawn. Two rings (two
 * processes, two queues sharing a key) collide only if they draw the same 64 random bits: a birthday bound of
 * about 2^32 rings per key, far past any real use.
 */
import { randomFillSync } from 'node:crypto';
import { invalidArg } from '../errors.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;

export interface KeySpec {
  id: number;
  key: Buffer;
}

/** What users pass: one key (it gets id 1) or several with ids, and optionally which one seals new records. */
export type EncryptionOptions = { key: Buffer } | { keys: KeySpec[]; currentKeyId?: number };

export function keySpecs(enc: EncryptionOptions): KeySpec[] {
  return 'key' in enc ? [{ id: 1, key: enc.key }] : enc.keys;
}

export class KeyRing {
  readonly currentId: number;
  readonly #keys = new Map<number, Buffer>();
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  #counter = 0;

  constructor(opts: EncryptionOptions) {
    const specs = keySpecs(opts);
    if (!Array.isArray(specs) || specs.length === 0) throw invalidArg('encryption needs at least one key');
    for (const { id, key } of specs) {
      if (!Number.isInteger(id) || id < 1 || id > 255) throw invalidArg(`encryption key id must be 1..255, got ${id}`);
      if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
        throw invalidArg(`encryption key ${id} must be a Buffer of ${KEY_BYTES} bytes`);
      }
      if (this.#keys.has(id)) throw invalidArg(`encryption key id ${id} is given twice`);
      this.#keys.set(id, Buffer.from(key));
    }
    const current = 'key' in opts ? 1 : (opts.currentKeyId ?? Math.max(...this.#keys.keys()));
    if (!this.#keys.has(current)) throw invalidArg(`currentKeyId ${current} is not among the keys`);
    this.currentId = current;
    randomFillSync(this.#nonce, 0, 8);
  }

  get(id: number): Buffer | undefined {
    return this.#keys.get(id);
  }

  get currentKey(): Buffer {
    return this.#keys.get(this.currentId)!;
  }

  /** Writes a fresh nonce into buf at off. */
  nextNonce(buf: Buffer, off: number): void {
    if (this.#counter === 0xffff_ffff) {
      randomFillSync(this.#nonce, 0, 8);
      this.#counter = 0;
    }
    this.#nonce.writeUInt32LE(this.#counter++, 8);
    this.#nonce.copy(buf, off);
  }
}
