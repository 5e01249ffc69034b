/**
 * Long-running fuzzing of colo-proxy's input handling and comparator core with fast-check; not
 * part of `npm test`. Each target is a property that must hold for ANY input:
 *
 * - `capture`: mutated small pcap/pcapng files (written with createCaptureFileWriter, plus hand-made
 *   blocks, in both byte orders) read with readCaptureBatches at random chunk sizes: frames or a
 *   CaptureFormatError/CaptureFileError, never another exception; a bounded number of sane frames;
 *   the same frames and error as one push into the pure decoder.
 * - `qemu-frames`: random byte streams and valid encodings, vnet on and off, cut into random chunks
 *   for QemuFrameDecoder and QemuPacketDecoder: exactly what a one-line reference model of the
 *   framing says (frames, or the same QemuFramingError), and valid encodings decode to their frames.
 * - `decode`: random bytes under every link type, and mutated emitted frames (TCP/UDP/ICMP/ARP,
 *   IPv4/IPv6, VLAN, IP fragments) into decodeFrame: a Frame or a WireError, never a throw; every
 *   getter of every view readable, no NaN, payload inside the frame; FrameDecoder agrees.
 * - `core`: random operation sequences on createComparator (both modes, small limits; UDP flows
 *   whose guests send from different ports, so translate mode pairs them, and fragments both ways): no throw,
 *   sane counters after every step, one drop per secondary frame, one delivery to the primary per
 *   client frame, releases in the primary's order per flow (until an eviction of held frames), and
 *   after a final checkpointDone every primary frame released exactly once with its own bytes and
 *   tag, nothing held.
 *
 * Usage: npm run fuzz -- [--minutes N] [--target NAME] [--seed S [--path P]]
 *   --minutes N  wall-clock budget, split evenly across the targets run (default 5)
 *   --target T   run only T (capture, qemu-frames, decode, core)
 *   --seed S     fast-check seed: the same seed generates the same inputs, so it reproduces a failure
 *   --path P     with --seed and --target: replay the counterexample at P directly (then shrink it)
 * Exit code 0 when every property held, 1 on a failure (its seed, path and counterexample are
 * printed with the exact command to replay it), 2 for bad flags. A failure found is shrunk for up to
 * a minute past the budget. Synchronous code cannot be interrupted: a true hang shows as a run that
 * never ends. Scratch files go to /tmp/fuzz-work/.
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  ArpView, DEFAULT_CONFIG, EthernetView, Frame, FrameDecoder, HEADER_FIELDS, Icmpv6View, IcmpView, Ipv4View, Ipv6View,
  LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
  TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpView, UdpView, WireError, createComparator, decodeFrame, describeKey,
  emitArp, emitIcmpEcho, emitTcp, emitUdp, flowKey, toHex,
  type Action, type ActionSink, type ComparatorConfig, type HeaderField, type Mismatch, type MismatchReason, type Side,
} from '../compare/index.js';
import { headerSignature } from '../compare/match/headers.js';
import { CaptureFormatError, createCaptureDecoder, type CapturedFrame } from '../proxy/framing/capture.js';
import {
  QemuFrameDecoder, QemuFramingError, QemuPacketDecoder, VNET_MAX_LEN, encodeQemuFrame, encodeQemuFrames, type QemuFrame,
} from '../proxy/framing/qemu-frames.js';
import { CaptureFileError, createCaptureFileWriter, readCaptureBatches } from '../proxy/ports/capture-file.js';
import { CLIENT, GUEST, Twins } from '../test/support/twins.js';
import { split as ipFragments } from '../test/support/fragments.js';
import { concat, pcapngBlock, split, value as frameValue } from '../test/proxy/framing/support.js';

const WORK = '/tmp/fuzz-work';
/** A target's property, sync or async; its values are only printed. */
type AnyProperty = fc.IRawProperty<any>;
const SHRINK_MS = 60_000;

// --- shared: mutations and helpers ----------------------------------------------------------

/** One edit of a byte string; positions are taken modulo the length when applied, so they shrink well. */
type Mutation =
  | { m: 'flip'; at: number; bit: number }
  | { m: 'set'; at: number; value: number }
  | { m: 'truncate'; at: number }
  | { m: 'insert'; at: number; bytes: Uint8Array }
  | { m: 'delete'; at: number; count: number }
  /** A 16- or 32-bit field (a length, most likely) overwritten with an interesting value. */
  | { m: 'field'; at: number; width: 2 | 4; value: number; le: boolean };

const INTERESTING = [0, 1, 2, 3, 4, 7, 8, 11, 12, 16, 20, 24, 28, 31, 32, 40, 60, 0x7f, 0x80, 0xff, 0x100, 0xfff8, 0xffff,
  0x10000, 69632, 69633, 262144, 262145, 64 * 1024 * 1024, 64 * 1024 * 1024 + 4, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ m: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }), weight: 3 },
  { arbitrary: fc.record({ m: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }), weight: 2 },
  { arbitrary: fc.record({ m: fc.constant('truncate' as const), at: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ m: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }), weight: 1 },
  { arbitrary: fc.record({ m: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 12 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      m: fc.constant('field' as const), at: fc.nat(), width: fc.constantFrom(2 as const, 4 as const),
      value: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat(0xffff)), le: fc.boolean(),
    }),
    weight: 3,
  },
);

function mutate(input: Uint8Array, edits: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = input.slice();
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + (e.m === 'insert' || e.m === 'truncate' ? 1 : 0));
    switch (e.m) {
      case 'flip': if (b.length > 0) b[at] = b[at]! ^ (1 << e.bit); break;
      case 'set': if (b.length > 0) b[at] = e.value; break;
      case 'truncate': b = b.slice(0, at); break;
      case 'insert': b = concat(b.subarray(0, at), e.bytes, b.subarray(at)); break;
      case 'delete': b = concat(b.subarray(0, at), b.subarray(at + e.count)); break;
      case 'field': {
        // Aligned to the field width: capture headers keep their lengths on 4-byte boundaries.
        const p = at - (at % e.width);
        if (p + e.width > b.length) break;
        for (let i = 0; i < e.width; i++) b[p + (e.le ? i : e.width - 1 - i)] = (e.value >>> (8 * i)) & 0xff;
        break;
      }
    }
  }
  return b;
}

/** Cut positions (any naturals) turned into chunks of `b`, empty chunks included. */
function chunked(b: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  return split(b, cuts.map((c) => c % (b.length + 1)).sort((x, y) => x - y));
}

/** A property violated (as opposed to an exception from the code under test, which is one too). */
class Violation extends Error {
  override name = 'Violation';
}

