/**
 * Software TCP segmentation (proxy/ports/tcp-segmenter.ts): any oversized TCP frame, IPv4 or
 * IPv6, tagged or not, with or without options, comes out as segments that fit the MTU, carry
 * the same bytes in order, and are valid frames on their own (checksums checked by our decoder
 * and by tshark); what cannot or need not be cut is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Ipv4View, TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, pseudoSumV4, pseudoSumV6,
  verifyIpv4HeaderChecksum, verifyTransportChecksum,
} from '../../../compare/index.js';
import { emitTcp, emitUdp, type TcpFields } from '../../../compare/wire/emit.js';
import { TcpSegmenter, type PayloadLimit } from '../../../proxy/ports/tcp-segmenter.js';
import { split } from '../../support/fragments.js';
import { tsharkFields } from '../../support/tshark.js';
import { decoded } from '../../support/decoded.js';

/** The segments of `frame` at `mtu`, each copied out of the scratch buffer; `cuts` must agree. */
function segments(frame: Uint8Array, mtu: number, limit?: PayloadLimit): Uint8Array[] {
  const out: Uint8Array[] = [];
  const segmenter = new TcpSegmenter(limit);
  const cuts = segmenter.cuts(frame, mtu);
  const n = segmenter.segment(frame, mtu, (s) => out.push(s.slice()));
  assert.equal(n, out.length);
  assert.equal(cuts, n > 0, 'cuts() says what segment() does');
  return out;
}

const payloadOf = (size: number, salt: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (i * 7 + salt) & 0xff);

const fieldsArb = fc.record({
  v6: fc.boolean(),
  vlan: fc.boolean(),
  timestamps: fc.boolean(),
  size: fc.integer({ min: 1, max: 65_000 }),
  mtu: fc.integer({ min: 576, max: 9000 }),
  mss: fc.option(fc.integer({ min: 536, max: 9000 }), { nil: undefined }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  ipId: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.subarray([TCP_FIN, TCP_PSH, TCP_CWR, TCP_ECE, TCP_URG]).map((fs) => fs.reduce((a, b) => a | b, TCP_ACK)),
});

test('segmenter: any oversized TCP frame becomes valid segments that fit the MTU and carry its bytes in order', () => {
  fc.assert(fc.property(fieldsArb, (c) => {
    const payload = payloadOf(c.size, c.seq & 0xff);
    const fields: TcpFields = {
      src: c.v6 ? 'fd00::2' : '10.0.0.2', dst: c.v6 ? 'fd00::1' : '10.0.0.1', srcPort: 80, dstPort: 40000, seq: c.seq, ack: 12345,
      flags: c.flags, ipId: c.ipId, window: 501, payload, ...(c.vlan ? { vlan: [7] } : {}),
      ...(c.timestamps ? { options: { timestamp: [111, 222] as [number, number] } } : {}),
    };
    const frame = emitTcp(fields);
    const original = decoded(frame);
    const headers = original.transport!.payloadOffset - original.networkOffset;
    const tcpOptions = c.timestamps ? 12 : 0;
    const room = Math.min(c.mtu - headers, c.mss === undefined ? Infinity : c.mss - tcpOptions);
    const out = segments(frame, c.mtu, c.mss === undefined ? undefined : (_f, tcp) => c.mss! - (tcp.headerLength - 20));
    if (headers + c.size <= c.mtu) {
      assert.equal(out.length, 0, 'a frame that fits the link is not cut, whatever the MSS');
      return;
    }
    assert.equal(out.length, Math.ceil(c.size / room));
    const joined: number[] = [];
    out.forEach((bytes, i) => {
      const f = decoded(bytes);
      const tcp = f.transport;
      assert.ok(tcp !== null && tcp.kind === 'tcp');
      const net = f.network!;
      const ipLength = bytes.length - f.networkOffset;
      assert.ok(ipLength <= c.mtu, `segment ${i}: ${ipLength} bytes of IP over the MTU ${c.mtu}`);
      assert.ok(tcp.payloadLength <= room, `segment ${i}: ${tcp.payloadLength} payload bytes over ${room} (MTU ${c.mtu}, MSS ${c.mss})`);
      assert.equal(tcp.seq, (c.seq + joined.length) >>> 0, `segment ${i}: sequence number`);
      assert.equal(tcp.ack, 12345);
      assert.equal(tcp.window, 501);
      if (c.timestamps) assert.deepEqual([tcp.tsVal, tcp.tsEcr], [111, 222]);
      const last = i === out.length - 1;
      const expected = (c.flags & ~(last ? 0 : TCP_FIN | TCP_PSH)) & ~(i === 0 ? 0 : TCP_CWR);
      assert.equal(tcp.flags & 0xff, expected, `segment ${i}: flags`);
      if (net instanceof Ipv4View) {
        assert.ok(verifyIpv4HeaderChecksum(bytes, net.offset), `segment ${i}: IPv4 header checksum`);
        assert.equal(net.totalLength, ipLength);
        assert.equal(net.identification, (c.ipId + i) & 0xffff, `segment ${i}: IPv4 identification`);
      }
      const pseudo = net instanceof Ipv4View ? pseudoSumV4(bytes, net.offset, 6, tcp.segmentLength) : pseudoSumV6(bytes, net.offset, 6, tcp.segmentLength);
      assert.ok(verifyTransportChecksum(pseudo, bytes, tcp.offset, tcp.segmentLength), `segment ${i}: TCP checksum`);
      assert.deepEqual(bytes.subarray(0, f.networkOffset), frame.subarray(0, original.networkOffset), 'the same Ethernet header and tags');
      joined.push(...bytes.subarray(tcp.payloadOffset, tcp.payloadOffset + tcp.payloadLength));
    });
    assert.deepEqual(Uint8Array.from(joined), payload, 'the payload, whole and in order');
  }), { numRuns: 150 });
});

test('segmenter: tshark reads the segments of a 64 KiB IPv4 and IPv6 frame as valid TCP with the expected sequence numbers', () => {
  for (const v6 of [false, true]) {
    const frame = emitTcp({
      src: v6 ? 'fd00::2' : '10.0.0.2', dst: v6 ? 'fd00::1' : '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 1000, ack: 1,
      flags: TCP_ACK | TCP_PSH, options: { timestamp: [5, 6] }, payload: payloadOf(60_000, 3),
    });
    const out = segments(frame, 1500);
    const room = 1500 - (v6 ? 40 : 20) - 32; // IP header, TCP header with timestamps
    const lines = tsharkFields(out, ['tcp.seq_raw', 'tcp.len', 'tcp.checksum.status', 'ip.checksum.status'], ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE'])
      .trim().split('\n');
    assert.equal(lines.length, Math.ceil(60_000 / room));
    lines.forEach((line, i) => {
      const [seq, len, tcpStatus, ipStatus] = line.split(',');
      assert.equal(Number(seq), 1000 + i * room, line);
      assert.equal(Number(len), Math.min(room, 60_000 - i * room), line);
      assert.equal(tcpStatus, '1', `${line}: tshark's checksum status 1 is "good"`);
      assert.equal(ipStatus, v6 ? '' : '1', line);
    });
  }
});

test('segmenter: refuses what it cannot or need not cut', () => {
  const big = payloadOf(3000, 1);
  const udp = emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: big });
  assert.deepEqual(segments(udp, 1500), [], 'not TCP');
  const tcp = emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 1, ack: 1, flags: TCP_ACK, payload: big });
  assert.deepEqual(segments(tcp, 3040), [], 'fits the MTU');
  assert.equal(segments(tcp, 3039).length, 2, 'one byte over the MTU');
  assert.deepEqual(segments(tcp, 40), [], 'headers leave no room for payload');
  for (const fragment of split(tcp, [1400])) assert.deepEqual(segments(fragment, 1000), [], 'an IP fragment');
  assert.deepEqual(segments(new Uint8Array(20), 10), [], 'not a decodable frame');
  for (const flags of [TCP_SYN, TCP_RST | TCP_ACK]) {
    const odd = emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 1, ack: 1, flags, payload: big });
    assert.deepEqual(segments(odd, 1500), [], `a segment with flags ${flags.toString(16)} and data (cutting would repeat the flag)`);
  }
});

