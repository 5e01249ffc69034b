import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from '../../../compare/wire/bytes.js';
import { isWireError } from '../../../compare/wire/error.js';
import { ARP_OP_REQUEST, ArpView } from '../../../compare/wire/arp.js';
import { formatMac } from '../../../compare/wire/ethernet.js';
import { fixture } from './fixtures.js';

// ARP-like packet with 8-byte hardware and 16-byte protocol addresses (no IPv4 addresses), reply.
const generic = fromHex('0006 86dd 08 10 0002  1111111111111111 20010db8000000000000000000000001  2222222222222222 20010db8000000000000000000000002');

test('arp: Ethernet/IPv4 request bytes -> fields, padding ignored', () => {
  const f = fixture('arp');
  const a = ArpView.parse(f, 14, f.length - 14);
  assert.ok(!isWireError(a));
  assert.equal(a.kind, 'arp');
  assert.ok(a.isEthernetIpv4);
  assert.equal(a.hardwareType, 1);
  assert.equal(a.protocolType, 0x0800);
  assert.equal(a.hardwareLength, 6);
  assert.equal(a.protocolLength, 4);
  assert.equal(a.operation, ARP_OP_REQUEST);
  assert.equal(formatMac(a.senderHardware), '52:54:00:ab:cd:ef');
  assert.equal(a.senderIp, 0x0a000001);
  assert.equal(formatMac(a.targetHardware), '00:00:00:00:00:00');
  assert.equal(a.targetIp, 0x0a000002);
  assert.equal(toHex(a.senderProtocol), '0a000001');
  assert.equal(a.length, 28);
});

test('arp: other address sizes parse generically', () => {
  const a = ArpView.parse(generic);
  assert.ok(!isWireError(a));
  assert.ok(!a.isEthernetIpv4);
  assert.equal(a.operation, 2);
  assert.equal(toHex(a.senderHardware), '1111111111111111');
  assert.equal(toHex(a.senderProtocol), '20010db8000000000000000000000001');
  assert.equal(toHex(a.targetHardware), '2222222222222222');
  assert.equal(toHex(a.targetProtocol), '20010db8000000000000000000000002');
  assert.equal(a.senderIp, -1);
  assert.equal(a.targetIp, -1);
});

test('arp: every truncated prefix is a coded error', () => {
  for (const packet of [fixture('arp').subarray(14, 42), generic]) {
    for (let len = 0; len < packet.length; len++) {
      const r = ArpView.parse(packet.subarray(0, len));
      assert.ok(isWireError(r), `prefix ${len}`);
      assert.equal(r.code, len < 8 ? 'decode.arp.header_too_short' : 'decode.arp.addresses_truncated');
    }
    assert.ok(!isWireError(ArpView.parse(packet)));
  }
});