function fail(message: string): never {
  throw new Violation(message);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

// --- target: capture ------------------------------------------------------------------------

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const le16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];

/** Reverses `width` bytes at `at` in place (one field of a little-endian file turned big-endian). */
function swapField(b: Uint8Array, at: number, width: number): void {
  b.subarray(at, at + width).reverse();
}

/** A little-endian classic pcap as the same file in big-endian. */
function bigEndianPcap(input: Uint8Array): Uint8Array {
  const b = input.slice();
  for (const [at, w] of [[0, 4], [4, 2], [6, 2], [8, 4], [12, 4], [16, 4], [20, 4]] as const) swapField(b, at, w);
  for (let p = 24; p + 16 <= b.length;) {
    const incl = new DataView(b.buffer).getUint32(p + 8, true);
    for (let i = 0; i < 16; i += 4) swapField(b, p + i, 4);
    p += 16 + incl;
  }
  return b;
}

/** A little-endian pcapng (one section; SHB, IDB, EPB, SPB, OPB and unknown blocks) as the same file in big-endian. */
function bigEndianPcapng(input: Uint8Array): Uint8Array {
  const b = input.slice();
  const view = new DataView(input.buffer, input.byteOffset);
  const options = (from: number, to: number, eightByteCodes: number[]): void => {
    for (let p = from; p + 4 <= to;) {
      const code = view.getUint16(p, true);
      const n = view.getUint16(p + 2, true);
      swapField(b, p, 2);
      swapField(b, p + 2, 2);
      if (eightByteCodes.includes(code) && n === 8) swapField(b, p + 4, 8);
      if (code === 0) return;
      p += 4 + ((n + 3) & ~3);
    }
  };
  for (let p = 0; p + 12 <= b.length;) {
    const type = view.getUint32(p, true);
    const length = view.getUint32(p + 4, true);
    const end = p + length - 4;
    swapField(b, p, 4);
    swapField(b, p + 4, 4);
    swapField(b, end, 4);
    if (type === 0x0a0d0d0a) {
      for (const [at, w] of [[8, 4], [12, 2], [14, 2], [16, 8]] as const) swapField(b, p + at, w);
      options(p + 24, end, []);
    } else if (type === 1) {
      for (const [at, w] of [[8, 2], [10, 2], [12, 4]] as const) swapField(b, p + at, w);
      options(p + 16, end, [14]);
    } else if (type === 6 || type === 2) {
      const fields = type === 6 ? [[8, 4]] : [[8, 2], [10, 2]];
      for (const [at, w] of [...fields, [12, 4], [16, 4], [20, 4], [24, 4]]) swapField(b, p + at!, w!);
      options(p + 28 + ((view.getUint32(p + 20, true) + 3) & ~3), end, []);
    } else if (type === 3) {
      swapField(b, p + 8, 4);
    }
    p += length;
  }
  return b;
}

