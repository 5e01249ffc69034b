/**
 * QEMU's socket framing, as colo-compare, filter-mirror and filter-redirector speak it over
 * chardev sockets (COLO-REFERENCE §2): back-to-back frames of a 4-byte big-endian `LEN`, a 4-byte
 * big-endian `VNET_LEN` only when the link has vnet headers, then `LEN` bytes: `VNET_LEN` bytes of
 * virtio-net header followed by the Ethernet frame. Nothing is negotiated, so both ends must agree
 * on vnet; `suspectVnetMismatch` guesses from the first bytes when they do not.
 *
 * The decoder is pure and has the contract of unit-framer.ts: any chunking; frames before the
 * damage all delivered, with `error` set, and the error thrown by the next call; then dead; `end()`
 * reports a stream that stopped inside a frame. A `LEN` over `maxFrame` (QEMU's 69632 by default;
 * exactly the limit is accepted), a `VNET_LEN` over 20 or over `LEN` is a `QemuFramingError`,
 * detected as soon as the field's four bytes are in. The stream cannot be resynchronised, so the
 * caller closes that connection (checking `error` after each `push` closes it without waiting for
 * more bytes).
 *
 * `LEN` 0 (and, with vnet, `VNET_LEN` 0) is valid: it yields a frame whose `packet` is empty. QEMU
 * reads such a frame and then never forwards it (its `compare_chr_send` refuses size 0); the
 * caller should count and drop it rather than compare or release it.
 *
 * Zero-copy: `packet` and `vnetHeader` are views of the pushed chunk (plain Uint8Arrays, even when
 * the chunk is a Buffer) when the frame's `LEN` bytes lie wholly inside one chunk (the length
 * fields may straddle), and views of one private copy otherwise. The decoder never writes to a chunk and never keeps one after `push` returns, so
 * frames stay valid for as long as the caller leaves those chunk bytes alone; a caller that reuses
 * one read buffer must copy the frames it keeps before the next read. A kept frame keeps its whole
 * chunk alive, so long-lived queues should copy (ARCHITECTURE: "copied once, at the queue boundary").
 *
 * Memory: a straddling frame is copied as unit-framer.ts says; with the default limit that is one
 * allocation of the frame's own size.
 *
 * The encoders write the same framing, one frame or many into one buffer (for few large writes).
 * Their misuse (a vnet header over 20 bytes, a frame over 69632 bytes that QEMU would refuse, a
 * vnet header without vnet) throws RangeError: a programmer error, not bad input.
 */

import { readU16, readU32, writeU32 } from '../../compare/index.js';
import { FramingError, UnitFramer } from './unit-framer.js';
import type { ChunkViews, UnitFormat } from './unit-framer.js';

/** QEMU's receive buffer (4096 + 65536): the largest `LEN` it accepts, and the default `maxFrame`. */
export const QEMU_MAX_FRAME = 69632;

/** The largest `VNET_LEN` QEMU accepts (sizeof(struct virtio_net_hdr_v1_hash)). */
export const VNET_MAX_LEN = 20;

/** One decoded frame. */
export interface QemuFrame {
  /** The Ethernet frame, without the virtio-net header. */
  packet: Uint8Array;
  /** The raw virtio-net header bytes (`VNET_LEN` of them); empty on a link without vnet. */
  vnetHeader: Uint8Array;
  /** Stream offset of the frame's `LEN` field. */
  offset: number;
}

/** What the batch encoder needs of a frame; a decoded `QemuFrame` qualifies. */
export interface QemuFrameParts {
  packet: Uint8Array;
  /** The raw virtio-net header, written on a vnet link only (absent means `VNET_LEN` 0); must be empty or absent otherwise. */
  vnetHeader?: Uint8Array | undefined;
}

/** Options of `QemuFrameDecoder`. */
export interface QemuFrameDecoderOptions {
  /** Whether each frame carries `VNET_LEN` (QEMU's `vnet_hdr_support`). */
  vnetHeader: boolean;
  /** Largest accepted `LEN`, an unsigned 32-bit integer; default `QEMU_MAX_FRAME`. */
  maxFrame?: number;
}

/** Stable codes of `QemuFramingError`. */
export type QemuFramingCode = 'qemu.frame_too_long' | 'qemu.vnet_too_long' | 'qemu.vnet_exceeds_frame' | 'qemu.truncated';

