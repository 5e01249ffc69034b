// The held queue: arrival order kept while frames leave from anywhere in it, and nothing a
// released frame is kept alive by (the comparator-level retention test is in comparator.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HeldFrame, HeldQueue } from '../../../compare/decide/held.js';
import { Counters } from '../../../compare/decide/counters.js';

const owner = { flow: 'test', diverged: false };
const frame = (n: number): HeldFrame => new HeldFrame(new Uint8Array(1 + (n % 7)), owner, n, -1, -1, false, n, n);

test('frames leave from anywhere; oldest and drain follow arrival order; the gauges follow', () => {
  const op = fc.oneof(fc.constant({ add: true as const }), fc.record({ release: fc.nat(400) }), fc.constant({ drain: true as const }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const counters = new Counters();
      const q = new HeldQueue(counters);
      let model: HeldFrame[] = [];
      const all: HeldFrame[] = [];
      for (const o of ops) {
        if ('add' in o) {
          const h = frame(all.length);
          all.push(h);
          q.add(h);
          model.push(h);
        } else if ('release' in o) {
          if (all.length === 0) continue;
          // any frame, held or not: releasing one already gone must change nothing
          const h = all[o.release % all.length]!;
          q.release(h);
          model = model.filter((m) => m !== h);
          assert.ok(h.released);
        } else {
          assert.deepEqual(q.drain().map((h) => h.tag), model.map((h) => h.tag));
          model = [];
        }
        assert.equal(counters.heldFrames, model.length);
        assert.equal(counters.heldBytes, model.reduce((n, h) => n + h.frame.length, 0));
        assert.equal(q.oldest(), model[0]);
      }
      assert.deepEqual(q.drain().map((h) => h.tag), model.map((h) => h.tag));
      assert.ok(all.every((h) => h.released && h.older === null && h.newer === null), 'a frame out of the queue links to nothing');
    }),
  );
});
