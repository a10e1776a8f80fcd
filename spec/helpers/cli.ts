/**
 * Helpers for the CLI's tests: run the compiled `spoolq` as a user would (a child process), and make small
 * logs to run it on. The CLI is found relative to this compiled file, so it works from dist/ and dist-cli/ alike.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Log, type LogOptions } from '../../lib/index.js';

/** The compiled CLI entry (cli/main.ts → <out>/cli/main.js). */
export const CLI_PATH = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <cli> ...args` without blocking this process's event loop (a Log here may keep appending). */
export function runCli(args: string[], timeoutMs = 15_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Parses NDJSON output into objects (one per non-empty line). */
export function ndjson<T = Record<string, unknown>>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

export interface RecordSpec {
  type: number;
  payload: Buffer;
}

/** Opens a fresh log at dir, appends the records in order, and closes it. Returns the log's epoch. */
export async function writeLog(dir: string, records: RecordSpec[], opts: LogOptions = {}): Promise<number> {
  const log = await Log.open(dir, opts);
  try {
    await Promise.all(records.map((r) => log.append(r.type, r.payload)));
    return log.epoch;
  } finally {
    await log.close();
  }
}

/** `n` records of type 1 + i % 3 with the text payloads `job-<i>`. */
export function textRecords(n: number): RecordSpec[] {
  return Array.from({ length: n }, (_, i) => ({ type: 1 + (i % 3), payload: Buffer.from(`job-${i}`) }));
}

/** A 32-byte key of one repeated byte. */
export function testKey(byte: number): Buffer {
  return Buffer.alloc(32, byte);
}

/** Writes a key file in `dir` and returns its path. */
export function writeKeyFile(dir: string, name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** Every entry under dir (files with their bytes, directories as 'dir'), for checking that a command wrote nothing. */
export function snapshotFiles(dir: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    entries.set(path.relative(dir, full), entry.isFile() ? fs.readFileSync(full).toString('base64') : 'dir');
  }
  return entries;
}
