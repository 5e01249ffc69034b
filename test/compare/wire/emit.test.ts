/**
 * Frame emitters: the shared fixtures rebuilt byte for byte from their fields, Linux's option
 * layouts, random fields decoded back to the same values with checksums verifying, padding never
 * counted as payload, misuse rejected with codes, and tshark judging the checksums and fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex } from '../../../compare/wire/bytes.js';
import { pseudoSumV4, pseudoSumV6 } from '../../../compare/wire/checksum.js';
import { EmitError, emitArp, emitIcmpEcho, emitTcp, emitUdp, parseIpv4, parseIpv6, parseMac } from '../../../compare/wire/emit.js';
import type { TcpFields, TcpOptions } from '../../../compare/wire/emit.js';
import { formatMac } from '../../../compare/wire/ethernet.js';
import { Frame } from '../../../compare/wire/frame.js';
import { formatIpv6 } from '../../../compare/wire/ipv6.js';
import { TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN } from '../../../compare/wire/tcp.js';
import { tsharkFields } from '../../support/tshark.js';
import { fixture } from './fixtures.js';
import { decoded } from '../../support/decoded.js';

/** True when the frame's IPv4 header (if any) and transport checksums verify by full recomputation. */
function checksumsVerify(f: Frame): boolean {
  const ip = f.network;
  const t = f.transport;
  assert.ok(ip !== null && ip.kind !== 'arp' && t !== null);
  if (ip.kind === 'ipv4' && !ip.verifyChecksum()) return false;
  if (t.kind === 'icmp') return t.verifyChecksum();
  const length = ip.kind === 'ipv4' ? ip.payloadLength : ip.upperLength;
  const ps = ip.kind === 'ipv4' ? pseudoSumV4(f.bytes, ip.offset, f.protocol, length) : pseudoSumV6(f.bytes, ip.offset, f.protocol, length);
  return t.verifyChecksum(ps);
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof EmitError && e.code === code && e.name === 'EmitError');
}

test('emit: every shared fixture rebuilt byte for byte from its fields', () => {
  const v4 = { src: '10.0.0.1', dst: '10.0.0.2' };
  const cases: [Parameters<typeof fixture>[0], Uint8Array][] = [
    ['syn4', emitTcp({ ...v4, ipId: 0x1c46, srcPort: 40000, dstPort: 80, seq: 0x11223344, ack: 0, flags: TCP_SYN, window: 0xfaf0, options: { mss: 1460, sackPermitted: true, timestamp: [0x01020304, 0], windowScale: 7 } })],
    ['data4', emitTcp({ ...v4, ipId: 0x1c47, srcPort: 40000, dstPort: 80, seq: 0x11223345, ack: 0x55667788, flags: TCP_PSH | TCP_ACK, window: 502, options: { timestamp: [0x01020305, 0x0a0b0c0d] }, payload: 'hello' })],
    ['ack4', emitTcp({ ...v4, ipId: 0x1c48, srcPort: 40000, dstPort: 80, seq: 0x1122334a, ack: 0x55667788, flags: TCP_ACK, window: 502, padTo: 60 })],
    ['sack4', emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', ipId: 0x1c49, srcPort: 80, dstPort: 40000, seq: 0x55667788, ack: 0x1122334a, flags: TCP_ACK, window: 502, options: { timestamp: [0x0a0b0c0e, 0x01020305], sack: [[0x11223c4a, 0x11224a4a], [0x11225a4a, 0x11226a4a]] } })],
    // The UDP and ICMP fixtures carry 10 bytes of padding, ending at 56 bytes.
    ['udp4', emitUdp({ ...v4, ipId: 1, dontFragment: false, srcPort: 5353, dstPort: 53, payload: Uint8Array.of(0xde, 0xad, 0xbe, 0xef), padTo: 56 })],
    ['icmp4', emitIcmpEcho({ ...v4, ipId: 2, dontFragment: false, id: 0x1234, sequence: 1, payload: 'abcd', padTo: 56 })],
    ['syn6', emitTcp({ src: 'fd00::1', dst: 'fd00::2', srcPort: 40000, dstPort: 443, seq: 0x01020304, ack: 0, flags: TCP_SYN, window: 0xfd20, options: { mss: 1440, sackPermitted: true, timestamp: [1, 0], windowScale: 7 } })],
    ['udp6', emitUdp({ src: 'fd00::1', dst: 'fd00::2', srcPort: 5353, dstPort: 53, payload: 'abc' })],
    ['ping6', emitIcmpEcho({ ipVersion: 6, src: 'fd00::1', dst: 'fd00::2', id: 7, sequence: 9, payload: 'abcd' })],
    ['arp', emitArp({ senderIp: '10.0.0.1', targetIp: '10.0.0.2', padTo: 60 })],
  ];
  for (const [name, bytes] of cases) assert.equal(toHex(bytes), toHex(fixture(name)), name);
});

test('emit: TCP options in Linux order for each combination', () => {
  const base = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TCP_SYN };
  const optionsHex = (options: TcpOptions): string => {
    const f = decoded(emitTcp({ ...base, options }));
    const t = f.transport!;
    assert.ok(t.kind === 'tcp');
    return toHex(f.bytes, t.offset + 20, t.headerLength - 20);
  };
  assert.equal(optionsHex({}), '');
  // SYN without timestamps (net.ipv4.tcp_timestamps=0): MSS, NOP NOP SACK-perm, NOP WS.
  assert.equal(optionsHex({ mss: 1460, sackPermitted: true, windowScale: 7 }), '020405b4' + '01010402' + '01030307');
  // SYN without SACK: MSS, NOP NOP TS, NOP WS.
  assert.equal(optionsHex({ mss: 1460, timestamp: [5, 0], windowScale: 0 }), '020405b4' + '0101080a0000000500000000' + '01030300');
  assert.equal(optionsHex({ timestamp: [1, 2], sack: [[3, 4], [5, 6], [7, 8]] }), '0101080a0000000100000002' + '0101051a' + '0000000300000004' + '0000000500000006' + '0000000700000008');
  assert.equal(optionsHex({ sack: [[1, 2], [3, 4], [5, 6], [0xffffffff, 0]] }), '01010522' + '0000000100000002' + '0000000300000004' + '0000000500000006' + 'ffffffff00000000');
  assert.equal(optionsHex({ sack: [] }), '');
});

