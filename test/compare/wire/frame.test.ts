import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex } from '../../../compare/wire/bytes.js';
import { WireError, isWireError } from '../../../compare/wire/error.js';
import { Frame, FrameDecoder, decodeFrame } from '../../../compare/wire/frame.js';
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from '../../../compare/wire/link.js';
import { FIXTURE_NAMES, fixture } from './fixtures.js';
import { decoded } from '../../support/decoded.js';

/** The fixture without its 14-byte Ethernet header. */
function ipOnly(name: 'syn4' | 'syn6' | 'udp4'): Uint8Array {
  return fixture(name).subarray(14);
}

test('frame: every fixture decodes to the expected layers', () => {
  const expected: Record<string, [string | null, string | null, number, number, number]> = {
    syn4: ['ipv4', 'tcp', 6, 74, 0],
    data4: ['ipv4', 'tcp', 6, 66, 5],
    ack4: ['ipv4', 'tcp', 6, 54, 0],
    sack4: ['ipv4', 'tcp', 6, 86, 0],
    udp4: ['ipv4', 'udp', 17, 42, 4],
    icmp4: ['ipv4', 'icmp', 1, 42, 4],
    syn6: ['ipv6', 'tcp', 6, 94, 0],
    udp6: ['ipv6', 'udp', 17, 62, 3],
    ping6: ['ipv6', 'icmpv6', 58, 62, 4],
    arp: ['arp', null, -1, 42, 0],
  };
  for (const name of FIXTURE_NAMES) {
    const f = decoded(fixture(name));
    const [net, transport, protocol, payloadOffset, payloadLength] = expected[name]!;
    assert.ok(f.link !== null, name);
    assert.equal(f.linkType, LINKTYPE_ETHERNET);
    assert.equal(f.networkOffset, 14, name);
    assert.equal(f.network?.kind ?? null, net, name);
    assert.equal(f.transport?.kind ?? null, transport, name);
    assert.equal(f.protocol, protocol, name);
    assert.equal(f.isFragment, false, name);
    assert.equal(f.payloadOffset, payloadOffset, name);
    assert.equal(f.payloadLength, payloadLength, name);
  }
});

test('frame: views narrow on kind', () => {
  const f = decoded(fixture('sack4'));
  assert.ok(f.network !== null && f.network.kind === 'ipv4' && f.transport !== null && f.transport.kind === 'tcp');
  assert.equal(f.network.srcString, '10.0.0.2');
  assert.equal(f.transport.sackBlockCount, 2);
  assert.equal(f.etherType, 0x0800);
});

test('frame: VLAN-tagged Ethernet', () => {
  const plain = fixture('data4');
  const tagged = new Uint8Array(plain.length + 4);
  tagged.set(plain.subarray(0, 12));
  tagged.set([0x81, 0x00, 0x00, 0x2a], 12);
  tagged.set(plain.subarray(12), 16);
  const f = decoded(tagged);
  assert.equal(f.link?.tagCount, 1);
  assert.equal(f.link?.vlanId(0), 42);
  assert.equal(f.etherType, 0x0800);
  assert.equal(f.networkOffset, 18);
  assert.equal(f.transport?.kind, 'tcp');
  assert.equal(f.payloadOffset, 70);
  assert.equal(f.payloadLength, 5);
});

