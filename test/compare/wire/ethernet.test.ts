import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { isWireError } from '../../../compare/wire/error.js';
import { EthernetView, ETHERTYPE_IPV4, ETHERTYPE_VLAN, ETHERTYPE_QINQ, formatMac } from '../../../compare/wire/ethernet.js';

// Untagged IPv4 frame header: dst 52:54:00:12:34:56, src 52:54:00:ab:cd:ef, type 0x0800, 2 payload bytes.
const untagged = fromHex('525400123456 525400abcdef 0800 4500');
// 802.1ad S-tag VID 100 PCP 5 outside an 802.1Q C-tag VID 7, then IPv4.
const qinq = fromHex('525400123456 525400abcdef 88a8 a064 8100 0007 0800 4500');

test('ethernet: untagged frame fields', () => {
  const e = EthernetView.parse(untagged);
  assert.ok(!isWireError(e));
  assert.equal(formatMac(e.destination), '52:54:00:12:34:56');
  assert.equal(formatMac(e.source), '52:54:00:ab:cd:ef');
  assert.equal(e.etherType, ETHERTYPE_IPV4);
  assert.equal(e.tagCount, 0);
  assert.equal(e.payloadOffset, 14);
  assert.equal(e.payloadLength, 2);
});

test('ethernet: stacked 802.1ad + 802.1Q tags', () => {
  const e = EthernetView.parse(qinq);
  assert.ok(!isWireError(e));
  assert.equal(e.tagCount, 2);
  assert.equal(e.tagProtocol(0), ETHERTYPE_QINQ);
  assert.equal(e.vlanId(0), 100);
  assert.equal(e.priority(0), 5);
  assert.equal(e.tagProtocol(1), ETHERTYPE_VLAN);
  assert.equal(e.vlanId(1), 7);
  assert.equal(e.etherType, ETHERTYPE_IPV4);
  assert.equal(e.payloadOffset, 22);
});

test('ethernet: view at an offset inside a larger buffer', () => {
  const big = new Uint8Array(untagged.length + 7);
  big.set(untagged, 7);
  const e = EthernetView.parse(big, 7, untagged.length);
  assert.ok(!isWireError(e));
  assert.equal(e.etherType, ETHERTYPE_IPV4);
  assert.equal(e.payloadOffset, 21);
});

test('ethernet: every truncated prefix is a coded error', () => {
  for (const frame of [untagged, qinq]) {
    const headerEnd = frame.length - 2;
    for (let len = 0; len < headerEnd; len++) {
      const r = EthernetView.parse(frame.subarray(0, len));
      assert.ok(isWireError(r), `prefix ${len} should fail`);
      assert.match(r.code, /^decode\.ethernet\.(too_short|vlan_truncated)$/);
    }
  }
});

test('ethernet: a tag stack deeper than the limit is refused', () => {
  const deep = fromHex('525400123456 525400abcdef' + ' 8100 0001'.repeat(5) + ' 0800');
  const r = EthernetView.parse(deep);
  assert.ok(isWireError(r));
  assert.equal(r.code, 'decode.ethernet.too_many_tags');
});