/**
 * A QEMU socket stream that cannot be decoded further. `offset` is the stream offset of the field
 * at fault: the `LEN` field for `qemu.frame_too_long` and `qemu.truncated`, the `VNET_LEN` field for
 * `qemu.vnet_too_long` and `qemu.vnet_exceeds_frame`.
 */
export class QemuFramingError extends FramingError<QemuFramingCode> {
  override readonly name = 'QemuFramingError';
}

const EMPTY = new Uint8Array(0);

/** Incremental decoder of one QEMU socket stream. Call order: `push`* then `end` once. */
export class QemuFrameDecoder extends UnitFramer<QemuFrame, QemuFramingError> {
  constructor(options: QemuFrameDecoderOptions) {
    super(new QemuFrameUnits(options.vnetHeader, checkedMaxFrame(options, 'QemuFrameDecoder')), 'QemuFrameDecoder');
  }
}

/**
 * `QemuFrameDecoder` for the hot path of `compare`, without an object per frame: `push` returns
 * the packets, and `vnetHeaders` the virtio-net header of each, by index (empty on a link without
 * vnet). That record per frame, with the engine's one per released frame, was a third of the
 * bytes `compare` allocated per frame at 64-byte payloads, and allocation sets the pace of the
 * scavenges among the causes of its latency tail.
 */
export class QemuPacketDecoder extends UnitFramer<Uint8Array, QemuFramingError> {
  private readonly packetUnits: QemuPacketUnits;

  constructor(options: QemuFrameDecoderOptions) {
    const units = new QemuPacketUnits(options.vnetHeader, checkedMaxFrame(options, 'QemuPacketDecoder'));
    super(units, 'QemuPacketDecoder');
    this.packetUnits = units;
  }

  /** The vnet headers of the packets the last `push` returned, same indices; empty without vnet. */
  get vnetHeaders(): readonly Uint8Array[] {
    return this.packetUnits.headers;
  }

  override push(chunk: Uint8Array): Uint8Array[] {
    if (this.packetUnits.vnet) this.packetUnits.headers = [];
    return super.push(chunk);
  }
}

function checkedMaxFrame(options: QemuFrameDecoderOptions, name: string): number {
  const maxFrame = options.maxFrame ?? QEMU_MAX_FRAME;
  if (!Number.isInteger(maxFrame) || maxFrame < 0 || maxFrame > 0xffffffff) {
    throw new RangeError(`${name}: maxFrame ${maxFrame} is not an unsigned 32-bit integer`);
  }
  return maxFrame;
}

/** QEMU frames as units: the length fields are the prefix, `unit` sees the `LEN` bytes. */
abstract class QemuUnits<F> implements UnitFormat<F, QemuFramingError> {
  /** Bytes of the length fields: 4, or 8 with vnet. */
  readonly prefixLength: number;
  /** `VNET_LEN` of the frame `unitLength` read last. */
  protected vnetLen = 0;

  constructor(readonly vnet: boolean, private readonly maxFrame: number) {
    this.prefixLength = vnet ? 8 : 4;
  }

  unitLength(b: Uint8Array, at: number, have: number, offset: number): number {
    if (have < 4) return 0;
    const len = readU32(b, at);
    if (len > this.maxFrame) throw new QemuFramingError('qemu.frame_too_long', offset, `frame length ${len} exceeds the limit ${this.maxFrame}`);
    if (!this.vnet) return 4 + len;
    if (have < 8) return 0;
    const vnetLen = readU32(b, at + 4);
    if (vnetLen > VNET_MAX_LEN) {
      throw new QemuFramingError('qemu.vnet_too_long', offset + 4, `vnet header length ${vnetLen} exceeds ${VNET_MAX_LEN}`);
    }
    if (vnetLen > len) {
      throw new QemuFramingError('qemu.vnet_exceeds_frame', offset + 4, `vnet header length ${vnetLen} exceeds the frame length ${len}`);
    }
    this.vnetLen = vnetLen;
    return 8 + len;
  }

  abstract unit(b: Uint8Array, at: number, length: number, offset: number, out: F[], views: ChunkViews): void;

