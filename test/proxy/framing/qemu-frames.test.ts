import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { emitArp, emitTcp, emitUdp, fromHex, TCP_ACK, TCP_PSH, TCP_SYN, toHex } from '../../../compare/index.js';
import {
  encodeQemuFrame, encodeQemuFrames, encodeQemuPackets, QEMU_MAX_FRAME, QemuFrameDecoder, QemuFramingError, QemuPacketDecoder,
  qemuFrameCount, suspectVnetMismatch, VNET_MAX_LEN,
} from '../../../proxy/framing/qemu-frames.js';
import type { QemuFrame } from '../../../proxy/framing/qemu-frames.js';
import { concat, split } from './support.js';

interface FrameValue {
  packet: string;
  vnetHeader: string;
  offset: number;
}

const value = (f: QemuFrame): FrameValue => ({ packet: toHex(f.packet), vnetHeader: toHex(f.vnetHeader), offset: f.offset });

/** Pushes each chunk then ends; returns every frame, read only after the last push (so aliasing shows). */
function decode(chunks: Uint8Array[], vnet: boolean, maxFrame?: number): FrameValue[] {
  const d = new QemuFrameDecoder({ vnetHeader: vnet, maxFrame });
  const frames: QemuFrame[] = [];
  for (const c of chunks) frames.push(...d.push(c));
  d.end();
  return frames.map(value);
}

const oneByteChunks = (input: Uint8Array): Uint8Array[] => split(input, Array.from({ length: input.length }, (_, i) => i + 1));

/** Asserts that the whole input, every two-piece split and 1-byte chunks all decode to `expected`. */
function assertAnyChunking(input: Uint8Array, vnet: boolean, expected: FrameValue[]): void {
  assert.deepEqual(decode([input], vnet), expected, 'one chunk');
  for (let k = 0; k <= input.length; k++) assert.deepEqual(decode(split(input, [k]), vnet), expected, `split at ${k}`);
  assert.deepEqual(decode(oneByteChunks(input), vnet), expected, '1-byte chunks');
}

/**
 * Asserts that `input`, whole and in 1-byte chunks, fails with `code` at `offset` after delivering
 * the same frames, all from before the damage, and that the decoder then stays failed.
 */
function assertCorrupt(input: Uint8Array, vnet: boolean, code: string, offset: number, maxFrame?: number): FrameValue[] {
  const delivered: FrameValue[][] = [];
  for (const chunks of [[input], oneByteChunks(input)]) {
    const d = new QemuFrameDecoder({ vnetHeader: vnet, maxFrame });
    const frames: QemuFrame[] = [];
    let thrown: unknown;
    try {
      for (const c of chunks) frames.push(...d.push(c));
      d.end();
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof QemuFramingError, String(thrown));
    assert.equal(thrown.code, code, thrown.message);
    assert.equal(thrown.offset, offset, thrown.message);
    assert.match(thrown.message, new RegExp(`at byte ${offset} \\(${code.replace('.', '\\.')}\\)$`));
    assert.equal(d.error, thrown);
    assert.throws(() => d.push(new Uint8Array(1)), (e) => e === thrown, 'a failed decoder rethrows');
    assert.throws(() => d.end(), (e) => e === thrown);
    assert.ok(frames.every((f) => f.offset < offset), 'no frame from the damage on');
    delivered.push(frames.map(value));
  }
  assert.deepEqual(delivered[0], delivered[1], 'the frames before the damage do not depend on chunking');
  return delivered[0]!;
}

/** A frame with explicit LEN and, when given, VNET_LEN fields followed by `body`. */
function rawFrame(len: number, body: Uint8Array, vnetLen?: number): Uint8Array {
  const head = new Uint8Array(vnetLen === undefined ? 4 : 8);
  const view = new DataView(head.buffer);
  view.setUint32(0, len);
  if (vnetLen !== undefined) view.setUint32(4, vnetLen);
  return concat(head, body);
}

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

