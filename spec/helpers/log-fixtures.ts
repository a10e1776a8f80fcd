/**
 * Fixtures for the log specs: an Fs that counts (and can hold back) calls, opening a Log that is closed when the
 * test ends, collecting a replay, and a hash of a directory's whole contents to prove nothing changed on disk.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { nodeFs, type Fs } from '../../lib/log/fs.js';
import { Log, type LogOptions } from '../../lib/log/log.js';
import { tempDir } from './tmp.js';

export type FsCall = keyof Fs;

export interface CountingFs {
  fs: Fs;
  counts: Record<FsCall, number>;
  reset(): void;
  /** Resolves on the next call of `name` (after it has been passed on). */
  next(name: FsCall): Promise<void>;
}

/** An Fs that passes every call to `base` and counts it by name. */
export function countingFs(base: Fs = nodeFs): CountingFs {
  const names = Object.keys(base) as FsCall[];
  const counts = Object.fromEntries(names.map((n) => [n, 0])) as Record<FsCall, number>;
  const waiting = new Map<FsCall, Array<() => void>>();
  const wrapped = {} as Record<FsCall, (...args: unknown[]) => unknown>;
  for (const name of names) {
    const fn = base[name] as (...args: unknown[]) => unknown;
    wrapped[name] = (...args: unknown[]) => {
      counts[name]++;
      const result = fn(...args);
      const waiters = waiting.get(name);
      if (waiters) {
        waiting.delete(name);
        for (const w of waiters) w();
      }
      return result;
    };
  }
  return {
    fs: wrapped as unknown as Fs,
    counts,
    reset: () => names.forEach((n) => (counts[n] = 0)),
    next: (name) =>
      new Promise<void>((resolve) => {
        const list = waiting.get(name) ?? [];
        list.push(resolve);
        waiting.set(name, list);
      }),
  };
}

/** An Fs whose fdatasync callbacks are held until release() is called; counts fdatasync calls. */
export function gatedSyncFs(base: Fs = nodeFs): { fs: Fs; held: () => number; syncs: () => number; release: () => void } {
  let pending: Array<() => void> = [];
  let syncs = 0;
  const fs: Fs = {
    ...base,
    fdatasync: (fd, cb) => {
      syncs++;
      base.fdatasync(fd, (err) => pending.push(() => cb(err)));
    },
  };
  return {
    fs,
    held: () => pending.length,
    syncs: () => syncs,
    release: () => {
      const run = pending;
      pending = [];
      for (const fn of run) fn();
    },
  };
}

interface Cleanup {
  /** Verify-and-close steps of the logs opened in the test, run first, last opened first. */
  closers: Array<() => Promise<void>>;
  /** Removal of the test's temp directories, run after every log is closed. */
  removers: Array<() => void>;
}
const cleanups = new WeakMap<object, Cleanup>();

/**
 * A temp directory (tmp.ts tempDir) removed when the test ends, but only after every Log that openLog opened in
 * the test has been verified and closed (node:test runs `after` hooks first registered, first run).
 */
export function logDir(t: Pick<TestContext, 'after'>, prefix?: string): string {
  let c = cleanups.get(t);
  if (!c) {
    const fresh: Cleanup = { closers: [], removers: [] };
    cleanups.set(t, fresh);
    t.after(async () => {
      try {
        let first: unknown;
        for (const close of fresh.closers.splice(0).reverse()) await close().catch((err) => (first ??= err));
        if (first !== undefined) throw first;
      } finally {
        for (const remove of fresh.removers.splice(0)) remove();
      }
    });
    c = fresh;
  }
  const removers = c.removers;
  return tempDir({ after: (fn: () => void) => void removers.push(fn) }, prefix);
}

/**
 * Opens a Log that is closed when the test ends (closing twice is safe). Unless `verify` is false (a test that
 * damages the log on purpose), a full verify with payload decoding runs first and must find nothing wrong. Use
 * logDir for the directory, so that it still exists when the verify runs.
 */
export async function openLog(
  t: Pick<TestContext, 'after'>,
  dir: string,
  opts?: LogOptions,
  { verify = true }: { verify?: boolean } = {},
): Promise<Log> {
  const log = await Log.open(dir, opts);
  const close = async (): Promise<void> => {
    try {
      if (!verify) return;
      let report;
      try {
        report = log.verify({ decode: true });
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_CLOSED') throw err;
      }
      if (report) {
        assert.deepEqual(
          { ok: report.ok, damage: report.damage, decodeErrors: report.decodeErrors },
          { ok: true, damage: [], decodeErrors: [] },
          `verify of ${dir} before close`,
        );
      }
    } finally {
      await log.close();
    }
  };
  const c = cleanups.get(t);
  if (c) c.closers.push(close);
  else t.after(close);
  return log;
}

export interface Replayed {
  seq: number;
  type: number;
  payload: Buffer;
}

/** Replays `log` from its checkpoint (or the start) and returns every entry with its decoded payload. */
export function replayAll(log: Log): { entries: Replayed[]; state: Buffer | undefined } {
  const entries: Replayed[] = [];
  const { state } = log.replay((e) => {
    entries.push({ seq: e.seq, type: e.type, payload: e.payload() });
  });
  return { entries, state };
}

/** sha256 of every file under `dir` (by relative path), plus every directory name: equal hashes, equal trees. */
export function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, ent.name);
      if (ent.isDirectory()) {
        out[p + '/'] = 'dir';
        walk(p);
      } else {
        out[p] = createHash('sha256').update(fs.readFileSync(path.join(dir, p))).digest('hex');
      }
    }
  };
  walk('');
  return out;
}

export const TEST_KEY_1 = randomBytes(32);
export const TEST_KEY_2 = randomBytes(32);

/** Codec options by name, for the codec matrix. */
export const LOG_CODECS: Array<{ name: string; opts: LogOptions }> = [
  { name: 'plain', opts: {} },
  { name: 'aes+lz4', opts: { compression: { threshold: 0 }, encryption: { key: TEST_KEY_1 } } },
];