test('emit: VLAN tags, MACs, TTL, TOS, flow label and padding', () => {
  const f = decoded(emitTcp({
    srcMac: '02:00:00:00:00:01', dstMac: Uint8Array.of(2, 0, 0, 0, 0, 2), vlan: [100, 4095], src: '2001:db8::1', dst: '2001:db8::2',
    ttl: 3, tos: 0xb8, flowLabel: 0xabcde, srcPort: 9, dstPort: 10, seq: 1, ack: 2, flags: TCP_RST, padTo: 200,
  }));
  assert.ok(f.link !== null && f.network?.kind === 'ipv6' && f.transport?.kind === 'tcp');
  assert.equal(formatMac(f.link.source), '02:00:00:00:00:01');
  assert.equal(formatMac(f.link.destination), '02:00:00:00:00:02');
  assert.equal(f.link.tagCount, 2);
  assert.equal(f.link.tagProtocol(0), 0x88a8);
  assert.equal(f.link.tagProtocol(1), 0x8100);
  assert.equal(f.link.vlanId(0), 100);
  assert.equal(f.link.vlanId(1), 4095);
  assert.equal(f.network.hopLimit, 3);
  assert.equal(f.network.trafficClass, 0xb8);
  assert.equal(f.network.flowLabel, 0xabcde);
  assert.equal(f.bytes.length, 200);
  assert.equal(f.payloadLength, 0);
  assert.equal(f.transport.segmentLength, 20);
  assert.ok(checksumsVerify(f));
  // padTo below the natural length changes nothing.
  assert.equal(emitTcp({ src: '1.2.3.4', dst: '5.6.7.8', srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0, padTo: 10 }).length, 54);
});

