/**
 * One Owner per queue directory per process (DESIGN §2): every Queue and Worker opened on the same directory in
 * this process shares it, so opening a Queue and a Worker side by side just works. Reference-counted: the owner
 * closes (checkpoint, log closed, lock released) when the last of them closes.
 *
 * The first opener's options shape the owner. A later opener that sets an owner option must ask for the owner's
 * value (sameOwnerOptions): it would otherwise be given the owner's silently, e.g. write its data in plaintext
 * beside an owner opened without its encryption key, or fsync nothing when it asked for fsync. What it sets is
 * compared resolved (compression: true is its default threshold); what it leaves out it shares with the owner, so
 * a Worker given only `dir` beside a Queue opened with `durability: 'batch'` just works, as in BullMQ (the order
 * matters only when the first opener left out what a later one sets). A conflict is ERR_OPTIONS_CONFLICT from
 * the constructor, before anything is opened or written. (Options of the handle alone, such as a Queue's defaultJobOptions or a
 * Worker's concurrency, are not the owner's and may differ.)
 *
 * An acquire that arrives while the last holder's close is still running waits for that close and then opens a
 * new owner: opening at once would find the lock still held by the closing one (ERR_LOCKED).
 */
import * as path from 'node:path';
import { SpoolError } from '../../errors.js';
import { keySpecs, type EncryptionOptions } from '../../codec/keyring.js';
import { resolveLogOptions } from '../../log/log.js';
import { Owner } from './owner.js';
import { LocalBackend } from './local-backend.js';
import type { DeadLetterSink, OwnerSource } from './dead-letter.js';
import { COMMANDS } from './commands.js';
import type { ResolvedQueueOptions } from '../options.js';

interface Entry {
  owner: Promise<Owner>;
  /** The owner's one LocalBackend, made once it is open. */
  backend: Promise<LocalBackend>;
  opts: ResolvedQueueOptions;
  refs: number;
  gen: number;
}

/**
 * The key a holder gets names its entry, not just its directory: an owner that fails to open leaves the registry
 * at once (the next opener tries afresh), and its holders' later releases must not count against that new entry.
 */
let generation = 0;
const SEP = '\0';

const owners = new Map<string, Entry>();
const closing = new Map<string, Promise<void>>();

/**
 * A holder's share of the process's owner of queue `name` under opts.dir, opened on first acquire. Throws
 * ERR_OPTIONS_CONFLICT when an owner is open here with other options (header); `join` skips that check, for the
 * owner's own use of another queue (a dead-letter queue), which takes that queue as it is open.
 */
export function acquireOwner(name: string, opts: ResolvedQueueOptions, join = false): { key: string; owner: Promise<Owner> } {
  const key = path.resolve(opts.dir, name);
  let entry = owners.get(key);
  if (entry && !join) sameOwnerOptions(name, entry.opts, opts);
  if (!entry) {
    generation++;
    const prior = closing.get(key) ?? Promise.resolve();
    const owner = prior.then(() => Owner.open(name, opts, DEAD_LETTER_OWNERS));
    const created: Entry = { owner, backend: owner.then((o) => new LocalBackend(o)), opts, refs: 0, gen: generation };
    created.backend.catch(() => undefined); // the same failure as `owner`'s, surfaced by whoever awaits either
    entry = created;
    owners.set(key, created);
    created.owner.catch(() => {
      if (owners.get(key) === created) owners.delete(key);
    });
  }
  entry.refs++;
  return { key: `${key}${SEP}${entry.gen}`, owner: entry.owner };
}

/** acquireOwner for a Queue or Worker: what it gets is the owner's backend (backend.ts), released by releaseOwner. */
export function acquireBackend(name: string, opts: ResolvedQueueOptions): { key: string; backend: Promise<LocalBackend> } {
  const { key } = acquireOwner(name, opts);
  return { key, backend: owners.get(key.slice(0, key.lastIndexOf(SEP)))!.backend };
}

/** How an owner reaches the owner of its dead-letter queue (dead-letter.ts): joined here, as it is open. */
const DEAD_LETTER_OWNERS: OwnerSource = {
  acquire: (name, opts) => {
    const { key, owner } = acquireOwner(name, opts, true);
    return { key, owner: owner.then(deadLetterSink) };
  },
  release: (key) => releaseOwner(key),
};

/** A dead-letter queue's owner as the move reaches it: its addDeadLetter command (commands.ts). */
function deadLetterSink(owner: Owner): DeadLetterSink {
  return { opts: owner.opts, appendDeadLetter: (ev) => COMMANDS.addDeadLetter(owner, ev) };
}