test('frame: raw, IPv4, IPv6, SLL and SLL2 link types', () => {
  for (const [bytes, linkType, etherType, kind, offset] of [
    [ipOnly('syn4'), LINKTYPE_RAW, 0x0800, 'ipv4', 0],
    [ipOnly('syn6'), LINKTYPE_RAW, 0x86dd, 'ipv6', 0],
    [ipOnly('syn4'), LINKTYPE_IPV4, 0x0800, 'ipv4', 0],
    [ipOnly('syn6'), LINKTYPE_IPV6, 0x86dd, 'ipv6', 0],
    // SLL: packet type 0 (to us), ARPHRD_ETHER, 6-byte address, protocol 0x0800.
    [fromHex('0000 0001 0006 525400abcdef 0000 0800 ' + Buffer.from(ipOnly('syn4')).toString('hex')), LINKTYPE_LINUX_SLL, 0x0800, 'ipv4', 16],
    // SLL2: protocol 0x86dd, reserved, ifindex 2, ARPHRD_ETHER, packet type 4 (outgoing), 6-byte address.
    [fromHex('86dd 0000 00000002 0001 04 06 525400abcdef 0000 ' + Buffer.from(ipOnly('syn6')).toString('hex')), LINKTYPE_LINUX_SLL2, 0x86dd, 'ipv6', 20],
  ] as const) {
    const f = decoded(bytes, linkType);
    assert.equal(f.link, null);
    assert.equal(f.etherType, etherType);
    assert.equal(f.network?.kind, kind);
    assert.equal(f.networkOffset, offset);
    assert.equal(f.transport?.kind, 'tcp');
    assert.equal(f.payloadLength, 0);
  }
});

test('frame: unknown link types, EtherTypes and protocols are not errors', () => {
  const unknownLink = decoded(fixture('syn4'), 999);
  assert.equal(unknownLink.network, null);
  assert.equal(unknownLink.etherType, -1);
  assert.equal(unknownLink.payloadLength, 60 + 14);
  // LLDP frame: EtherType 0x88cc, left undecoded.
  const lldp = decoded(fromHex('0180c200000e 525400abcdef 88cc 0207 0452540000000104'));
  assert.equal(lldp.etherType, 0x88cc);
  assert.equal(lldp.network, null);
  assert.equal(lldp.payloadOffset, 14);
  assert.equal(lldp.payloadLength, 10);
  // IPv4 GRE (protocol 47): network decoded, transport left null, payload bounded by total length.
  const gre = decoded(fromHex('525400123456 525400abcdef 0800 4500 0018 0000 0000 402f 0000 0a000001 0a000002 00000800 0000'));
  assert.equal(gre.network?.kind, 'ipv4');
  assert.equal(gre.transport, null);
  assert.equal(gre.protocol, 47);
  assert.equal(gre.payloadOffset, 34);
  assert.equal(gre.payloadLength, 4);
});

test('frame: IPv4 fragments (only the first carries a transport header)', () => {
  // First fragment (MF, offset 0) of a TCP segment: TCP header plus 4 data bytes.
  const first = decoded(fromHex('525400123456 525400abcdef 0800 4500 002c 0007 2000 4006 0000 0a000001 0a000002  9c40 0050 00000001 00000000 5010 2000 0000 0000 61626364'));
  assert.ok(first.isFragment);
  assert.equal(first.transport?.kind, 'tcp');
  assert.equal(first.payloadLength, 4);
  // Later fragment (offset 3 units) whose bytes are not a TCP header: none is parsed.
  const later = decoded(fromHex('525400123456 525400abcdef 0800 4500 001c 0007 0003 4006 0000 0a000001 0a000002  ffffffff ffffffff'));
  assert.ok(later.isFragment);
  assert.equal(later.transport, null);
  assert.equal(later.protocol, 6);
  assert.equal(later.payloadOffset, 34);
  assert.equal(later.payloadLength, 8);
});

test('frame: IPv6 later fragment has no transport header', () => {
  const f = decoded(fromHex('525400123456 525400abcdef 86dd 6000 0000 0010 2c 40 fd000000000000000000000000000001 fd000000000000000000000000000002'
    + ' 0600 05a8 00000042  ffffffff ffffffff'));
  assert.ok(f.isFragment);
  assert.equal(f.transport, null);
  assert.equal(f.protocol, 6);
  assert.equal(f.payloadOffset, 62);
  assert.equal(f.payloadLength, 8);
});

