/**
 * LazyHeap (lib/store/heap.ts): order by two keys, lazy deletion by stamp, keys frozen at push, O(n) rebuild.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyHeap } from '../../lib/store/heap.js';

interface Item {
  name: string;
  k1: number;
  k2: number;
  stamp: number;
}

const item = (name: string, k1: number, k2: number): Item => ({ name, k1, k2, stamp: 0 });
const heap = (): LazyHeap<Item> => new LazyHeap<Item>((i) => i.k1, (i) => i.k2);

function drain(h: LazyHeap<Item>): string[] {
  const out: string[] = [];
  for (let i = h.pop(); i; i = h.pop()) out.push(i.name);
  return out;
}

/** A small deterministic generator (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LazyHeap', () => {
  it('pops by the first key, then the second, both ascending', () => {
    const h = heap();
    for (const i of [item('c', 1, 5), item('a', 0, 9), item('d', 1, 6), item('b', 0, 10), item('e', 2, 0)]) h.push(i);
    assert.equal(h.peek()?.name, 'a');
    assert.deepEqual(drain(h), ['a', 'b', 'c', 'd', 'e']);
    assert.equal(h.peek(), undefined);
    assert.equal(h.pop(), undefined);
  });

  for (const seed of [1, 2, 3]) {
    it(`matches a sort of 2000 random items, growing past its first capacity (seed ${seed})`, () => {
      const rand = prng(seed);
      const h = heap();
      const items = Array.from({ length: 2000 }, (_, n) => item(`i${n}`, Math.floor(rand() * 20), n));
      for (const i of items) h.push(i);
      assert.equal(h.size, 2000);
      const sorted = [...items].sort((a, b) => a.k1 - b.k1 || a.k2 - b.k2).map((i) => i.name);
      assert.deepEqual(drain(h), sorted);
    });
  }

  it('skips entries whose item has been stamped since they were pushed', () => {
    const h = heap();
    const [a, b, c] = [item('a', 0, 0), item('b', 1, 0), item('c', 2, 0)];
    for (const i of [a, b, c]) h.push(i);
    a.stamp++;
    c.stamp++;
    assert.equal(h.size, 3, 'stale entries still count in size');
    assert.deepEqual([...h.items()].map((i) => i.name), ['b']);
    assert.equal(h.peek()?.name, 'b');
    assert.deepEqual(drain(h), ['b']);
  });

  it('orders an entry by the keys its item had when pushed, and a re-push by the new ones', () => {
    const h = heap();
    const [a, b, c] = [item('a', 1, 0), item('b', 2, 0), item('c', 3, 0)];
    for (const i of [a, b, c]) h.push(i);
    a.k1 = 9; // a key change without leaving: the entry keeps its place
    assert.equal(h.peek()?.name, 'a');
    c.stamp++; // c leaves and comes back first
    c.k1 = 0;
    h.push(c);
    assert.deepEqual(drain(h), ['c', 'a', 'b']);
  });

  it('rebuilds from a list in heap order, dropping what it held', () => {
    const h = heap();
    h.push(item('old', 0, 0));
    const rand = prng(9);
    const items = Array.from({ length: 300 }, (_, n) => item(`r${n}`, Math.floor(rand() * 5), (n * 7919) % 300));
    h.rebuild(items);
    assert.equal(h.size, 300);
    const sorted = [...items].sort((a, b) => a.k1 - b.k1 || a.k2 - b.k2).map((i) => i.name);
    assert.deepEqual(drain(h), sorted);
  });

  it('forgets everything on clear', () => {
    const h = heap();
    h.push(item('a', 0, 0));
    h.clear();
    assert.equal(h.size, 0);
    assert.equal(h.pop(), undefined);
  });
});
