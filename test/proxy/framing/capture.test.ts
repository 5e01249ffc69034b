import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex } from '../../../compare/wire/bytes.js';
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from '../../../compare/wire/link.js';
import { CaptureFormatError, createCaptureDecoder, MAX_RECORD_BYTES } from '../../../proxy/framing/capture.js';
import { PcapWriter } from '../../../proxy/framing/pcap.js';
import { PcapngWriter } from '../../../proxy/framing/pcapng.js';
import { concat, decode, split } from './support.js';
import type { FrameValue } from './support.js';

test('capture: format is detected from the first four bytes, whatever the chunking', () => {
  const w = new PcapngWriter();
  const input = concat(w.sectionHeader(), w.interfaceDescription(LINKTYPE_ETHERNET), w.enhancedPacket(0, 7n, Uint8Array.of(1)));
  const d = createCaptureDecoder();
  assert.equal(d.format, undefined);
  assert.deepEqual(d.push(input.subarray(0, 3)), []);
  assert.equal(d.format, undefined);
  assert.deepEqual(d.push(input.subarray(3, 5)), []);
  assert.equal(d.format, 'pcapng');
  assert.equal(d.push(input.subarray(5)).length, 1);
  d.end();
  assert.throws(() => d.push(input), /after end/);

  const p = createCaptureDecoder();
  p.push(new PcapWriter().header(LINKTYPE_RAW));
  assert.equal(p.format, 'pcap');
});

test('capture: empty and magic-only inputs are truncated at byte 0', () => {
  for (const input of [new Uint8Array(0), Uint8Array.of(0xd4, 0xc3), Uint8Array.of(0xd4, 0xc3, 0xb2, 0xa1)]) {
    const d = createCaptureDecoder();
    d.push(input);
    assert.throws(() => d.end(), (e: unknown) => e instanceof CaptureFormatError && e.code === 'capture.truncated' && e.offset === 0);
  }
});

test('capture: a failed decoder rethrows its first error', () => {
  const d = createCaptureDecoder();
  let first: unknown;
  try {
    d.push(Uint8Array.of(1, 2, 3, 4, 5));
  } catch (e) {
    first = e;
  }
  assert.ok(first instanceof CaptureFormatError && first.code === 'capture.bad_magic');
  assert.throws(() => d.push(Uint8Array.of(0)), (e) => e === first);
  assert.throws(() => d.end(), (e) => e === first);
});

test('capture: frames of a straddling record stay intact after later pushes', () => {
  const w = new PcapWriter();
  const input = concat(w.header(LINKTYPE_ETHERNET), w.record(1n, Uint8Array.of(1, 2, 3)), w.record(2n, Uint8Array.of(4, 5, 6)));
  const d = createCaptureDecoder();
  const reused = new Uint8Array(1);
  const frames = [];
  for (const byte of input) {
    reused[0] = byte;
    frames.push(...d.push(reused));
  }
  d.end();
  assert.deepEqual(frames.map((f) => toHex(f.data)), ['010203', '040506']);
});

test('capture: a lying length costs memory in proportion to the bytes received, not the claim', () => {
  // pcapng SHB, then a block header claiming 64 MiB, then 1000 bytes of it.
  const w = new PcapngWriter();
  const claim = new Uint8Array(12);
  new DataView(claim.buffer).setUint32(0, 0xbad, true);
  new DataView(claim.buffer).setUint32(4, MAX_RECORD_BYTES, true);
  const d = createCaptureDecoder();
  const before = process.memoryUsage().arrayBuffers;
  d.push(concat(w.sectionHeader(), claim));
  for (let i = 0; i < 1000; i++) d.push(new Uint8Array(1));
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 8 * 1024 * 1024, `decoder holds ${grown} bytes after 1 KB of a claimed 64 MiB block`);
  assert.throws(() => d.end(), (e: unknown) => e instanceof CaptureFormatError && e.code === 'capture.truncated' && e.offset > 0);
});

interface Generated {
  interfaceId: number;
  timeNs: bigint;
  data: Uint8Array;
  extra: number;
  comment: string | undefined;
}

const linkTypes = fc.constantFrom(LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2);

/** Arbitrary frames on `interfaces` interfaces, with times up to `maxNs`. */
function frames(interfaces: number, maxNs: bigint, comments: boolean): fc.Arbitrary<Generated[]> {
  return fc.array(fc.record({
    interfaceId: fc.nat({ max: interfaces - 1 }),
    timeNs: fc.bigInt({ min: 0n, max: maxNs }),
    data: fc.uint8Array({ maxLength: 70 }),
    extra: fc.nat({ max: 1600 }),
    comment: comments ? fc.option(fc.string({ unit: 'binary', maxLength: 12 }), { nil: undefined }) : fc.constant(undefined),
  }), { maxLength: 12 });
}

/** Sorted cut points within `[0, length]`, from arbitrary naturals. */
function cutsWithin(raw: number[], length: number): number[] {
  return [...new Set(raw.map((c) => c % (length + 1)))].sort((a, b) => a - b);
}