/** Hand-made pcapng blocks the writer never emits: an IDB with a power-of-2 resolution and an offset, its EPB, an SPB, an OPB, an unknown block. */
function extraPcapngBlocks(iface: number, data: Uint8Array): Uint8Array {
  const padded = concat(data, new Uint8Array((4 - (data.length % 4)) % 4));
  const idb = pcapngBlock(1, Uint8Array.from([
    ...le16(LINKTYPE_ETHERNET), 0, 0, ...le32(0),
    ...le16(9), ...le16(1), 0x83, 0, 0, 0, // if_tsresol 2^-3 s
    ...le16(14), ...le16(8), ...le32(0xfffffffb), ...le32(0xffffffff), // if_tsoffset -5 s
    ...le16(1), ...le16(3), 0x68, 0x69, 0x21, 0, // opt_comment "hi!"
    0, 0, 0, 0,
  ]));
  const epb = pcapngBlock(6, Uint8Array.from([...le32(iface), ...le32(1), ...le32(12345), ...le32(data.length), ...le32(data.length + 4), ...padded]));
  const spb = pcapngBlock(3, Uint8Array.from([...le32(data.length), ...padded]));
  const opb = pcapngBlock(2, Uint8Array.from([...le16(0), ...le16(0), ...le32(0), ...le32(999), ...le32(data.length), ...le32(data.length), ...padded]));
  const unknown = pcapngBlock(0x0bad, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  return concat(idb, epb, spb, opb, unknown);
}

/** Small valid capture files: writer-made in both formats, extended by hand, and their big-endian twins. */
async function captureBases(): Promise<Uint8Array[]> {
  const frames = [
    build.out({ seq: 1000, payload: 'hello' }),
    build.udp({ payload: 'x' }),
    emitIcmpEcho({ src: 'fd00::2', dst: 'fd00::1', id: 7, sequence: 1, payload: 'abc', vlan: [5] }),
    Uint8Array.of(1, 2, 3), // shorter than any header: the reader does not care
  ];
  const write = async (format: 'pcap' | 'pcapng', nanosecond: boolean): Promise<Uint8Array> => {
    const path = `${WORK}/base-${format}-${nanosecond}.bin`;
    const w = await createCaptureFileWriter(path, format, { nanosecond });
    w.addInterface(LINKTYPE_ETHERNET, { snaplen: 1000, tsresol: nanosecond ? 9 : 6, name: 'eth0' });
    if (format === 'pcapng') w.addInterface(LINKTYPE_RAW, { snaplen: 0 });
    for (const [i, data] of frames.entries()) {
      await w.write({ timeNs: 1_700_000_000_123_456_789n + BigInt(i) * 1_000_000n, data, originalLength: data.length + (i % 2), comment: i === 0 ? 'first' : undefined });
    }
    await w.close();
    return new Uint8Array(readFileSync(path));
  };
  const pcapNs = await write('pcap', true);
  const pcapUs = await write('pcap', false);
  const pcapng = concat(await write('pcapng', true), extraPcapngBlocks(2, frames[0]!));
  const twoSections = concat(pcapng, await write('pcapng', false));
  const bases = [pcapNs, pcapUs, pcapng, twoSections, bigEndianPcap(pcapNs), bigEndianPcap(pcapUs), bigEndianPcapng(pcapng)];
  // The harness's own check: every base decodes cleanly, and the big-endian twins to the same frames.
  const decodeAll = (b: Uint8Array): string => {
    const d = createCaptureDecoder();
    const out = d.push(b);
    d.end();
    return JSON.stringify(out.map(frameValue), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  };
  for (const [le, be] of [[0, 4], [1, 5], [2, 6]] as const) {
    if (decodeAll(bases[le]!) !== decodeAll(bases[be]!)) throw new Error(`harness: big-endian base ${be} differs from ${le}`);
  }
  decodeAll(twoSections);
  return bases;
}

/** What a capture read produced, comparable across chunkings. */
interface CaptureOutcome {
  frames: string[];
  error: { code: string; offset: number } | undefined;
}

function describeCapturedFrame(f: CapturedFrame, fileLength: number): string {
  if (!(f.data instanceof Uint8Array) || f.data.length > fileLength) fail(`frame data of ${f.data?.length} bytes from a ${fileLength}-byte file`);
  if (!Number.isInteger(f.fileOffset) || f.fileOffset < 0 || f.fileOffset >= fileLength) fail(`frame fileOffset ${f.fileOffset} outside the ${fileLength}-byte file`);
  if (!Number.isFinite(f.seconds) || !Number.isInteger(f.nanoseconds) || f.nanoseconds < 0 || f.nanoseconds >= 1e9) {
    fail(`frame time ${f.seconds} s + ${f.nanoseconds} ns is not a time`);
  }
  if (f.comment !== undefined && typeof f.comment !== 'string') fail(`frame comment ${String(f.comment)}`);
  const v = frameValue(f);
  return `${v.interfaceId}/${v.linkType}/${v.timeNs}/${v.originalLength}/${v.fileOffset}/${v.comment}/${v.data}`;
}

function captureError(e: unknown): { code: string; offset: number } {
  if (e instanceof Violation) throw e;
  if (e instanceof CaptureFormatError) return { code: e.code, offset: e.offset };
  if (e instanceof CaptureFileError) return { code: e.code, offset: -1 };
  return fail(`capture reader threw something other than CaptureFormatError/CaptureFileError: ${errorText(e)}\n${e instanceof Error ? e.stack : ''}`);
}

/** The reference: the pure decoder given the whole file in one push. */
function decodeWhole(b: Uint8Array): CaptureOutcome {
  const frames: string[] = [];
  const d = createCaptureDecoder();
  try {
    for (const f of d.push(b)) frames.push(describeCapturedFrame(f, b.length));
    d.end();
    return { frames, error: undefined };
  } catch (e) {
    return { frames, error: captureError(e) };
  }
}

async function readFile(path: string, length: number, chunkSize: number): Promise<CaptureOutcome> {
  const frames: string[] = [];
  try {
    for await (const batch of readCaptureBatches(path, { chunkSize })) {
      if (batch.length === 0) fail('readCaptureBatches yielded an empty batch');
      for (const f of batch) frames.push(describeCapturedFrame(f, length));
      // Every record or block is at least 12 bytes: more frames than that is a loop.
      if (frames.length > length / 12 + 1) fail(`${frames.length} frames from a ${length}-byte file`);
    }
    return { frames, error: undefined };
  } catch (e) {
    return { frames, error: captureError(e) };
  }
}

async function captureTarget(): Promise<AnyProperty> {
  mkdirSync(WORK, { recursive: true });
  const bases = await captureBases();
  const path = `${WORK}/capture-${process.pid}.bin`;
  return fc.asyncProperty(
    fc.nat(bases.length - 1),
    fc.array(mutationArb, { minLength: 1, maxLength: 6 }),
    fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(1 << 20)),
    async (which, edits, chunkSize) => {
      const bytes = mutate(bases[which]!, edits);
      writeFileSync(path, bytes);
      const got = await readFile(path, bytes.length, chunkSize);
      const want = decodeWhole(bytes);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        fail(`reading in ${chunkSize}-byte chunks differs from one push:\n  file:  ${JSON.stringify(got).slice(0, 600)}\n  whole: ${JSON.stringify(want).slice(0, 600)}`);
      }
      if (got.error && got.frames.some((f) => Number(f.split('/')[4]) >= got.error!.offset) && got.error.offset >= 0) {
        fail(`a frame at or past the damage at ${got.error.offset} (${got.error.code}) was delivered`);
      }
    },
  );
}

// --- target: qemu-frames --------------------------------------------------------------------

type QemuPiece =
  | { k: 'frame'; packet: Uint8Array; vnet: Uint8Array }
  | { k: 'raw'; bytes: Uint8Array }
  | { k: 'len'; len: number; vnetLen: number };

const qemuPieceArb: fc.Arbitrary<QemuPiece> = fc.oneof(
  {
    arbitrary: fc.record({ k: fc.constant('frame' as const), packet: fc.uint8Array({ maxLength: 100 }), vnet: fc.uint8Array({ maxLength: VNET_MAX_LEN }) }),
    weight: 2,
  },
  { arbitrary: fc.record({ k: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 12 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      k: fc.constant('len' as const),
      len: fc.oneof(fc.nat(40), fc.constantFrom(69632, 69633, 0x7fffffff, 0xffffffff)),
      vnetLen: fc.oneof(fc.nat(24), fc.constant(0xffffffff)),
    }),
    weight: 1,
  },
);

