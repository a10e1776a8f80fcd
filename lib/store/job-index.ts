/**
 * JobIndex: id → job, shaped like the part of Map the job table uses. Two stores behind one face, because V8
 * is fast at opposite things:
 *   - generated ids ("1", "2", … the seq of the job's ADD record) go into a null-prototype object, where V8 keeps
 *     integer keys as array elements: 1,000,000 inserts take ~90 ms there against ~550 ms in a Map, which
 *     hashes integer-like strings badly (measured on Node 20, the bench machine);
 *   - every other id (custom jobIds, never integers) goes into a Map, which beats an object for those.
 * Iteration yields the numeric ids first (ascending), then the others in insertion order.
 */

const MAX_ELEMENT = 0xffff_fffe; // the largest array index V8 keeps as an element
export const MAX_INDEX = MAX_ELEMENT;

/** True when `id` is a canonical integer within array-index range ("0" or no leading zero). */
export function isIndex(id: string): boolean {
  const n = id.length;
  if (n === 0 || n > 10) return false;
  const c0 = id.charCodeAt(0);
  if (c0 < 48 || c0 > 57 || (c0 === 48 && n > 1)) return false;
  for (let i = 1; i < n; i++) {
    const c = id.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return n < 10 || Number(id) <= MAX_ELEMENT;
}

export class JobIndex<T> {
  #numeric: Record<string, T> = Object.create(null) as Record<string, T>;
  #numericCount = 0;
  readonly #named = new Map<string, T>();

  get size(): number {
    return this.#numericCount + this.#named.size;
  }

  get(id: string): T | undefined {
    return isIndex(id) ? this.#numeric[id] : this.#named.get(id);
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  set(id: string, value: T): void {
    if (!isIndex(id)) {
      this.#named.set(id, value);
      return;
    }
    if (this.#numeric[id] === undefined) this.#numericCount++;
    this.#numeric[id] = value;
  }

  delete(id: string): boolean {
    if (!isIndex(id)) return this.#named.delete(id);
    if (this.#numeric[id] === undefined) return false;
    delete this.#numeric[id];
    this.#numericCount--;
    return true;
  }

  *keys(): IterableIterator<string> {
    for (const k in this.#numeric) yield k;
    yield* this.#named.keys();
  }

  *values(): IterableIterator<T> {
    for (const k in this.#numeric) yield this.#numeric[k]!;
    yield* this.#named.values();
  }
}
