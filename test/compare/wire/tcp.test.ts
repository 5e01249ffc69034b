import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex, readU16, writeU32 } from '../../../compare/wire/bytes.js';
import { fillIpv4HeaderChecksum, pseudoSumV4, transportChecksum } from '../../../compare/wire/checksum.js';
import { isWireError } from '../../../compare/wire/error.js';
import { TCP_ACK, TCP_PSH, TcpView } from '../../../compare/wire/tcp.js';
import { fixture } from './fixtures.js';

/** A bare TCP segment with the given options (a multiple of 4 bytes) and payload; checksum 0. */
function segment(options: string, payload = '', flags = '10'): Uint8Array {
  const optionBytes = options.replace(/\s/g, '').length / 2;
  const dataOffset = (20 + optionBytes) / 4;
  return fromHex(`9c40 0050 11223344 55667788 ${dataOffset.toString(16)}0 ${flags} ffff 0000 0000 ${options} ${payload}`);
}

/** Ethernet/IPv4 around `tcp`, with both checksums filled; the TCP header starts at 34. */
function inFrame(tcp: Uint8Array): Uint8Array {
  const total = 20 + tcp.length;
  const f = fromHex(`525400123456 525400abcdef 0800 4500 ${total.toString(16).padStart(4, '0')} 0001 4000 4006 0000 0a000001 0a000002`);
  const out = new Uint8Array(f.length + tcp.length);
  out.set(f);
  out.set(tcp, f.length);
  fillIpv4HeaderChecksum(out, 14);
  const t = TcpView.parse(out, 34, tcp.length);
  assert.ok(!isWireError(t));
  t.fillChecksum(pseudoSumV4(out, 14, 6, tcp.length));
  return out;
}

function parseAt34(f: Uint8Array): TcpView {
  const t = TcpView.parse(f, 34, readU16(f, 16) - 20);
  assert.ok(!isWireError(t), String(t));
  return t;
}

test('tcp: SYN bytes -> fields and options', () => {
  const t = parseAt34(fixture('syn4'));
  assert.equal(t.kind, 'tcp');
  assert.equal(t.srcPort, 40000);
  assert.equal(t.dstPort, 80);
  assert.equal(t.seq, 0x11223344);
  assert.equal(t.ack, 0);
  assert.equal(t.dataOffset, 10);
  assert.equal(t.headerLength, 40);
  assert.equal(t.flags, 0x02);
  assert.ok(t.isSyn && !t.isAck && !t.isFin && !t.isRst && !t.isPsh && !t.isUrg && !t.isEce && !t.isCwr);
  assert.equal(t.window, 0xfaf0);
  assert.equal(t.checksum, 0x5410);
  assert.equal(t.urgentPointer, 0);
  assert.equal(t.mss, 1460);
  assert.ok(t.sackPermitted);
  assert.equal(t.windowScale, 7);
  assert.equal(t.tsVal, 0x01020304);
  assert.equal(t.tsEcr, 0);
  assert.equal(t.timestampOffset, 34 + 28);
  assert.equal(t.sackBlockCount, 0);
  assert.equal(t.sackOffset, -1);
  assert.equal(t.sackLeft(0), -1);
  assert.equal(t.payloadOffset, 74);
  assert.equal(t.payloadLength, 0);
  assert.ok(t.verifyChecksum(pseudoSumV4(fixture('syn4'), 14, 6, 40)));
});

test('tcp: data segment with the common timestamp layout', () => {
  const f = fixture('data4');
  const t = parseAt34(f);
  assert.equal(t.flags, TCP_PSH | TCP_ACK);
  assert.ok(t.isPsh && t.isAck);
  assert.equal(t.ack, 0x55667788);
  assert.equal(t.tsVal, 0x01020305);
  assert.equal(t.tsEcr, 0x0a0b0c0d);
  assert.equal(t.timestampOffset, 34 + 24);
  assert.equal(t.mss, -1);
  assert.equal(t.windowScale, -1);
  assert.ok(!t.sackPermitted);
  assert.equal(t.payloadOffset, 66);
  assert.equal(t.payloadLength, 5);
  assert.equal(new TextDecoder().decode(f.subarray(t.payloadOffset, t.payloadOffset + t.payloadLength)), 'hello');
});

