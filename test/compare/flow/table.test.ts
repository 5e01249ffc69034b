// The connection table against an obviously correct slow model of second-chance eviction: a
// queue, oldest first, where a lookup marks an entry used and a full table requeues used entries
// (clearing the mark) until it finds an unused one to evict. Lookups by key and by IPv4 tuple
// (and the shortcut for a key looked up twice in a row) must find the same entries, evict in the
// same order, and sweep the same entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConnectionTable, type EvictionReason } from '../../../compare/flow/table.js';
import { tupleOfKey } from '../../../compare/flow/key.js';

interface Entry {
  name: string;
  lastSeen: number;
  idleLimit: number;
  used: boolean;
}

/**
 * Second chance, the slow way. Its own `used` marks: the table's live on the entries. `queue` is
 * the eviction order (second chances requeue); `added` the order entries came in (walks, sweeps).
 */
class Model {
  queue: { key: string; entry: Entry; used: boolean }[] = [];
  added: { key: string; entry: Entry }[] = [];
  evicted: string[] = [];
  constructor(private readonly max: number) {}
  get(key: string): Entry | undefined {
    const slot = this.queue.find((s) => s.key === key);
    if (slot) slot.used = true;
    return slot?.entry;
  }
  add(key: string, entry: Entry): void {
    while (this.queue.length >= this.max) {
      const head = this.queue.shift()!;
      if (head.used) {
        head.used = false;
        this.queue.push(head);
      } else {
        this.evicted.push(`${head.entry.name} full`);
        this.added = this.added.filter((s) => s.key !== head.key);
      }
    }
    this.queue.push({ key, entry, used: true });
    this.added.push({ key, entry });
  }
  delete(key: string): void {
    this.queue = this.queue.filter((s) => s.key !== key);
    this.added = this.added.filter((s) => s.key !== key);
  }
  sweep(now: number): number {
    const stale = this.added.filter((s) => now - s.entry.lastSeen > s.entry.idleLimit);
    for (const s of stale) this.delete(s.key);
    for (const s of stale) this.evicted.push(`${s.entry.name} idle`);
    return stale.length;
  }
  names(): string[] {
    return this.added.map((s) => s.entry.name);
  }
}

type Op =
  | { op: 'get'; key: number; times: number; byTuple: boolean }
  | { op: 'add'; key: number }
  | { op: 'delete'; key: number }
  | { op: 'sweep' }
  | { op: 'tick'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('get' as const), key: fc.integer({ min: 0, max: 9 }), times: fc.integer({ min: 1, max: 3 }), byTuple: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('add' as const), key: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('sweep' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 60 }) }) },
);

/** An IPv4 TCP key as flow/key.ts makes them; keys 8 and 9 are IPv6-like (no tuple). */
function keyOf(k: number): string {
  if (k >= 8) return String.fromCharCode(6, 6, 80, 40000 + k, ...new Array<number>(16).fill(k));
  return String.fromCharCode(4, 6, 0x0a00, 2, 80, 0x0a00, 1 + (k >> 1), 40000 + k);
}

test('ConnectionTable finds, evicts and sweeps exactly as a slow second-chance model', () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 5 }), fc.array(opArb, { minLength: 20, maxLength: 120 }), (max, ops) => {
      const evicted: string[] = [];
      const table = new ConnectionTable<Entry>(max, (e, _k, reason: EvictionReason) => evicted.push(`${e.name} ${reason}`));
      const model = new Model(max);
      let now = 0;
      let made = 0;
      const lookup = (k: number, byTuple: boolean): Entry | undefined => {
        const t = tupleOfKey(keyOf(k));
        return byTuple && t !== undefined ? table.getIpv4(...t) : table.get(keyOf(k));
      };
      for (const o of ops) {
        if (o.op === 'get') {
          for (let i = 0; i < o.times; i++) {
            const got = lookup(o.key, o.byTuple);
            assert.equal(got, model.get(keyOf(o.key)));
            if (got !== undefined) got.lastSeen = now;
          }
        } else if (o.op === 'add') {
          const found = table.get(keyOf(o.key));
          assert.equal(found, model.get(keyOf(o.key)));
          if (found !== undefined) continue;
          const e = { name: `e${made++}`, lastSeen: now, idleLimit: 100, used: false };
          table.add(keyOf(o.key), e);
          model.add(keyOf(o.key), e);
        } else if (o.op === 'delete') {
          table.delete(keyOf(o.key));
          model.delete(keyOf(o.key));
        } else if (o.op === 'sweep') {
          assert.equal(table.sweep(now), model.sweep(now));
        } else {
          now += o.ms;
        }
        assert.deepEqual(evicted, model.evicted);
        assert.deepEqual([...table.values()].map((e) => e.name), model.names());
        assert.equal(table.size, model.queue.length);
      }
    }),
    { numRuns: 500 },
  );
});

test('a full table passes over the entries used since it last looked, and evicts the first one that was not', () => {
  const evicted: string[] = [];
  const table = new ConnectionTable<Entry>(3, (e) => evicted.push(e.name));
  const add = (i: number, name: string): void => table.add(keyOf(i), { name, lastSeen: 0, idleLimit: 1000, used: false });
  add(0, 'a');
  add(1, 'b');
  add(2, 'c');
  add(3, 'd'); // all new, all marked: each loses its mark, then the oldest goes
  assert.deepEqual(evicted, ['a']);
  table.get(keyOf(1)); // b is used again
  add(4, 'e'); // b gets a second chance, c (unmarked) goes
  assert.deepEqual(evicted, ['a', 'c']);
  assert.deepEqual([...table.values()].map((e) => e.name), ['b', 'd', 'e'], 'in the order they were added');
});