function u32be(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function qemuStream(pieces: readonly QemuPiece[], vnet: boolean): Uint8Array {
  return concat(...pieces.map((p) => {
    if (p.k === 'raw') return p.bytes;
    if (p.k === 'len') return Uint8Array.from(vnet ? [...u32be(p.len), ...u32be(p.vnetLen)] : u32be(p.len));
    return encodeQemuFrame(p.packet, vnet ? p.vnet : undefined);
  }));
}

interface QemuOutcome {
  frames: string[];
  error: string | undefined;
}

const frameText = (packet: Uint8Array, vnetHeader: Uint8Array, offset: number): string => `${offset}:${toHex(vnetHeader)}:${toHex(packet)}`;

/** The framing as COLO-REFERENCE §2 states it, read straight through. */
function qemuModel(b: Uint8Array, vnet: boolean, maxFrame: number): QemuOutcome {
  const frames: string[] = [];
  const u32 = (at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  for (let p = 0; p < b.length;) {
    if (b.length - p < 4) return { frames, error: `qemu.truncated@${p}` };
    const len = u32(p);
    if (len > maxFrame) return { frames, error: `qemu.frame_too_long@${p}` };
    let v = 0;
    if (vnet) {
      if (b.length - p < 8) return { frames, error: `qemu.truncated@${p}` };
      v = u32(p + 4);
      if (v > VNET_MAX_LEN) return { frames, error: `qemu.vnet_too_long@${p + 4}` };
      if (v > len) return { frames, error: `qemu.vnet_exceeds_frame@${p + 4}` };
    }
    const h = vnet ? 8 : 4;
    if (b.length - p - h < len) return { frames, error: `qemu.truncated@${p}` };
    frames.push(frameText(b.subarray(p + h + v, p + h + len), b.subarray(p + h, p + h + v), p));
    p += h + len;
  }
  return { frames, error: undefined };
}

/** Feeds `chunks` to both QEMU decoders; frames are read only after the last push, so aliasing would show. */
function qemuDecode(chunks: Uint8Array[], vnet: boolean, maxFrame: number | undefined): QemuOutcome {
  const options = maxFrame === undefined ? { vnetHeader: vnet } : { vnetHeader: vnet, maxFrame };
  const d = new QemuFrameDecoder(options);
  const pd = new QemuPacketDecoder(options);
  const got: QemuFrame[] = [];
  const packets: string[] = [];
  let error: QemuFramingError | undefined;
  const own = (e: unknown): QemuFramingError => {
    if (e instanceof Violation) throw e;
    return e instanceof QemuFramingError ? e : fail(`QEMU decoder threw ${errorText(e)}\n${e instanceof Error ? e.stack : ''}`);
  };
  let packetError: string | undefined;
  for (const c of chunks) {
    try {
      got.push(...d.push(c));
    } catch (e) {
      error = own(e);
      break;
    }
  }
  // The packet decoder's output is only valid per push (headers); record it as it comes.
  for (const c of chunks) {
    try {
      const ps = pd.push(c);
      if (vnet && pd.vnetHeaders.length !== ps.length) fail(`QemuPacketDecoder: ${ps.length} packets but ${pd.vnetHeaders.length} vnet headers`);
      ps.forEach((p, i) => packets.push(`${toHex(vnet ? pd.vnetHeaders[i]! : new Uint8Array(0))}:${toHex(p)}`));
    } catch (e) {
      packetError = `${own(e).code}@${own(e).offset}`;
      break;
    }
  }
  if (packetError === undefined) {
    try {
      pd.end();
    } catch (e) {
      packetError = `${own(e).code}@${own(e).offset}`;
    }
  }
  if (error === undefined) {
    try {
      d.end();
    } catch (e) {
      error = own(e);
    }
  }
  if (error !== undefined) {
    // Dead after an error: every later call throws the same error.
    let again: unknown;
    try {
      d.end();
    } catch (e) {
      again = e;
    }
    if (again !== error) fail(`a failed QemuFrameDecoder's end() again gave ${errorText(again)} instead of its error`);
  }
  const frames = got.map((f) => frameText(f.packet, f.vnetHeader, f.offset));
  const errorKey = error === undefined ? undefined : `${error.code}@${error.offset}`;
  const expectPackets = got.map((f) => `${toHex(f.vnetHeader)}:${toHex(f.packet)}`);
  if (JSON.stringify(packets) !== JSON.stringify(expectPackets) || packetError !== errorKey) {
    fail(`QemuPacketDecoder differs from QemuFrameDecoder: ${JSON.stringify({ packets, packetError }).slice(0, 400)} vs ${JSON.stringify({ expectPackets, errorKey }).slice(0, 400)}`);
  }
  return { frames, error: errorKey };
}

function qemuTarget(): AnyProperty {
  const anyStream = fc.record({ valid: fc.constant(false as const), pieces: fc.array(qemuPieceArb, { maxLength: 8 }) });
  const validStream = fc.record({
    valid: fc.constant(true as const),
    frames: fc.array(fc.record({ packet: fc.uint8Array({ maxLength: 200 }), vnet: fc.uint8Array({ maxLength: VNET_MAX_LEN }) }), { maxLength: 8 }),
  });
  return fc.property(
    fc.boolean(),
    fc.oneof(anyStream, validStream),
    fc.option(fc.constantFrom(0, 1, 16, 100, 69632, 0xffffffff), { nil: undefined, freq: 2 }),
    fc.array(fc.nat(), { maxLength: 10 }),
    (vnet, input, maxFrame, cuts) => {
      if (input.valid) {
        const frames = input.frames.map((f) => ({ packet: f.packet, vnetHeader: vnet ? f.vnet : undefined }));
        const stream = encodeQemuFrames(frames, vnet);
        const oneByOne = concat(...frames.map((f) => encodeQemuFrame(f.packet, f.vnetHeader)));
        if (!sameBytes(stream, oneByOne)) fail('encodeQemuFrames differs from encodeQemuFrame one by one');
        const got = qemuDecode(chunked(stream, cuts), vnet, undefined);
        let at = 0;
        const want = frames.map((f) => {
          const s = frameText(f.packet, f.vnetHeader ?? new Uint8Array(0), at);
          at += (vnet ? 8 + f.vnetHeader!.length : 4) + f.packet.length;
          return s;
        });
        if (got.error !== undefined || JSON.stringify(got.frames) !== JSON.stringify(want)) {
          fail(`a valid encoding decoded to ${JSON.stringify(got).slice(0, 500)}, not its ${want.length} frames`);
        }
        return;
      }
      const stream = qemuStream(input.pieces, vnet);
      const got = qemuDecode(chunked(stream, cuts), vnet, maxFrame);
      const want = qemuModel(stream, vnet, maxFrame ?? 69632);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        fail(`decoded ${JSON.stringify(got).slice(0, 500)}\n  model  ${JSON.stringify(want).slice(0, 500)}`);
      }
    },
  );
}

// --- target: decode -------------------------------------------------------------------------

/** A valid frame to start from, built with the emitters (and cut into IP fragments). */
type FrameSpec = {
  kind: 'tcp' | 'udp' | 'icmp' | 'arp';
  v6: boolean;
  vlan: number[];
  payload: Uint8Array;
  options: boolean;
  padTo: number;
  /** Cut into IP fragments at these (normalised) offsets and take fragment `part`; none when empty. */
  cuts: number[];
  part: number;
};

const frameSpecArb: fc.Arbitrary<FrameSpec> = fc.record({
  kind: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const, 'arp' as const),
  v6: fc.boolean(),
  vlan: fc.array(fc.nat(4095), { maxLength: 3 }),
  payload: fc.uint8Array({ maxLength: 64 }),
  options: fc.boolean(),
  padTo: fc.constantFrom(0, 0, 60, 100),
  cuts: fc.array(fc.nat(), { maxLength: 3 }),
  part: fc.nat(),
});

