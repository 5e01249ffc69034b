// The held queue: arrival order kept while frames leave from anywhere in it, and nothing a
// released frame is kept alive by (the comparator-level retention test is in comparator.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HeldQueue, type HeldFrame } from '../../../compare/decide/held.js';
import { Counters } from '../../../compare/decide/counters.js';

const owner = { flow: 'test', diverged: false };
const add = (q: HeldQueue, n: number): HeldFrame => q.add(new Uint8Array(1 + (n % 7)), owner, n, -1, -1, false, n, n);

test('frames leave from anywhere; oldest and drain follow arrival order; the gauges follow', () => {
  const op = fc.oneof(fc.constant({ add: true as const }), fc.record({ release: fc.nat(400) }), fc.record({ recycle: fc.nat(400) }), fc.constant({ drain: true as const }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const counters = new Counters();
      const q = new HeldQueue(counters);
      let model: HeldFrame[] = [];
      const all: HeldFrame[] = [];
      let added = 0;
      for (const o of ops) {
        if ('add' in o) {
          const h = add(q, added++);
          assert.ok(!h.released && h.older === (model.at(-1) ?? null) && h.newer === null, 'a recycled frame comes back as new');
          all.push(h);
          model.push(h);
        } else if ('recycle' in o) {
          // only a frame out of the queue, and then it is no longer the test's
          const out = all.filter((h) => h.released);
          if (out.length === 0) continue;
          const h = out[o.recycle % out.length]!;
          q.recycle(h);
          all.splice(all.indexOf(h), 1);
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

test('a recycled frame lets go of what it held, and comes back with the new fields', () => {
  const q = new HeldQueue(new Counters());
  const bytes = new Uint8Array(5);
  const conn = { flow: 'mine', diverged: false };
  const h = q.add(bytes, conn, 1, 2, 3, true, 'tag', 4);
  q.release(h);
  q.recycle(h);
  assert.notEqual(h.frame, bytes);
  assert.notEqual(h.owner, conn);
  assert.equal(h.tag, undefined);
  const again = q.add(new Uint8Array(2), owner, 10, 20, 30, false, 'other', 40);
  assert.equal(again, h, 'reused');
  assert.deepEqual(
    { since: again.since, end: again.end, ack: again.ack, syn: again.syn, tag: again.tag, arrival: again.arrival, released: again.released, length: again.frame.length, owner: again.owner },
    { since: 10, end: 20, ack: 30, syn: false, tag: 'other', arrival: 40, released: false, length: 2, owner },
  );
  assert.equal(q.oldest(), again);
});
