import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from '../../../compare/wire/bytes.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../../compare/wire/link.js';
import { createPcapDecoder, PcapWriter } from '../../../proxy/framing/pcap.js';
import { assertAnyChunking, assertCorrupt, assertTruncations, concat, decode } from './support.js';

// Big-endian microsecond pcap: magic a1b2c3d4, v2.4, zone 0, sigfigs 0, snaplen 65535, Ethernet.
const beHeader = 'a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000001';
// Record at 1700000000.250000 s, 4 of 6 bytes captured: de ad be ef.
const beRecord1 = '6553f100 0003d090 00000004 00000006 deadbeef';
// Record at 1700000001.000001 s, 1 byte captured of 1: 42.
const beRecord2 = '6553f101 00000001 00000001 00000001 42';
const bigEndian = fromHex(beHeader + beRecord1 + beRecord2);

// Little-endian nanosecond pcap: magic 4d3cb2a1, v2.4, snaplen 262144, raw IP.
const leNsHeader = '4d3cb2a1 0200 0400 00000000 00000000 00000400 65000000';
// Record at 1700000000.123456789 s (ns field 075bcd15), 2 bytes captured of 2: 45 00.
const leNsRecord = '00f15365 15cd5b07 02000000 02000000 4500';
const littleNanos = fromHex(leNsHeader + leNsRecord);

const bigEndianFrames = [
  { interfaceId: 0, linkType: 1, timeNs: 1_700_000_000_250_000_000n, data: 'deadbeef', originalLength: 6, comment: undefined, fileOffset: 24 },
  { interfaceId: 0, linkType: 1, timeNs: 1_700_000_001_000_001_000n, data: '42', originalLength: 1, comment: undefined, fileOffset: 44 },
];

test('pcap: big-endian microsecond file', () => {
  assert.deepEqual(decode([bigEndian]), bigEndianFrames);
});

test('pcap: little-endian nanosecond file', () => {
  assert.deepEqual(decode([littleNanos]), [
    { interfaceId: 0, linkType: LINKTYPE_RAW, timeNs: 1_700_000_000_123_456_789n, data: '4500', originalLength: 2, comment: undefined, fileOffset: 24 },
  ]);
});

test('pcap: the same records in big-endian and little-endian microsecond files are the same frames', () => {
  // Little-endian rewrite of `bigEndian`: every field byte-swapped, data unchanged.
  const little = fromHex(
    'd4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000' +
    '00f15365 90d00300 04000000 06000000 deadbeef' +
    '01f15365 01000000 01000000 01000000 42',
  );
  assert.deepEqual(decode([little]), bigEndianFrames);
});

test('pcap: decoder via createPcapDecoder and detection agree, under every chunking', () => {
  assertAnyChunking(bigEndian, bigEndianFrames);
  assertAnyChunking(bigEndian, bigEndianFrames, createPcapDecoder);
});

test('pcap: every truncated prefix fails with capture.truncated at the cut unit', () => {
  assertTruncations(bigEndian, [24, 44, 61]);
  assertTruncations(littleNanos, [24, 42], createPcapDecoder);
});

test('pcap: writer emits the documented header and record bytes', () => {
  const w = new PcapWriter();
  assert.equal(toHex(w.header(LINKTYPE_RAW)), toHex(fromHex(leNsHeader)));
  assert.equal(toHex(w.record(1_700_000_000_123_456_789n, fromHex('4500'))), toHex(fromHex(leNsRecord)));
  const us = new PcapWriter();
  assert.equal(toHex(us.header(LINKTYPE_ETHERNET, { snaplen: 65535, nanosecond: false })), toHex(fromHex('d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000')));
  // 999 ns below the next microsecond: truncated, not rounded.
  assert.equal(toHex(us.record(1_700_000_000_250_000_999n, fromHex('deadbeef'), 6)), toHex(fromHex('00f15365 90d00300 04000000 06000000 deadbeef')));
});

test('pcap: writer round trip keeps snapped lengths and exact times', () => {
  const w = new PcapWriter();
  const input = concat(
    w.header(LINKTYPE_ETHERNET, { snaplen: 4 }),
    w.record(0n, fromHex('01020304'), 1514),
    w.record(4_294_967_295_999_999_999n, new Uint8Array(0)),
  );
  assert.deepEqual(decode([input]), [
    { interfaceId: 0, linkType: 1, timeNs: 0n, data: '01020304', originalLength: 1514, comment: undefined, fileOffset: 24 },
    { interfaceId: 0, linkType: 1, timeNs: 4_294_967_295_999_999_999n, data: '', originalLength: 0, comment: undefined, fileOffset: 44 },
  ]);
});

test('pcap: writer refuses what the format cannot hold', () => {
  const w = new PcapWriter();
  assert.throws(() => w.record(0n, new Uint8Array(1)), /before header/);
  w.header(LINKTYPE_ETHERNET, { snaplen: 8 });
  assert.throws(() => w.header(LINKTYPE_ETHERNET), /twice/);
  assert.throws(() => w.record(-1n, new Uint8Array(1)), RangeError);
  assert.throws(() => w.record(4_294_967_296_000_000_000n, new Uint8Array(1)), RangeError);
  assert.throws(() => w.record(0n, new Uint8Array(9)), RangeError);
  assert.throws(() => w.record(0n, new Uint8Array(4), 3), RangeError);
  assert.throws(() => new PcapWriter().header(LINKTYPE_ETHERNET, { snaplen: -1 }), RangeError);
});

test('pcap: corrupt headers and records are coded errors', () => {
  // Magic of neither pcap nor pcapng.
  assertCorrupt(fromHex('00112233' + '00'.repeat(20)), 'capture.bad_magic', 0);
  // Big-endian header of version 3.4.
  assertCorrupt(fromHex('a1b2c3d4 0003 0004' + '00'.repeat(16)), 'capture.unsupported_version', 4);
  // Snaplen 65535 and a record claiming 0x40001 captured bytes, one over the 262144 floor.
  assertCorrupt(fromHex(beHeader + '6553f100 00000000 00040001 00040001 00'), 'capture.record_too_large', 24);
  // The same after a good record, which is still delivered.
  assertCorrupt(fromHex(beHeader + beRecord1 + '6553f100 00000000 00040001 00040001 00'), 'capture.record_too_large', 44);
  // Snaplen 0xffffffff does not lift the limit past MAX_RECORD_BYTES: a 64 MiB + 1 record.
  assertCorrupt(fromHex('a1b2c3d4 0002 0004 00000000 00000000 ffffffff 00000001 6553f100 00000000 04000001 04000001'), 'capture.record_too_large', 24);
});

test('pcap: a record up to the snaplen floor is accepted even above a small snaplen', () => {
  const record = fromHex('6553f100 00000000 00040000 00040000');
  const input = concat(fromHex(beHeader), record, new Uint8Array(262144));
  const frames = decode([input]);
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.data.length, 2 * 262144);
});