test('frame: a first fragment too short for its TCP header is a fragment without a transport view, not an error', () => {
  // 10.0.0.2 -> 10.0.0.1, TCP, More Fragments, offset 0, 8 bytes of the TCP header.
  const ip = '4500 001c 0001 2000 40 06 0000 0a000002 0a000001';
  const tiny = decoded(fromHex(`525400123456 525400abcdef 0800 ${ip} 0050 9c40 000f4240`));
  assert.ok(tiny.isFragment);
  assert.equal(tiny.transport, null);
  assert.equal(tiny.protocol, 6);
  assert.equal(tiny.payloadLength, 8);
  const unfragmented = decodeFrame(fromHex(`525400123456 525400abcdef 0800 ${ip.replace('2000', '0000')} 0050 9c40 000f4240`), LINKTYPE_ETHERNET);
  assert.ok(isWireError(unfragmented));
  assert.equal(unfragmented.code, 'decode.tcp.header_too_short');
});

test('frame: malformed known layers are that layer\'s coded error', () => {
  const badTcp = fixture('ack4');
  badTcp[46] = 0x40; // data offset 4
  const cases: [Uint8Array, number, string][] = [
    [badTcp, LINKTYPE_ETHERNET, 'decode.tcp.bad_data_offset'],
    [fromHex('525400123456 525400abcdef 0800 4400'), LINKTYPE_ETHERNET, 'decode.ipv4.header_too_short'],
    [fixture('syn4').subarray(0, 13), LINKTYPE_ETHERNET, 'decode.ethernet.too_short'],
    [new Uint8Array(0), LINKTYPE_RAW, 'decode.raw.empty'],
    [fromHex('5000'), LINKTYPE_RAW, 'decode.raw.bad_version'],
    [ipOnly('syn6'), LINKTYPE_IPV4, 'decode.ipv4.bad_version'],
    [new Uint8Array(15), LINKTYPE_LINUX_SLL, 'decode.sll.header_too_short'],
    [new Uint8Array(19), LINKTYPE_LINUX_SLL2, 'decode.sll2.header_too_short'],
    [fixture('arp').subarray(0, 30), LINKTYPE_ETHERNET, 'decode.arp.addresses_truncated'],
  ];
  for (const [bytes, linkType, code] of cases) {
    const r = decodeFrame(bytes, linkType);
    assert.ok(isWireError(r), code);
    assert.equal(r.code, code);
  }
});

test('frame: every truncated prefix of a fixture is a coded error until the packet is whole', () => {
  const meaningfulEnd: Record<string, number> = {
    syn4: 74, data4: 71, ack4: 54, sack4: 86, udp4: 46, icmp4: 46, syn6: 94, udp6: 65, ping6: 66, arp: 42,
  };
  for (const name of FIXTURE_NAMES) {
    const full = fixture(name);
    for (let len = 0; len <= full.length; len++) {
      const r = decodeFrame(full.subarray(0, len));
      if (len < meaningfulEnd[name]!) {
        assert.ok(isWireError(r), `${name} prefix ${len}`);
        assert.match(r.code, /^decode\.(ethernet|ipv4|ipv6|tcp|udp|icmp|icmpv6|arp)\./);
      } else {
        assert.ok(r instanceof Frame, `${name} prefix ${len}: ${String(r)}`);
      }
    }
  }
});

/** The fuzz invariant: a Frame whose payload lies inside the bytes, or a coded WireError. */
function checkOutcome(bytes: Uint8Array, linkType: number): void {
  const r = decodeFrame(bytes, linkType);
  if (r instanceof WireError) {
    assert.match(r.code, /^decode\./);
    assert.ok(r.at >= 0 && r.at <= bytes.length, `error offset ${r.at} outside ${bytes.length}`);
    return;
  }
  assert.ok(r instanceof Frame);
  assert.ok(r.payloadOffset >= 0 && r.payloadLength >= 0 && r.payloadOffset + r.payloadLength <= bytes.length,
    `payload [${r.payloadOffset}, +${r.payloadLength}) outside ${bytes.length}`);
}

const LINK_TYPES = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2];

test('frame: never throws on random bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...LINK_TYPES), (bytes, linkType) => {
    checkOutcome(bytes, linkType);
  }), { numRuns: 20000 });
});