test('qemu-frames: a 22-byte packet is 00 00 00 16 then the packet', () => {
  const packet = bytes(22);
  const wire = encodeQemuFrame(packet);
  assert.equal(toHex(wire), '00000016' + toHex(packet));
  assert.deepEqual(decode([wire], false), [{ packet: toHex(packet), vnetHeader: '', offset: 0 }]);
});

test('qemu-frames: vnet, 12-byte header, 60-byte frame is 00 00 00 48 00 00 00 0c, header, frame', () => {
  const header = bytes(12, 7);
  const packet = bytes(60, 9);
  const wire = encodeQemuFrame(packet, header);
  assert.equal(toHex(wire.subarray(0, 8)), '000000480000000c');
  assert.equal(toHex(wire), '000000480000000c' + toHex(header) + toHex(packet));
  assert.equal(wire.length, 8 + 12 + 60);
  assert.deepEqual(decode([wire], true), [{ packet: toHex(packet), vnetHeader: toHex(header), offset: 0 }]);
});

test('qemu-frames: vnet with an empty header writes VNET_LEN 0; without vnet no VNET_LEN at all', () => {
  assert.equal(toHex(encodeQemuFrame(Uint8Array.of(0xab), new Uint8Array(0))), '0000000100000000ab');
  assert.equal(toHex(encodeQemuFrame(Uint8Array.of(0xab))), '00000001ab');
  assert.equal(toHex(encodeQemuFrame(new Uint8Array(0))), '00000000');
});

test('qemu-frames: the batch encoder writes exactly the single-frame encodings back to back', () => {
  const frames = [{ packet: bytes(22) }, { packet: new Uint8Array(0) }, { packet: bytes(1514, 3) }];
  assert.equal(toHex(encodeQemuFrames(frames, false)), toHex(concat(...frames.map((f) => encodeQemuFrame(f.packet)))));
  const vnetFrames = [{ packet: bytes(60), vnetHeader: bytes(12) }, { packet: bytes(3) }, { packet: bytes(5), vnetHeader: bytes(20) }];
  assert.equal(
    toHex(encodeQemuFrames(vnetFrames, true)),
    toHex(concat(...vnetFrames.map((f) => encodeQemuFrame(f.packet, f.vnetHeader ?? new Uint8Array(0))))),
  );
  assert.equal(encodeQemuFrames([], true).length, 0);
  // A caller's allocator may hand over dirty memory (Buffer.allocUnsafe): every byte is written.
  const dirty = (n: number): Uint8Array => new Uint8Array(n).fill(0xaa);
  assert.equal(toHex(encodeQemuFrames(vnetFrames, true, dirty)), toHex(encodeQemuFrames(vnetFrames, true)));
  assert.equal(toHex(encodeQemuFrames(frames, false, dirty)), toHex(encodeQemuFrames(frames, false)));
});

test('qemu-frames: encoder misuse is a RangeError', () => {
  assert.throws(() => encodeQemuFrame(bytes(10), new Uint8Array(VNET_MAX_LEN + 1)), RangeError);
  assert.throws(() => encodeQemuFrame(new Uint8Array(QEMU_MAX_FRAME + 1)), RangeError);
  assert.throws(() => encodeQemuFrame(new Uint8Array(QEMU_MAX_FRAME - 11), new Uint8Array(12)), RangeError);
  assert.equal(encodeQemuFrame(new Uint8Array(QEMU_MAX_FRAME - 12), new Uint8Array(12)).length, QEMU_MAX_FRAME + 8);
  assert.throws(() => encodeQemuFrames([{ packet: bytes(4), vnetHeader: bytes(1) }], false), RangeError);
  assert.throws(() => encodeQemuFrames([{ packet: bytes(4), vnetHeader: bytes(21) }], true), RangeError);
  assert.throws(() => new QemuFrameDecoder({ vnetHeader: false, maxFrame: -1 }), RangeError);
  assert.throws(() => new QemuFrameDecoder({ vnetHeader: false, maxFrame: 2 ** 32 }), RangeError);
  assert.throws(() => new QemuFrameDecoder({ vnetHeader: false, maxFrame: 1.5 }), RangeError);
});

