// Reassembly: one side's sorted, non-overlapping byte store, checked against a plain array model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reassembly } from '../../../compare/stream/reassembly.js';
import { jsBytesEqual } from '../../../compare/match/bytes-equal.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('reassembly: append, contiguous end, consume', () => {
  const r = new Reassembly(true, jsBytesEqual);
  assert.ok(r.empty);
  assert.equal(r.firstStart(), Infinity);
  assert.equal(r.insert(0, bytes('abc'), 0, 3), -1);
  assert.equal(r.insert(3, bytes('xdefx'), 1, 3), -1);
  assert.equal(r.held, 6);
  assert.equal(r.contiguousEnd(0), 6);
  assert.equal(r.contiguousEnd(1), 1, 'no chunk starts at 1');
  r.consume(2);
  assert.equal(r.chunkAt(2)?.length, 1);
  assert.equal(r.chunkAt(0), null);
  r.consume(1);
  assert.equal(r.firstStart(), 3);
  assert.equal(r.held, 3);
  r.consume(3);
  assert.ok(r.empty);
  assert.equal(r.held, 0);
});

test('reassembly: contiguousEnd stops at the chunk that reaches upTo, not at the end of a long run', () => {
  const r = new Reassembly(false, jsBytesEqual);
  const data = bytes('0123456789'.repeat(100));
  for (let at = 0; at < 1000; at += 10) r.insert(at, data, at, 10);
  assert.equal(r.contiguousEnd(0), 1000);
  assert.equal(r.contiguousEnd(0, 25), 30, 'the walk ends with the chunk holding offset 24');
  assert.equal(r.contiguousEnd(0, 30), 30);
  assert.equal(r.contiguousEnd(0, 0), 0, 'nothing needed, nothing walked');
  assert.equal(r.contiguousEnd(5, 20), 5, 'no chunk starts at 5');
  r.consume(10);
  assert.equal(r.contiguousEnd(10, 2000), 1000, 'a run shorter than asked for ends where it ends');
});

test('reassembly: out-of-order inserts fill gaps and keep the first copy', () => {
  const r = new Reassembly(true, jsBytesEqual);
  r.insert(10, bytes('klmno'), 0, 5);
  r.insert(0, bytes('abc'), 0, 3);
  assert.equal(r.contiguousEnd(0), 3);
  // Covers the gap [3, 10) and overlaps both neighbours with equal bytes.
  assert.equal(r.insert(1, bytes('bcdefghijkl'), 0, 11), -1);
  assert.equal(r.contiguousEnd(0), 15);
  assert.equal(r.held, 15);
  assert.equal(r.hexAround(7), Buffer.from('defghij').toString('hex'), 'the gap piece is one copy of its own');
});

test('reassembly: a differing resend reports the first differing offset and stores nothing', () => {
  const r = new Reassembly(false, jsBytesEqual);
  r.insert(0, bytes('abcdef'), 0, 6);
  r.insert(10, bytes('klm'), 0, 3);
  assert.equal(r.insert(4, bytes('efghijkXm'), 0, 9), 11);
  assert.equal(r.held, 9);
  assert.equal(r.contiguousEnd(0), 6, 'the gap was not filled');
  assert.equal(r.insert(2, bytes('cZ'), 0, 2), 3);
});

test('reassembly: views versus copies', () => {
  const src = bytes('hello');
  const view = new Reassembly(false, jsBytesEqual);
  const copy = new Reassembly(true, jsBytesEqual);
  view.insert(0, src, 0, 5);
  copy.insert(0, src, 0, 5);
  src[0] = 0x4a;
  assert.equal(view.chunkAt(0)!.bytes[view.chunkAt(0)!.at], 0x4a);
  assert.equal(copy.chunkAt(0)!.bytes[copy.chunkAt(0)!.at], 0x68);
});

test('reassembly: discardBelow trims partly and wholly', () => {
  const r = new Reassembly(true, jsBytesEqual);
  r.insert(0, bytes('abc'), 0, 3);
  r.insert(5, bytes('fghij'), 0, 5);
  r.discardBelow(7);
  assert.equal(r.firstStart(), 7);
  assert.equal(r.held, 3);
  r.clear();
  assert.ok(r.empty);
  assert.equal(r.held, 0);
});

