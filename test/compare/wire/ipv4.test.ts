import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { fillIpv4HeaderChecksum } from '../../../compare/wire/checksum.js';
import { isWireError } from '../../../compare/wire/error.js';
import { Ipv4View, formatIpv4 } from '../../../compare/wire/ipv4.js';
import { fixture } from './fixtures.js';

// IPv4 header with one 4-byte option (Router Alert, RFC 2113), TOS 0xb9 (EF, ECT(1)), ID 0xabcd, MF, offset 185 units, TTL 1, UDP, 8 payload bytes.
const withOptions = fromHex('46b9 0020 abcd 20b9 0111 0000 c0a80001 e0000016  94040000  0102030405060708');

test('ipv4: known bytes -> fields', () => {
  const f = fixture('syn4');
  const ip = Ipv4View.parse(f, 14, f.length - 14);
  assert.ok(!isWireError(ip));
  assert.equal(ip.kind, 'ipv4');
  assert.equal(ip.version, 4);
  assert.equal(ip.ihl, 5);
  assert.equal(ip.headerLength, 20);
  assert.equal(ip.tos, 0);
  assert.equal(ip.totalLength, 60);
  assert.equal(ip.identification, 0x1c46);
  assert.ok(ip.dontFragment);
  assert.ok(!ip.moreFragments);
  assert.ok(!ip.isFragment);
  assert.ok(!ip.isFirstFragment);
  assert.equal(ip.fragmentOffset, 0);
  assert.equal(ip.ttl, 64);
  assert.equal(ip.protocol, 6);
  assert.equal(ip.checksum, 0x0a74);
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.src, 0x0a000001);
  assert.equal(ip.dst, 0x0a000002);
  assert.equal(ip.srcString, '10.0.0.1');
  assert.equal(ip.dstString, '10.0.0.2');
  assert.equal(ip.optionsLength, 0);
  assert.equal(ip.payloadOffset, 34);
  assert.equal(ip.payloadLength, 40);
});

test('ipv4: options, DSCP/ECN and fragment fields', () => {
  const ip = Ipv4View.parse(withOptions);
  assert.ok(!isWireError(ip));
  assert.equal(ip.ihl, 6);
  assert.equal(ip.dscp, 46);
  assert.equal(ip.ecn, 1);
  assert.equal(ip.optionsOffset, 20);
  assert.equal(ip.optionsLength, 4);
  assert.equal(ip.payloadOffset, 24);
  assert.equal(ip.payloadLength, 8);
  assert.ok(ip.moreFragments && !ip.dontFragment);
  assert.equal(ip.fragmentOffset, 185 * 8);
  assert.ok(ip.isFragment);
  assert.ok(!ip.isFirstFragment);
  assert.equal(ip.dstString, '224.0.0.22');
});

test('ipv4: first and last fragments', () => {
  const first = fromHex('4500 0020 abcd 2000 4011 0000 c0a80001 c0a80002  0102030405060708 090a0b0c');
  const f = Ipv4View.parse(first);
  assert.ok(!isWireError(f));
  assert.ok(f.isFragment && f.isFirstFragment && f.fragmentOffset === 0);
  const last = fromHex('4500 0020 abcd 0003 4011 0000 c0a80001 c0a80002  0102030405060708 090a0b0c');
  const l = Ipv4View.parse(last);
  assert.ok(!isWireError(l));
  assert.ok(l.isFragment && !l.isFirstFragment && !l.moreFragments);
  assert.equal(l.fragmentOffset, 24);
});

test('ipv4: Ethernet padding is not payload', () => {
  const f = fixture('ack4');
  const ip = Ipv4View.parse(f, 14, f.length - 14);
  assert.ok(!isWireError(ip));
  assert.equal(f.length - 14, 46);
  assert.equal(ip.totalLength, 40);
  assert.equal(ip.payloadLength, 20);
});

test('ipv4: fields -> identical bytes (header checksum)', () => {
  const f = fixture('sack4');
  const expected = fixture('sack4');
  f[24] = 0;
  f[25] = 0;
  fillIpv4HeaderChecksum(f, 14);
  assert.deepEqual(f, expected);
  assert.equal(formatIpv4(0xffffffff), '255.255.255.255');
  assert.equal(formatIpv4(0x01020304), '1.2.3.4');
});

test('ipv4: every truncated prefix is a coded error', () => {
  for (let len = 0; len < withOptions.length; len++) {
    const r = Ipv4View.parse(withOptions.subarray(0, len));
    assert.ok(isWireError(r), `prefix ${len} should fail`);
    const expected = len < 20 ? 'decode.ipv4.header_too_short' : len < 24 ? 'decode.ipv4.options_truncated' : 'decode.ipv4.total_length_exceeds_frame';
    assert.equal(r.code, expected, `prefix ${len}`);
  }
  assert.ok(!isWireError(Ipv4View.parse(withOptions)));
});

test('ipv4: impossible lengths and versions', () => {
  const cases: [string, string][] = [
    // IHL 4: shorter than the fixed header.
    ['4400 0014 0000 0000 4006 0000 0a000001 0a000002', 'decode.ipv4.bad_ihl'],
    // IHL 0.
    ['4000 0014 0000 0000 4006 0000 0a000001 0a000002', 'decode.ipv4.bad_ihl'],
    // Version 6 in an IPv4 slot.
    ['6500 0014 0000 0000 4006 0000 0a000001 0a000002', 'decode.ipv4.bad_version'],
    // Total length 19 < IHL * 4.
    ['4500 0013 0000 0000 4006 0000 0a000001 0a000002', 'decode.ipv4.total_length_too_small'],
    // Total length 21 with only 20 bytes present.
    ['4500 0015 0000 0000 4006 0000 0a000001 0a000002', 'decode.ipv4.total_length_exceeds_frame'],
    // IHL 15 (60 bytes) with only 20 bytes present.
    ['4f00 003c 0000 0000 4006 0000 0a000001 0a000002', 'decode.ipv4.options_truncated'],
  ];
  for (const [hex, code] of cases) {
    const r = Ipv4View.parse(fromHex(hex));
    assert.ok(isWireError(r), hex);
    assert.equal(r.code, code, hex);
  }
});
