import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_SLAB_COPY, SLAB_BYTES, SlabCopier } from '../../../compare/wire/slab.js';

test('slab copies equal their source, never alias it, and never overlap each other', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 3000 }), { maxLength: 80 }), (sources) => {
      const copier = new SlabCopier();
      const copies = sources.map((s) => copier.copy(s));
      for (let i = 0; i < sources.length; i++) {
        assert.deepEqual(copies[i], sources[i]);
        sources[i]!.fill(0xee); // changing the source must not change the copy
      }
      copies.forEach((c, i) => c.fill(i & 0xff));
      copies.forEach((c, i) => assert.ok(c.every((b) => b === (i & 0xff)), `copy ${i} was overwritten by another`));
    }),
    { numRuns: 200 },
  );
});

test('a sub-range is copied, and large copies get their own buffer', () => {
  const copier = new SlabCopier();
  const src = Uint8Array.from({ length: 100 }, (_, i) => i);
  assert.deepEqual([...copier.copy(src, 10, 14)], [10, 11, 12, 13]);
  const small = copier.copy(src);
  assert.equal(small.buffer.byteLength, SLAB_BYTES);
  const big = copier.copy(new Uint8Array(MAX_SLAB_COPY));
  assert.equal(big.buffer.byteLength, MAX_SLAB_COPY);
});