test('emit: UDP (with and without checksum), ICMP echo reply, ARP reply', () => {
  const u = decoded(emitUdp({ src: '10.1.1.1', dst: '10.1.1.2', srcPort: 7, dstPort: 8, payload: 'é€😀', padTo: 60 }));
  assert.ok(u.transport?.kind === 'udp');
  assert.equal(toHex(u.bytes, u.payloadOffset, u.payloadLength), 'c3a9' + 'e282ac' + 'f09f9880');
  assert.ok(u.transport.hasChecksum && checksumsVerify(u));
  const none = decoded(emitUdp({ src: '10.1.1.1', dst: '10.1.1.2', srcPort: 7, dstPort: 8, noChecksum: true }));
  assert.ok(none.transport?.kind === 'udp');
  assert.equal(none.transport.checksum, 0);

  const r4 = decoded(emitIcmpEcho({ src: '10.1.1.1', dst: '10.1.1.2', id: 1, sequence: 2, reply: true }));
  assert.ok(r4.transport?.kind === 'icmp');
  assert.equal(r4.transport.type, 0);
  assert.ok(checksumsVerify(r4));
  const r6 = decoded(emitIcmpEcho({ src: '::1', dst: '::2', id: 1, sequence: 2, reply: true, payload: new Uint8Array(33) }));
  assert.ok(r6.transport?.kind === 'icmpv6');
  assert.equal(r6.transport.type, 129);
  assert.equal(r6.transport.echoSequence, 2);
  assert.ok(checksumsVerify(r6));

  const a = decoded(emitArp({ operation: 2, srcMac: '02:00:00:00:00:01', senderIp: '10.0.0.2', targetMac: '02:00:00:00:00:09', targetIp: '10.0.0.1' }));
  assert.ok(a.network?.kind === 'arp' && a.link !== null);
  assert.equal(a.network.operation, 2);
  assert.ok(a.network.isEthernetIpv4);
  assert.equal(formatMac(a.network.senderHardware), '02:00:00:00:00:01');
  assert.equal(formatMac(a.network.targetHardware), '02:00:00:00:00:09');
  assert.equal(formatMac(a.link.destination), '02:00:00:00:00:09');
  assert.equal(a.network.senderIp, 0x0a000002);
  assert.equal(a.network.targetIp, 0x0a000001);
  assert.equal(a.bytes.length, 42);
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const ipv4Text = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ipv6Text = fc.array(u16, { minLength: 8, maxLength: 8 }).map((w) => formatIpv6(Uint8Array.from(w.flatMap((x) => [x >>> 8, x & 0xff])), 0));
const tcpOptions: fc.Arbitrary<TcpOptions> = fc.record({
  mss: fc.option(u16, { nil: undefined }),
  windowScale: fc.option(fc.nat(14), { nil: undefined }),
  sackPermitted: fc.boolean(),
  timestamp: fc.option(fc.tuple(u32, u32), { nil: undefined }),
  sack: fc.array(fc.tuple(u32, u32), { maxLength: 4 }),
}).filter((o) => (o.mss === undefined ? 0 : 4) + (o.timestamp !== undefined ? 12 : o.sackPermitted ? 4 : 0)
  + (o.windowScale === undefined ? 0 : 4) + (o.sack.length > 0 ? 4 + 8 * o.sack.length : 0) <= 40);
const tcpFields: fc.Arbitrary<TcpFields> = fc.record({
  ipVersion: fc.constantFrom(4 as const, 6 as const),
  v4src: ipv4Text, v4dst: ipv4Text, v6src: ipv6Text, v6dst: ipv6Text,
  vlan: fc.array(fc.nat(4095), { maxLength: 2 }),
  srcPort: u16, dstPort: u16, seq: u32, ack: u32, flags: fc.nat(255), window: u16,
  ttl: fc.nat(255), tos: fc.nat(255), ipId: u16,
  options: tcpOptions,
  payload: fc.uint8Array({ maxLength: 300 }),
  padTo: fc.constantFrom(0, 60, 64, 400),
}).map(({ v4src, v4dst, v6src, v6dst, ...f }) => ({ ...f, src: f.ipVersion === 4 ? v4src : v6src, dst: f.ipVersion === 4 ? v4dst : v6dst }));

test('emit: random TCP fields decode to the same fields, checksums verify, padding is not payload', () => {
  fc.assert(fc.property(tcpFields, (fields) => {
    const f = decoded(emitTcp(fields));
    const ip = f.network;
    const t = f.transport;
    assert.ok(ip !== null && ip.kind !== 'arp' && t?.kind === 'tcp' && f.link !== null);
    assert.equal(ip.version, fields.ipVersion);
    assert.equal(ip.srcString, fields.src);
    assert.equal(ip.dstString, fields.dst);
    assert.deepEqual(Array.from({ length: f.link.tagCount }, (_, i) => f.link!.vlanId(i)), fields.vlan);
    if (ip.kind === 'ipv4') {
      assert.equal(ip.ttl, fields.ttl);
      assert.equal(ip.tos, fields.tos);
      assert.equal(ip.identification, fields.ipId);
      assert.ok(ip.dontFragment);
    } else {
      assert.equal(ip.hopLimit, fields.ttl);
      assert.equal(ip.trafficClass, fields.tos);
    }
    assert.deepEqual([t.srcPort, t.dstPort, t.seq, t.ack, t.flags, t.window], [fields.srcPort, fields.dstPort, fields.seq, fields.ack, fields.flags, fields.window]);
    const o = fields.options!;
    assert.equal(t.mss, o.mss ?? -1);
    assert.equal(t.windowScale, o.windowScale ?? -1);
    assert.equal(t.sackPermitted, o.sackPermitted);
    assert.deepEqual([t.tsVal, t.tsEcr], o.timestamp ?? [-1, -1]);
    assert.deepEqual(Array.from({ length: t.sackBlockCount }, (_, i) => [t.sackLeft(i), t.sackRight(i)]), o.sack);
    const payload = fields.payload as Uint8Array;
    assert.equal(f.payloadLength, payload.length);
    assert.equal(toHex(f.bytes, f.payloadOffset, f.payloadLength), toHex(payload));
    assert.equal(f.bytes.length, Math.max(f.payloadOffset + payload.length, fields.padTo!));
    assert.ok(checksumsVerify(f));
  }), { numRuns: 300 });
});

test('emit: random UDP and ICMP echo fields decode back and verify', () => {
  fc.assert(fc.property(tcpFields, fc.boolean(), (fields, udp) => {
    const f = decoded(udp
      ? emitUdp({ ...fields, srcPort: fields.srcPort, dstPort: fields.dstPort })
      : emitIcmpEcho({ ...fields, id: fields.srcPort, sequence: fields.dstPort }));
    const t = f.transport;
    assert.ok(t !== null);
    if (t.kind === 'udp') assert.deepEqual([t.srcPort, t.dstPort], [fields.srcPort, fields.dstPort]);
    else if (t.kind === 'icmp' || t.kind === 'icmpv6') assert.deepEqual([t.echoId, t.echoSequence], [fields.srcPort, fields.dstPort]);
    else assert.fail(t.kind);
    assert.equal(f.payloadLength, (fields.payload as Uint8Array).length);
    assert.ok(checksumsVerify(f));
  }), { numRuns: 200 });
});

test('emit: address parsing', () => {
  assert.equal(parseIpv4('255.0.10.1'), 0xff000a01);
  const v6: [string, string][] = [
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['1::', '00010000000000000000000000000000'],
    ['FD00:0:0::a:B', 'fd00' + '00000000000000000000' + '000a000b'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
  ];
  for (const [text, hex] of v6) assert.equal(toHex(parseIpv6(text)), hex, text);
  for (const bad of ['', ':', '1:2', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '12345::', 'g::', '1.2.3.4::', '::1.2.3', '::1.2.3.256', '1:2:3:4:5:6:7:1.2.3.4']) {
    expectCode(() => parseIpv6(bad), 'emit.bad_address');
  }
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.04444', ' 1.2.3.4', '::1']) expectCode(() => parseIpv4(bad), 'emit.bad_address');
  assert.equal(toHex(parseMac('AA-bb-cc-dd-ee-ff')), 'aabbccddeeff');
  for (const bad of ['aa:bb:cc:dd:ee', 'aabbccddeeff', 'aa:bb:cc:dd:ee:fg']) expectCode(() => parseMac(bad), 'emit.bad_address');
  expectCode(() => parseMac(new Uint8Array(5)), 'emit.bad_address');
});

test('emit: misuse throws EmitError with a stable code', () => {
  const ok: TcpFields = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0 };
  assert.doesNotThrow(() => emitTcp(ok));
  expectCode(() => emitTcp({ ...ok, srcPort: 65536 }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, seq: -1 }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, ack: 2 ** 32 }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, flags: 256 }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, window: 1.5 }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, vlan: [4096] }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, options: { sack: [[0, 1], [0, 1], [0, 1], [0, 1], [0, 1]] } }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, options: { timestamp: [0, 1], sack: [[0, 1], [0, 1], [0, 1], [0, 1]] } }), 'emit.options_too_long');
  expectCode(() => emitTcp({ ...ok, options: { timestamp: [0, 2 ** 32] } }), 'emit.bad_field');
  expectCode(() => emitTcp({ ...ok, src: '10.0.0.256' }), 'emit.bad_address');
  expectCode(() => emitTcp({ ...ok, ipVersion: 6 }), 'emit.bad_address');
  expectCode(() => emitTcp({ ...ok, srcMac: '00:11' }), 'emit.bad_address');
  // The IPv4 total length and the IPv6 payload length are 16-bit: a TCP payload of 65495 / 65515 bytes is the most.
  assert.equal(emitTcp({ ...ok, payload: new Uint8Array(65495) }).length, 14 + 65535);
  expectCode(() => emitTcp({ ...ok, payload: new Uint8Array(65496) }), 'emit.too_long');
  const v6 = { ...ok, src: '::1', dst: '::2' };
  assert.equal(emitTcp({ ...v6, payload: new Uint8Array(65515) }).length, 14 + 40 + 65535);
  expectCode(() => emitTcp({ ...v6, payload: new Uint8Array(65516) }), 'emit.too_long');
  expectCode(() => emitUdp({ ...v6, payload: new Uint8Array(65528) }), 'emit.too_long');
});

