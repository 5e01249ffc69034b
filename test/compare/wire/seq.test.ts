import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { seqAdd, seqDiff, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax, seqMin } from '../../../compare/wire/seq.js';

const M = 2n ** 32n;
const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** The slow model: RFC 1982 distance from BigInt modular arithmetic. */
function modelDiff(a: number, b: number): number {
  const d = (((BigInt(a) - BigInt(b)) % M) + M) % M;
  return Number(d >= 2n ** 31n ? d - M : d);
}

test('seq: values around the wrap point', () => {
  assert.equal(seqAdd(0xffffffff, 1), 0);
  assert.equal(seqAdd(0, -1), 0xffffffff);
  assert.equal(seqAdd(0xfffffff6, 20), 10);
  assert.equal(seqDiff(5, 0xfffffffb), 10);
  assert.equal(seqDiff(0xfffffffb, 5), -10);
  assert.ok(seqLt(0xffffffff, 0));
  assert.ok(seqGt(0, 0xffffffff));
  assert.ok(seqLe(7, 7) && seqGe(7, 7) && !seqLt(7, 7) && !seqGt(7, 7));
  assert.equal(seqMax(0xfffffff0, 3), 3);
  assert.equal(seqMin(0xfffffff0, 3), 0xfffffff0);
  assert.ok(seqInWindow(2, 0xfffffffe, 8));
  assert.ok(!seqInWindow(6, 0xfffffffe, 8));
  assert.ok(!seqInWindow(0xfffffffd, 0xfffffffe, 8));
});

test('seq: exactly 2^31 apart is the documented undefined case', () => {
  const a = 0x10;
  const b = seqAdd(a, 2 ** 31);
  assert.equal(seqDiff(a, b), -(2 ** 31));
  assert.equal(seqDiff(b, a), -(2 ** 31));
  assert.ok(seqLt(a, b) && seqLt(b, a), 'both orders read as "before", like Linux before()');
});

test('seq: arithmetic matches a BigInt model', () => {
  fc.assert(fc.property(u32, u32, (a, b) => {
    const d = modelDiff(a, b);
    assert.equal(seqDiff(a, b), d);
    assert.equal(seqLt(a, b), d < 0);
    assert.equal(seqLe(a, b), d <= 0);
    assert.equal(seqGt(a, b), d > 0);
    assert.equal(seqGe(a, b), d >= 0);
    assert.equal(seqMax(a, b), d < 0 ? b : a);
    assert.equal(seqMin(a, b), d < 0 ? a : b);
  }), { numRuns: 5000 });
});

test('seq: seqAdd and seqInWindow match a BigInt model', () => {
  const n = fc.integer({ min: -(2 ** 40), max: 2 ** 40 });
  fc.assert(fc.property(u32, n, (a, k) => {
    assert.equal(seqAdd(a, k), Number((((BigInt(a) + BigInt(k)) % M) + M) % M));
  }), { numRuns: 5000 });
  fc.assert(fc.property(u32, u32, u32, (x, start, length) => {
    const offset = (((BigInt(x) - BigInt(start)) % M) + M) % M;
    assert.equal(seqInWindow(x, start, length), offset < BigInt(length));
  }), { numRuns: 5000 });
});

test('seq: order is consistent with adding small distances', () => {
  fc.assert(fc.property(u32, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (a, k) => {
    const b = seqAdd(a, k);
    assert.ok(seqLt(a, b) && seqGt(b, a) && !seqLt(b, a));
    assert.equal(seqDiff(b, a), k);
  }), { numRuns: 2000 });
});