// Three frames, one of them empty: 5 bytes, LEN 0, 3 bytes.
const plainStream = fromHex('00000005 0102030405  00000000  00000003 aabbcc');
const plainFrames: FrameValue[] = [
  { packet: '0102030405', vnetHeader: '', offset: 0 },
  { packet: '', vnetHeader: '', offset: 9 },
  { packet: 'aabbcc', vnetHeader: '', offset: 13 },
];
// With vnet: a 2-byte header and 3-byte packet; LEN 0 VNET_LEN 0; header only (VNET_LEN = LEN = 2); no header, 1 byte.
const vnetStream = fromHex('00000005 00000002 f0f1 010203  00000000 00000000  00000002 00000002 e0e1  00000001 00000000 77');
const vnetFrames: FrameValue[] = [
  { packet: '010203', vnetHeader: 'f0f1', offset: 0 },
  { packet: '', vnetHeader: '', offset: 13 },
  { packet: '', vnetHeader: 'e0e1', offset: 21 },
  { packet: '77', vnetHeader: '', offset: 31 },
];

test('qemu-frames: every split point and 1-byte chunks give the same frames, vnet off and on', () => {
  assertAnyChunking(plainStream, false, plainFrames);
  assertAnyChunking(vnetStream, true, vnetFrames);
});

test('qemu-frames: LEN 0 is an empty frame, alone or between others, at any split', () => {
  assertAnyChunking(fromHex('00000000'), false, [{ packet: '', vnetHeader: '', offset: 0 }]);
  assertAnyChunking(fromHex('00000000 00000000'), true, [{ packet: '', vnetHeader: '', offset: 0 }]);
  assertAnyChunking(fromHex('00000000 00000000 00000000'), false, [0, 4, 8].map((offset) => ({ packet: '', vnetHeader: '', offset })));
});

test('qemu-frames: every truncated prefix is reported by end() at the cut frame, and counted in pendingBytes until then', () => {
  for (const [input, vnet, frames] of [[plainStream, false, plainFrames], [vnetStream, true, vnetFrames]] as const) {
    const starts = frames.map((f) => f.offset);
    for (let p = 0; p <= input.length; p++) {
      const d = new QemuFrameDecoder({ vnetHeader: vnet });
      // In two pushes, so that the cut frame's bytes are kept across a push, not only found in one.
      const got = [...d.push(input.subarray(0, p >> 1)), ...d.push(input.subarray(p >> 1, p))].map(value);
      if (p === input.length || starts.includes(p)) {
        assert.equal(d.pendingBytes, 0, `prefix ${p}`);
        d.end();
        assert.deepEqual(got, frames.filter((f) => f.offset < p), `prefix ${p}`);
        continue;
      }
      const cut = Math.max(...starts.filter((s) => s < p));
      assert.deepEqual(got, frames.filter((f) => f.offset < cut), `prefix ${p}`);
      assert.equal(d.pendingBytes, p - cut, `prefix ${p}`);
      assert.throws(() => d.end(), (e: unknown) => e instanceof QemuFramingError && e.code === 'qemu.truncated' && e.offset === cut, `prefix ${p}`);
      assert.equal(d.pendingBytes, 0, `prefix ${p}, ended`);
    }
  }
});