test('capture: random frames round-trip through PcapWriter at random chunkings', () => {
  fc.assert(fc.property(
    linkTypes, fc.boolean(), frames(1, (1n << 32n) * 1_000_000_000n - 1n, false), fc.array(fc.nat(), { maxLength: 8 }),
    (linkType, nanosecond, list, rawCuts) => {
      const w = new PcapWriter();
      const parts = [w.header(linkType, { nanosecond })];
      const expected: FrameValue[] = [];
      let offset = 24;
      for (const f of list) {
        parts.push(w.record(f.timeNs, f.data, f.data.length + f.extra));
        expected.push({
          interfaceId: 0, linkType, timeNs: nanosecond ? f.timeNs : f.timeNs - (f.timeNs % 1000n),
          data: toHex(f.data), originalLength: f.data.length + f.extra, comment: undefined, fileOffset: offset,
        });
        offset += 16 + f.data.length;
      }
      const input = concat(...parts);
      assert.deepEqual(decode(split(input, cutsWithin(rawCuts, input.length))), expected);
    },
  ), { numRuns: 300 });
});

test('capture: random frames round-trip through PcapngWriter at random chunkings', () => {
  const sections = fc.array(fc.record({ linkType: linkTypes, tsresol: fc.integer({ min: 0, max: 9 }) }), { minLength: 1, maxLength: 4 })
    .chain((interfaces) => fc.tuple(fc.constant(interfaces), frames(interfaces.length, (1n << 64n) - 1n, true)));
  fc.assert(fc.property(
    sections, fc.array(fc.nat(), { maxLength: 8 }),
    ([interfaces, list], rawCuts) => {
      const w = new PcapngWriter();
      const parts = [w.sectionHeader(), ...interfaces.map((i) => w.interfaceDescription(i.linkType, { tsresol: i.tsresol }))];
      let offset = concat(...parts).length;
      const expected: FrameValue[] = [];
      for (const f of list) {
        const block = w.enhancedPacket(f.interfaceId, f.timeNs, f.data, { originalLength: f.data.length + f.extra, comment: f.comment });
        parts.push(block);
        const unit = 10n ** BigInt(9 - interfaces[f.interfaceId]!.tsresol);
        expected.push({
          interfaceId: f.interfaceId, linkType: interfaces[f.interfaceId]!.linkType, timeNs: f.timeNs - (f.timeNs % unit),
          data: toHex(f.data), originalLength: f.data.length + f.extra, comment: f.comment, fileOffset: offset,
        });
        offset += block.length;
      }
      const input = concat(...parts);
      assert.deepEqual(decode(split(input, cutsWithin(rawCuts, input.length))), expected);
    },
  ), { numRuns: 300 });
});

/** Asserts that `input`, cut before `cuts`, decodes or fails with a well-formed CaptureFormatError, yielding no more bytes than given. */
function fuzzOnce(input: Uint8Array, cuts: number[]): void {
  const d = createCaptureDecoder();
  let dataBytes = 0;
  try {
    for (const c of split(input, cuts)) for (const f of d.push(c)) dataBytes += f.data.length;
    d.end();
  } catch (e) {
    if (!(e instanceof CaptureFormatError)) throw new Error(`not a CaptureFormatError: ${String(e)}`, { cause: e });
    assert.match(e.code, /^capture\.[a-z_]+$/);
    assert.ok(Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= input.length, e.message);
    assert.ok(!e.message.includes('\n'), e.message);
  }
  assert.ok(dataBytes <= input.length, `${dataBytes} bytes of frames out of ${input.length} bytes of input`);
}

function validInputs(): Uint8Array[] {
  const p = new PcapWriter();
  const n = new PcapngWriter();
  return [
    concat(p.header(LINKTYPE_ETHERNET, { snaplen: 64 }), p.record(1n, new Uint8Array(20).fill(7), 90), p.record(2_000_000_001n, Uint8Array.of(1))),
    concat(
      n.sectionHeader({ comment: 'c' }), n.interfaceDescription(LINKTYPE_ETHERNET), n.interfaceDescription(LINKTYPE_RAW, { tsresol: 3, name: 'x' }),
      n.enhancedPacket(1, 5_000_000n, new Uint8Array(9).fill(3), { comment: 'hello' }), n.enhancedPacket(0, 7n, Uint8Array.of(1, 2)),
    ),
  ];
}

test('capture fuzz: random bytes yield frames or a CaptureFormatError, nothing else', () => {
  const magics = [[], [0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d], [0x0a, 0x0d, 0x0d, 0x0a]];
  fc.assert(fc.property(
    fc.constantFrom(...magics), fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 6 }),
    (magic, rest, rawCuts) => {
      const input = concat(Uint8Array.from(magic), rest);
      fuzzOnce(input, cutsWithin(rawCuts, input.length));
    },
  ), { numRuns: 3000 });
});

test('capture fuzz: mutated valid files yield frames or a CaptureFormatError, nothing else', () => {
  const valid = validInputs();
  fc.assert(fc.property(
    fc.nat({ max: valid.length - 1 }),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }),
    fc.nat(),
    fc.array(fc.nat(), { maxLength: 6 }),
    (which, edits, keep, rawCuts) => {
      const input = valid[which]!.slice();
      for (const [at, byte] of edits) input[at % input.length] = byte;
      const cut = input.subarray(0, keep % (input.length + 1));
      fuzzOnce(cut, cutsWithin(rawCuts, cut.length));
    },
  ), { numRuns: 5000 });
});
