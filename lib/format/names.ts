/**
 * The grammar of every name spoolq puts on disk, written down once. Pure.
 *
 *   <queue-dir>/
 *     QUEUE                      manifest (manifest.ts)
 *     index                      checkpoint of the fold (checkpoint.ts); index.tmp while being replaced
 *     log/<20 digits>.seg        a segment; the digits are its id, the first seq it may hold, zero-padded so
 *                                that names sort in log order
 *     log/<20 digits>.seg.tmp    a segment being created or rewritten by compaction; never read, removed on open
 *     quarantine/<20 digits>-<offset>.bad   bytes cut out of a damaged segment, kept for inspection
 *
 * Anything ending in TMP_SUFFIX is the half-done product of a crash and is deleted by recovery.
 */

export const MANIFEST_FILE = 'QUEUE';
export const INDEX_FILE = 'index';
export const LOG_DIR = 'log';
export const QUARANTINE_DIR = 'quarantine';
export const SEGMENT_SUFFIX = '.seg';
export const TMP_SUFFIX = '.tmp';

const SEGMENT_NAME = /^(\d{20})\.seg$/;

export function segmentFileName(segmentId: number): string {
  return String(segmentId).padStart(20, '0') + SEGMENT_SUFFIX;
}

/** The segment id named by `name`, or undefined when it is not a segment file name. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) ? id : undefined;
}

export function isTempFileName(name: string): boolean {
  return name.endsWith(TMP_SUFFIX);
}

export function quarantineFileName(segmentId: number, offset: number): string {
  return `${String(segmentId).padStart(20, '0')}-${offset}.bad`;
}