test('qemu-frames: many frames in one chunk come back in order, as views of that chunk', () => {
  const packets = Array.from({ length: 1000 }, (_, i) => bytes(i % 97, i));
  for (const vnet of [false, true]) {
    const input = encodeQemuFrames(packets.map((packet, i) => ({ packet, vnetHeader: vnet ? bytes(i % 21, 5) : undefined })), vnet);
    const d = new QemuFrameDecoder({ vnetHeader: vnet });
    const frames = d.push(input);
    d.end();
    assert.equal(frames.length, 1000);
    let at = 0;
    frames.forEach((f, i) => {
      assert.equal(f.offset, at);
      assert.equal(toHex(f.packet), toHex(packets[i]!));
      assert.equal(f.packet.buffer, input.buffer, 'zero-copy');
      assert.equal(f.packet.byteOffset, at + (vnet ? 8 + (i % 21) : 4));
      at += (vnet ? 8 + (i % 21) : 4) + packets[i]!.length;
    });
  }
});

test('qemu-frames: a frame whose length fields straddle but whose body does not is still a view', () => {
  const wire = encodeQemuFrame(bytes(60), bytes(12));
  const first = wire.slice(0, 6);
  const second = wire.slice(6);
  const d = new QemuFrameDecoder({ vnetHeader: true });
  assert.deepEqual(d.push(first), []);
  const [f] = d.push(second);
  assert.equal(f!.packet.buffer, second.buffer);
  assert.equal(f!.vnetHeader.buffer, second.buffer);
  assert.equal(toHex(f!.packet), toHex(bytes(60)));
});

test('qemu-frames: frames of a straddling body stay intact after the read buffer is reused', () => {
  const input = encodeQemuFrames([{ packet: Uint8Array.of(1, 2, 3), vnetHeader: Uint8Array.of(9) }, { packet: Uint8Array.of(4, 5, 6) }], true);
  const d = new QemuFrameDecoder({ vnetHeader: true });
  const reused = new Uint8Array(1);
  const frames: QemuFrame[] = [];
  for (const byte of input) {
    reused[0] = byte;
    frames.push(...d.push(reused));
  }
  d.end();
  assert.deepEqual(frames.map(value), [
    { packet: '010203', vnetHeader: '09', offset: 0 },
    { packet: '040506', vnetHeader: '', offset: 12 },
  ]);
});

test('qemu-frames: LEN 69632 is accepted, 69633 is qemu.frame_too_long at its LEN field', () => {
  const max = bytes(QEMU_MAX_FRAME);
  assert.equal(decode(split(encodeQemuFrame(max), [3, 40000]), false)[0]!.packet.length, QEMU_MAX_FRAME * 2);
  assert.deepEqual(decode([rawFrame(QEMU_MAX_FRAME, max, 20)], true).map((f) => f.packet.length / 2), [QEMU_MAX_FRAME - 20]);

  const first = encodeQemuFrame(bytes(22));
  const frames = assertCorrupt(concat(first, rawFrame(QEMU_MAX_FRAME + 1, bytes(100))), false, 'qemu.frame_too_long', 26);
  assert.deepEqual(frames, [{ packet: toHex(bytes(22)), vnetHeader: '', offset: 0 }]);
  assertCorrupt(concat(encodeQemuFrame(bytes(3), bytes(2)), rawFrame(QEMU_MAX_FRAME + 1, bytes(4), 0)), true, 'qemu.frame_too_long', 13);
  assertCorrupt(rawFrame(0xffffffff, new Uint8Array(0)), false, 'qemu.frame_too_long', 0);
});

test('qemu-frames: the error is found as soon as the field is in, and `error` says so before push throws', () => {
  const d = new QemuFrameDecoder({ vnetHeader: true });
  const good = encodeQemuFrame(bytes(5), bytes(2));
  const frames = d.push(concat(good, rawFrame(QEMU_MAX_FRAME + 1, new Uint8Array(0))));
  assert.equal(frames.length, 1, 'the good frame is delivered');
  assert.ok(d.error instanceof QemuFramingError && d.error.code === 'qemu.frame_too_long' && d.error.offset === good.length);
  assert.equal(d.pendingBytes, 0, 'nothing of a corrupt stream is pending');
  assert.throws(() => d.push(new Uint8Array(0)), (e) => e === d.error);

  const lone = new QemuFrameDecoder({ vnetHeader: true });
  assert.throws(() => lone.push(rawFrame(100, Uint8Array.of(0, 0, 0, 21))), (e: unknown) => e instanceof QemuFramingError && e.code === 'qemu.vnet_too_long' && e.offset === 4);
});

