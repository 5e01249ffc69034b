import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../compare/wire/bytes.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../../compare/wire/link.js';
import { createPcapngDecoder, PcapngWriter } from '../../../proxy/framing/pcapng.js';
import { assertAnyChunking, assertCorrupt, assertTruncations, concat, decode, pcapngBlock } from './support.js';
import type { FrameValue } from './support.js';

/** A little-endian block of `type` around `body` (hex, already padded), both lengths filled in. */
function block(type: number, body: string): Uint8Array {
  return pcapngBlock(type, fromHex(body));
}

/** End offsets of `parts` laid end to end. */
function ends(parts: Uint8Array[]): number[] {
  let at = 0;
  return parts.map((p) => (at += p.length));
}

function frame(fields: Partial<FrameValue> & Pick<FrameValue, 'timeNs' | 'data' | 'fileOffset'>): FrameValue {
  return { interfaceId: 0, linkType: LINKTYPE_ETHERNET, originalLength: fields.data.length / 2, comment: undefined, ...fields };
}

// A big-endian section written by hand:
const bigEndianSection = [
  // SHB: length 28, byte-order magic 1a2b3c4d, version 1.0, section length -1, no options.
  fromHex('0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c'),
  // IDB 0: Ethernet, snaplen 65535, if_tsresol 3 (milliseconds), end of options.
  fromHex('00000001 00000020 0001 0000 0000ffff 0009 0001 03000000 00000000 00000020'),
  // IDB 1: raw IP, snaplen 0 (no limit), no options (microseconds).
  fromHex('00000001 00000014 0065 0000 00000000 00000014'),
  // EPB on interface 0 at 1700000000123 ms, 5 of 60 bytes captured, opt_comment "hi".
  fromHex('00000006 00000034 00000000 0000018b cfe5687b 00000005 0000003c 0102030405 000000 0001 0002 6869 0000 00000000 00000034'),
  // EPB on interface 1 at 1700000000000001 µs, 1 byte ff.
  fromHex('00000006 00000024 00000001 00060a24 181e4001 00000001 00000001 ff000000 00000024'),
];
const bigEndianFrames = [
  frame({ timeNs: 1_700_000_000_123_000_000n, data: '0102030405', originalLength: 60, comment: 'hi', fileOffset: 80 }),
  frame({ interfaceId: 1, linkType: LINKTYPE_RAW, timeNs: 1_700_000_000_000_001_000n, data: 'ff', fileOffset: 132 }),
];

test('pcapng: big-endian section written by hand', () => {
  assert.deepEqual(decode([concat(...bigEndianSection)]), bigEndianFrames);
});

// The same section layout, little-endian, by the writer.
function writerSection(): Uint8Array[] {
  const w = new PcapngWriter();
  return [
    w.sectionHeader(),
    w.interfaceDescription(LINKTYPE_RAW, { name: 'tap0' }),
    w.enhancedPacket(0, 1_700_000_000_987_654_321n, fromHex('4500'), { comment: 'née ✓' }),
    w.enhancedPacket(0, 1n, fromHex('60')),
  ];
}

test('pcapng: a little-endian section after a big-endian one switches byte order and interfaces', () => {
  const second = writerSection();
  const base = concat(...bigEndianSection).length;
  const at = ends(second).map((e) => base + e);
  assert.deepEqual(decode([concat(...bigEndianSection, ...second)]), [
    ...bigEndianFrames,
    frame({ linkType: LINKTYPE_RAW, timeNs: 1_700_000_000_987_654_321n, data: '4500', comment: 'née ✓', fileOffset: at[1]! }),
    frame({ linkType: LINKTYPE_RAW, timeNs: 1n, data: '60', fileOffset: at[2]! }),
  ]);
});

test('pcapng: the new section has a fresh interface list', () => {
  const w = new PcapngWriter();
  const second = [w.sectionHeader(), w.interfaceDescription(LINKTYPE_ETHERNET)];
  // EPB naming interface 1, which the first (big-endian) section had but the second does not.
  const stale = block(6, '01000000 00000000 00000000 00000000 00000000');
  const input = concat(...bigEndianSection, ...second, stale);
  assertCorrupt(input, 'capture.unknown_interface', input.length - stale.length);
});