function buildSpec(s: FrameSpec): Uint8Array {
  const ip = s.v6 ? { src: 'fd00::2', dst: 'fd00::1' } : { src: GUEST, dst: CLIENT };
  const common = { ...ip, vlan: s.vlan, payload: s.payload, padTo: s.padTo, dontFragment: false, ipId: 77 };
  let whole: Uint8Array;
  if (s.kind === 'tcp') {
    whole = emitTcp({
      ...common, srcPort: 80, dstPort: 40000, seq: 12345, ack: 67890, flags: TCP_ACK | TCP_PSH,
      options: s.options ? { mss: 1460, sackPermitted: true, timestamp: [1, 2], windowScale: 7, sack: [[1, 2], [3, 4]] } : {},
    });
  } else if (s.kind === 'udp') {
    whole = emitUdp({ ...common, srcPort: 53, dstPort: 5353 });
  } else if (s.kind === 'icmp') {
    whole = emitIcmpEcho({ ...common, id: 7, sequence: 9 });
  } else {
    return emitArp({ senderIp: GUEST, targetIp: CLIENT, vlan: s.vlan, padTo: s.padTo });
  }
  // Fragments: the helper measures the IP packet by its length field, so padding is left out.
  if (s.cuts.length === 0 || s.padTo > 0) return whole;
  const ipPayload = whole.length - 14 - 4 * s.vlan.length - (s.v6 ? 40 : 20);
  const slots = Math.floor((ipPayload - 1) / 8);
  if (slots < 1) return whole;
  const parts = ipFragments(whole, [...new Set(s.cuts.map((c) => 8 * (1 + (c % slots))))].sort((a, b) => a - b));
  return parts[s.part % parts.length]!;
}

const LINK_TYPES = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, 147];

/** Every getter and public field of `view`, checked and printed; methods called with in-range and out-of-range indices. */
function readView(view: object, where: string): string {
  const out: string[] = [];
  const check = (name: string, v: unknown): void => {
    if (typeof v === 'number' && !Number.isInteger(v)) fail(`${where}.${name} is ${v}`);
    if (v === undefined) fail(`${where}.${name} is undefined`);
    out.push(`${name}=${v instanceof Uint8Array ? toHex(v) : String(v)}`);
  };
  for (const [name, v] of Object.entries(view)) if (name !== 'bytes' && name !== 'mssAt' && name !== 'windowScaleAt') check(name, v);
  for (let p = Object.getPrototypeOf(view) as object | null; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) {
      if (d.get !== undefined) check(name, (view as Record<string, unknown>)[name]);
    }
  }
  if (view instanceof TcpView) {
    for (let i = -1; i <= 4; i++) check(`sack${i}`, `${view.sackLeft(i)}-${view.sackRight(i)}`);
    if (view.offset + view.segmentLength > view.bytes.length) fail(`${where}: TCP segment ends at ${view.offset + view.segmentLength}, past the frame (${view.bytes.length})`);
    view.verifyChecksum(0);
  }
  if (view instanceof UdpView) {
    if (view.offset + view.length > view.bytes.length) fail(`${where}: UDP datagram ends past the frame`);
    view.verifyChecksum(0);
  }
  if (view instanceof IcmpView) view.verifyChecksum();
  if (view instanceof Icmpv6View) view.verifyChecksum(0);
  if (view instanceof Ipv4View) view.verifyChecksum();
  if (view instanceof EthernetView) for (let i = 0; i < view.tagCount; i++) check(`tag${i}`, `${view.tagProtocol(i)}/${view.vlanId(i)}/${view.priority(i)}`);
  return out.join(' ');
}

/** A decode result read in full (throwing on anything unreadable or out of bounds), as text. */
function readDecoded(r: Frame | WireError, bytes: Uint8Array, how: string): string {
  if (r instanceof WireError) {
    if (typeof r.code !== 'string' || !r.code.startsWith('decode.') || !Number.isInteger(r.at)) fail(`${how}: odd WireError ${r.code} at ${r.at}`);
    return `error ${r.code} at ${r.at}`;
  }
  if (!(r instanceof Frame)) fail(`${how} returned neither a Frame nor a WireError: ${String(r)}`);
  if (r.bytes !== bytes) fail(`${how}: Frame.bytes is not the input`);
  if (r.payloadOffset < 0 || r.payloadLength < 0 || r.payloadOffset + r.payloadLength > bytes.length) {
    fail(`${how}: payload [${r.payloadOffset}, +${r.payloadLength}) outside the ${bytes.length}-byte frame`);
  }
  const parts = [readView(r, `${how}.frame`)];
  for (const [name, v] of [['link', r.link], ['network', r.network], ['transport', r.transport]] as const) {
    if (v !== null) parts.push(`${name}: ${readView(v, `${how}.${name}`)}`);
  }
  if (r.network !== null && !(r.network instanceof Ipv4View || r.network instanceof Ipv6View || r.network instanceof ArpView)) fail(`${how}: odd network view`);
  parts.push(describeKey(flowKey(r, true)), describeKey(flowKey(r, false, 1234)), headerSignature(r, HEADER_FIELDS));
  return parts.join('\n');
}

const reusedDecoder = new FrameDecoder();

function decodeTarget(): AnyProperty {
  const random = fc.record({ bytes: fc.uint8Array({ maxLength: 160 }), linkType: fc.constantFrom(...LINK_TYPES) });
  const mutated = fc.record({ spec: frameSpecArb, edits: fc.array(mutationArb, { maxLength: 4 }) });
  return fc.property(fc.oneof(random, mutated), (input) => {
    const bytes = 'bytes' in input ? input.bytes : mutate(buildSpec(input.spec), input.edits);
    const linkType = 'bytes' in input ? input.linkType : LINKTYPE_ETHERNET;
    let fresh: string;
    let reused: string;
    try {
      fresh = readDecoded(decodeFrame(bytes, linkType), bytes, 'decodeFrame');
      reused = readDecoded(reusedDecoder.decode(bytes, linkType), bytes, 'FrameDecoder');
    } catch (e) {
      throw new Error(`${errorText(e)} (frame ${toHex(bytes)}, link type ${linkType})`, { cause: e });
    }
    if (fresh !== reused) fail(`FrameDecoder and decodeFrame disagree on ${toHex(bytes)}:\n  decodeFrame:  ${fresh}\n  FrameDecoder: ${reused}`);
  });
}

// --- target: core ---------------------------------------------------------------------------

/** A frame for the core: a few flows of each kind, sequence numbers near a per-flow base so segments overlap. */
type CoreFrame =
  | { t: 'tcp'; flow: number; out: boolean; off: number; randomSeq: number | null; ackOff: number; flags: number; payload: string; v6: boolean; vlan: boolean }
  /**
   * `svmPort`: the secondary sends from the PVM's port, from another port (a guest-opened flow;
   * translate mode pairs them), or from the PVM's port of the next flow (the guests' ports crossed).
   */
  | { t: 'udp'; flow: number; out: boolean; payload: string; v6: boolean; svmPort: 'same' | 'other' | 'crossed' }
  | { t: 'icmp'; id: number; reply: boolean; payload: string; v6: boolean }
  /** A fragment of a guest's datagram (`out`) or of the client's to the guest. */
  | { t: 'frag'; flow: number; out: boolean; payload: string; cut: number; part: number; ipId: number }
  | { t: 'garbage'; bytes: Uint8Array }
  | { t: 'mutated'; frame: CoreFrame; edits: Mutation[] };