test('emit: tshark reads our frames with Good checksums and the fields we wrote', () => {
  const tcp = { srcPort: 40000, dstPort: 80, seq: 0xfffffff0, ack: 7, flags: TCP_ACK, options: { timestamp: [11, 22] as [number, number], sack: [[100, 200], [300, 400]] as [number, number][] }, payload: 'odd', padTo: 60 };
  const corrupted = emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', ...tcp });
  corrupted[corrupted.length - 1] ^= 1; // the last payload byte (89 bytes: no padding)
  const frames: [string, Uint8Array, string][] = [
    // name, frame, expected: ip, tcp, udp, icmp, icmpv6 checksum status; 802.1ad S-tag id, 802.1Q tag id; tcp seq, ack, len, tsval, tsecr, sack_le
    ['tcp4', emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', vlan: [5], ...tcp }), '1,1,,,,,5,4294967280,7,3,11,22,100;300'],
    ['tcp6', emitTcp({ src: 'fd00::1', dst: 'fd00::2', ...tcp }), ',1,,,,,,4294967280,7,3,11,22,100;300'],
    ['syn4', emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, seq: 9, ack: 0, flags: TCP_SYN, options: { mss: 1460, sackPermitted: true, timestamp: [1, 0], windowScale: 7 }, padTo: 60 }), '1,1,,,,,,9,0,0,1,0,'],
    ['udp4', emitUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5, dstPort: 6, payload: 'x', padTo: 60 }), '1,,1,,,,,,,,,,'],
    ['udp6', emitUdp({ src: 'fd00::1', dst: 'fd00::2', vlan: [1, 2], srcPort: 5, dstPort: 6, payload: 'xyz' }), ',,1,,,1,2,,,,,,'],
    ['icmp4', emitIcmpEcho({ src: '10.0.0.1', dst: '10.0.0.2', id: 1, sequence: 1, payload: 'ping', padTo: 60 }), '1,,,1,,,,,,,,,'],
    ['icmp6', emitIcmpEcho({ src: 'fd00::1', dst: 'fd00::2', id: 1, sequence: 1, payload: 'ping' }), ',,,,1,,,,,,,,'],
    ['tcp4-corrupted', corrupted, '1,0,,,,,,4294967280,7,3,11,22,100;300'],
  ];
  const out = tsharkFields(frames.map(([, b]) => b), [
    'frame.number', 'ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status',
    'icmp.checksum.status', 'icmpv6.checksum.status', 'ieee8021ad.id', 'vlan.id',
    'tcp.seq_raw', 'tcp.ack_raw', 'tcp.len', 'tcp.options.timestamp.tsval', 'tcp.options.timestamp.tsecr', 'tcp.options.sack_le',
  ], ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.relative_sequence_numbers:FALSE', '-E', 'aggregator=;']);
  const rows = out.trim().split('\n').map((line) => line.split(',').slice(1).join(','));
  assert.equal(rows.length, frames.length, out);
  // tshark's proto_checksum_enum_e: 0 = Bad, 1 = Good.
  frames.forEach(([name, , expected], i) => assert.equal(rows[i], expected, `${name}: ${rows[i]}`));
});
