/**
 * A binary min-heap with lazy deletion. Owns ordering only; callers decide what an entry means.
 *
 * Jobs leave the ready and delayed sets for many reasons (taken, removed, promoted); finding and removing them
 * from the middle of a heap costs O(n). Instead each entry carries the `stamp` its job had when pushed, and an
 * entry whose job's stamp has moved on since is stale: peek() and pop() drop stale entries as they surface.
 * Entries keep the keys their item had when pushed, so an item whose keys change later (a retried job gets a new
 * run time) cannot disturb the order of the entries around its stale one. Order: k1, then k2, both ascending.
 */

export interface HeapItem {
  /** Bumped whenever the item leaves the set; entries pushed with an older stamp are stale. */
  stamp: number;
}

interface Entry<T> {
  item: T;
  stamp: number;
  k1: number;
  k2: number;
}

export class LazyHeap<T extends HeapItem> {
  readonly #k1: (item: T) => number;
  readonly #k2: (item: T) => number;
  #entries: Array<Entry<T>> = [];

  constructor(k1: (item: T) => number, k2: (item: T) => number) {
    this.#k1 = k1;
    this.#k2 = k2;
  }

  /** Entries including stale ones; an upper bound on the live count. */
  get size(): number {
    return this.#entries.length;
  }

  push(item: T): void {
    const e = this.#entries;
    e.push({ item, stamp: item.stamp, k1: this.#k1(item), k2: this.#k2(item) });
    let i = e.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#lessEntry(e[i]!, e[parent]!)) break;
      [e[i], e[parent]] = [e[parent]!, e[i]!];
      i = parent;
    }
  }

  /** The least live item, or undefined. */
  peek(): T | undefined {
    this.#dropStale();
    return this.#entries[0]?.item;
  }

  pop(): T | undefined {
    this.#dropStale();
    return this.#popRaw()?.item;
  }

  /** Live items, in no particular order. */
  *items(): IterableIterator<T> {
    for (const e of this.#entries) if (e.stamp === e.item.stamp) yield e.item;
  }

  clear(): void {
    this.#entries = [];
  }

  #dropStale(): void {
    const e = this.#entries;
    while (e.length > 0 && e[0]!.stamp !== e[0]!.item.stamp) this.#popRaw();
  }

  #lessEntry(a: Entry<T>, b: Entry<T>): boolean {
    return a.k1 < b.k1 || (a.k1 === b.k1 && a.k2 < b.k2);
  }

  #popRaw(): Entry<T> | undefined {
    const e = this.#entries;
    if (e.length === 0) return undefined;
    const top = e[0]!;
    const last = e.pop()!;
    if (e.length > 0) {
      e[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < e.length && this.#lessEntry(e[l]!, e[m]!)) m = l;
        if (r < e.length && this.#lessEntry(e[r]!, e[m]!)) m = r;
        if (m === i) break;
        [e[i], e[m]] = [e[m]!, e[i]!];
        i = m;
      }
    }
    return top;
  }
}