test('qemu-frames: a smaller maxFrame is honoured to the byte', () => {
  assert.equal(decode([rawFrame(100, bytes(100))], false, 100).length, 1);
  assertCorrupt(rawFrame(101, bytes(101)), false, 'qemu.frame_too_long', 0, 100);
});

test('qemu-frames: VNET_LEN over 20 or over LEN is an error at the VNET_LEN field', () => {
  assert.deepEqual(decode([rawFrame(20, bytes(20), 20)], true), [{ packet: '', vnetHeader: toHex(bytes(20)), offset: 0 }]);
  const first = encodeQemuFrame(bytes(4), bytes(1));
  assertCorrupt(concat(first, rawFrame(60, bytes(60), 21)), true, 'qemu.vnet_too_long', first.length + 4);
  assertCorrupt(concat(first, rawFrame(10, bytes(10), 12)), true, 'qemu.vnet_exceeds_frame', first.length + 4);
  assertCorrupt(rawFrame(0, new Uint8Array(0), 1), true, 'qemu.vnet_exceeds_frame', 4);
  // Both wrong: the limit is checked first.
  assertCorrupt(rawFrame(10, bytes(10), 0x52540012), true, 'qemu.vnet_too_long', 4);
});

test('qemu-frames: push after end is incorrect use', () => {
  const d = new QemuFrameDecoder({ vnetHeader: false });
  d.end();
  assert.throws(() => d.push(new Uint8Array(1)), (e: unknown) => e instanceof Error && !(e instanceof QemuFramingError));
});

test('qemu-frames: a lying LEN costs memory in proportion to the bytes received, not the claim', () => {
  const d = new QemuFrameDecoder({ vnetHeader: false, maxFrame: 0xffffffff });
  const before = process.memoryUsage().arrayBuffers;
  d.push(rawFrame(0xfffffff0, new Uint8Array(0)));
  const kib = new Uint8Array(1024);
  for (let i = 0; i < 1024; i++) d.push(kib);
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 8 * 1024 * 1024, `decoder holds ${grown} bytes after 1 MiB of a claimed 4 GiB frame`);
  assert.throws(() => d.end(), (e: unknown) => e instanceof QemuFramingError && e.code === 'qemu.truncated' && e.offset === 0);
});

/** Sorted cut points within `[0, length]`, from arbitrary naturals. */
function cutsWithin(raw: number[], length: number): number[] {
  return [...new Set(raw.map((c) => c % (length + 1)))].sort((a, b) => a - b);
}

test('qemu-frames: random frame lists round-trip through the batch encoder at random chunkings', () => {
  const frame = fc.record({
    packet: fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 3000 }).map((n) => bytes(n))),
    vnetHeader: fc.uint8Array({ maxLength: VNET_MAX_LEN }),
  });
  fc.assert(fc.property(
    fc.boolean(), fc.array(frame, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }),
    (vnet, list, rawCuts) => {
      const parts = list.map((f) => ({ packet: f.packet, vnetHeader: vnet ? f.vnetHeader : undefined }));
      const input = encodeQemuFrames(parts, vnet);
      const expected: FrameValue[] = [];
      let offset = 0;
      for (const f of parts) {
        expected.push({ packet: toHex(f.packet), vnetHeader: vnet ? toHex(f.vnetHeader!) : '', offset });
        offset += (vnet ? 8 + f.vnetHeader!.length : 4) + f.packet.length;
      }
      const d = new QemuFrameDecoder({ vnetHeader: vnet });
      const frames: QemuFrame[] = [];
      for (const c of split(input, cutsWithin(rawCuts, input.length))) frames.push(...d.push(c));
      d.end();
      assert.deepEqual(frames.map(value), expected);
      assert.equal(toHex(encodeQemuFrames(frames, vnet)), toHex(input), 'decoded frames re-encode byte for byte');
    },
  ), { numRuns: 500 });
});

