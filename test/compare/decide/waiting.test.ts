// The waiting secondary segments against a plain array of { end, since } records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WaitingSegments } from '../../../compare/decide/waiting.js';

test('WaitingSegments keeps order, drops verified segments from the front only, and reports the oldest arrival', () => {
  const op = fc.oneof(
    fc.record({ push: fc.integer({ min: 0, max: 1000 }), since: fc.nat(100) }),
    fc.record({ verified: fc.integer({ min: -1, max: 1000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
      const w = new WaitingSegments();
      const model: { end: number; since: number }[] = [];
      for (const o of ops) {
        if ('push' in o) {
          w.push(o.push, o.since);
          model.push({ end: o.push, since: o.since });
        } else {
          let n = 0;
          while (model.length > 0 && model[0]!.end <= o.verified) {
            model.shift();
            n++;
          }
          assert.equal(w.dropVerified(o.verified), n);
        }
        assert.equal(w.length, model.length);
        assert.equal(w.oldestSince(), model.length === 0 ? -1 : model[0]!.since);
      }
    }),
    { numRuns: 300 },
  );
});

test('WaitingSegments compacts a long-lived queue without losing entries', () => {
  const w = new WaitingSegments();
  for (let i = 0; i < 1000; i++) {
    w.push(i + 1, i);
    w.push(i + 2, i);
    assert.equal(w.dropVerified(i + 1), i === 0 ? 1 : 2);
    assert.equal(w.length, 1);
    assert.equal(w.oldestSince(), i);
  }
});
