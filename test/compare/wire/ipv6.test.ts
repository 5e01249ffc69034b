import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { isWireError } from '../../../compare/wire/error.js';
import { Ipv6View, MAX_EXTENSION_HEADERS, formatIpv6 } from '../../../compare/wire/ipv6.js';
import { fixture } from './fixtures.js';

const SRC = '20010db8000000000000000000000001';
const DST = '20010db8000000000000000000000002';
const TCP = '9c40 0050 00000001 00000000 5002 2000 0000 0000';

/** A fixed header with traffic class 0xb9, flow label 0x12345, hop limit 64, then `rest`. */
function ipv6(nextHeader: string, payloadLength: number, rest: string): Uint8Array {
  return fromHex(`6b912345 ${payloadLength.toString(16).padStart(4, '0')} ${nextHeader} 40 ${SRC} ${DST} ${rest}`);
}

// Hop-by-Hop (PadN) -> Destination Options (PadN) -> Fragment (offset 0, M, id 0xdeadbeef) -> 20-byte TCP header.
const chain = ipv6('00', 44, '3c00 0104 00000000  2c00 0104 00000000  0600 0001 deadbeef  ' + TCP);
// Fragment header of a non-first fragment (offset 1448, M clear) then 16 data bytes; the chain walk stops there.
const laterFragment = ipv6('2c', 24, '0600 05a8 00000042  2c00 0001 deadbeef 0600 0000 11223344');
// Routing (type 4, 24 bytes) -> AH (payload len 4, 24 bytes) -> TCP.
const routingAh = ipv6('2b', 68, '3302 0401 00000000 20010db8000000000000000000000009  0604 0000 00000100 00000001 000000000000000000000000  ' + TCP);
// No Next Header with 4 trailing bytes that must be ignored.
const noNext = ipv6('3b', 4, 'aabbccdd');

test('ipv6: known bytes -> fields', () => {
  const f = fixture('syn6');
  const ip = Ipv6View.parse(f, 14, f.length - 14);
  assert.ok(!isWireError(ip));
  assert.equal(ip.kind, 'ipv6');
  assert.equal(ip.version, 6);
  assert.equal(ip.trafficClass, 0);
  assert.equal(ip.flowLabel, 0);
  assert.equal(ip.payloadLength, 40);
  assert.equal(ip.nextHeader, 6);
  assert.equal(ip.hopLimit, 64);
  assert.equal(ip.srcString, 'fd00::1');
  assert.equal(ip.dstString, 'fd00::2');
  assert.equal(ip.srcOffset, 22);
  assert.equal(ip.dstOffset, 38);
  assert.equal(ip.upperProtocol, 6);
  assert.equal(ip.upperOffset, 54);
  assert.equal(ip.upperLength, 40);
  assert.equal(ip.extensionCount, 0);
  assert.ok(!ip.hasFragmentHeader && !ip.isFragment);
  assert.equal(ip.fragmentId, -1);

  const t = Ipv6View.parse(noNext);
  assert.ok(!isWireError(t));
  assert.equal(t.trafficClass, 0xb9);
  assert.equal(t.dscp, 46);
  assert.equal(t.ecn, 1);
  assert.equal(t.flowLabel, 0x12345);
  assert.equal(t.src.length, 16);
  assert.equal(t.upperProtocol, 59);
  assert.equal(t.upperOffset, 40);
  assert.equal(t.upperLength, 4);
});

test('ipv6: extension chain with a first fragment', () => {
  const ip = Ipv6View.parse(chain);
  assert.ok(!isWireError(ip));
  assert.equal(ip.extensionCount, 3);
  assert.equal(ip.upperProtocol, 6);
  assert.equal(ip.upperOffset, 64);
  assert.equal(ip.upperLength, 20);
  assert.equal(ip.fragmentHeaderOffset, 56);
  assert.ok(ip.hasFragmentHeader && ip.isFragment && ip.isFirstFragment && ip.moreFragments);
  assert.equal(ip.fragmentOffset, 0);
  assert.equal(ip.fragmentId, 0xdeadbeef);
});

test('ipv6: a later fragment stops the walk at its Fragment header', () => {
  const ip = Ipv6View.parse(laterFragment);
  assert.ok(!isWireError(ip));
  assert.equal(ip.extensionCount, 1);
  assert.equal(ip.upperProtocol, 6);
  assert.equal(ip.upperOffset, 48);
  assert.equal(ip.upperLength, 16);
  assert.ok(ip.isFragment && !ip.isFirstFragment && !ip.moreFragments);
  assert.equal(ip.fragmentOffset, 1448);
  assert.equal(ip.fragmentId, 0x42);
});