type CoreOp =
  | { op: 'ingest'; side: Side; frame: CoreFrame; dt: number }
  /** Both guests send this output (the secondary in its own sequence space, maybe with another payload), in either order. */
  | { op: 'pair'; frame: CoreFrame; secondaryPayload: string | null; secondaryFirst: boolean; dt: number }
  | { op: 'advance'; dt: number }
  | { op: 'checkpointDone'; dt: number };

/** Null five times in six, else a value of `arb`. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: 5 }, { arbitrary: arb, weight: 1 });
}

const TCP_FLAG_SETS = [TCP_ACK, TCP_ACK | TCP_PSH, TCP_SYN, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK, 0, 0xff];
const payloadArb = fc.string({ unit: fc.constantFrom('a', 'b'), maxLength: 10 });

const coreFrameBase: fc.Arbitrary<CoreFrame> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant('tcp' as const), flow: fc.nat(2), out: fc.boolean(), off: fc.nat(40),
      randomSeq: rarely(fc.nat({ max: 0xffffffff })), ackOff: fc.nat(40),
      flags: fc.constantFrom(...TCP_FLAG_SETS), payload: payloadArb, v6: fc.boolean(), vlan: fc.constantFrom(false, false, false, false, true),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ t: fc.constant('udp' as const), flow: fc.nat(2), out: fc.boolean(), payload: payloadArb, v6: fc.boolean(), svmPort: fc.constantFrom('same' as const, 'other' as const, 'crossed' as const) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('icmp' as const), id: fc.nat(2), reply: fc.boolean(), payload: payloadArb, v6: fc.boolean() }), weight: 1 },
  {
    arbitrary: fc.record({
      t: fc.constant('frag' as const), flow: fc.nat(2), out: fc.boolean(), payload: fc.string({ unit: fc.constantFrom('a', 'b'), minLength: 9, maxLength: 40 }),
      cut: fc.nat(), part: fc.nat(1), ipId: fc.nat(2),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ t: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 80 }) }), weight: 1 },
);
const coreFrameArb: fc.Arbitrary<CoreFrame> = fc.oneof(
  { arbitrary: coreFrameBase, weight: 9 },
  { arbitrary: fc.record({ t: fc.constant('mutated' as const), frame: coreFrameBase, edits: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }), weight: 1 },
);

const dtArb = fc.constantFrom(0, 0, 0, 1, 5, 50, 1000, 3001, 20_000, 400_000);
const coreOpArb: fc.Arbitrary<CoreOp> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('ingest' as const), side: fc.constantFrom<Side>('client', 'primary', 'secondary'), frame: coreFrameArb, dt: dtArb }), weight: 6 },
  {
    arbitrary: fc.record({
      op: fc.constant('pair' as const), frame: coreFrameArb, secondaryPayload: rarely(payloadArb), secondaryFirst: fc.boolean(), dt: dtArb,
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ op: fc.constant('advance' as const), dt: dtArb }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('checkpointDone' as const), dt: dtArb }), weight: 1 },
);

const coreConfigArb = fc.record({
  mode: fc.constantFrom('pre-translated' as const, 'translate' as const),
  // Not the default 65536 too often: lru-cache preallocates for it, which would be most of a run's time.
  maxConnections: fc.constantFrom(1, 2, 3, 1000, 1000, 1000),
  maxQueueFrames: fc.constantFrom(1, 4, 1024, 1024),
  maxQueueBytes: fc.constantFrom(200, 16 * 1024 * 1024, 16 * 1024 * 1024),
  compareTimeoutMs: fc.constantFrom(1, 50, 3000),
  scanIntervalMs: fc.constantFrom(1, 100, 1000),
  idleTimeoutMs: fc.constantFrom(1, 1000, 300_000),
  closedLingerMs: fc.constantFrom(0, 100, 10_000),
  compareHeaders: fc.subarray([...HEADER_FIELDS] as HeaderField[]),
  framesImmutable: fc.boolean(),
}, { requiredKeys: ['mode', 'maxConnections'] });

const FLOW_ISN = [1000, 0xfffffff0, 0x80000000];
const CLIENT_ISN = 5000;
/** The secondary's ISN differs by this much: its SYN-ACKs always, its data too in translate mode. */
const SVM_DELTA = 0x12345678;

/** Builds frames only (Twins.out / Twins.in are pure). */
const build = new Twins();

function coreBytes(f: CoreFrame, secondary: boolean, mode: ComparatorConfig['mode']): Uint8Array {
  const addr = (v6: boolean, out: boolean) => {
    const [g, c] = v6 ? ['fd00::2', 'fd00::1'] : [GUEST, CLIENT];
    return out ? { src: g, dst: c } : { src: c, dst: g };
  };
  switch (f.t) {
    case 'tcp': {
      const fields = { ...addr(f.v6, f.out), vlan: f.vlan ? [10] : [], flags: f.flags, payload: f.payload };
      if (f.out) {
        const synAck = (f.flags & TCP_SYN) !== 0;
        let seq = f.randomSeq ?? (FLOW_ISN[f.flow]! + (synAck ? 0 : 1 + f.off)) >>> 0;
        if (secondary && (mode === 'translate' || synAck)) seq = (seq + SVM_DELTA) >>> 0;
        return build.out({ ...fields, srcPort: 80 + f.flow, seq, ack: CLIENT_ISN + f.ackOff });
      }
      return build.in({ ...fields, dstPort: 80 + f.flow, seq: f.randomSeq ?? CLIENT_ISN + f.off, ack: (FLOW_ISN[f.flow]! + f.ackOff) >>> 0 });
    }
    case 'udp': {
      const svm = secondary && f.out ? f.svmPort : 'same';
      const guestPort = svm === 'other' ? 1053 + f.flow : svm === 'crossed' ? 53 + ((f.flow + 1) % 3) : 53 + f.flow;
      return emitUdp({ ...addr(f.v6, f.out), srcPort: f.out ? guestPort : 5353, dstPort: f.out ? 5353 : guestPort, payload: f.payload });
    }
    case 'icmp':
      return emitIcmpEcho({ ...addr(f.v6, true), id: f.id, sequence: 1, reply: f.reply, payload: f.payload });
    case 'frag': {
      const ends = f.out ? { src: GUEST, dst: CLIENT, srcPort: 53 + f.flow, dstPort: 5353 } : { src: CLIENT, dst: GUEST, srcPort: 5353, dstPort: 53 + f.flow };
      const whole = emitUdp({ ...ends, payload: f.payload, dontFragment: false, ipId: f.ipId });
      const cut = 8 * (1 + (f.cut % Math.floor((8 + f.payload.length - 1) / 8)));
      return ipFragments(whole, [cut])[f.part]!;
    }
    case 'garbage':
      return f.bytes.slice();
    case 'mutated':
      return mutate(coreBytes(f.frame, secondary, mode), f.edits);
  }
}