export async function releaseOwner(handle: string): Promise<void> {
  const at = handle.lastIndexOf(SEP);
  const key = handle.slice(0, at);
  const entry = owners.get(key);
  if (!entry || String(entry.gen) !== handle.slice(at + 1)) return; // its owner failed to open and is gone
  if (--entry.refs > 0) return;
  owners.delete(key);
  const done = entry.owner
    .catch(() => undefined)
    .then((owner) => owner?.close())
    .finally(() => {
      if (closing.get(key) === done) closing.delete(key);
    });
  closing.set(key, done);
  await done;
}

/** The value of each option that shapes the owner, resolved as the log and the owner resolve it. */
function shapeOf(o: ResolvedQueueOptions): Record<string, string | number | false> {
  const log = resolveLogOptions({ durability: o.durability, compression: o.compression, maxSegmentBytes: o.maxSegmentBytes, batchIntervalMs: o.batchIntervalMs });
  return {
    durability: log.durability,
    compression: log.compressThreshold,
    maxSegmentBytes: log.maxSegmentBytes,
    batchIntervalMs: log.batchIntervalMs,
    maxDataBytes: o.maxDataBytes,
    leaseMs: o.leaseMs,
    maxStalledCount: o.maxStalledCount,
    checkpointEvery: o.checkpointEvery,
  };
}

function shown(option: string, v: string | number | false): string {
  if (option === 'compression') return v === false ? 'off' : `on (threshold ${v} bytes)`;
  return typeof v === 'string' ? `'${v}'` : String(v);
}

/** Throws ERR_OPTIONS_CONFLICT when `asked` differs from the options the open owner `has` in any that shape it. */
export function sameOwnerOptions(name: string, has: ResolvedQueueOptions, asked: ResolvedQueueOptions): void {
  if (has.clock !== asked.clock) {
    // Internal (tests): handles on another clock would schedule by another time than their owner.
    throw new SpoolError('ERR_OPTIONS_CONFLICT', `queue ${name} is already open in this process on another clock (INTERNAL_CLOCK)`);
  }
  const conflict = (option: string, open: string, wants: string): never => {
    throw new SpoolError('ERR_OPTIONS_CONFLICT',
      `queue ${name} is already open in this process with ${option} ${open}, and this handle asks for ${option} ${wants}: ` +
      'every Queue and Worker on a queue in one process shares its owner, so what they set of durability, encryption, ' +
      'compression, maxSegmentBytes, batchIntervalMs, maxDataBytes, leaseMs, maxStalledCount and checkpointEvery ' +
      'must agree (leave an option out to share the owner\'s, or open the handle that sets it first)');
  };
  const enc = asked.given.has('encryption') ? encryptionDifference(has.encryption, asked.encryption) : undefined;
  if (enc) conflict('encryption', enc[0], enc[1]);
  const a = shapeOf(has);
  const b = shapeOf(asked);
  for (const option of Object.keys(a)) {
    if (asked.given.has(option) && a[option] !== b[option]) conflict(option, shown(option, a[option]!), shown(option, b[option]!));
  }
}

/** How two encryption settings differ, as [open, asked] words that never show key bytes; undefined when equal. */
function encryptionDifference(has: EncryptionOptions | undefined, asked: EncryptionOptions | undefined): [string, string] | undefined {
  if (!has && !asked) return undefined;
  if (!has) return ['off', 'on']; // sharing the owner would write this handle's data in plaintext
  if (!asked) return ['on', 'off'];
  const x = [...keySpecs(has)].sort((p, q) => p.id - q.id);
  const y = [...keySpecs(asked)].sort((p, q) => p.id - q.id);
  if (x.length !== y.length || x.some((k, i) => k.id !== y[i]!.id)) {
    return [`with key ids ${x.map((k) => k.id).join(',')}`, `with key ids ${y.map((k) => k.id).join(',')}`];
  }
  if (x.some((k, i) => !Buffer.isBuffer(k.key) || !Buffer.isBuffer(y[i]!.key) || !k.key.equals(y[i]!.key))) return ['with one key', 'with a different key'];
  const cx = currentKeyId(has, x);
  const cy = currentKeyId(asked, y);
  if (cx !== cy) return [`sealing with key ${cx}`, `sealing with key ${cy}`];
  return undefined;
}

function currentKeyId(enc: EncryptionOptions, sorted: Array<{ id: number }>): number {
  return 'key' in enc ? 1 : (enc.currentKeyId ?? sorted[sorted.length - 1]!.id);
}
