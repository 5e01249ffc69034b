// The tuple index against a Map: a random part of a space of 980 tuples put in (so probe runs
// collide, wrap around the end of the table and grow through several doublings), then random
// sets, deletes and lookups (deletions cut runs, whose later entries must move back), with
// addresses and ports on both sides of 2^31; after each step every tuple of the space must
// answer as the Map does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TupleIndex } from '../../../compare/flow/tuple-index.js';

const ADDRESSES = [0, 1, 0x0a000001, 0x7fffffff, 0x80000000, 0xc0a80001, 0xffffffff];
const PORTS = [0, 80, (80 << 16) | 40000, 0xffffffff, 0x80000050];
const SPACE: [number, number, number, number][] = [];
for (const p of [1, 6, 17, 58]) for (const g of ADDRESSES) for (const r of ADDRESSES) for (const ports of PORTS) SPACE.push([p, g, r, ports]);

test('TupleIndex finds, replaces and deletes exactly as a Map keyed by the tuple', () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { minLength: SPACE.length, maxLength: SPACE.length }),
      fc.array(fc.tuple(fc.constantFrom('set', 'delete', 'delete'), fc.nat(SPACE.length - 1), fc.nat(1000)), { minLength: 50, maxLength: 300 }),
      (initially, ops) => {
        const index = new TupleIndex<number>();
        const model = new Map<number, number>();
        initially.forEach((present, i) => {
          if (!present) return;
          index.set(...SPACE[i]!, i);
          model.set(i, i);
        });
        const check = (when: string): void => {
          assert.equal(index.size, model.size, when);
          SPACE.forEach((t, i) => assert.equal(index.get(...t), model.get(i), `${when}: tuple ${t.join(',')}`));
        };
        check('after the first sets');
        for (const [op, i, value] of ops) {
          if (op === 'set') {
            index.set(...SPACE[i]!, value);
            model.set(i, value);
          } else {
            index.delete(...SPACE[i]!);
            model.delete(i);
          }
        }
        check('after the operations');
      },
    ),
    { numRuns: 100 },
  );
});