/** What a decoder made of a chunked input: the frames of each push, and the error that ended it. */
function decodeEach(d: QemuFrameDecoder | QemuPacketDecoder, chunks: Uint8Array[]): { pushes: FrameValue[][]; error: string } {
  const pushes: FrameValue[][] = [];
  try {
    for (const c of chunks) {
      if (d instanceof QemuFrameDecoder) {
        pushes.push(d.push(c).map((f) => ({ packet: toHex(f.packet), vnetHeader: toHex(f.vnetHeader), offset: 0 })));
      } else {
        const packets = d.push(c);
        assert.ok(d.vnetHeaders.length === 0 || d.vnetHeaders.length === packets.length, 'one vnet header per packet, or none');
        pushes.push(packets.map((p, i) => ({ packet: toHex(p), vnetHeader: toHex(d.vnetHeaders[i] ?? new Uint8Array(0)), offset: 0 })));
      }
    }
    d.end();
  } catch (e) {
    if (!(e instanceof QemuFramingError)) throw e;
    return { pushes, error: `${e.code} at ${e.offset}: ${e.message.replace('QemuPacketDecoder', 'QemuFrameDecoder')}` };
  }
  return { pushes, error: '' };
}

test('qemu-frames: QemuPacketDecoder gives QemuFrameDecoder\'s packets and headers, push by push, and its errors', () => {
  const frame = fc.record({ packet: fc.uint8Array({ maxLength: 90 }), vnetHeader: fc.uint8Array({ maxLength: VNET_MAX_LEN }) });
  fc.assert(fc.property(
    fc.boolean(), fc.array(frame, { maxLength: 10 }), fc.uint8Array({ maxLength: 12 }), fc.array(fc.nat(), { maxLength: 8 }),
    (vnet, list, tail, rawCuts) => {
      // Valid frames, then possibly garbage (a lying length, a truncated frame) to compare the errors too.
      const input = concat(encodeQemuFrames(list.map((f) => ({ packet: f.packet, vnetHeader: vnet ? f.vnetHeader : undefined })), vnet), tail);
      const chunks = split(input, cutsWithin(rawCuts, input.length));
      const expected = decodeEach(new QemuFrameDecoder({ vnetHeader: vnet, maxFrame: 200 }), chunks);
      assert.deepEqual(decodeEach(new QemuPacketDecoder({ vnetHeader: vnet, maxFrame: 200 }), chunks), expected);
    },
  ), { numRuns: 500 });
});

test('qemu-frames: encodeQemuPackets writes what encodeQemuFrames does, for the first `count` frames only', () => {
  const packets = [bytes(3), bytes(60, 2), bytes(0), bytes(1500, 3)];
  const headers = [bytes(10, 4), bytes(0), bytes(12, 5), bytes(20, 6)];
  for (const vnet of [false, true]) {
    const hs = vnet ? headers : [];
    for (let count = 0; count <= packets.length; count++) {
      const parts = packets.slice(0, count).map((p, i) => ({ packet: p, vnetHeader: vnet ? headers[i] : undefined }));
      assert.equal(toHex(encodeQemuPackets(packets, hs, vnet, undefined, count)), toHex(encodeQemuFrames(parts, vnet)), `vnet ${vnet}, count ${count}`);
    }
  }
  assert.throws(() => encodeQemuPackets(packets, headers, false), RangeError, 'a vnet header on a link without vnet');
});

