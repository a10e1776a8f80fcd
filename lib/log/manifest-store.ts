/**
 * Creating and checking a log directory's QUEUE manifest (layout in format/manifest.ts), including the key
 * checks that let a wrong encryption key be refused at open, before a single record is written with it.
 *
 * A key check is HMAC-SHA256(key, "spoolq key check v1"), first 16 bytes, stored per key id. It tells whether a
 * key is the one first used under its id without storing anything that helps to find the key.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import { SpoolError, ioError } from '../errors.js';
import { decodeManifest, encodeManifest, type ManifestBody } from '../format/manifest.js';
import { INDEX_FILE, LOG_DIR, MANIFEST_FILE, QUARANTINE_DIR } from '../format/names.js';
import type { KeySpec } from '../codec/keyring.js';
import { makeDirs, replaceFileAtomic, type Fs } from './fs.js';

export interface StoredManifest extends ManifestBody {
  /** Key id → hex key check. */
  keyChecks?: Record<string, string>;
}

/**
 * What a queue directory may hold, so that a directory holding only these is not somebody else's. The layers above
 * add tickets/ (queue/tickets.ts) and socket/ (queue/remote/address.ts): a process that checks while another
 * creates the same queue can see them (queue-open-race spec).
 */
const OWNED_NAMES = new Set([MANIFEST_FILE, INDEX_FILE, LOG_DIR, QUARANTINE_DIR, 'owner', 'owner.lock', 'tickets', 'socket']);

export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('spoolq key check v1').digest().subarray(0, 16).toString('hex');
}

/** Reads the manifest; ERR_NOT_A_LOG when the directory has none. */
export function readManifest(fs: Fs, dir: string): StoredManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SpoolError('ERR_NOT_A_LOG', `${dir} is not a spoolq queue directory (no ${MANIFEST_FILE} file)`);
    }
    throw ioError(`read ${MANIFEST_FILE}`, err);
  }
  return decodeManifest(bytes, MANIFEST_FILE) as StoredManifest;
}

/**
 * Before the owner lock: the directory's manifest when it has one (or ERR_NOT_A_LOG when `create` is off), else
 * undefined after making sure the directory is ours to create a queue in (missing, or empty of anything but what
 * a queue holds) and exists, so that the lock can be taken in it. The manifest itself is created only under the
 * lock (openManifest): two processes creating the same queue at once must not both write it, and the one that
 * loses the lock gets ERR_LOCKED like any second process.
 */
export function prepareQueueDir(fs: Fs, dir: string, create: boolean): StoredManifest | undefined {
  if (fs.existsSync(path.join(dir, MANIFEST_FILE)) || !create) return readManifest(fs, dir);
  checkNotForeign(fs, dir);
  makeDirs(fs, dir);
  return undefined;
}

/**
 * Returns the directory's manifest, creating the directory and manifest when `create` allows and the directory
 * is empty or missing. A non-empty directory without a manifest is refused (ERR_NOT_A_LOG): it is somebody
 * else's, and nothing is written into it. Creating is for the holder of the owner lock (see prepareQueueDir).
 */
export function openManifest(fs: Fs, dir: string, create: boolean, fresh: ManifestBody): StoredManifest {
  if (fs.existsSync(path.join(dir, MANIFEST_FILE))) return readManifest(fs, dir);
  if (!create) return readManifest(fs, dir);
  checkNotForeign(fs, dir);
  makeDirs(fs, path.join(dir, LOG_DIR));
  replaceFileAtomic(fs, path.join(dir, MANIFEST_FILE), encodeManifest(fresh));
  return fresh;
}

/** ERR_NOT_A_LOG when `dir` is a file, or a directory holding anything a queue does not. */
function checkNotForeign(fs: Fs, dir: string): void {
  let entries: string[] = [];
  try {
    if (fs.existsSync(dir)) entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new SpoolError('ERR_NOT_A_LOG', `${dir} is a file, not a queue directory`);
    }
    throw ioError(`list ${dir}`, err);
  }
  if (entries.includes(MANIFEST_FILE)) return; // made meanwhile by a process creating the same queue: it is one
  const foreign = entries.filter((n) => !OWNED_NAMES.has(n) && !n.endsWith('.tmp') && !n.endsWith('.stale'));
  if (foreign.length > 0) {
    throw new SpoolError('ERR_NOT_A_LOG', `${dir} is not empty and holds no spoolq queue (found ${foreign[0]})`);
  }
}

/**
 * Checks the given keys against the manifest's key checks: a key whose id is known must match (ERR_DECRYPT
 * otherwise). Returns the manifest with checks added for ids it did not know, or undefined if nothing is new.
 */
export function checkKeys(manifest: StoredManifest, keys: KeySpec[]): StoredManifest | undefined {
  const checks = { ...(manifest.keyChecks ?? {}) };
  let added = false;
  for (const { id, key } of keys) {
    const want = checks[id];
    const have = keyCheck(key);
    if (want === undefined) {
      checks[id] = have;
      added = true;
    } else if (!timingSafeEqual(Buffer.from(want, 'hex'), Buffer.from(have, 'hex'))) {
      throw new SpoolError('ERR_DECRYPT', `encryption key ${id} is not the key this log was written with`);
    }
  }
  return added ? { ...manifest, keyChecks: checks } : undefined;
}

export function writeManifest(fs: Fs, dir: string, manifest: StoredManifest): void {
  replaceFileAtomic(fs, path.join(dir, MANIFEST_FILE), encodeManifest(manifest));
}
