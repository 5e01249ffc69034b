/**
 * Checksums computed by colo-proxy, judged by an implementation nobody here wrote: frames are
 * written to a pcap with text2pcap and read back by tshark with checksum validation on. A
 * deliberately corrupted frame must read "Bad", so the test can fail. Missing tools fail the
 * test (they are system dependencies: Debian packages tshark and wireshark-common), never skip it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../../compare/wire/bytes.js';
import { fillIpv4HeaderChecksum, pseudoSumV4, pseudoSumV6 } from '../../../compare/wire/checksum.js';
import { Frame, decodeFrame } from '../../../compare/wire/frame.js';
import { tsharkFields } from '../../support/tshark.js';

const MAC = '525400123456 525400abcdef';
const V6 = 'fd000000000000000000000000000001 fd000000000000000000000000000002';

/** Decodes `hex` (checksums zero) and fills every checksum with our code. */
function withChecksums(hex: string): Uint8Array {
  const bytes = fromHex(hex);
  const f = decodeFrame(bytes);
  assert.ok(f instanceof Frame, String(f));
  const ip = f.network;
  const t = f.transport;
  assert.ok(ip !== null && t !== null && ip.kind !== 'arp');
  if (ip.kind === 'ipv4') fillIpv4HeaderChecksum(bytes, ip.offset);
  const length = ip.kind === 'ipv4' ? ip.payloadLength : ip.upperLength;
  const ps = ip.kind === 'ipv4' ? pseudoSumV4(bytes, ip.offset, f.protocol, length) : pseudoSumV6(bytes, ip.offset, f.protocol, length);
  if (t.kind === 'icmp') t.fillChecksum();
  else t.fillChecksum(ps);
  return bytes;
}

const frames: [string, Uint8Array][] = [
  // IPv4/TCP PSH|ACK with NOP NOP TS and a 5-byte (odd) payload.
  ['ipv4-tcp', withChecksums(`${MAC} 0800 45000039 0001 4000 4006 0000 0a000001 0a000002  9c40 1f90 11223345 55667788 8018 01f6 0000 0000  0101080a 01020305 0a0b0c0d  68656c6c6f`)],
  // IPv4/UDP 5000 -> 6000 with a 3-byte payload, padded to 60 bytes.
  ['ipv4-udp', withChecksums(`${MAC} 0800 4500001f 0002 0000 4011 0000 0a000001 0a000002  1388 1770 000b 0000 616263  0000000000000000000000`)],
  // IPv6/TCP SYN with MSS, SACK-permitted, TS, NOP, WS.
  ['ipv6-tcp', withChecksums(`${MAC} 86dd 6000 0000 0028 06 40 ${V6}  9c40 01bb 01020304 00000000 a002 fd20 0000 0000  020405a0 0402 080a 00000001 00000000 01 030307`)],
  // IPv6/UDP 5000 -> 6000 with a 4-byte payload.
  ['ipv6-udp', withChecksums(`${MAC} 86dd 6000 0000 000c 11 40 ${V6}  1388 1770 000c 0000 deadbeef`)],
  // ICMPv6 echo request id 7 seq 9.
  ['icmpv6', withChecksums(`${MAC} 86dd 6000 0000 000c 3a 40 ${V6}  8000 0000 0007 0009 61626364`)],
];

// The IPv4/TCP frame after in-place rewrites of seq, ack and TSecr at their offsets (incremental checksum).
const rewritten = frames[0]![1].slice();
{
  const f = decodeFrame(rewritten);
  assert.ok(f instanceof Frame && f.transport?.kind === 'tcp');
  f.transport.setSeq(0xfffffffe);
  f.transport.setAck(0x00000003);
  f.transport.setTsEcr(0x7fffffff);
  f.transport.setTsVal(0x80000001);
}
frames.push(['ipv4-tcp-rewritten', rewritten]);
// The IPv4/TCP frame with one payload byte changed after the checksum was computed.
const corrupted = frames[0]![1].slice();
corrupted[corrupted.length - 1] ^= 0x20;
frames.push(['ipv4-tcp-corrupted', corrupted]);
// The IPv6/UDP frame with a payload byte changed.
const corrupted6 = frames[3]![1].slice();
corrupted6[corrupted6.length - 2] ^= 0x01;
frames.push(['ipv6-udp-corrupted', corrupted6]);

test('tshark validates the checksums we compute (and rejects corrupted ones)', () => {
  const out = tsharkFields(frames.map(([, b]) => b),
    ['frame.number', 'ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status', 'icmpv6.checksum.status'],
    ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE']);
  const rows = out.trim().split('\n').map((line) => line.split(','));
  assert.equal(rows.length, frames.length, out);
  // tshark's proto_checksum_enum_e: 0 = Bad, 1 = Good.
  const expected: Record<string, string[]> = {
    'ipv4-tcp': ['1', '1', '', ''],
    'ipv4-udp': ['1', '', '1', ''],
    'ipv6-tcp': ['', '1', '', ''],
    'ipv6-udp': ['', '', '1', ''],
    'icmpv6': ['', '', '', '1'],
    'ipv4-tcp-rewritten': ['1', '1', '', ''],
    'ipv4-tcp-corrupted': ['1', '0', '', ''],
    'ipv6-udp-corrupted': ['', '', '0', ''],
  };
  frames.forEach(([name], i) => {
    assert.deepEqual(rows[i]!.slice(1), expected[name], `${name}: ${rows[i]!.join(',')}`);
  });
});