test('tcp: timestamps in another layout read the same as the fast path', () => {
  const slow = TcpView.parse(segment('080a 01020305 0a0b0c0d 0101'), 0, 32);
  const fast = TcpView.parse(segment('0101 080a 01020305 0a0b0c0d'), 0, 32);
  assert.ok(!isWireError(slow) && !isWireError(fast));
  assert.equal(slow.tsVal, fast.tsVal);
  assert.equal(slow.tsEcr, fast.tsEcr);
  assert.equal(slow.timestampOffset, 22);
  assert.equal(fast.timestampOffset, 24);
});

test('tcp: SACK blocks', () => {
  const t = parseAt34(fixture('sack4'));
  assert.ok(t.isAck && !t.isEce && !t.isCwr);
  assert.equal(t.sackBlockCount, 2);
  assert.equal(t.sackOffset, 34 + 36);
  assert.equal(t.sackLeft(0), 0x11223c4a);
  assert.equal(t.sackRight(0), 0x11224a4a);
  assert.equal(t.sackLeft(1), 0x11225a4a);
  assert.equal(t.sackRight(1), 0x11226a4a);
  assert.equal(t.sackLeft(2), -1);
  assert.equal(t.sackRight(-1), -1);
  assert.equal(t.tsVal, 0x0a0b0c0e);
  for (let n = 1; n <= 4; n++) {
    const four = TcpView.parse(segment('0101 05' + (2 + 8 * n).toString(16).padStart(2, '0') + '0000000100000002'.repeat(n)), 0, 20 + 4 + 8 * n);
    assert.ok(!isWireError(four));
    assert.equal(four.sackBlockCount, n);
    assert.equal(four.sackRight(n - 1), 2);
  }
});

test('tcp: unknown options are skipped by length and EOL ends the list', () => {
  const t = TcpView.parse(segment('fd04 abcd 0204 05b4 00ff ffff'), 0, 32);
  assert.ok(!isWireError(t));
  assert.equal(t.mss, 1460);
  assert.equal(t.tsVal, -1);
});

test('tcp: payload length comes from the IP layer, not the frame end', () => {
  const f = fixture('ack4');
  assert.equal(f.length, 60);
  const t = parseAt34(f);
  assert.equal(t.payloadLength, 0);
  assert.equal(t.segmentLength, 20);
});

test('tcp: setters -> the same bytes as building the segment with those values', () => {
  const f = fixture('sack4');
  const t = parseAt34(f);
  t.setSeq(0x01020304);
  t.setAck(0xfffffff0);
  assert.ok(t.setSackLeft(1, 0x10));
  assert.ok(t.setSackRight(1, 0x20));
  assert.ok(t.setTsVal(7));
  assert.ok(t.setTsEcr(0xdeadbeef));
  assert.ok(!t.setSackLeft(2, 1), 'no third block');
  const expected = fixture('sack4');
  writeU32(expected, 38, 0x01020304);
  writeU32(expected, 42, 0xfffffff0);
  writeU32(expected, 58, 7);
  writeU32(expected, 62, 0xdeadbeef);
  writeU32(expected, 78, 0x10);
  writeU32(expected, 82, 0x20);
  const fixed = parseAt34(expected);
  fixed.fillChecksum(pseudoSumV4(expected, 14, 6, 52));
  assert.deepEqual(f, expected);
  const noTs = parseAt34(fixture('ack4'));
  assert.ok(!noTs.setTsEcr(1) && !noTs.setTsVal(1));
});

