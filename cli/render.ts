/**
 * How the CLI shows records and payloads: as text when they are text, as hex or base64 when not, shortened
 * for people and whole for machines. Pure; owns no I/O and knows nothing of yargs.
 */
import { isUtf8 } from 'node:buffer';
import { FLAG_AES, FLAG_LZ4, SpoolError, type LogEntry } from '../lib/index.js';

/** In human output, longer payloads are cut here and a marker says how much was left out. */
export const MAX_TEXT_CHARS = 160;
export const MAX_HEX_BYTES = 48;

/** C0 controls except tab, newline and carriage return; DEL; C1 controls. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/** True when the bytes are valid UTF-8 holding no control characters besides \t, \n and \r. */
export function isText(buf: Buffer): boolean {
  return isUtf8(buf) && !CONTROL.test(buf.toString('utf8'));
}

export function flagNames(flags: number): string {
  const names: string[] = [];
  if (flags & FLAG_LZ4) names.push('lz4');
  if (flags & FLAG_AES) names.push('aes');
  const unknown = flags & ~(FLAG_LZ4 | FLAG_AES);
  if (unknown) names.push(`0x${unknown.toString(16)}`);
  return names.length ? names.join(',') : '-';
}

/** What a reader could make of a record's payload. */
export type PayloadView =
  | { kind: 'data'; bytes: Buffer }
  | { kind: 'encrypted'; keyId: number }
  | { kind: 'error'; code: string; message: string };

/**
 * Decodes an entry's payload, or says why not. An encrypted record is not decoded without keys (`haveKeys`
 * false): that is not an error, the payload is just not shown.
 */
export function viewPayload(entry: LogEntry, haveKeys: boolean): PayloadView {
  if (entry.flags & FLAG_AES && !haveKeys) return { kind: 'encrypted', keyId: entry.keyId };
  try {
    return { kind: 'data', bytes: entry.payload() };
  } catch (err) {
    if (!(err instanceof SpoolError)) throw err;
    return { kind: 'error', code: err.code, message: err.message };
  }
}

/** A payload for people: `"text"` (JSON-quoted, so one line) or `hex:…`, shortened with a `…(+N bytes)` marker. */
export function humanPayload(view: PayloadView): string {
  if (view.kind === 'encrypted') return `<encrypted with key ${view.keyId}; pass --key-file to see it>`;
  if (view.kind === 'error') return `<cannot decode: ${view.code}: ${view.message}>`;
  const { bytes } = view;
  if (isText(bytes)) {
    const text = bytes.toString('utf8');
    if (text.length <= MAX_TEXT_CHARS) return JSON.stringify(text);
    const shown = text.slice(0, MAX_TEXT_CHARS);
    return `${JSON.stringify(shown)}…(+${bytes.length - Buffer.byteLength(shown)} bytes)`;
  }
  if (bytes.length <= MAX_HEX_BYTES) return `hex:${bytes.toString('hex')}`;
  return `hex:${bytes.toString('hex', 0, MAX_HEX_BYTES)}…(+${bytes.length - MAX_HEX_BYTES} bytes)`;
}

/** One line of `dump` for people. */
export function humanRecord(entry: LogEntry, view: PayloadView): string {
  const plain = view.kind === 'data' ? ` plain=${view.bytes.length}` : '';
  return (
    `seq=${entry.seq} type=${entry.type} epoch=${entry.epoch} segment=${entry.segmentId} ` +
    `offset=${entry.offset} size=${entry.size}${plain} flags=${flagNames(entry.flags)} payload=${humanPayload(view)}`
  );
}

/** The NDJSON object of one record for `dump --json`. `encoding` says how to read `payload`. */
export interface JsonRecord {
  seq: number;
  type: number;
  epoch: number;
  segment: number;
  offset: number;
  size: number;
  flags: number;
  keyId: number;
  compressed: boolean;
  encrypted: boolean;
  encoding: 'utf8' | 'base64' | 'encrypted' | 'error';
  /** The whole payload (utf8 text or base64), or null when it could not be shown. */
  payload: string | null;
  error?: { code: string; message: string };
}

export function jsonRecord(entry: LogEntry, view: PayloadView): JsonRecord {
  const rec: JsonRecord = {
    seq: entry.seq,
    type: entry.type,
    epoch: entry.epoch,
    segment: entry.segmentId,
    offset: entry.offset,
    size: entry.size,
    flags: entry.flags,
    keyId: entry.keyId,
    compressed: (entry.flags & FLAG_LZ4) !== 0,
    encrypted: (entry.flags & FLAG_AES) !== 0,
    encoding: 'encrypted',
    payload: null,
  };
  if (view.kind === 'data') {
    const text = isText(view.bytes);
    rec.encoding = text ? 'utf8' : 'base64';
    rec.payload = view.bytes.toString(text ? 'utf8' : 'base64');
  } else if (view.kind === 'error') {
    rec.encoding = 'error';
    rec.error = { code: view.code, message: view.message };
  }
  return rec;
}
