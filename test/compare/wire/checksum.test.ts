import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex, readU16, writeU16 } from '../../../compare/wire/bytes.js';
import {
  finishChecksum, internetChecksum, ipv4HeaderChecksum, onesSum, pseudoSumV4, pseudoSumV6, rewriteU16, rewriteU32,
  transportChecksum, udpChecksum, updateChecksum16, updateChecksum32, verifyIpv4HeaderChecksum, verifyTransportChecksum,
} from '../../../compare/wire/checksum.js';
import { fixture } from './fixtures.js';

/** The obviously correct model: sum 16-bit words as BigInt, reduce modulo 0xffff, complement. */
function modelChecksum(b: Uint8Array, at: number, length: number): number {
  let s = 0n;
  for (let i = 0; i < length; i += 2) s += BigInt((b[at + i]! << 8) | (i + 1 < length ? b[at + i + 1]! : 0));
  while (s > 0xffffn) s = (s & 0xffffn) + (s >> 16n);
  return Number(~s & 0xffffn);
}

test('checksum: RFC 1071 §3 worked example', () => {
  // The eight bytes of RFC 1071's numerical example: one's-complement sum ddf2.
  const b = fromHex('0001 f203 f4f5 f6f7');
  assert.equal(onesSum(b, 0, 8), 0xddf2);
  assert.equal(internetChecksum(b, 0, 8), 0x220d);
  assert.equal(finishChecksum(0xddf2), 0x220d);
});

test('checksum: odd lengths pad with a zero byte, and chained even ranges equal one range', () => {
  const b = fromHex('0001 f203 f4f5 f6');
  assert.equal(internetChecksum(b, 0, 7), modelChecksum(b, 0, 7));
  const big = fromHex('45000039 1c47 4000 4006 0000 0a000001 0a000002 abcd ef');
  assert.equal(onesSum(big, 6, big.length - 6, onesSum(big, 0, 6)), onesSum(big, 0, big.length));
});

test('checksum: matches the BigInt model on random data (any offset, any length)', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(), fc.nat(), (b, x, y) => {
    const at = b.length === 0 ? 0 : x % b.length;
    const length = b.length - at === 0 ? 0 : y % (b.length - at + 1);
    assert.equal(internetChecksum(b, at, length), modelChecksum(b, at, length));
  }), { numRuns: 1000 });
});

test('checksum: large ranges fold correctly (sums above 2^32)', () => {
  const b = new Uint8Array(300_000).fill(0xff);
  b[12345] = 0x12;
  assert.equal(internetChecksum(b, 0, b.length), modelChecksum(b, 0, b.length));
});

test('checksum: IPv4 header compute and verify', () => {
  const f = fixture('syn4');
  assert.equal(ipv4HeaderChecksum(f, 14), 0x0a74);
  assert.ok(verifyIpv4HeaderChecksum(f, 14));
  f[14 + 8] = 63; // TTL changed without fixing the checksum
  assert.ok(!verifyIpv4HeaderChecksum(f, 14));
});

test('checksum: TCP, UDP and ICMPv6 with pseudo-headers', () => {
  const syn4 = fixture('syn4');
  assert.equal(transportChecksum(pseudoSumV4(syn4, 14, 6, 40), syn4, 34, 40, 50), 0x5410);
  assert.ok(verifyTransportChecksum(pseudoSumV4(syn4, 14, 6, 40), syn4, 34, 40));
  const data4 = fixture('data4'); // odd segment length (37)
  assert.equal(transportChecksum(pseudoSumV4(data4, 14, 6, 37), data4, 34, 37, 50), 0x54e0);
  const udp4 = fixture('udp4');
  assert.equal(udpChecksum(pseudoSumV4(udp4, 14, 17, 12), udp4, 34, 12, 40), 0x3918);
  const syn6 = fixture('syn6');
  assert.equal(transportChecksum(pseudoSumV6(syn6, 14, 6, 40), syn6, 54, 40, 70), 0xaeec);
  const udp6 = fixture('udp6');
  assert.ok(verifyTransportChecksum(pseudoSumV6(udp6, 14, 17, 11), udp6, 54, 11));
  const ping6 = fixture('ping6');
  assert.equal(transportChecksum(pseudoSumV6(ping6, 14, 58, 12), ping6, 54, 12, 56), 0xc0dd);
  ping6[60] ^= 1;
  assert.ok(!verifyTransportChecksum(pseudoSumV6(ping6, 14, 58, 12), ping6, 54, 12));
});

test('checksum: a UDP checksum that computes to 0 is sent as 0xffff and still verifies', () => {
  const f = fixture('udp4');
  const ps = pseudoSumV4(f, 14, 17, 12);
  writeU16(f, 42, 0);
  writeU16(f, 42, transportChecksum(ps, f, 34, 12, 40)); // a payload word equal to the checksum makes the sum zero
  assert.equal(transportChecksum(ps, f, 34, 12, 40), 0);
  const c = udpChecksum(ps, f, 34, 12, 40);
  assert.equal(c, 0xffff);
  writeU16(f, 40, c);
  assert.ok(verifyTransportChecksum(ps, f, 34, 12));
});

test('checksum: RFC 1624 incremental update equals recomputation', () => {
  const f = fixture('syn4');
  const ps = pseudoSumV4(f, 14, 6, 40);
  const old = readU16(f, 48);
  const oldSeq = 0x11223344;
  writeU16(f, 48, 0xbeef);
  assert.equal(updateChecksum16(0x5410, old, 0xbeef), transportChecksum(ps, f, 34, 40, 50));
  const g = fixture('syn4');
  g.set([0xfe, 0xdc, 0xba, 0x98], 38);
  assert.equal(updateChecksum32(0x5410, oldSeq, 0xfedcba98), transportChecksum(ps, g, 34, 40, 50));
});

test('checksum: rewriteU16/rewriteU32 at random odd and even offsets equal recomputation', () => {
  const region = fc.uint8Array({ minLength: 12, maxLength: 200 });
  fc.assert(fc.property(region, fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean(),
    (b, c, fld, ps, value, wide) => {
      const width = wide ? 4 : 2;
      const checksumAt = 2 * (c % (Math.floor((b.length - 2) / 2) + 1)); // even, and inside the region
      const pseudo = ps % 0x10000;
      writeU16(b, checksumAt, transportChecksum(pseudo, b, 0, b.length, checksumAt));
      const candidates: number[] = [];
      for (let i = 0; i + width <= b.length; i++) if (i + width <= checksumAt || i >= checksumAt + 2) candidates.push(i);
      fc.pre(candidates.length > 0);
      const fieldAt = candidates[fld % candidates.length]!;
      if (wide) rewriteU32(b, fieldAt, checksumAt, value);
      else rewriteU16(b, fieldAt, checksumAt, value & 0xffff);
      assert.equal(readU16(b, checksumAt), transportChecksum(pseudo, b, 0, b.length, checksumAt), `field at ${fieldAt}, checksum at ${checksumAt}`);
      assert.ok(verifyTransportChecksum(pseudo, b, 0, b.length));
    }), { numRuns: 3000 });
});
