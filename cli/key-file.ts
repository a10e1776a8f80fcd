/**
 * Key files: how the CLI is given encryption keys. Owns the format below and turning a file into the library's
 * EncryptionOptions; knows nothing of logs. Never echoes key material, not even in errors.
 *
 * A key file is one of:
 *   - exactly 32 bytes: the raw key, used as key id 1;
 *   - text holding one key as 64 hex characters (surrounding whitespace ignored), used as key id 1;
 *   - text with one `id:hex` line per key (id 1..255, hex 64 characters), for a log whose keys were rotated.
 * In text forms, blank lines and lines starting with '#' are ignored.
 */
import * as fs from 'node:fs';
import type { EncryptionOptions, KeySpec } from '../lib/index.js';
import { usageError } from './io.js';

export const KEY_BYTES = 32;

/** What --help says about key files (kept next to the parser that implements it). */
export const KEY_FILE_HELP = [
  'Key file (--key-file): either the raw 32-byte key, or a text file with the key as 64 hex characters,',
  "or, for rotated keys, one 'id:hex' line per key (id 1..255); a single key is key id 1. Blank lines",
  "and lines starting with '#' are ignored.",
].join('\n');

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const ID_LINE = /^(\d{1,3})\s*:\s*(\S+)$/;

/** Reads and parses a key file; ERR_INVALID_ARG when it cannot be read or is not in the format above. */
export function readKeyFile(file: string): EncryptionOptions {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw usageError(`cannot read key file ${file} (${code})`);
  }
  return parseKeyFile(bytes, file);
}

/** Parses the bytes of a key file; `name` is used in error messages only. */
export function parseKeyFile(bytes: Buffer, name: string): EncryptionOptions {
  if (bytes.length === KEY_BYTES) return { key: Buffer.from(bytes) };
  const text = bytes.toString('utf8');
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ text: line.trim(), no: i + 1 }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
  if (lines.length === 0) throw usageError(`key file ${name} is empty`);

  if (lines.length === 1 && !lines[0]!.text.includes(':')) {
    if (!HEX_KEY.test(lines[0]!.text)) {
      throw usageError(
        `key file ${name} holds neither 32 raw bytes nor a key of 64 hex characters ` +
          `(found ${bytes.length} bytes${isBinary(bytes) ? ' of binary data' : ''})`,
      );
    }
    return { key: Buffer.from(lines[0]!.text, 'hex') };
  }

  const keys: KeySpec[] = [];
  for (const line of lines) {
    const m = ID_LINE.exec(line.text);
    if (!m) throw usageError(`key file ${name}, line ${line.no}: expected 'id:hex' (one key per line)`);
    const id = Number(m[1]);
    if (id < 1 || id > 255) throw usageError(`key file ${name}, line ${line.no}: key id must be 1..255, got ${id}`);
    if (!HEX_KEY.test(m[2]!)) {
      throw usageError(`key file ${name}, line ${line.no}: key ${id} must be 64 hex characters (32 bytes)`);
    }
    if (keys.some((k) => k.id === id)) throw usageError(`key file ${name}, line ${line.no}: key id ${id} is given twice`);
    keys.push({ id, key: Buffer.from(m[2]!, 'hex') });
  }
  return { keys };
}

/** Reads the key file when one is named; undefined otherwise. */
export function encryptionFrom(keyFile: string | undefined): EncryptionOptions | undefined {
  return keyFile === undefined ? undefined : readKeyFile(keyFile);
}

function isBinary(bytes: Buffer): boolean {
  return bytes.some((b) => b < 0x09 || (b > 0x0d && b < 0x20));
}