// A little-endian section exercising timestamp units, packet block kinds and skipped blocks:
const featureParts = [
  // SHB, little-endian, no options.
  fromHex('0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000'),
  // IDB 0: Ethernet, snaplen 4, if_tsresol 0x8a (2^-10 s).
  block(1, '0100 0000 04000000 0900 0100 8a000000 00000000'),
  // IDB 1: raw IP, snaplen 0, if_tsresol 12 (picoseconds).
  block(1, '6500 0000 00000000 0900 0100 0c000000 00000000'),
  // IDB 2: Ethernet, snaplen 0, microseconds, if_tsoffset -1 s.
  block(1, '0100 0000 00000000 0e00 0800 ffffffffffffffff 00000000'),
  // IDB 3: Ethernet, snaplen 0, if_tsresol 0x9e (2^-30 s), if_tsoffset +100 s.
  block(1, '0100 0000 00000000 0900 0100 9e000000 0e00 0800 6400000000000000 00000000'),
  // Custom block (type 0x00000bad), skipped.
  block(0xbad, 'deadbeef 01020304'),
  // EPB on interface 0 at raw 5632 = 5.5 s in 2^-10 s, 2 bytes aabb.
  block(6, '00000000 00000000 00160000 02000000 02000000 aabb0000'),
  // EPB on interface 1 at raw 1000000000123456 ps: truncated to 1000000000123 ns.
  block(6, '01000000 7e8d0300 4062c8a4 01000000 01000000 11000000'),
  // EPB on interface 2 at raw 0 µs, shifted by -1 s: before the epoch. Unknown option 0x0bad first, then two comments.
  block(6, '02000000 00000000 00000000 00000000 00000000 ad0b 0300 010203 00 0100 0100 61000000 0100 0100 62000000 00000000'),
  // Interface Statistics Block (type 5) for interface 0, skipped.
  block(5, '00000000 00000000 00000000'),
  // Obsolete Packet Block on interface 3 (16-bit id, 0 drops) at raw 2^30 + 1: 1 s + 0.93 ns truncated, +100 s. Comment "opb".
  block(2, '0300 0000 00000000 01000040 01000000 05000000 cc000000 0100 0300 6f706200 00000000'),
  // Simple Packet Block: original length 10, interface 0's snaplen 4 keeps 4 bytes; no timestamp.
  block(3, '0a000000 01020304'),
];
const featureEnds = ends(featureParts);
const featureFrames = [
  frame({ timeNs: 5_500_000_000n, data: 'aabb', fileOffset: featureEnds[5]! }),
  frame({ interfaceId: 1, linkType: LINKTYPE_RAW, timeNs: 1_000_000_000_123n, data: '11', fileOffset: featureEnds[6]! }),
  frame({ interfaceId: 2, timeNs: -1_000_000_000n, data: '', comment: 'a', fileOffset: featureEnds[7]! }),
  frame({ interfaceId: 3, timeNs: 101_000_000_000n, data: 'cc', originalLength: 5, comment: 'opb', fileOffset: featureEnds[9]! }),
  frame({ timeNs: 101_000_000_000n, data: '01020304', originalLength: 10, fileOffset: featureEnds[10]! }),
];
const features = concat(...featureParts);

test('pcapng: timestamp units, offsets, OPB, SPB, options, skipped blocks', () => {
  assert.deepEqual(decode([features]), featureFrames);
});

test('pcapng: every chunking gives the same frames', () => {
  assertAnyChunking(features, featureFrames);
  assertAnyChunking(concat(...bigEndianSection, ...writerSection()), decode([concat(...bigEndianSection, ...writerSection())]), createPcapngDecoder);
});

test('pcapng: every truncated prefix fails with capture.truncated at the cut block', () => {
  assertTruncations(features, featureEnds);
  const twoSections = [...bigEndianSection, ...writerSection()];
  assertTruncations(concat(...twoSections), ends(twoSections), createPcapngDecoder);
});

