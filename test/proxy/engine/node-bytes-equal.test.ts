import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jsBytesEqual } from '../../../compare/index.js';
import { NATIVE_COMPARE_FROM, nodeBytesEqual } from '../../../proxy/engine/node-bytes-equal.js';

// Two arrays holding the same bytes at different offsets, with an optional one-byte flip.
const ranges = fc
  .record({
    bytes: fc.uint8Array({ minLength: 0, maxLength: 3 * NATIVE_COMPARE_FROM }),
    aPad: fc.nat(9),
    bPad: fc.nat(9),
    flip: fc.option(fc.nat()),
  })
  .map(({ bytes, aPad, bPad, flip }) => {
    const a = new Uint8Array(aPad + bytes.length + 3);
    const b = new Uint8Array(bPad + bytes.length + 5);
    a.set(bytes, aPad);
    b.set(bytes, bPad);
    if (flip !== null && bytes.length > 0) b[bPad + (flip % bytes.length)] ^= 0x01;
    return { a, aAt: aPad, b, bAt: bPad, length: bytes.length, flipped: flip !== null && bytes.length > 0 };
  });

test('nodeBytesEqual agrees with the portable loop on both sides of its threshold', () => {
  fc.assert(
    fc.property(ranges, ({ a, aAt, b, bAt, length, flipped }) => {
      const native = nodeBytesEqual(a, aAt, b, bAt, length);
      assert.equal(native, jsBytesEqual(a, aAt, b, bAt, length));
      assert.equal(native, !flipped);
    }),
    { numRuns: 2000 },
  );
});

test('nodeBytesEqual compares only the given ranges', () => {
  const a = new Uint8Array(200).fill(1);
  const b = new Uint8Array(200).fill(1);
  a[150] = 9; // outside the compared range
  assert.equal(nodeBytesEqual(a, 0, b, 0, 150), true);
  assert.equal(nodeBytesEqual(a, 0, b, 0, 151), false);
});
