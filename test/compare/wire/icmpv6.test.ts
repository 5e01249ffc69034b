import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { pseudoSumV6 } from '../../../compare/wire/checksum.js';
import { isWireError } from '../../../compare/wire/error.js';
import { ICMPV6_ECHO_REQUEST, Icmpv6View } from '../../../compare/wire/icmpv6.js';
import { fixture } from './fixtures.js';

// ICMPv6 packet too big (MTU 1280) quoting the start of an IPv6 header.
const tooBig = fromHex('0200 0000 00000500  6000 0000 0028 06 40');

test('icmpv6: echo request bytes -> fields, fields -> identical bytes', () => {
  const f = fixture('ping6');
  const c = Icmpv6View.parse(f, 54, 12);
  assert.ok(!isWireError(c));
  assert.equal(c.kind, 'icmpv6');
  assert.equal(c.type, ICMPV6_ECHO_REQUEST);
  assert.equal(c.code, 0);
  assert.equal(c.checksum, 0xc0dd);
  assert.ok(c.isEcho && !c.isError);
  assert.equal(c.echoId, 7);
  assert.equal(c.echoSequence, 9);
  assert.equal(c.embeddedOffset, -1);
  assert.equal(c.payloadLength, 4);
  const ps = pseudoSumV6(f, 14, 58, 12);
  assert.ok(c.verifyChecksum(ps));
  f[56] = 0;
  f[57] = 0;
  assert.ok(!c.verifyChecksum(ps));
  c.fillChecksum(ps);
  assert.deepEqual(f, fixture('ping6'));
});

test('icmpv6: error messages expose the embedded header', () => {
  const c = Icmpv6View.parse(tooBig, 0, tooBig.length);
  assert.ok(!isWireError(c));
  assert.ok(c.isError);
  assert.equal(c.echoId, -1);
  assert.equal(c.embeddedOffset, 8);
  assert.equal(tooBig[c.embeddedOffset]! >>> 4, 6);
});

test('icmpv6: every truncated prefix is a coded error', () => {
  for (let len = 0; len < 8; len++) {
    const r = Icmpv6View.parse(tooBig, 0, len);
    assert.ok(isWireError(r));
    assert.equal(r.code, 'decode.icmpv6.header_too_short');
  }
});
