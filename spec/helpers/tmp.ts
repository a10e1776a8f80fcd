/**
 * Temp directories and byte surgery for tests. Each test gets its own directory, removed after it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temp directory, removed when the test ends. */
export function tempDir(t: TestContext | { after: (fn: () => void) => void }, prefix = 'spoolq-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** XORs the byte at `offset` of `file` with `mask` (default 0xff), in place. */
export function flipByte(file: string, offset: number, mask = 0xff): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ mask;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Cuts `bytes` off the end of `file`. */
export function truncateBy(file: string, bytes: number): void {
  fs.truncateSync(file, Math.max(0, fs.statSync(file).size - bytes));
}

export function appendBytes(file: string, bytes: Buffer): void {
  fs.appendFileSync(file, bytes);
}

/** Segment files of a queue directory, in log order, as full paths. */
export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(dir, 'log'))
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => path.join(dir, 'log', n));
}

export function payloadFor(i: number, size = 100): Buffer {
  const b = Buffer.alloc(size, i % 251);
  b.writeUInt32LE(i, 0);
  return b;
}