test('reassembly: many consumed chunks are compacted without losing order', () => {
  const r = new Reassembly(true, jsBytesEqual);
  for (let i = 0; i < 200; i++) r.insert(i * 2, bytes('xy'), 0, 2);
  for (let i = 0; i < 150; i++) r.consume(2);
  assert.equal(r.firstStart(), 300);
  assert.equal(r.contiguousEnd(300), 400);
  assert.equal(r.insert(301, bytes('yxQ'), 0, 3), 303);
  assert.equal(r.held, 100);
});

/** Drains `r`, checking each byte against `expected(offset)`; returns the bytes seen. */
function drain(r: Reassembly, expected: (offset: number) => number): number {
  let seen = 0;
  while (!r.empty) {
    const at = r.firstStart();
    const c = r.chunkAt(at)!;
    for (let k = 0; k < c.length; k++) assert.equal(c.bytes[c.at + k], expected(at + k), `byte at ${at + k}`);
    seen += c.length;
    r.consume(c.length);
  }
  return seen;
}

test('reassembly: the copy arena grows, moves live bytes, and survives a regrow inside one insert', () => {
  const source = Uint8Array.from({ length: 20000 }, (_, i) => (i * 13 + (i >> 8)) & 0xff);
  const r = new Reassembly(true, jsBytesEqual);
  r.insert(0, source, 0, 10);
  r.insert(20, source, 20, 10);
  // Pieces [10, 20) and [30, 9000): the second does not fit the 4 KiB arena and moves everything.
  assert.equal(r.insert(0, source, 0, 9000), -1);
  assert.equal(r.held, 9000);
  r.consume(10);
  r.insert(12000, source, 12000, 5000);
  r.insert(9000, source, 9000, 3000);
  assert.equal(r.hexAround(9500), Buffer.from(source.subarray(9484, 9516)).toString('hex'));
  assert.equal(drain(r, (o) => source[o]!), 16990);
  // Empty again: the arena is reused from its start.
  r.insert(17000, source, 17000, 100);
  assert.equal(drain(r, (o) => source[o]!), 100);
});

test('reassembly property: matches a byte-array model under random inserts and consumes', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(60), length: fc.nat(20), noise: fc.nat(5) }),
    fc.record({ kind: fc.constant('consume' as const), at: fc.nat(60), length: fc.nat(20), noise: fc.constant(0) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const source = Uint8Array.from({ length: 100 }, (_, i) => (i * 7 + 3) & 0xff);
      const model: (number | undefined)[] = new Array(100).fill(undefined);
      let floor = 0;
      const r = new Reassembly(true, jsBytesEqual);
      for (const o of ops) {
        if (o.kind === 'consume') {
          if (r.chunkAt(floor) === null) continue;
          const n = Math.min(1 + (o.length % 5), r.chunkAt(floor)!.length);
          r.consume(n);
          for (let i = floor; i < floor + n; i++) model[i] = undefined;
          floor += n;
          continue;
        }
        const from = Math.max(o.at, floor);
        const to = Math.max(from, Math.min(100, o.at + o.length));
        const offered = source.slice();
        if (o.noise === 0 && to > from) offered[from + ((to - from) >> 1)]! ^= 0xff;
        let expected = -1;
        for (let i = from; i < to && expected === -1; i++) if (model[i] !== undefined && model[i] !== offered[i]) expected = i;
        assert.equal(r.insert(from, offered, from, to - from), expected);
        if (expected === -1) for (let i = from; i < to; i++) model[i] ??= offered[i];
      }
      assert.equal(r.held, model.filter((b) => b !== undefined).length);
      assert.equal(r.firstStart(), model.findIndex((b) => b !== undefined) === -1 ? Infinity : model.findIndex((b) => b !== undefined));
      const first = r.firstStart();
      if (first !== Infinity) {
        let runEnd = first;
        while (runEnd < 100 && model[runEnd] !== undefined) runEnd++;
        assert.equal(r.contiguousEnd(first), runEnd);
      }
      for (let i = floor; i < 100; i++) assert.equal(r.hexAround(i) !== '', model[i] !== undefined, `offset ${i}`);
      // Drain: every stored byte, in order, equals the model's, and nothing else is stored.
      while (!r.empty) {
        const at = r.firstStart();
        const c = r.chunkAt(at)!;
        for (let k = 0; k < c.length; k++) {
          assert.equal(c.bytes[c.at + k], model[at + k], `byte at ${at + k}`);
          model[at + k] = undefined;
        }
        r.consume(c.length);
      }
      assert.ok(model.every((b) => b === undefined));
    }),
    { numRuns: 1000 },
  );
});