test('pcapng: writer emits the documented block bytes', () => {
  const w = new PcapngWriter();
  // SHB: LE magic, version 1.0, length -1, shb_userappl "colo-proxy" (10 bytes + 2 padding), end.
  assert.equal(toHex(w.sectionHeader()), toHex(fromHex(
    '0a0d0d0a 30000000 4d3c2b1a 0100 0000 ffffffffffffffff 0400 0a00 636f6c6f2d70726f7879 0000 00000000 30000000')));
  // IDB: Ethernet, snaplen 262144, if_tsresol 9, end.
  assert.equal(toHex(w.interfaceDescription(LINKTYPE_ETHERNET)), toHex(fromHex(
    '01000000 20000000 0100 0000 00000400 0900 0100 09000000 00000000 20000000')));
  // IDB: raw IP, snaplen 0, microseconds (no if_tsresol), if_name "a".
  assert.equal(toHex(w.interfaceDescription(LINKTYPE_RAW, { snaplen: 0, tsresol: 6, name: 'a' })), toHex(fromHex(
    '01000000 20000000 6500 0000 00000000 0200 0100 61000000 00000000 20000000')));
  // EPB on interface 1 (µs) at 1.000002999 s: 1000002 µs, 3 of 9 bytes, comment "xy".
  assert.equal(toHex(w.enhancedPacket(1, 1_000_002_999n, fromHex('010203'), { originalLength: 9, comment: 'xy' })), toHex(fromHex(
    '06000000 30000000 01000000 00000000 42420f00 03000000 09000000 01020300 0100 0200 78790000 00000000 30000000')));
});

test('pcapng: writer refuses what the format cannot hold', () => {
  const w = new PcapngWriter();
  assert.throws(() => w.interfaceDescription(LINKTYPE_ETHERNET), /before sectionHeader/);
  w.sectionHeader();
  assert.equal(w.interfaceCount, 0);
  assert.throws(() => w.enhancedPacket(0, 0n, new Uint8Array(1)), RangeError);
  w.interfaceDescription(LINKTYPE_ETHERNET, { snaplen: 2 });
  assert.equal(w.interfaceCount, 1);
  assert.throws(() => w.enhancedPacket(0, 0n, new Uint8Array(3)), RangeError);
  assert.throws(() => w.enhancedPacket(0, -1n, new Uint8Array(1)), RangeError);
  assert.throws(() => w.enhancedPacket(0, 1n << 64n, new Uint8Array(1)), RangeError);
  assert.throws(() => w.enhancedPacket(0, 0n, new Uint8Array(2), { originalLength: 1 }), RangeError);
  assert.throws(() => w.enhancedPacket(0, 0n, new Uint8Array(1), { comment: 'x'.repeat(65536) }), RangeError);
  assert.throws(() => w.interfaceDescription(LINKTYPE_ETHERNET, { tsresol: 10 }), RangeError);
  assert.throws(() => w.interfaceDescription(0x10000), RangeError);
  w.sectionHeader();
  assert.equal(w.interfaceCount, 0);
});

const head = [
  fromHex('0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000'),
  block(1, '0100 0000 00000000'),
];
const headLength = concat(...head).length;

/** `head` followed by `tail`, for corruptions located at `headLength`. */
function after(tail: Uint8Array): Uint8Array {
  return concat(...head, tail);
}

test('pcapng: corrupt block framing is a coded error', () => {
  const epb = block(6, '00000000 00000000 00000000 01000000 01000000 aa000000');
  // EPB of length 36 whose trailing copy says 40.
  assertCorrupt(after(concat(epb.subarray(0, epb.length - 4), fromHex('28000000'))), 'capture.bad_block_length', headLength);
  // Leading length 30: not a multiple of 4.
  assertCorrupt(after(fromHex('06000000 1e000000' + '00'.repeat(22))), 'capture.bad_block_length', headLength);
  // Leading length 8: under 12.
  assertCorrupt(after(fromHex('06000000 08000000 08000000')), 'capture.bad_block_length', headLength);
  // Length 64 MiB + 4: over MAX_RECORD_BYTES.
  assertCorrupt(after(fromHex('06000000 04000004 00000000')), 'capture.record_too_large', headLength);
  // EPB whose fixed part does not fit its 28-byte length.
  assertCorrupt(after(block(6, '00000000 00000000 00000000 00000000')), 'capture.bad_block_length', headLength);
  // EPB claiming 5 captured bytes in a block with room for 4.
  assertCorrupt(after(block(6, '00000000 00000000 00000000 05000000 05000000 aabbccdd')), 'capture.bad_block_length', headLength);
  // SPB of original length 9 on an interface with no snaplen, with room for 8.
  assertCorrupt(after(block(3, '09000000 0102030405060708')), 'capture.bad_block_length', headLength);
});

