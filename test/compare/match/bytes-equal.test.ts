// The portable byte equality, exhaustively over short ranges: it works eight bytes a step, so
// every length around the step boundaries, a difference at every position inside the range, and
// differences just outside it (which must not count) are all tried, at several offsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBytesEqual } from '../../../compare/match/bytes-equal.js';

test('jsBytesEqual finds a difference at every position of every range up to 40 bytes, and none outside it', () => {
  for (let length = 0; length <= 40; length++) {
    for (const [aAt, bAt] of [[0, 0], [1, 5], [7, 2]] as const) {
      const a = new Uint8Array(aAt + length + 2).map((_, i) => (i * 37 + 11) & 0xff);
      const b = new Uint8Array(bAt + length + 2);
      for (let i = -1; i <= length; i++) if (bAt + i >= 0) b[bAt + i] = a[aAt + i]!;
      assert.equal(jsBytesEqual(a, aAt, b, bAt, length), true, `equal, length ${length} at ${aAt}/${bAt}`);
      for (let p = -1; p <= length; p++) {
        if (bAt + p < 0) continue;
        b[bAt + p]! ^= 0x80;
        const inside = p >= 0 && p < length;
        assert.equal(jsBytesEqual(a, aAt, b, bAt, length), !inside, `flip at ${p}, length ${length} at ${aAt}/${bAt}`);
        b[bAt + p]! ^= 0x80;
      }
    }
  }
});