/** Runs one operation sequence and checks the invariants; throws on the first violation. */
function runCore(config: Partial<ComparatorConfig>, tagged: boolean, useSink: boolean, ops: readonly CoreOp[]): void {
  const c = createComparator(config);
  const mode = config.mode ?? DEFAULT_CONFIG.mode;
  /** Primary frames ingested and not yet released, by id, with a copy of their bytes. */
  const outstanding = new Map<number, Uint8Array>();
  /** The same, by hex, for untagged runs: hex -> ids. */
  const byHex = new Map<string, number[]>();
  /** Flow of each primary frame (null for fragments and undecodable frames), and the last id released per flow. */
  const flowOf = new Map<number, string | null>();
  const lastReleased = new Map<string, number>();
  let primaries = 0;
  let releases = 0;
  let now = 0;
  const history: string[] = [];

  const collect = (call: (sink: ActionSink) => void, arrayCall: () => Action[]): Action[] => {
    if (!useSink) return arrayCall();
    const got: Action[] = [];
    call({
      release: (frame, tag) => got.push({ kind: 'release', frame, tag }),
      deliver: (to, frame) => got.push({ kind: 'deliver', to, frame }),
      drop: (frame) => got.push({ kind: 'drop', frame }),
      mismatch: (flow: string, mismatch: Mismatch) => got.push({ kind: 'mismatch', flow, mismatch }),
      checkpoint: (reason: MismatchReason, flow: string) => got.push({ kind: 'checkpoint', reason, flow }),
      event: (code, flow, detail) => got.push({ kind: 'event', code, flow, detail }),
    });
    return got;
  };
  const released = (actions: Action[]): void => {
    for (const a of actions) {
      if (a.kind !== 'release') continue;
      releases++;
      const hex = toHex(a.frame);
      let id: number;
      if (tagged) {
        if (typeof a.tag !== 'number' || !outstanding.has(a.tag)) fail(`released tag ${String(a.tag)}, not a primary frame still held (released twice, or never ingested)`);
        id = a.tag;
        if (!sameBytes(a.frame, outstanding.get(id)!)) fail(`primary frame #${id} released with other bytes: ${hex} instead of ${toHex(outstanding.get(id)!)}`);
      } else {
        if (a.tag !== undefined) fail(`untagged frame released with tag ${String(a.tag)}`);
        const ids = byHex.get(hex);
        if (ids === undefined || ids.length === 0) fail(`released ${hex}, which matches no primary frame still held (released twice, altered, or never ingested)`);
        id = ids.shift()!;
      }
      outstanding.delete(id);
      // In the primary's order within a connection, unless a connection was evicted holding frames
      // (those go out after the checkpoint, possibly after a newer connection's of the same flow).
      const flow = flowOf.get(id);
      const evicted = c.counters.events.has('flow.evicted_full') || c.counters.events.has('flow.evicted_idle');
      if (flow != null && !evicted) {
        if (id < (lastReleased.get(flow) ?? -1)) fail(`primary frame #${id} released after #${lastReleased.get(flow)} of the same flow ${describeKey(flow)}`);
        lastReleased.set(flow, id);
      }
    }
  };
  const invariants = (what: string): void => {
    const k = c.counters;
    const problems: string[] = [];
    if (!(k.heldFrames >= 0)) problems.push(`heldFrames ${k.heldFrames}`);
    if (!(k.heldBytes >= 0)) problems.push(`heldBytes ${k.heldBytes}`);
    if (!(k.secondaryWaitingFrames >= 0)) problems.push(`secondaryWaitingFrames ${k.secondaryWaitingFrames}`);
    if (!(k.connectionsClosed <= k.connectionsOpened)) problems.push(`connectionsClosed ${k.connectionsClosed} > connectionsOpened ${k.connectionsOpened}`);
    if (k.heldFrames > outstanding.size) problems.push(`heldFrames ${k.heldFrames} > ${outstanding.size} primary frames not yet released`);
    if (k.releasedFrames !== releases) problems.push(`counters.releasedFrames ${k.releasedFrames} but ${releases} release actions`);
    if (k.primaryFrames !== primaries) problems.push(`counters.primaryFrames ${k.primaryFrames} but ${primaries} ingested`);
    if (problems.length > 0) fail(`after ${what}: ${problems.join('; ')}\n  steps: ${history.slice(-12).join(' | ')}`);
  };

  const ingest = (side: Side, bytes: Uint8Array): void => {
    let tag: number | undefined;
    if (side === 'primary') {
      tag = primaries++;
      outstanding.set(tag, bytes.slice());
      const hex = toHex(bytes);
      byHex.set(hex, [...(byHex.get(hex) ?? []), tag]);
      const f = decodeFrame(bytes);
      flowOf.set(tag, f instanceof Frame && !f.isFragment ? flowKey(f, true) : null);
    }
    const t = tagged ? tag : undefined;
    const actions = collect((s) => c.ingestTo(s, side, bytes, now, t), () => c.ingest(side, bytes, now, t));
    history.push(`${side} ${bytes.length}B@${now}: ${actions.map((a) => a.kind).join(',')}`);
    const drops = actions.flatMap((a) => (a.kind === 'drop' ? [a.frame] : []));
    const toPrimary = actions.flatMap((a) => (a.kind === 'deliver' && a.to === 'primary' ? [a.frame] : []));
    if (side === 'secondary' && (drops.length !== 1 || drops[0] !== bytes)) fail(`a secondary frame answered by ${drops.length} drops`);
    if (side !== 'secondary' && drops.length > 0) fail(`a ${side} frame caused a drop`);
    if (side === 'client' && (toPrimary.length !== 1 || !sameBytes(toPrimary[0]!, bytes))) fail(`a client frame delivered ${toPrimary.length} times to the primary (or altered)`);
    // Guest output may release client frames queued for the secondary (translate mode), never send any to the primary.
    if (side !== 'client' && toPrimary.length > 0) fail(`a ${side} frame caused a delivery to the primary`);
    released(actions);
  };

  for (const [i, o] of ops.entries()) {
    now += o.dt;
    try {
      if (o.op === 'ingest') {
        ingest(o.side, coreBytes(o.frame, o.side === 'secondary', mode));
      } else if (o.op === 'pair') {
        const order: Side[] = o.secondaryFirst ? ['secondary', 'primary'] : ['primary', 'secondary'];
        const other = o.secondaryPayload !== null && 'payload' in o.frame ? { ...o.frame, payload: o.secondaryPayload } : o.frame;
        for (const side of order) ingest(side, coreBytes(side === 'secondary' ? other : o.frame, side === 'secondary', mode));
      } else if (o.op === 'advance') {
        const a = collect((s) => c.advanceTo(s, now), () => c.advance(now));
        history.push(`advance@${now}: ${a.map((x) => x.kind).join(',')}`);
        released(a);
      } else {
        const a = collect((s) => c.checkpointDoneTo(s, now), () => c.checkpointDone(now));
        history.push(`checkpointDone@${now}: ${a.map((x) => x.kind).join(',')}`);
        released(a);
      }
    } catch (e) {
      const threw = e instanceof Violation ? '' : 'the comparator threw ';
      fail(`op ${i} (${o.op}) at ${now}: ${threw}${e instanceof Violation ? e.message : errorText(e)}\n  steps: ${history.slice(-12).join(' | ')}\n${threw !== '' && e instanceof Error ? e.stack : ''}`);
    }
    invariants(`op ${i} (${o.op})`);
  }
  released(collect((s) => c.checkpointDoneTo(s, now), () => c.checkpointDone(now)));
  invariants('the final checkpointDone');
  if (outstanding.size > 0) fail(`after the final checkpointDone, ${outstanding.size} of ${primaries} primary frames were never released (#${[...outstanding.keys()].slice(0, 10).join(', #')})\n  steps: ${history.slice(-12).join(' | ')}`);
  if (c.counters.heldFrames !== 0 || c.counters.heldBytes !== 0) fail(`after the final checkpointDone: heldFrames ${c.counters.heldFrames}, heldBytes ${c.counters.heldBytes}`);
}