test('ipv6: routing and AH headers (AH length in 4-byte units + 2)', () => {
  const ip = Ipv6View.parse(routingAh);
  assert.ok(!isWireError(ip));
  assert.equal(ip.extensionCount, 2);
  assert.equal(ip.upperProtocol, 6);
  assert.equal(ip.upperOffset, 40 + 24 + 24);
  assert.equal(ip.upperLength, 20);
});

test('ipv6: an atomic fragment (offset 0, M clear) is not a fragment', () => {
  const ip = Ipv6View.parse(ipv6('2c', 28, '0600 0000 00000007  ' + TCP));
  assert.ok(!isWireError(ip));
  assert.ok(ip.hasFragmentHeader && !ip.isFragment && !ip.isFirstFragment);
  assert.equal(ip.upperOffset, 48);
});

test('ipv6: padding after the payload length is not payload', () => {
  const padded = new Uint8Array(noNext.length + 10);
  padded.set(noNext);
  const ip = Ipv6View.parse(padded);
  assert.ok(!isWireError(ip));
  assert.equal(ip.upperLength, 4);
});

test('ipv6: RFC 5952 text form', () => {
  const cases: [string, string][] = [
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['20010db8000000000001000000000000', '2001:db8:0:0:1::'],
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['fe800000000000000000000000000000', 'fe80::'],
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'],
    ['20010db8aaaabbbbccccddddeeeeffff', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff'],
    ['0001000000000002000000000000000a', '1:0:0:2::a'],
  ];
  for (const [hex, text] of cases) assert.equal(formatIpv6(fromHex(hex), 0), text, hex);
});

test('ipv6: every truncated prefix is a coded error', () => {
  for (const packet of [chain, routingAh]) {
    for (let len = 0; len < packet.length; len++) {
      const r = Ipv6View.parse(packet.subarray(0, len));
      assert.ok(isWireError(r), `prefix ${len}`);
      assert.equal(r.code, len < 40 ? 'decode.ipv6.header_too_short' : 'decode.ipv6.payload_length_exceeds_frame', `prefix ${len}`);
    }
  }
});

test('ipv6: impossible lengths and chains', () => {
  const destOpts = (next: string): string => `${next}00 0104 00000000`;
  const nine = Array.from({ length: MAX_EXTENSION_HEADERS + 1 }, (_, i) => destOpts(i === MAX_EXTENSION_HEADERS ? '3b' : '3c')).join(' ');
  const eight = Array.from({ length: MAX_EXTENSION_HEADERS }, (_, i) => destOpts(i === MAX_EXTENSION_HEADERS - 1 ? '3b' : '3c')).join(' ');
  assert.ok(!isWireError(Ipv6View.parse(ipv6('3c', 8 * MAX_EXTENSION_HEADERS, eight))), 'the limit itself is accepted');
  const cases: [Uint8Array, string][] = [
    // Version 4 in the version nibble.
    [fromHex(`45000000 0000 06 40 ${SRC} ${DST}`), 'decode.ipv6.bad_version'],
    // Payload length 8 with only 4 bytes after the header.
    [ipv6('3b', 8, 'aabbccdd'), 'decode.ipv6.payload_length_exceeds_frame'],
    // Payload length 0 with a Hop-by-Hop header: a jumbogram.
    [ipv6('00', 0, '3b00 c204 00010000'), 'decode.ipv6.jumbogram_unsupported'],
    // Hop-by-Hop after a Destination Options header.
    [ipv6('3c', 16, destOpts('00') + ' ' + destOpts('3b')), 'decode.ipv6.hop_by_hop_not_first'],
    // Hop-by-Hop claiming 16 bytes inside an 8-byte payload.
    [ipv6('00', 8, '3b01 0104 00000000'), 'decode.ipv6.extension_truncated'],
    // Fragment header cut to 4 bytes by the payload length.
    [ipv6('2c', 4, '06000001'), 'decode.ipv6.extension_truncated'],
    // A 1-byte payload where an extension header's length byte should be.
    [ipv6('3c', 1, '3b'), 'decode.ipv6.extension_truncated'],
    // Nine Destination Options headers.
    [ipv6('3c', 8 * (MAX_EXTENSION_HEADERS + 1), nine), 'decode.ipv6.extension_chain_too_long'],
    // Two Fragment headers at offset 0.
    [ipv6('2c', 36, '2c00 0001 00000001  0600 0001 00000001  ' + TCP), 'decode.ipv6.duplicate_fragment_header'],
  ];
  for (const [packet, code] of cases) {
    const r = Ipv6View.parse(packet);
    assert.ok(isWireError(r), code);
    assert.equal(r.code, code);
  }
});