test('pcapng: corrupt headers, interfaces and options are coded errors', () => {
  // SHB with byte-order magic 1a2b3c4e.
  assertCorrupt(fromHex('0a0d0d0a 1c000000 4e3c2b1a 0100 0000 ffffffffffffffff 1c000000'), 'capture.bad_magic', 8);
  // SHB whose only option, an 8-byte opt_comment, has 0 bytes of room.
  assertCorrupt(fromHex('0a0d0d0a 20000000 4d3c2b1a 0100 0000 ffffffffffffffff 0100 0800 20000000'), 'capture.bad_option', 24);
  // SHB of version 2.0.
  assertCorrupt(fromHex('0a0d0d0a 1c000000 4d3c2b1a 0200 0000 ffffffffffffffff 1c000000'), 'capture.unsupported_version', 0);
  // An IDB where the SHB should be (pcapng decoder asked directly).
  assertCorrupt(head[1]!, 'capture.bad_magic', 0, createPcapngDecoder);
  // EPB on interface 1 when only interface 0 is described.
  assertCorrupt(after(block(6, '01000000 00000000 00000000 00000000 00000000')), 'capture.unknown_interface', headLength);
  // SPB in a section with no interface at all.
  assertCorrupt(concat(head[0]!, block(3, '00000000')), 'capture.unknown_interface', 28);
  // EPB whose opt_comment claims 9 bytes where 4 remain.
  assertCorrupt(after(block(6, '00000000 00000000 00000000 00000000 00000000 0100 0900 61626364')), 'capture.bad_option', headLength + 28);
  // IDB with a 2-byte if_tsresol.
  assertCorrupt(concat(head[0]!, block(1, '0100 0000 00000000 0900 0200 0609 0000 00000000')), 'capture.bad_option', 28 + 16);
  // IDB with a 4-byte if_tsoffset.
  assertCorrupt(concat(head[0]!, block(1, '0100 0000 00000000 0e00 0400 01000000 00000000')), 'capture.bad_option', 28 + 16);
});

test('pcapng: decimal timestamp units read without BigInt agree with exact arithmetic', () => {
  // Every resolution 10^-e s, e = 0..9, over the whole 64-bit range, weighted towards 0, the top
  // and second boundaries. Seconds past 2^53 are the exact quotient rounded to a double.
  const w = new PcapngWriter();
  const max = 2n ** 64n - 1n;
  const resolutions = fc.integer({ min: 0, max: 9 }).chain((e) => {
    const units = 10n ** BigInt(e);
    const boundary = fc.bigInt({ min: 0n, max: max / units }).chain((s) => fc.bigInt({ min: -1n, max: 1n }).map((d) => s * units + d));
    const raw = fc.oneof(fc.bigInt({ min: 0n, max }), fc.bigInt({ min: 0n, max: 2n ** 53n * units }), fc.constantFrom(0n, 1n, max, max - 1n), boundary)
      .filter((t) => t >= 0n && t <= max);
    return fc.tuple(fc.constant(e), raw);
  });
  fc.assert(fc.property(resolutions, ([e, raw]) => {
    const units = 10n ** BigInt(e);
    const idb = block(1, `0100 0000 00000000 0900 0100 ${e.toString(16).padStart(2, '0')}000000 0000 0000`);
    const t = new DataView(new ArrayBuffer(8));
    t.setUint32(0, Number(raw >> 32n), true);
    t.setUint32(4, Number(raw & 0xffffffffn), true);
    const epb = block(6, `00000000 ${toHex(new Uint8Array(t.buffer, 0, 4))} ${toHex(new Uint8Array(t.buffer, 4, 4))} 01000000 01000000 ab000000`);
    const [f] = decode([concat(w.sectionHeader(), idb, epb)]);
    const expected = BigInt(Number(raw / units)) * 1_000_000_000n + (raw % units) * 10n ** BigInt(9 - e);
    assert.equal(f!.timeNs, expected, `raw ${raw} at 10^-${e} s`);
  }), { numRuns: 3000 });
});

test('pcapng: a Simple Packet Block before any timed packet is untimed; after one it takes that packet\'s time', () => {
  const w = new PcapngWriter();
  const spb = pcapngBlock(3, fromHex('01000000 ab000000'));
  const decoder = createPcapngDecoder();
  const frames = decoder.push(concat(w.sectionHeader(), w.interfaceDescription(LINKTYPE_ETHERNET), spb, w.enhancedPacket(0, 1_700_000_000_000_000_123n, fromHex('cd')), spb));
  assert.deepEqual(frames.map((f) => [f.untimed, f.timeNs]), [[true, 0n], [false, 1_700_000_000_000_000_123n], [false, 1_700_000_000_000_000_123n]]);
  assert.ok(frames[0]!.before(frames[1]!) && !frames[1]!.before(frames[0]!), 'an untimed frame sorts before a timed one');
});