test('reassembly: a used-up chunk is reused for the next append and keeps no bytes alive; trim frees it', () => {
  for (const copy of [false, true]) {
    const r = new Reassembly(copy, jsBytesEqual);
    const first = bytes('..abcd');
    r.insert(0, first, 2, 4);
    const chunk = r.chunkAt(0)!;
    r.consume(4);
    assert.ok(r.empty);
    const spares = (r as unknown as { chunks: { bytes: Uint8Array }[] }).chunks;
    assert.ok(spares.every((c) => c.bytes.length === 0), 'a spare keeps no reference to the bytes it held');
    const second = bytes('xyzEFG');
    r.insert(4, second, 3, 3);
    assert.equal(r.chunkAt(4), chunk, 'the spare was reused');
    assert.equal(Buffer.from(chunk.bytes.subarray(chunk.at, chunk.at + chunk.length)).toString(), 'EFG');
    assert.equal(chunk.start, 4);
    if (copy) assert.equal(r.hexAround(5), Buffer.from('EFG').toString('hex'));
    assert.equal(copy ? chunk.bytes !== second : chunk.bytes === second, true);
    r.consume(3);
    r.trim();
    assert.equal((r as unknown as { chunks: unknown[] }).chunks.length, 0, 'trim frees the spares');
  }
});

test('reassembly property: stores that empty and refill (spare chunks) hold exactly the bytes offered, views and copies', () => {
  const value = (offset: number): number => (offset * 7 + 3) & 0xff;
  const op = fc.record({ insert: fc.boolean(), at: fc.nat(40), length: fc.nat(12), pad: fc.nat(5) });
  fc.assert(
    fc.property(fc.boolean(), fc.array(fc.array(op, { maxLength: 15 }), { minLength: 1, maxLength: 4 }), (copy, rounds) => {
      const r = new Reassembly(copy, jsBytesEqual);
      let floor = 0;
      for (const ops of rounds) {
        const base = floor;
        const model = new Map<number, number>();
        for (const o of ops) {
          if (!o.insert) {
            const c = r.chunkAt(floor);
            if (c === null) continue;
            const n = Math.min(1 + (o.length % 4), c.length);
            r.consume(n);
            for (let i = floor; i < floor + n; i++) model.delete(i);
            floor += n;
            continue;
          }
          const from = Math.max(base + o.at, floor);
          const to = Math.max(from, base + o.at + o.length);
          // A fresh array per insert, the range at a varying index among junk bytes: a chunk
          // left pointing at an older array or index shows the wrong bytes.
          const offered = new Uint8Array(o.pad + (to - from) + 3).fill(0xee);
          for (let i = from; i < to; i++) offered[o.pad + i - from] = value(i);
          assert.equal(r.insert(from, offered, o.pad, to - from), -1);
          for (let i = from; i < to; i++) model.set(i, value(i));
        }
        assert.equal(r.held, model.size);
        while (!r.empty) {
          const at = r.firstStart();
          const c = r.chunkAt(at)!;
          for (let k = 0; k < c.length; k++) {
            assert.equal(c.bytes[c.at + k], value(at + k), `byte at ${at + k}`);
            assert.ok(model.delete(at + k), `offset ${at + k} was offered`);
          }
          r.consume(c.length);
          floor = Math.max(floor, at + c.length);
        }
        assert.equal(model.size, 0);
        assert.equal(r.held, 0);
        floor += 5;
      }
    }),
    { numRuns: 1000 },
  );
});