  truncated(offset: number, have: number, length: number): QemuFramingError | undefined {
    if (have === 0) return undefined;
    const h = this.prefixLength;
    const problem = length === 0
      ? `stream ends after ${have} of the ${h} bytes of a frame's length fields`
      : `stream ends after ${have - h} of the ${length - h} bytes of a frame`;
    return new QemuFramingError('qemu.truncated', offset, problem);
  }
}

class QemuFrameUnits extends QemuUnits<QemuFrame> {
  unit(_b: Uint8Array, at: number, length: number, offset: number, out: QemuFrame[], views: ChunkViews): void {
    const v = this.vnetLen;
    out.push({
      packet: views.of(at + v, length - v),
      vnetHeader: this.vnet ? views.of(at, v) : EMPTY,
      offset,
    });
  }
}

class QemuPacketUnits extends QemuUnits<Uint8Array> {
  /** With vnet: the header of each packet of the current `push`, in step with its output. */
  headers: Uint8Array[] = [];

  unit(_b: Uint8Array, at: number, length: number, _offset: number, out: Uint8Array[], views: ChunkViews): void {
    const v = this.vnetLen;
    out.push(views.of(at + v, length - v));
    if (this.vnet) this.headers.push(views.of(at, v));
  }
}

/** Throws RangeError unless a frame of this vnet header and packet can be written for QEMU. */
function checkEncodable(packet: Uint8Array, vnetHeader: Uint8Array): void {
  if (vnetHeader.length > VNET_MAX_LEN) throw new RangeError(`encodeQemuFrame: vnet header of ${vnetHeader.length} bytes exceeds ${VNET_MAX_LEN}`);
  const len = vnetHeader.length + packet.length;
  if (len > QEMU_MAX_FRAME) throw new RangeError(`encodeQemuFrame: frame of ${len} bytes exceeds QEMU's limit ${QEMU_MAX_FRAME}`);
}

/** Writes one frame at `out[at..]`; returns the position after it. */
function writeFrame(out: Uint8Array, at: number, packet: Uint8Array, vnetHeader: Uint8Array | undefined): number {
  const v = vnetHeader === undefined ? 0 : vnetHeader.length;
  writeU32(out, at, v + packet.length);
  at += 4;
  if (vnetHeader !== undefined) {
    writeU32(out, at, v);
    out.set(vnetHeader, at + 4);
    at += 4 + v;
  }
  out.set(packet, at);
  return at + packet.length;
}

/** One frame: `LEN`, then `VNET_LEN` and the header when `vnetHeader` is given (even empty), then `packet`. */
export function encodeQemuFrame(packet: Uint8Array, vnetHeader?: Uint8Array): Uint8Array {
  checkEncodable(packet, vnetHeader ?? EMPTY);
  const out = new Uint8Array((vnetHeader === undefined ? 4 : 8 + vnetHeader.length) + packet.length);
  writeFrame(out, 0, packet, vnetHeader);
  return out;
}

/**
 * Many frames back to back in one new buffer, each with `VNET_LEN` when `vnet`; decoded frames
 * re-encode byte for byte. `allocate` makes the buffer, which is wholly overwritten (so a caller
 * with Node's `Buffer.allocUnsafe` skips the zero-filling a Uint8Array costs).
 */
export function encodeQemuFrames<B extends Uint8Array = Uint8Array>(
  frames: readonly QemuFrameParts[], vnet: boolean, allocate: (bytes: number) => B = (n) => new Uint8Array(n) as B,
): B {
  return encodeQemuPackets(frames.map((f) => f.packet), frames.map((f) => f.vnetHeader ?? EMPTY), vnet, allocate);
}

/** How many whole frames `bytes` (what we encoded: whole frames only) holds; for saying what a lost write carried. */
export function qemuFrameCount(bytes: Uint8Array, vnetHeader: boolean): number {
  return new QemuFrameDecoder({ vnetHeader }).push(bytes).length;
}

/**
 * `encodeQemuFrames` of frames `from` to `count` (exclusive) of parallel arrays, without an object
 * per frame: `vnetHeaders[i]` is the header of `packets[i]` (missing means none). Callers that
 * reuse the arrays pass `count`: setting an array's length to 0 makes V8 give its storage back.
 */
