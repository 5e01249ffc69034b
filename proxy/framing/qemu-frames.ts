/**
 * QEMU's socket framing, as colo-compare, filter-mirror and filter-redirector speak it over
 * chardev sockets (COLO-REFERENCE §2): back-to-back frames of a 4-byte big-endian `LEN`, a 4-byte
 * big-endian `VNET_LEN` only when the link has vnet headers, then `LEN` bytes: `VNET_LEN` bytes of
 * virtio-net header followed by the Ethernet frame. Nothing is negotiated, so both ends must agree
 * on vnet; `suspectVnetMismatch` guesses from the first bytes when they do not.
 *
 * The decoder is pure and incremental: push chunks of any size (a chunk may end anywhere, even
 * inside a length field); each `push` returns the frames that chunk completed, in stream order,
 * and the result never depends on the chunking. A `LEN` over `maxFrame` (QEMU's 69632 by default;
 * exactly the limit is accepted), a `VNET_LEN` over 20 or over `LEN` is a `QemuFramingError`,
 * detected as soon as the field's four bytes are in. Frames completed before the damage are all
 * delivered: a `push` that completed some returns them and sets `error`, and the error is thrown
 * by the next call. After an error the decoder is dead and rethrows it on every call; the stream
 * cannot be resynchronised, so the caller closes that connection (checking `error` after each
 * `push` closes it without waiting for more bytes). `end()` reports a stream that stopped inside a
 * frame. `push` after `end` is incorrect use and throws a plain Error.
 *
 * `LEN` 0 (and, with vnet, `VNET_LEN` 0) is valid: it yields a frame whose `packet` is empty. QEMU
 * reads such a frame and then never forwards it (its `compare_chr_send` refuses size 0); the
 * caller should count and drop it rather than compare or release it.
 *
 * Zero-copy: `packet` and `vnetHeader` are subarrays of the pushed chunk when the frame's `LEN`
 * bytes lie wholly inside one chunk (the length fields may straddle), and subarrays of one private
 * copy otherwise. The decoder never writes to a chunk and never keeps one after `push` returns, so
 * frames stay valid for as long as the caller leaves those chunk bytes alone; a caller that reuses
 * one read buffer must copy the frames it keeps before the next read. A kept frame keeps its whole
 * chunk alive, so long-lived queues should copy (ARCHITECTURE: "copied once, at the queue boundary").
 *
 * Memory: the copy for a straddling frame starts at min(LEN, 128 KiB) and doubles as bytes
 * arrive, so with the default limit it is one allocation of exactly `LEN`, and with a raised
 * `maxFrame` a lying `LEN` costs no more than twice the bytes actually received.
 *
 * The encoders write the same framing, one frame or many into one buffer (for few large writes).
 * Their misuse (a vnet header over 20 bytes, a frame over 69632 bytes that QEMU would refuse, a
 * vnet header without vnet) throws RangeError: a programmer error, not bad input.
 */

import { readU16, readU32, writeU32 } from '../../compare/index.js';

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
export class QemuFramingError extends Error {
  override readonly name = 'QemuFramingError';

  constructor(
    /** Stable dotted code. */
    readonly code: QemuFramingCode,
    /** Stream offset of the faulty field. */
    readonly offset: number,
    /** One-line description of the problem, without the offset. */
    readonly problem: string,
  ) {
    super(`${problem} at byte ${offset} (${code})`);
  }
}

/** First allocation for a frame body that straddles chunks; it doubles from here up to `LEN`. */
const STRADDLE_START = 1 << 17;

const EMPTY = new Uint8Array(0);

/** Incremental decoder of one QEMU socket stream. Call order: `push`* then `end` once. */
export class QemuFrameDecoder {
  private readonly vnet: boolean;
  private readonly maxFrame: number;
  /** Bytes of the length fields: 4, or 8 with vnet. */
  private readonly headerLength: number;
  /** Stream offset of the first byte of the chunk being pushed. */
  private base = 0;
  /** Stream offset of the pending frame, which started in an earlier chunk; -1 when there is none. */
  private pendStart = -1;
  /** The pending frame's length fields, `headHave` bytes of them so far. */
  private readonly head = new Uint8Array(8);
  private headHave = 0;
  private len = 0;
  private vnetLen = 0;
  /** The pending frame's `LEN` bytes, `bodyHave` of them so far; EMPTY until its length fields are in. */
  private body = EMPTY;
  private bodyHave = 0;
  private failure: QemuFramingError | undefined = undefined;
  private ended = false;

  constructor(options: QemuFrameDecoderOptions) {
    const maxFrame = options.maxFrame ?? QEMU_MAX_FRAME;
    if (!Number.isInteger(maxFrame) || maxFrame < 0 || maxFrame > 0xffffffff) {
      throw new RangeError(`QemuFrameDecoder: maxFrame ${maxFrame} is not an unsigned 32-bit integer`);
    }
    this.vnet = options.vnetHeader;
    this.maxFrame = maxFrame;
    this.headerLength = options.vnetHeader ? 8 : 4;
  }

  /** The error that killed the decoder, set as soon as it is found (possibly before `push` throws it). */
  get error(): QemuFramingError | undefined {
    return this.failure;
  }

