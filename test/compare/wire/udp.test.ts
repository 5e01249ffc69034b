import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { pseudoSumV4, pseudoSumV6 } from '../../../compare/wire/checksum.js';
import { isWireError } from '../../../compare/wire/error.js';
import { UdpView } from '../../../compare/wire/udp.js';
import { emitUdp } from '../../../compare/wire/emit.js';
import { decodeFrame, Frame } from '../../../compare/wire/frame.js';
import { fixture } from './fixtures.js';

test('udp: known bytes -> fields, padding excluded', () => {
  const f = fixture('udp4');
  const u = UdpView.parse(f, 34, 12);
  assert.ok(!isWireError(u));
  assert.equal(u.kind, 'udp');
  assert.equal(u.srcPort, 5353);
  assert.equal(u.dstPort, 53);
  assert.equal(u.length, 12);
  assert.equal(u.checksum, 0x3918);
  assert.ok(u.hasChecksum);
  assert.equal(u.payloadOffset, 42);
  assert.equal(u.payloadLength, 4);
  assert.ok(u.verifyChecksum(pseudoSumV4(f, 14, 17, 12)));
});

test('udp: fields -> identical bytes (checksum fill, IPv4 and IPv6)', () => {
  for (const [name, ps] of [['udp4', (b: Uint8Array) => pseudoSumV4(b, 14, 17, 12)], ['udp6', (b: Uint8Array) => pseudoSumV6(b, 14, 17, 11)]] as const) {
    const f = fixture(name);
    const at = name === 'udp4' ? 34 : 54;
    const u = UdpView.parse(f, at, name === 'udp4' ? 12 : 11);
    assert.ok(!isWireError(u));
    f[at + 6] = 0;
    f[at + 7] = 0;
    assert.ok(!u.hasChecksum);
    u.fillChecksum(ps(f));
    assert.deepEqual(f, fixture(name));
  }
});

test('udp: length field shorter than the IP payload ends the datagram', () => {
  // UDP length 9 (1 payload byte) inside 12 bytes of IP payload.
  const u = UdpView.parse(fromHex('14e9 0035 0009 0000 aa bbccdd'), 0, 12);
  assert.ok(!isWireError(u));
  assert.equal(u.payloadLength, 1);
});

test('udp: every truncated prefix and impossible lengths are coded errors', () => {
  const d = fromHex('14e9 0035 000c 0000 deadbeef');
  for (let len = 0; len < d.length; len++) {
    const r = UdpView.parse(d, 0, len);
    assert.ok(isWireError(r), `prefix ${len}`);
    assert.equal(r.code, len < 8 ? 'decode.udp.header_too_short' : 'decode.udp.length_exceeds_ip_payload');
  }
  const short = UdpView.parse(fromHex('14e9 0035 0007 0000'), 0, 8);
  assert.ok(isWireError(short));
  assert.equal(short.code, 'decode.udp.bad_length');
});

test('udp: the first fragment of a fragmented datagram decodes, its view ending with the fragment', () => {
  const whole = emitUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, payload: new Uint8Array(100) });
  // Keep the first 8 + 24 bytes of the UDP datagram, set MF, fix the IPv4 total length.
  const first = whole.slice(0, 14 + 20 + 32);
  first[14 + 6] = 0x20;
  first[14 + 3] = 20 + 32;
  const f = decodeFrame(first);
  assert.ok(f instanceof Frame, String(f));
  assert.equal(f.isFragment, true);
  assert.equal(f.transport?.kind, 'udp');
  assert.equal(f.payloadLength, 24);
  // The same length field without MF is still an error: the datagram is truncated.
  first[14 + 6] = 0x00;
  assert.ok(!(decodeFrame(first) instanceof Frame));
});
