import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { isWireError } from '../../../compare/wire/error.js';
import { ICMP_ECHO_REQUEST, IcmpView } from '../../../compare/wire/icmp.js';
import { Ipv4View } from '../../../compare/wire/ipv4.js';
import { fixture } from './fixtures.js';

// ICMP destination unreachable (port) quoting the IPv4 header and first 8 bytes of a UDP datagram.
const unreachable = fromHex('0303 0000 00000000  4500 0020 0001 0000 4011 66ca 0a000001 0a000002  14e9 0035 000c 3918');

test('icmp: echo request bytes -> fields', () => {
  const f = fixture('icmp4');
  const c = IcmpView.parse(f, 34, 12);
  assert.ok(!isWireError(c));
  assert.equal(c.kind, 'icmp');
  assert.equal(c.type, ICMP_ECHO_REQUEST);
  assert.equal(c.code, 0);
  assert.equal(c.checksum, 0x2104);
  assert.ok(c.isEcho && !c.isError);
  assert.equal(c.echoId, 0x1234);
  assert.equal(c.echoSequence, 1);
  assert.equal(c.embeddedOffset, -1);
  assert.equal(c.payloadOffset, 42);
  assert.equal(c.payloadLength, 4);
  assert.ok(c.verifyChecksum());
  f[44] ^= 0xff;
  assert.ok(!c.verifyChecksum());
  c.fillChecksum();
  assert.ok(c.verifyChecksum());
  f[44] ^= 0xff;
  c.fillChecksum();
  assert.deepEqual(f, fixture('icmp4'));
});

test('icmp: error messages expose the embedded IP header', () => {
  const c = IcmpView.parse(unreachable, 0, unreachable.length);
  assert.ok(!isWireError(c));
  assert.ok(c.isError && !c.isEcho);
  assert.equal(c.echoId, -1);
  assert.equal(c.echoSequence, -1);
  assert.equal(c.embeddedOffset, 8);
  assert.equal(unreachable[c.embeddedOffset + 9], 17);
  // The quoted datagram is cut short, so a full IPv4 parse of it reports that, as documented.
  const inner = Ipv4View.parse(unreachable, c.embeddedOffset, unreachable.length - c.embeddedOffset);
  assert.ok(isWireError(inner));
  assert.equal(inner.code, 'decode.ipv4.total_length_exceeds_frame');
});

test('icmp: every truncated prefix is a coded error', () => {
  for (let len = 0; len < 8; len++) {
    const r = IcmpView.parse(unreachable, 0, len);
    assert.ok(isWireError(r));
    assert.equal(r.code, 'decode.icmp.header_too_short');
  }
});
