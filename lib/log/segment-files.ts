/**
 * Segment files as a set: listing them in log order, reading their headers, creating a new one. Uses the Fs seam;
 * knows nothing of records beyond the header.
 *
 * Creating a segment (the commit point of a roll): the file is created with O_EXCL under its final name, the
 * whole header written, the file fsynced, then the directory fsynced. Records are appended only after that, so
 * a segment whose header is short or damaged never held an acknowledged record (recovery removes such a file
 * when it is the last one).
 */
import * as path from 'node:path';
import { SpoolError, ioError } from '../errors.js';
import { parseSegmentFileName, segmentFileName } from '../format/names.js';
import {
  SEGMENT_HEADER_BYTES,
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from '../format/segment-header.js';
import { closeQuietly, fsyncDir, readFully, writeFully, type Fs } from './fs.js';

/** Segment ids present in logDir, ascending (log order). */
export function listSegmentIds(fs: Fs, logDir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(logDir);
  } catch (err) {
    throw ioError(`list ${path.basename(logDir)}`, err);
  }
  const ids: number[] = [];
  for (const name of names) {
    const id = parseSegmentFileName(name);
    if (id !== undefined) ids.push(id);
  }
  return ids.sort((a, b) => a - b);
}

export function segmentPath(logDir: string, segmentId: number): string {
  return path.join(logDir, segmentFileName(segmentId));
}

/** Reads and checks the header of an open segment file. Throws the header's decode errors. */
export function readSegmentHeader(fs: Fs, fd: number, segmentId: number): SegmentHeader {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  const n = readFully(fs, fd, buf, 0, SEGMENT_HEADER_BYTES, 0);
  const header = decodeSegmentHeader(buf.subarray(0, n), segmentFileName(segmentId));
  if (header.segmentId !== segmentId) {
    throw new SpoolError('ERR_CORRUPT_RECORD', `${segmentFileName(segmentId)}: header names segment ${header.segmentId}`);
  }
  return header;
}

/**
 * Creates segment `header.segmentId` and returns its fd (opened for reading and writing), positioned for records
 * at SEGMENT_HEADER_BYTES. `durable` fsyncs the file and the directory before returning.
 */
export function createSegment(fs: Fs, logDir: string, header: SegmentHeader, durable: boolean): number {
  const file = segmentPath(logDir, header.segmentId);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'wx+');
    const bytes = encodeSegmentHeader(header);
    writeFully(fs, fd, bytes, 0, bytes.length, 0);
    if (durable) fs.fsyncSync(fd);
  } catch (err) {
    if (fd !== undefined) closeQuietly(fs, fd);
    throw ioError(`create segment ${path.basename(file)}`, err);
  }
  if (durable) fsyncDir(fs, logDir);
  return fd;
}