function coreTarget(): AnyProperty {
  return fc.property(coreConfigArb, fc.boolean(), fc.boolean(), fc.array(coreOpArb, { maxLength: 80, size: 'max' }), runCore);
}

// --- driver ---------------------------------------------------------------------------------

const TARGETS: Record<string, () => AnyProperty | Promise<AnyProperty>> = {
  capture: captureTarget,
  'qemu-frames': qemuTarget,
  decode: decodeTarget,
  core: coreTarget,
};

interface Flags {
  minutes: number;
  targets: string[];
  seed: number | undefined;
  path: string | undefined;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { minutes: 5, targets: Object.keys(TARGETS), seed: undefined, path: undefined };
  let target: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const known = ['--minutes', '--target', '--seed', '--path'];
    if (!known.includes(name)) throw new Error(`unknown flag ${name} (accepted: ${known.join(', ')})`);
    const v = inline ?? argv[++i];
    if (v === undefined || v === '') throw new Error(`${name} needs a value`);
    if (name === '--minutes') {
      flags.minutes = Number(v);
      if (!Number.isFinite(flags.minutes) || flags.minutes <= 0) throw new Error(`--minutes must be a positive number (got ${v})`);
    } else if (name === '--target') {
      if (!Object.hasOwn(TARGETS, v)) throw new Error(`--target must be one of ${Object.keys(TARGETS).join(', ')} (got ${v})`);
      target = v;
    } else if (name === '--seed') {
      flags.seed = Number(v);
      if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(flags.seed) || flags.seed < -(2 ** 31) || flags.seed >= 2 ** 32) throw new Error(`--seed must be a 32-bit integer (got ${v})`);
      flags.seed |= 0;
    } else {
      flags.path = v;
    }
  }
  if (flags.path !== undefined && (flags.seed === undefined || target === undefined)) throw new Error('--path needs --seed and --target');
  if (target !== undefined) flags.targets = [target];
  return flags;
}

/** Runs one target for `budgetMs`; returns true when its property held. */
async function runTarget(name: string, budgetMs: number, flags: Flags): Promise<boolean> {
  const property = await TARGETS[name]!();
  const seed = flags.seed ?? (Math.floor(Math.random() * 2 ** 32) | 0);
  process.stdout.write(`${name}: seed ${seed}, ${Math.round(budgetMs / 1000)} s...\n`);
  const base = { seed, numRuns: Number.MAX_SAFE_INTEGER };
  const search = { ...base, endOnFailure: true, plugins: [fc.interruptAfterTimeLimit(budgetMs)], ...(flags.path !== undefined ? { path: flags.path } : {}) };
  const found = await fc.check(property, search);
  if (!found.failed) {
    process.stdout.write(`${name}: ${found.numRuns} runs, 0 failures\n`);
    return true;
  }
  process.stdout.write(`${name}: ${found.numRuns} runs, 1 failure (seed ${found.seed}, path ${found.counterexamplePath}); shrinking for up to ${SHRINK_MS / 1000} s\n`);
  // Shrink from the failing run, with a limit of its own.
  const shrunk = await fc.check(property, { ...base, path: found.counterexamplePath!, plugins: [fc.interruptAfterTimeLimit(SHRINK_MS)] });
  const details = shrunk.failed ? shrunk : found;
  process.stdout.write(`${fc.defaultReportMessage(details)}\n`);
  const error = details.errorInstance;
  process.stdout.write(`Error: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.stdout.write(`${name}: reproduce with: npm run fuzz -- --target ${name} --seed ${details.seed} --path ${details.counterexamplePath}\n`);
  process.stdout.write(`${name}: or search again from the same inputs with: npm run fuzz -- --target ${name} --seed ${found.seed}\n`);
  return false;
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    return 2;
  }
  mkdirSync(WORK, { recursive: true });
  const budgetMs = (flags.minutes * 60_000) / flags.targets.length;
  let ok = true;
  try {
    for (const name of flags.targets) ok = (await runTarget(name, budgetMs, flags)) && ok;
  } finally {
    rmSync(`${WORK}/capture-${process.pid}.bin`, { force: true });
  }
  process.stdout.write(ok ? 'fuzz: all properties held\n' : 'fuzz: FAILURES found (see above)\n');
  return ok ? 0 : 1;
}

process.exitCode = await main();
