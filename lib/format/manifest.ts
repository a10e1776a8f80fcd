/**
 * The QUEUE manifest: what a directory is and the options that shape its files. Pure.
 *
 *   off size field     meaning
 *     0   4  magic     "SPQM"
 *     4   2  version   MANIFEST_VERSION (1)
 *     6   2  reserved  0
 *     8   4  length    bytes of the JSON body
 *    12   …  body      UTF-8 JSON: ManifestBody
 *     …   4  crc       CRC-32 of every byte before it
 *
 * Written once, when the directory is created: as QUEUE.tmp, fsynced, renamed, directory fsynced. A crash
 * before the rename leaves no manifest and recovery treats the directory as new; after it, a whole one.
 */
import { SpoolError } from '../errors.js';
import { crc32 } from './crc32.js';

export const MANIFEST_MAGIC = Buffer.from('SPQM', 'latin1');
export const MANIFEST_VERSION = 1;

export interface ManifestBody {
  /** Segments roll once they would pass this many bytes. */
  maxSegmentBytes: number;
  /** Whether records are expected to be encrypted (readers then ask for a key). */
  encrypted: boolean;
  createdAt: number;
}

export function encodeManifest(body: ManifestBody): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const buf = Buffer.alloc(12 + json.length + 4);
  MANIFEST_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(MANIFEST_VERSION, 4);
  buf.writeUInt32LE(json.length, 8);
  json.copy(buf, 12);
  buf.writeUInt32LE(crc32(buf, 0, 12 + json.length), 12 + json.length);
  return buf;
}

export function decodeManifest(buf: Buffer, where: string): ManifestBody {
  if (buf.length < 16 || !buf.subarray(0, 4).equals(MANIFEST_MAGIC)) {
    throw new SpoolError('ERR_NOT_A_LOG', `${where} is not a spoolq manifest`);
  }
  const version = buf.readUInt16LE(4);
  if (version !== MANIFEST_VERSION) {
    throw new SpoolError('ERR_UNSUPPORTED_VERSION', `${where}: manifest version ${version} is not supported`);
  }
  const length = buf.readUInt32LE(8);
  if (12 + length + 4 !== buf.length || crc32(buf, 0, 12 + length) !== buf.readUInt32LE(12 + length)) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `${where}: manifest checksum mismatch`);
  }
  let body: ManifestBody;
  try {
    body = JSON.parse(buf.toString('utf8', 12, 12 + length)) as ManifestBody;
  } catch (cause) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `${where}: manifest body is not JSON`, { cause });
  }
  if (body === null || typeof body !== 'object' || !Number.isSafeInteger(body.maxSegmentBytes) ||
      typeof body.encrypted !== 'boolean') {
    throw new SpoolError('ERR_CORRUPT_RECORD', `${where}: manifest body is malformed`);
  }
  return body;
}