/** Asserts that `input`, cut before `cuts`, decodes or fails with a well-formed QemuFramingError, yielding no more bytes than given. */
function fuzzOnce(input: Uint8Array, cuts: number[], vnet: boolean, maxFrame: number): void {
  const d = new QemuFrameDecoder({ vnetHeader: vnet, maxFrame });
  let out = 0;
  try {
    for (const c of split(input, cuts)) for (const f of d.push(c)) out += f.packet.length + f.vnetHeader.length;
    d.end();
  } catch (e) {
    if (!(e instanceof QemuFramingError)) throw new Error(`not a QemuFramingError: ${String(e)}`, { cause: e });
    assert.match(e.code, /^qemu\.(frame_too_long|vnet_too_long|vnet_exceeds_frame|truncated)$/);
    assert.ok(Number.isInteger(e.offset) && e.offset >= 0 && e.offset < input.length, e.message);
    assert.ok(!e.message.includes('\n'), e.message);
  }
  assert.ok(out <= input.length, `${out} bytes of frames out of ${input.length} bytes of input`);
}

test('qemu-frames fuzz: random bytes yield frames or a QemuFramingError, nothing else', () => {
  // Small length fields make whole frames likely; the large limits let lying lengths through.
  const smallLen = fc.tuple(fc.nat({ max: 40 }), fc.nat({ max: 24 })).map(([len, v]) => rawFrame(len, new Uint8Array(0), v).subarray(0, 8));
  fc.assert(fc.property(
    fc.boolean(), fc.constantFrom(0, 16, QEMU_MAX_FRAME, 0xffffffff),
    fc.array(fc.oneof(fc.uint8Array({ maxLength: 60 }), smallLen), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }),
    (vnet, maxFrame, pieces, rawCuts) => {
      const input = concat(...pieces);
      fuzzOnce(input, cutsWithin(rawCuts, input.length), vnet, maxFrame);
    },
  ), { numRuns: 3000 });
});

test('qemu-frames fuzz: mutated valid streams yield frames or a QemuFramingError, nothing else', () => {
  fc.assert(fc.property(
    fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), fc.array(fc.nat(), { maxLength: 6 }),
    (vnet, edits, keep, rawCuts) => {
      const input = (vnet ? vnetStream : plainStream).slice();
      for (const [at, byte] of edits) input[at % input.length] = byte;
      const cut = input.subarray(0, keep % (input.length + 1));
      fuzzOnce(cut, cutsWithin(rawCuts, cut.length), vnet, QEMU_MAX_FRAME);
    },
  ), { numRuns: 3000 });
});

// Realistic guest output: QEMU's MAC prefix 52:54:00, a broadcast ARP, IPv6 multicast, a SYN with options.
const realistic: [string, Uint8Array][] = [
  ['IPv4 TCP data', emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 1000, ack: 2000, flags: TCP_ACK | TCP_PSH, payload: 'hello world', options: { timestamp: [1, 2] } })],
  ['IPv4 TCP SYN-ACK', emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 7, ack: 9, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, timestamp: [5, 6], windowScale: 7 } })],
  ['IPv4 TCP pure ACK, padded', emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 7, ack: 9, flags: TCP_ACK, padTo: 60 })],
  ['IPv6 UDP to multicast', emitUdp({ src: 'fe80::1', dst: 'ff02::1', dstMac: '33:33:00:00:00:01', srcPort: 5353, dstPort: 5353, payload: 'mdns' })],
  ['ARP request, broadcast', emitArp({ senderIp: '10.0.0.2', targetIp: '10.0.0.1', dstMac: 'ff:ff:ff:ff:ff:ff', padTo: 60 })],
  ['VLAN-tagged IPv4 TCP', emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 1, ack: 1, flags: TCP_ACK, vlan: [42], payload: 'x' })],
];

