/**
 * readLog: the read-only way into a log directory for tools (the CLI's dump, stats): checks that the
 * directory is a log, builds the codec from the keys given, and scans once (QueueEvents follows a log with
 * tailer.ts instead). No lock, no writes, safe beside an owner.
 * `damage` is judged by head-tail.ts: the head's tail (preallocated zeros, a record being written) is not damage,
 * a sealed segment's bad tail is.
 */
import * as path from 'node:path';
import { RecordCodec } from '../codec/record-codec.js';
import { keySpecs, type EncryptionOptions } from '../codec/keyring.js';
import { LOG_DIR } from '../format/names.js';
import { nodeFs, type Fs } from './fs.js';
import { judgeScan, type HeadTail } from './head-tail.js';
import { scanLog, type LogEntry, type LogScanSummary } from './log-scan.js';
import { checkKeys, readManifest } from './manifest-store.js';

export interface ReadLogOptions {
  fs?: Fs;
  encryption?: EncryptionOptions;
  /** Deliver entries with seq ≥ fromSeq (earlier ones are read and skipped). */
  fromSeq?: number;
  onEntry: (entry: LogEntry) => boolean | void;
}

export interface ReadLogResult extends LogScanSummary {
  encrypted: boolean;
  /** The codec built from the keys given (undefined payload decoding when the log is encrypted and none were). */
  codec: RecordCodec;
  /** What follows the head's last record, if anything (not damage). */
  headTail: HeadTail | undefined;
}

export function readLog(dir: string, opts: ReadLogOptions): ReadLogResult {
  const fs = opts.fs ?? nodeFs;
  const manifest = readManifest(fs, dir);
  if (opts.encryption) checkKeys(manifest, keySpecs(opts.encryption));
  const codec = new RecordCodec({ compressThreshold: false, encryption: opts.encryption });
  const fromSeq = opts.fromSeq ?? 1;
  const summary = scanLog(fs, path.join(dir, LOG_DIR), {
    codec,
    onEntry: (e) => (e.seq < fromSeq ? undefined : opts.onEntry(e)),
  });
  return { ...summary, ...judgeScan(summary), encrypted: manifest.encrypted, codec };
}
