/**
 * A binary min-heap with lazy deletion. Owns ordering only; callers decide what an entry means.
 *
 * Jobs leave the ready and delayed sets for many reasons (taken, removed, promoted); finding and removing them
 * from the middle of a heap costs O(n). Instead each entry carries the `stamp` its job had when pushed, and an
 * entry whose job's stamp has moved on since is stale: peek() and pop() drop stale entries as they surface.
 * Entries keep the keys their item had when pushed, so an item whose keys change later (a retried job gets a new
 * run time) cannot disturb the order of the entries around its stale one. Order: k1, then k2, both ascending.
 *
 * Struct of arrays: keys and stamps live in typed arrays beside one array of items, so a heap of a million jobs
 * is four flat arrays rather than a million small entry objects for the garbage collector to trace.
 */

export interface HeapItem {
  /** Bumped whenever the item leaves the set; entries pushed with an older stamp are stale. */
  stamp: number;
}

export class LazyHeap<T extends HeapItem> {
  readonly #k1Of: (item: T) => number;
  readonly #k2Of: (item: T) => number;
  #items: T[] = [];
  #k1 = new Float64Array(16);
  #k2 = new Float64Array(16);
  /** Stamps modulo 2^32: a stale entry would need its job to leave and re-enter the set 2^32 times to look live. */
  #stamps = new Uint32Array(16);
  #n = 0;

  constructor(k1: (item: T) => number, k2: (item: T) => number) {
    this.#k1Of = k1;
    this.#k2Of = k2;
  }

  /** Entries including stale ones; an upper bound on the live count. */
  get size(): number {
    return this.#n;
  }

  push(item: T): void {
    this.#reserve(this.#n + 1);
    const i = this.#n++;
    this.#set(i, item, this.#k1Of(item), this.#k2Of(item), item.stamp);
    this.#siftUp(i);
  }

  /** The least live item, or undefined. */
  peek(): T | undefined {
    this.#dropStale();
    return this.#n > 0 ? this.#items[0] : undefined;
  }

  pop(): T | undefined {
    this.#dropStale();
    if (this.#n === 0) return undefined;
    const top = this.#items[0]!;
    this.#removeTop();
    return top;
  }

  /** Live items, in no particular order. */
  *items(): IterableIterator<T> {
    for (let i = 0; i < this.#n; i++) {
      const item = this.#items[i]!;
      if (this.#stamps[i] === item.stamp >>> 0) yield item;
    }
  }

  clear(): void {
    this.#items = [];
    this.#n = 0;
  }

  /** Replaces the contents with `items` in O(n) (Floyd's heapify), for loading a snapshot. */
  rebuild(items: T[]): void {
    this.#items = new Array(items.length);
    this.#n = 0;
    this.#reserve(items.length);
    for (const item of items) this.#set(this.#n++, item, this.#k1Of(item), this.#k2Of(item), item.stamp);
    for (let i = (this.#n >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #reserve(n: number): void {
    if (n <= this.#k1.length) return;
    const cap = Math.max(n, this.#k1.length * 2);
    const k1 = new Float64Array(cap);
    k1.set(this.#k1.subarray(0, this.#n));
    this.#k1 = k1;
    const k2 = new Float64Array(cap);
    k2.set(this.#k2.subarray(0, this.#n));
    this.#k2 = k2;
    const stamps = new Uint32Array(cap);
    stamps.set(this.#stamps.subarray(0, this.#n));
    this.#stamps = stamps;
  }

  #set(i: number, item: T, k1: number, k2: number, stamp: number): void {
    this.#items[i] = item;
    this.#k1[i] = k1;
    this.#k2[i] = k2;
    this.#stamps[i] = stamp >>> 0;
  }

  #less(a: number, b: number): boolean {
    const a1 = this.#k1[a]!;
    const b1 = this.#k1[b]!;
    return a1 < b1 || (a1 === b1 && this.#k2[a]! < this.#k2[b]!);
  }

  #swap(a: number, b: number): void {
    const items = this.#items;
    const item = items[a]!;
    items[a] = items[b]!;
    items[b] = item;
    const k1 = this.#k1;
    const k2 = this.#k2;
    const st = this.#stamps;
    let v = k1[a]!;
    k1[a] = k1[b]!;
    k1[b] = v;
    v = k2[a]!;
    k2[a] = k2[b]!;
    k2[b] = v;
    v = st[a]!;
    st[a] = st[b]!;
    st[b] = v;
  }

  #dropStale(): void {
    while (this.#n > 0 && this.#stamps[0] !== this.#items[0]!.stamp >>> 0) this.#removeTop();
  }

  #removeTop(): void {
    const last = --this.#n;
    if (last > 0) {
      this.#set(0, this.#items[last]!, this.#k1[last]!, this.#k2[last]!, this.#stamps[last]!);
      this.#items.length = last; // drop the moved reference so removed jobs can be collected
      this.#siftDown(0);
    } else {
      this.#items.length = 0;
    }
  }

  #siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const n = this.#n;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.#less(l, m)) m = l;
      if (r < n && this.#less(r, m)) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }
}