/** Virtio-net headers as QEMU sends them: 10 bytes (legacy), 12 (mergeable rx buffers, num_buffers 1), 20 (v1 with hash). */
const vnetHeaders: Uint8Array[] = [
  new Uint8Array(0),
  fromHex('01 00 0000 0000 2200 1000'),
  fromHex('01 00 0000 0000 2200 1000 0100'),
  fromHex('00 00 0000 0000 0000 0000 0100 00000000 0000 0000'),
];

test('suspectVnetMismatch: both misconfigurations are caught on realistic frames', () => {
  for (const [name, frame] of realistic) {
    const second = encodeQemuFrame(frame);
    const plain = concat(encodeQemuFrame(frame), second);
    const reason = suspectVnetMismatch(plain, true);
    assert.ok(reason !== null && /vnet_hdr_support off/.test(reason) && !reason.includes('\n'), `${name}, plain stream read with vnet: ${reason}`);
    for (const header of vnetHeaders) {
      const withVnet = encodeQemuFrames([{ packet: frame, vnetHeader: header }, { packet: frame, vnetHeader: header }], true);
      const why = suspectVnetMismatch(withVnet, false);
      assert.ok(why !== null && why.includes(`VNET_LEN ${header.length} `), `${name}, vnet ${header.length} stream read without vnet: ${why}`);
      assert.equal(suspectVnetMismatch(withVnet.subarray(0, 43), false), why, 'the first 43 bytes are enough');
    }
  }
});

test('suspectVnetMismatch: never on correct streams, and null when there are too few bytes to judge', () => {
  for (const [name, frame] of realistic) {
    assert.equal(suspectVnetMismatch(encodeQemuFrame(frame), false), null, name);
    for (const header of vnetHeaders) assert.equal(suspectVnetMismatch(encodeQemuFrame(frame, header), true), null, `${name}, vnet ${header.length}`);
  }
  const plain = encodeQemuFrame(realistic[0]![1]);
  for (let n = 0; n < 19; n++) assert.equal(suspectVnetMismatch(plain.subarray(0, n), true), null, `${n} bytes`);
  assert.equal(suspectVnetMismatch(encodeQemuFrame(new Uint8Array(0)), true), null, 'LEN 0');
  assert.equal(suspectVnetMismatch(fromHex('00000010 0000000c'), false), null, 'just the length fields');
});

test('suspectVnetMismatch: no false positive on random correct streams of Ethernet traffic', () => {
  const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });
  const ip = fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 255 })).map(([a, b]) => `10.${a}.${b}.1`);
  const frame = fc.record({ srcMac: mac, dstMac: mac, src: ip, dst: ip, srcPort: fc.nat({ max: 0xffff }), dstPort: fc.nat({ max: 0xffff }), payload: fc.uint8Array({ maxLength: 40 }) })
    .map((f) => emitTcp({ ...f, seq: 1, ack: 1, flags: TCP_ACK }));
  fc.assert(fc.property(frame, fc.uint8Array({ maxLength: VNET_MAX_LEN }), (packet, header) => {
    assert.equal(suspectVnetMismatch(encodeQemuFrame(packet), false), null);
    assert.equal(suspectVnetMismatch(encodeQemuFrame(packet, header), true), null);
  }), { numRuns: 1000 });
});

test('qemuFrameCount: the whole frames in what was encoded, with and without vnet headers', () => {
  const packets = [emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: 'a' }), emitArp({ senderIp: '10.0.0.2', targetIp: '10.0.0.1' }), new Uint8Array(0)];
  for (const vnet of [false, true]) {
    const frames = packets.map((packet) => ({ packet, vnetHeader: vnet ? new Uint8Array(12) : undefined }));
    assert.equal(qemuFrameCount(encodeQemuFrames(frames, vnet), vnet), 3, `vnet ${vnet}`);
    assert.equal(qemuFrameCount(encodeQemuFrames(frames.slice(0, 1), vnet), vnet), 1);
  }
});
