/**
 * Reading and replacing the index file (the checkpoint; its byte layout is in format/checkpoint.ts).
 *
 * Replacement is the atomic temp-file dance of fs.ts (index.tmp, fsync, rename, fsync the directory), so a crash
 * at any step leaves the old index or the new one. A missing, damaged or unreadable index is never an error:
 * the caller replays the log from the start, and the reason is reported.
 */
import { SpoolError, ioError } from '../errors.js';
import { decodeCheckpoint, encodeCheckpointParts, type Checkpoint } from '../format/checkpoint.js';
import { replaceFileAtomicAsync, type Fs } from './fs.js';

export function readCheckpointFile(fs: Fs, file: string): { checkpoint?: Checkpoint; error?: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw ioError('read the index', err);
  }
  try {
    return { checkpoint: decodeCheckpoint(bytes) };
  } catch (err) {
    if (err instanceof SpoolError) return { error: err.message };
    throw err;
  }
}

export function writeCheckpointFile(fs: Fs, file: string, cp: Checkpoint): Promise<void> {
  return replaceFileAtomicAsync(fs, file, encodeCheckpointParts(cp));
}