  /** Decodes the next chunk; returns the frames it completed. Throws QemuFramingError (see the module header for when). */
  push(chunk: Uint8Array): QemuFrame[] {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('QemuFrameDecoder: push() after end()');
    const out: QemuFrame[] = [];
    try {
      let pos = 0;
      if (this.pendStart >= 0) pos = this.fill(chunk, 0, out);
      if (this.pendStart < 0) {
        pos = this.scan(chunk, pos, out);
        if (pos < chunk.length) {
          this.pendStart = this.base + pos;
          this.fill(chunk, pos, out);
        }
      }
    } catch (e) {
      if (!(e instanceof QemuFramingError)) throw e;
      this.failure = e;
      if (out.length === 0) throw e;
    }
    this.base += chunk.length;
    return out;
  }

  /** Declares the stream over; throws QemuFramingError('qemu.truncated') if it stopped inside a frame. */
  end(): void {
    if (this.failure) throw this.failure;
    this.ended = true;
    if (this.pendStart < 0) return;
    const problem = this.body === EMPTY
      ? `stream ends after ${this.headHave} of the ${this.headerLength} bytes of a frame's length fields`
      : `stream ends after ${this.bodyHave} of the ${this.len} bytes of a frame`;
    this.failure = new QemuFramingError('qemu.truncated', this.pendStart, problem);
    throw this.failure;
  }

  /** Decodes every frame lying wholly in `chunk` from `pos`; returns where the first incomplete one starts. */
  private scan(chunk: Uint8Array, pos: number, out: QemuFrame[]): number {
    const end = chunk.length;
    const vnet = this.vnet;
    const h = this.headerLength;
    while (end - pos >= h) {
      const len = readU32(chunk, pos);
      if (len > this.maxFrame) throw this.tooLong(len, this.base + pos);
      const vnetLen = vnet ? this.checkVnet(readU32(chunk, pos + 4), len, this.base + pos + 4) : 0;
      const body = pos + h;
      if (end - body < len) return pos;
      out.push({
        packet: chunk.subarray(body + vnetLen, body + len),
        vnetHeader: vnet ? chunk.subarray(body, body + vnetLen) : EMPTY,
        offset: this.base + pos,
      });
      pos = body + len;
    }
    return pos;
  }

  /** Adds bytes from `chunk[pos..]` to the pending frame, emitting it if complete; returns the new position. */
  private fill(chunk: Uint8Array, pos: number, out: QemuFrame[]): number {
    const end = chunk.length;
    if (this.body === EMPTY) {
      while (this.headHave < this.headerLength) {
        if (pos === end) return pos;
        this.head[this.headHave++] = chunk[pos++]!;
        if (this.headHave === 4) {
          this.len = readU32(this.head, 0);
          if (this.len > this.maxFrame) throw this.tooLong(this.len, this.pendStart);
        }
      }
      this.vnetLen = this.vnet ? this.checkVnet(readU32(this.head, 4), this.len, this.pendStart + 4) : 0;
      if (end - pos >= this.len) {
        this.emit(chunk, pos, out);
        return pos + this.len;
      }
      this.body = new Uint8Array(Math.min(this.len, STRADDLE_START));
    }
    const n = Math.min(this.len - this.bodyHave, end - pos);
    if (this.bodyHave + n > this.body.length) {
      const grown = new Uint8Array(Math.min(this.len, Math.max(this.bodyHave + n, 2 * this.body.length)));
      grown.set(this.body.subarray(0, this.bodyHave));
      this.body = grown;
    }
    this.body.set(chunk.subarray(pos, pos + n), this.bodyHave);
    this.bodyHave += n;
    if (this.bodyHave === this.len) this.emit(this.body, 0, out);
    return pos + n;
  }

  /** Emits the pending frame, whose `LEN` bytes are at `b[at..]`, and forgets it. */
  private emit(b: Uint8Array, at: number, out: QemuFrame[]): void {
    const v = this.vnetLen;
    out.push({
      packet: b.subarray(at + v, at + this.len),
      vnetHeader: this.vnet ? b.subarray(at, at + v) : EMPTY,
      offset: this.pendStart,
    });
    this.pendStart = -1;
    this.headHave = 0;
    this.body = EMPTY;
    this.bodyHave = 0;
  }

  private tooLong(len: number, offset: number): QemuFramingError {
    return new QemuFramingError('qemu.frame_too_long', offset, `frame length ${len} exceeds the limit ${this.maxFrame}`);
  }

  /** Returns `vnetLen` if it is acceptable for a frame of `len` bytes; throws otherwise. */
  private checkVnet(vnetLen: number, len: number, offset: number): number {
    if (vnetLen > VNET_MAX_LEN) {
      throw new QemuFramingError('qemu.vnet_too_long', offset, `vnet header length ${vnetLen} exceeds ${VNET_MAX_LEN}`);
    }
    if (vnetLen > len) {
      throw new QemuFramingError('qemu.vnet_exceeds_frame', offset, `vnet header length ${vnetLen} exceeds the frame length ${len}`);
    }
    return vnetLen;
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

/** Many frames back to back in one new buffer, each with `VNET_LEN` when `vnet`; decoded frames re-encode byte for byte. */
export function encodeQemuFrames(frames: readonly QemuFrameParts[], vnet: boolean): Uint8Array {
  let total = 0;
  for (const f of frames) {
    const header = f.vnetHeader ?? EMPTY;
    if (!vnet && header.length > 0) throw new RangeError('encodeQemuFrames: a frame has a vnet header but the link has no vnet');
    checkEncodable(f.packet, header);
    total += (vnet ? 8 + header.length : 4) + f.packet.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of frames) at = writeFrame(out, at, f.packet, vnet ? f.vnetHeader ?? EMPTY : undefined);
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