test('frame: never throws on mutated valid frames (flipped bytes, truncation)', () => {
  const mutation = fc.record({
    name: fc.constantFrom(...FIXTURE_NAMES),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
    cut: fc.nat(),
    truncate: fc.boolean(),
  });
  fc.assert(fc.property(mutation, ({ name, flips, cut, truncate }) => {
    const f = fixture(name);
    for (const [at, value] of flips) f[at % f.length] = value;
    checkOutcome(truncate ? f.subarray(0, cut % (f.length + 1)) : f, LINKTYPE_ETHERNET);
    checkOutcome(f.subarray(14), LINKTYPE_RAW);
  }), { numRuns: 30000 });
});

/**
 * Everything a decode result shows: own fields (private ones included), every getter, the indexed
 * accessors, nested views; byte arrays other than the frame itself as hex.
 */
function snapshot(x: unknown, frame: Uint8Array): unknown {
  if (x instanceof WireError) return { error: x.code, at: x.at };
  if (x instanceof Uint8Array) return x === frame ? 'the frame' : Buffer.from(x).toString('hex');
  if (x === null || typeof x !== 'object') return x;
  const o = x as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) out[k] = snapshot(o[k], frame);
  const proto = Object.getPrototypeOf(o) as object;
  for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
    if (d.get !== undefined) out[k] = snapshot(o[k], frame);
  }
  for (const m of ['sackLeft', 'sackRight', 'tagProtocol', 'vlanId', 'priority']) {
    const f = o[m];
    if (typeof f === 'function') out[m] = [0, 1, 2, 3, 4].map((i) => (f as (i: number) => unknown).call(o, i));
  }
  return out;
}

test('frame: FrameDecoder reuses one Frame and its views, and each result equals decodeFrame\'s', () => {
  const d = new FrameDecoder();
  const syn = d.decode(fixture('syn4'));
  assert.ok(syn instanceof Frame && syn.transport?.kind === 'tcp');
  assert.equal(syn.transport.mss, 1460);
  const ack = d.decode(fixture('ack4'));
  assert.equal(ack, syn, 'the same Frame, re-initialised');
  assert.ok(ack instanceof Frame && ack.transport?.kind === 'tcp');
  assert.equal(ack.transport.mss, -1, 'no MSS left over from the SYN');
  assert.equal(ack.transport.windowScale, -1);
  assert.equal(ack.transport.sackPermitted, false);
  assert.deepEqual(snapshot(ack, fixture('ack4')), snapshot(decodeFrame(fixture('ack4')), fixture('ack4')));
  const arp = d.decode(fixture('arp'));
  assert.ok(arp instanceof Frame && arp.transport === null && arp.network?.kind === 'arp');
  assert.ok(d.decode(fixture('udp4').subarray(0, 20)) instanceof WireError);
  const udp6 = d.decode(fixture('udp6'));
  assert.ok(udp6 instanceof Frame && udp6.transport?.kind === 'udp' && udp6.network?.kind === 'ipv6');
  const raw = d.decode(fixture('syn6').subarray(14), LINKTYPE_RAW);
  assert.ok(raw instanceof Frame && raw.link === null, 'no Ethernet view left over');
});

test('frame property: a FrameDecoder fed any sequence of frames never shows a stale field', () => {
  const input = fc.record({
    name: fc.constantFrom(...FIXTURE_NAMES),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    cut: fc.nat(),
    truncate: fc.boolean(),
    linkType: fc.constantFrom(...LINK_TYPES),
  });
  fc.assert(fc.property(fc.array(input, { minLength: 1, maxLength: 12 }), (inputs) => {
    const d = new FrameDecoder();
    for (const { name, flips, cut, truncate, linkType } of inputs) {
      const f = fixture(name);
      for (const [at, value] of flips) f[at % f.length] = value;
      const whole = linkType === LINKTYPE_ETHERNET ? f : f.subarray(14);
      const bytes = truncate ? whole.subarray(0, cut % (whole.length + 1)) : whole;
      assert.deepEqual(snapshot(d.decode(bytes, linkType), bytes), snapshot(decodeFrame(bytes, linkType), bytes));
    }
  }), { numRuns: 3000 });
});
