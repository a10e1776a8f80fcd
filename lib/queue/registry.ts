/**
 * One Owner per queue directory per process (DESIGN §2): every Queue and Worker opened on the same directory in
 * this process shares it, so opening a Queue and a Worker side by side just works. Reference-counted: the owner
 * closes (checkpoint, log closed, lock released) when the last of them closes. The first opener's options shape
 * the owner; later openers share it as it is.
 *
 * An acquire that arrives while the last holder's close is still running waits for that close and then opens a
 * new owner: opening at once would find the lock still held by the closing one (ERR_LOCKED).
 */
import * as path from 'node:path';
import { Owner } from './owner.js';
import type { ResolvedQueueOptions } from './options.js';

interface Entry {
  owner: Promise<Owner>;
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

export function acquireOwner(name: string, opts: ResolvedQueueOptions): { key: string; owner: Promise<Owner> } {
  const key = path.resolve(opts.dir, name);
  let entry = owners.get(key);
  if (!entry) {
    generation++;
    const prior = closing.get(key) ?? Promise.resolve();
    const created: Entry = { owner: prior.then(() => Owner.open(name, opts)), refs: 0, gen: generation };
    entry = created;
    owners.set(key, created);
    created.owner.catch(() => {
      if (owners.get(key) === created) owners.delete(key);
    });
  }
  entry.refs++;
  return { key: `${key}${SEP}${entry.gen}`, owner: entry.owner };
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