test('segmenter: a link takes an 802.1Q frame 4 bytes over MTU + 14 whole, and a double-tagged one only within MTU + 14', () => {
  const full = (vlan: number[]): Uint8Array =>
    emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 1, ack: 1, flags: TCP_ACK, payload: payloadOf(1460, 2), vlan });
  assert.equal(full([7]).length, 1518);
  assert.deepEqual(segments(full([7]), 1500), [], 'one 802.1Q tag: 1518 bytes go out whole');
  const qinq = segments(full([5, 7]), 1500);
  assert.deepEqual(qinq.map((s) => s.length), [1514, 62 + 8], 'two tags: cut so that every frame is at most 1514 bytes');
});

test('segmenter: IPv6 with an extension header is not cut (a routing header would change the checksum)', () => {
  const v6 = emitTcp({ src: 'fd00::2', dst: 'fd00::1', srcPort: 80, dstPort: 40000, seq: 1, ack: 1, flags: TCP_ACK, payload: payloadOf(3000, 4) });
  // Insert an 8-byte hop-by-hop header (next header TCP, padding) after the fixed header.
  const withExt = new Uint8Array(v6.length + 8);
  withExt.set(v6.subarray(0, 54));
  withExt.set([6, 0, 1, 4, 0, 0, 0, 0], 54);
  withExt.set(v6.subarray(54), 62);
  withExt[14 + 6] = 0; // next header: hop-by-hop
  const payloadLength = ((v6[18]! << 8) | v6[19]!) + 8;
  withExt[18] = payloadLength >> 8;
  withExt[19] = payloadLength & 0xff;
  const f = decoded(withExt);
  assert.equal(f.transport?.kind, 'tcp', 'the test frame decodes as TCP behind the extension header');
  assert.deepEqual(segments(withExt, 1500), []);
  assert.equal(segments(v6, 1500).length, 3, 'the same frame without it is cut');
});
