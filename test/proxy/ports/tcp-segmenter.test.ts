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
  Frame, Ipv4View, TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_URG, decodeFrame, pseudoSumV4, pseudoSumV6, verifyIpv4HeaderChecksum,
  verifyTransportChecksum,
} from '../../../compare/index.js';
import { emitTcp, emitUdp, type TcpFields } from '../../../compare/wire/emit.js';
import { TcpSegmenter } from '../../../proxy/ports/tcp-segmenter.js';
import { split } from '../../support/fragments.js';
import { tsharkFields } from '../../support/tshark.js';

function decoded(bytes: Uint8Array): Frame {
  const f = decodeFrame(bytes);
  assert.ok(f instanceof Frame, String(f));
  return f;
}

/** The segments of `frame` at `mtu`, each copied out of the scratch buffer. */
function segments(frame: Uint8Array, mtu: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const n = new TcpSegmenter().segment(frame, mtu, (s) => out.push(s.slice()));
  assert.equal(n, out.length);
  return out;
}

const payloadOf = (size: number, salt: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (i * 7 + salt) & 0xff);

const fieldsArb = fc.record({
  v6: fc.boolean(),
  vlan: fc.boolean(),
  timestamps: fc.boolean(),
  size: fc.integer({ min: 1, max: 65_000 }),
  mtu: fc.integer({ min: 576, max: 9000 }),
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
    const room = c.mtu - headers;
    const out = segments(frame, c.mtu);
    if (headers + c.size <= c.mtu) {
      assert.equal(out.length, 0, 'a frame that fits is not cut');
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
});