export function encodeQemuPackets<B extends Uint8Array = Uint8Array>(
  packets: readonly Uint8Array[], vnetHeaders: readonly Uint8Array[], vnet: boolean,
  allocate: (bytes: number) => B = (n) => new Uint8Array(n) as B, count = packets.length, from = 0,
): B {
  let total = 0;
  for (let i = from; i < count; i++) {
    const header = vnetHeaders[i] ?? EMPTY;
    if (!vnet && header.length > 0) throw new RangeError('encodeQemuFrames: a frame has a vnet header but the link has no vnet');
    checkEncodable(packets[i]!, header);
    total += (vnet ? 8 + header.length : 4) + packets[i]!.length;
  }
  const out = allocate(total);
  let at = 0;
  for (let i = from; i < count; i++) at = writeFrame(out, at, packets[i]!, vnet ? vnetHeaders[i] ?? EMPTY : undefined);
  return out;
}

/** Ethertypes a COLO guest's traffic plausibly starts with: IPv4, IPv6, ARP, RARP (QEMU's self-announce), 802.1Q, 802.1ad. */
const PLAUSIBLE_ETHERTYPES = new Set([0x0800, 0x86dd, 0x0806, 0x8035, 0x8100, 0x88a8]);

/** Names for the explanation. */
const ETHERTYPE_NAMES = new Map([[0x0800, 'IPv4'], [0x86dd, 'IPv6'], [0x0806, 'ARP'], [0x8035, 'RARP'], [0x8100, 'VLAN'], [0x88a8, 'QinQ']]);

/**
 * The ethertype name if `b[at..]` starts a plausible Ethernet frame of `len` bytes, wholly or
 * partly present: at least 14 bytes long, a plausible ethertype, and for IP the matching version
 * nibble right after it. Undefined otherwise, including when those bytes are not in `b`.
 */
function plausibleEthernet(b: Uint8Array, at: number, len: number): string | undefined {
  if (len < 14 || b.length < at + 14) return undefined;
  const type = readU16(b, at + 12);
  if (!PLAUSIBLE_ETHERTYPES.has(type)) return undefined;
  if (type === 0x0800 || type === 0x86dd) {
    if (len < 15 || b.length < at + 15 || b[at + 14]! >>> 4 !== (type === 0x0800 ? 4 : 6)) return undefined;
  }
  return ETHERTYPE_NAMES.get(type);
}

/**
 * A one-line explanation when the stream's first bytes suggest the peer's vnet setting differs from
 * `vnetHeader` (ours), else null. Heuristic: the first frame is read both ways, with and without a
 * `VNET_LEN` field; a mismatch is reported only when our reading does not give a plausible Ethernet
 * header (see `plausibleEthernet`: ethertype IPv4/IPv6/ARP/RARP/VLAN/QinQ, IP version nibble) or
 * is impossible (`VNET_LEN` over 20 or over `LEN`), and the other reading does give one (with a
 * `VNET_LEN` of at most 20 and `LEN`). So a correct stream of such traffic is never flagged, a
 * first frame of another ethertype is never flagged, and null also means "too few bytes to judge":
 * pass the first chunk, or at least the first 43 bytes of the stream.
 */
export function suspectVnetMismatch(firstBytes: Uint8Array, vnetHeader: boolean): string | null {
  if (firstBytes.length < 8) return null;
  const len = readU32(firstBytes, 0);
  const v = readU32(firstBytes, 4);
  const vnetReadingPossible = v <= VNET_MAX_LEN && v <= len;
  const withVnet = vnetReadingPossible ? plausibleEthernet(firstBytes, 8 + v, len - v) : undefined;
  const withoutVnet = plausibleEthernet(firstBytes, 4, len);
  if (vnetHeader && withVnet === undefined && withoutVnet !== undefined) {
    const ours = vnetReadingPossible ? `a ${v}-byte vnet header followed by no plausible Ethernet header` : `an impossible VNET_LEN ${v}`;
    return `vnet headers are expected but the first frame reads as ${ours}, and as a plain ${withoutVnet} Ethernet frame without VNET_LEN: the peer likely has vnet_hdr_support off; set both ends alike`;
  }
  if (!vnetHeader && withoutVnet === undefined && withVnet !== undefined) {
    return `vnet headers are not expected but the first frame reads as no plausible Ethernet frame, and as VNET_LEN ${v} followed by a ${withVnet} Ethernet frame: the peer likely has vnet_hdr_support on; set both ends alike`;
  }
  return null;
}
