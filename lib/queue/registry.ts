/**
 * One Owner per queue directory per process (DESIGN §2): every Queue and Worker opened on the same directory in
 * this process shares it, so opening a Queue and a Worker side by side just works. Reference-counted: the owner
 * closes (checkpoint, log closed, lock released) when the last of them closes. The first opener's options shape
 * the owner; later openers share it as it is.
 */
import * as path from 'node:path';
import { Owner } from './owner.js';
import type { ResolvedQueueOptions } from './options.js';

interface Entry {
  owner: Promise<Owner>;
  refs: number;
}

const owners = new Map<string, Entry>();

export function acquireOwner(name: string, opts: ResolvedQueueOptions): { key: string; owner: Promise<Owner> } {
  const key = path.resolve(opts.dir, name);
  let entry = owners.get(key);
  if (!entry) {
    entry = { owner: Owner.open(name, opts), refs: 0 };
    owners.set(key, entry);
    entry.owner.catch(() => owners.delete(key));
  }
  entry.refs++;
  return { key, owner: entry.owner };
}

export async function releaseOwner(key: string): Promise<void> {
  const entry = owners.get(key);
  if (!entry) return;
  if (--entry.refs > 0) return;
  owners.delete(key);
  const owner = await entry.owner.catch(() => undefined);
  await owner?.close();
}