test('tcp: incremental rewrites at odd and even option offsets equal full recomputation', () => {
  const layouts = [
    fixture('sack4'), // TS and SACK fields at even offsets from the TCP header
    inFrame(segment('01 080a 01020304 05060708 01 0512 00000001 00000002 00000003 00000004 0000', '6162')), // both at odd offsets
  ];
  for (const frame of layouts) {
    const t = parseAt34(frame);
    assert.equal(t.sackBlockCount, 2);
    const field = fc.constantFrom('seq', 'ack', 'sackLeft0', 'sackRight0', 'sackLeft1', 'sackRight1', 'tsVal', 'tsEcr');
    const op = fc.tuple(field, fc.integer({ min: 0, max: 0xffffffff }));
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), (ops) => {
      const f = frame.slice();
      const v = parseAt34(f);
      const ps = pseudoSumV4(f, 14, 6, v.segmentLength);
      for (const [name, value] of ops) {
        if (name === 'seq') v.setSeq(value);
        else if (name === 'ack') v.setAck(value);
        else if (name === 'tsVal') v.setTsVal(value);
        else if (name === 'tsEcr') v.setTsEcr(value);
        else if (name.startsWith('sackLeft')) v.setSackLeft(Number(name.slice(-1)), value);
        else v.setSackRight(Number(name.slice(-1)), value);
        assert.equal(v.checksum, transportChecksum(ps, f, 34, v.segmentLength, 50), name);
      }
      assert.ok(v.verifyChecksum(ps));
      const last = ops[ops.length - 1]!;
      const read = last[0] === 'seq' ? v.seq : last[0] === 'ack' ? v.ack : last[0] === 'tsVal' ? v.tsVal : last[0] === 'tsEcr' ? v.tsEcr
        : last[0].startsWith('sackLeft') ? v.sackLeft(Number(last[0].slice(-1))) : v.sackRight(Number(last[0].slice(-1)));
      assert.equal(read, last[1]);
    }), { numRuns: 500 });
  }
});

test('tcp: every truncated prefix is a coded error', () => {
  const seg = fixture('syn4').subarray(34);
  for (let len = 0; len < 40; len++) {
    const r = TcpView.parse(seg, 0, len);
    assert.ok(isWireError(r), `prefix ${len}`);
    assert.equal(r.code, len < 20 ? 'decode.tcp.header_too_short' : 'decode.tcp.data_offset_past_segment', `prefix ${len}`);
  }
  assert.ok(!isWireError(TcpView.parse(seg, 0, 40)));
});

test('tcp: impossible data offsets', () => {
  for (const nibble of ['0', '1', '4']) {
    const r = TcpView.parse(fromHex(`9c40 0050 00000000 00000000 ${nibble}002 ffff 0000 0000`), 0, 20);
    assert.ok(isWireError(r));
    assert.equal(r.code, 'decode.tcp.bad_data_offset');
  }
  const beyond = TcpView.parse(fromHex('9c40 0050 00000000 00000000 f002 ffff 0000 0000 01010101'), 0, 24);
  assert.ok(isWireError(beyond));
  assert.equal(beyond.code, 'decode.tcp.data_offset_past_segment');
});

test('tcp: malformed options are coded errors', () => {
  const cases: [string, string, number][] = [
    // Unknown kind with length 0.
    ['fd00 0000', 'decode.tcp.option_zero_length', 20],
    // MSS with length 0 after two NOPs.
    ['0101 0200', 'decode.tcp.option_zero_length', 22],
    // Length 1.
    ['0201 0000', 'decode.tcp.option_length_one', 20],
    // Length byte missing: kind in the header's last byte.
    ['010101 02', 'decode.tcp.option_past_header', 23],
    // Length 6 with only 4 option bytes.
    ['fd06 0000', 'decode.tcp.option_past_header', 20],
    // Timestamps claiming 10 bytes with 8 left.
    ['01010101 080a 00000001 0000', 'decode.tcp.option_past_header', 24],
    // MSS of length 3.
    ['0203 0500', 'decode.tcp.option_bad_length', 20],
    // Window scale of length 4.
    ['0304 0700', 'decode.tcp.option_bad_length', 20],
    // SACK-permitted of length 3.
    ['0403 0000', 'decode.tcp.option_bad_length', 20],
    // SACK with no blocks (length 2).
    ['0502 0000', 'decode.tcp.option_bad_length', 20],
    // SACK of length 11 (not 2 + 8n).
    ['050b 0000000100000002 00 00', 'decode.tcp.option_bad_length', 20],
    // Timestamps of length 8.
    ['0808 00000001 0000', 'decode.tcp.option_bad_length', 20],
    // Two MSS options.
    ['020405b4 020405b4', 'decode.tcp.option_duplicate', 24],
    // Two timestamps options.
    ['0101080a 00000001 00000002 0101080a 00000001 00000002', 'decode.tcp.option_duplicate', 34],
  ];
  for (const [options, code, at] of cases) {
    const seg = segment(options);
    const r = TcpView.parse(seg, 0, seg.length);
    assert.ok(isWireError(r), options);
    assert.equal(r.code, code, options);
    assert.equal(r.at, at, options);
  }
});
