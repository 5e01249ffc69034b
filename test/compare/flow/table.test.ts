// The connection table against a plain lru-cache driven by the same operations: remembering the
// last entry `get` returned (a shortcut for repeated lookups) must not change what is found, the
// eviction order, or which entries a sweep removes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LRUCache } from 'lru-cache';
import { ConnectionTable, type EvictionReason } from '../../../compare/flow/table.js';

interface Entry {
  name: string;
  lastSeen: number;
  idleLimit: number;
}

type Op =
  | { op: 'get'; key: number; times: number }
  | { op: 'add'; key: number }
  | { op: 'delete'; key: number }
  | { op: 'sweep' }
  | { op: 'tick'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('get' as const), key: fc.integer({ min: 0, max: 7 }), times: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('add' as const), key: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('sweep' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }) }) },
);

test('ConnectionTable finds, evicts and sweeps exactly as a plain LRUCache would', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(opArb, { maxLength: 80 }), (max, ops) => {
      const key = (k: number): string => String.fromCharCode(4, 6, k, 0x0a00, 80, 0x0a00, 1, 40000 + k);
      const evicted: string[] = [];
      const modelEvicted: string[] = [];
      const table = new ConnectionTable<Entry>(max, (e, _k, reason: EvictionReason) => evicted.push(`${e.name} ${reason}`));
      const model = new LRUCache<string, Entry>({ max, dispose: (e, _k, reason) => void (reason === 'evict' && modelEvicted.push(`${e.name} full`)) });
      let now = 0;
      let made = 0;
      for (const o of ops) {
        if (o.op === 'get') {
          for (let i = 0; i < o.times; i++) {
            const got = table.get(key(o.key));
            assert.equal(got, model.get(key(o.key)));
            if (got !== undefined) got.lastSeen = now;
          }
        } else if (o.op === 'add') {
          const found = table.get(key(o.key));
          assert.equal(found, model.get(key(o.key)));
          if (found !== undefined) continue;
          const e = { name: `e${made++}`, lastSeen: now, idleLimit: 50 };
          table.add(key(o.key), e);
          model.set(key(o.key), e);
        } else if (o.op === 'delete') {
          table.delete(key(o.key));
          model.delete(key(o.key));
        } else if (o.op === 'sweep') {
          const stale = [...model.entries()].filter(([, e]) => now - e.lastSeen > e.idleLimit);
          for (const [k, e] of stale) {
            model.delete(k);
            modelEvicted.push(`${e.name} idle`);
          }
          assert.equal(table.sweep(now), stale.length);
        } else {
          now += o.ms;
        }
        assert.deepEqual(evicted, modelEvicted);
        assert.deepEqual([...table.values()].map((e) => e.name), [...model.values()].map((e) => e.name));
      }
    }),
    { numRuns: 300 },
  );
});
