/**
 * TCP segments (RFC 9293 §3.1) with their options validated up front, plus in-place setters for
 * the fields a sequence-space rewriter translates.
 *
 * `TcpView.parse(bytes, offset, length)` takes the segment length from the IP layer (IPv4 total
 * length or IPv6 payload length minus the headers before TCP), never from the frame end, so
 * Ethernet padding is not payload. It checks the data offset and walks the options once:
 * EOL (0) ends the list, NOP (1) is one byte, every other kind has a length byte of at least 2
 * that must stay inside the header. MSS (2, length 4), window scale (3, length 3),
 * SACK-permitted (4, length 2), SACK (5, 2 + 8n with 1..4 blocks, RFC 2018 §3) and timestamps
 * (8, length 10, RFC 7323 §3.2) must have exactly their length and appear at most once;
 * unknown kinds are skipped by their length. After parse no getter can fail. `reset` re-runs the
 * same checks on an existing view, for decoders that reuse one view per frame (frame.ts
 * `FrameDecoder`); `empty` makes such a view, to be read only after a `reset` succeeded.
 *
 * Absent numeric options read as -1 (`mss`, `windowScale`, `tsVal`, `tsEcr`, `sackLeft(i)` out
 * of range); the window scale is reported as sent, even above the RFC 7323 §2.3 limit of 14.
 * The setters rewrite one 32-bit field and fix the checksum incrementally (RFC 1624), so a view
 * must not be used after its bytes are changed by anything else. The checksum is not verified
 * at parse time.
 *
 * Error codes:
 * `decode.tcp.header_too_short` (fewer than 20 bytes), `decode.tcp.bad_data_offset` (< 5),
 * `decode.tcp.data_offset_past_segment` (header longer than the segment),
 * `decode.tcp.option_zero_length`, `decode.tcp.option_length_one`,
 * `decode.tcp.option_past_header` (length byte missing or option runs past the header),
 * `decode.tcp.option_bad_length` (wrong length for MSS, window scale, SACK-permitted, SACK or
 * timestamps), `decode.tcp.option_duplicate` (one of those kinds twice).
 */

import { readU16, readU32, writeU16 } from './bytes.js';
import { rewriteU32, transportChecksum, verifyTransportChecksum } from './checksum.js';
import { WireError } from './error.js';

export const TCP_HEADER_LEN = 20;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const TCP_OPTION_EOL = 0;
export const TCP_OPTION_NOP = 1;
export const TCP_OPTION_MSS = 2;
export const TCP_OPTION_WINDOW_SCALE = 3;
export const TCP_OPTION_SACK_PERMITTED = 4;
export const TCP_OPTION_SACK = 5;
export const TCP_OPTION_TIMESTAMPS = 8;
/** TCP-MD5 signature (RFC 2385), TCP Authentication Option (RFC 5925), Multipath TCP (RFC 8684). */
export const TCP_OPTION_MD5 = 19;
export const TCP_OPTION_AO = 29;
export const TCP_OPTION_MPTCP = 30;

const NO_BYTES = new Uint8Array(0);

/** TcpView with its public fields writable, for `reset`. */
type Fields = { -readonly [K in keyof TcpView]: TcpView[K] };

export class TcpView {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the source port in `bytes`. */
    readonly offset: number,
    /** Header length in bytes (data offset * 4), options included. */
    readonly headerLength: number,
    /** Segment length (header plus payload) as given by the IP layer. */
    readonly segmentLength: number,
    private mssAt: number,
    private windowScaleAt: number,
    /** True when the SACK-permitted option is present. */
    readonly sackPermitted: boolean,
    /** Offset of the first SACK block's left edge in `bytes`, or -1 without a SACK option. */
    readonly sackOffset: number,
    /** Number of SACK blocks (0..4). */
    readonly sackBlockCount: number,
    /** Offset of TSval in `bytes` (TSecr follows at +4), or -1 without a timestamps option. */
    readonly timestampOffset: number,
  ) {}

  /** Checks the `length`-byte segment at `offset` and returns a view, or the coded reason it is malformed. */
  static parse(bytes: Uint8Array, offset: number, length: number): TcpView | WireError {
    return TcpView.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): TcpView {
    return new TcpView(NO_BYTES, 0, 0, 0, -1, -1, false, -1, 0, -1);
  }

  /**
   * Makes this view describe the `length`-byte segment at `offset`, with the checks of `parse`:
   * returns this view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): TcpView | WireError {
    if (length < TCP_HEADER_LEN) return new WireError('decode.tcp.header_too_short', offset + length);
    const headerLength = (bytes[offset + 12]! >>> 4) * 4;
    if (headerLength < TCP_HEADER_LEN) return new WireError('decode.tcp.bad_data_offset', offset + 12);
    if (headerLength > length) return new WireError('decode.tcp.data_offset_past_segment', offset + 12);
    const end = offset + headerLength;
    let mssAt = -1;
    let windowScaleAt = -1;
    let sackPermitted = false;
    let sackAt = -1;
    let sackBlocks = 0;
    let timestampAt = -1;
    let i = offset + TCP_HEADER_LEN;
    if (headerLength === TCP_HEADER_LEN + 12 && readU32(bytes, i) === 0x0101080a) {
      // The layout nearly every timestamped segment uses (RFC 7323 Appendix A), Linux's fast path.
      return this.set(bytes, offset, headerLength, length, -1, -1, false, -1, 0, i + 4);
    }
    while (i < end) {
      const kind = bytes[i]!;
      if (kind === TCP_OPTION_EOL) break;
      if (kind === TCP_OPTION_NOP) {
        i++;
        continue;
      }
      if (i + 1 >= end) return new WireError('decode.tcp.option_past_header', i);
      const len = bytes[i + 1]!;
      if (len === 0) return new WireError('decode.tcp.option_zero_length', i);
      if (len === 1) return new WireError('decode.tcp.option_length_one', i);
      if (i + len > end) return new WireError('decode.tcp.option_past_header', i);
      if (kind === TCP_OPTION_TIMESTAMPS) {
        if (len !== 10) return new WireError('decode.tcp.option_bad_length', i);
        if (timestampAt >= 0) return new WireError('decode.tcp.option_duplicate', i);
        timestampAt = i + 2;
      } else if (kind === TCP_OPTION_SACK) {
        if (len < 10 || len > 34 || ((len - 2) & 7) !== 0) return new WireError('decode.tcp.option_bad_length', i);
        if (sackAt >= 0) return new WireError('decode.tcp.option_duplicate', i);
        sackAt = i + 2;
        sackBlocks = (len - 2) >>> 3;
      } else if (kind === TCP_OPTION_MSS) {
        if (len !== 4) return new WireError('decode.tcp.option_bad_length', i);
        if (mssAt >= 0) return new WireError('decode.tcp.option_duplicate', i);
        mssAt = i + 2;
      } else if (kind === TCP_OPTION_WINDOW_SCALE) {
        if (len !== 3) return new WireError('decode.tcp.option_bad_length', i);
        if (windowScaleAt >= 0) return new WireError('decode.tcp.option_duplicate', i);
        windowScaleAt = i + 2;
      } else if (kind === TCP_OPTION_SACK_PERMITTED) {
        if (len !== 2) return new WireError('decode.tcp.option_bad_length', i);
        if (sackPermitted) return new WireError('decode.tcp.option_duplicate', i);
        sackPermitted = true;
      }
      i += len;
    }
    return this.set(bytes, offset, headerLength, length, mssAt, windowScaleAt, sackPermitted, sackAt, sackBlocks, timestampAt);
  }

  /**
   * Makes this view describe a segment already known to pass `reset`'s checks with these values
   * (option offsets -1 when absent); for `reset` and for a decoder that did those checks itself
   * (frame.ts `FrameDecoder`'s fast path).
   */
  set(
    bytes: Uint8Array, offset: number, headerLength: number, segmentLength: number, mssAt: number, windowScaleAt: number,
    sackPermitted: boolean, sackOffset: number, sackBlockCount: number, timestampOffset: number,
  ): TcpView {
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.headerLength = headerLength;
    f.segmentLength = segmentLength;
    this.mssAt = mssAt;
    this.windowScaleAt = windowScaleAt;
    f.sackPermitted = sackPermitted;
    f.sackOffset = sackOffset;
    f.sackBlockCount = sackBlockCount;
    f.timestampOffset = timestampOffset;
    return this;
  }

  /** Discriminant shared by the transport-layer views. */
  get kind(): 'tcp' {
    return 'tcp';
  }

  /** Source port. */
  get srcPort(): number {
    return readU16(this.bytes, this.offset);
  }

  /** Destination port. */
  get dstPort(): number {
    return readU16(this.bytes, this.offset + 2);
  }

  /** Sequence number (unsigned 32-bit; compare only with `wire/seq`). */
  get seq(): number {
    return readU32(this.bytes, this.offset + 4);
  }

  /** Acknowledgment number (meaningful only when `isAck`). */
  get ack(): number {
    return readU32(this.bytes, this.offset + 8);
  }

  /** Data offset in 32-bit words (5..15). */
  get dataOffset(): number {
    return this.headerLength >>> 2;
  }

  /** The flags byte: CWR ECE URG ACK PSH RST SYN FIN, high bit first (`TCP_*` masks). */
  get flags(): number {
    return this.bytes[this.offset + 13]!;
  }

  /** FIN flag. */
  get isFin(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_FIN) !== 0;
  }

  /** SYN flag. */
  get isSyn(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_SYN) !== 0;
  }

  /** RST flag. */
  get isRst(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_RST) !== 0;
  }

  /** PSH flag. */
  get isPsh(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_PSH) !== 0;
  }

  /** ACK flag. */
  get isAck(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_ACK) !== 0;
  }

  /** URG flag. */
  get isUrg(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_URG) !== 0;
  }

  /** ECN-Echo flag (RFC 3168 §6.1). */
  get isEce(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_ECE) !== 0;
  }

  /** Congestion Window Reduced flag (RFC 3168 §6.1). */
  get isCwr(): boolean {
    return (this.bytes[this.offset + 13]! & TCP_CWR) !== 0;
  }

  /** Window field as sent, not scaled. */
  get window(): number {
    return readU16(this.bytes, this.offset + 14);
  }

  /** Checksum as stored. */
  get checksum(): number {
    return readU16(this.bytes, this.offset + 16);
  }

  /** Urgent pointer (meaningful only when `isUrg`). */
  get urgentPointer(): number {
    return readU16(this.bytes, this.offset + 18);
  }

  /** Offset of the payload in `bytes`. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }

  /** Payload length in bytes, from the IP layer's length. */
  get payloadLength(): number {
    return this.segmentLength - this.headerLength;
  }

  /** Maximum segment size option, or -1. */
  get mss(): number {
    return this.mssAt < 0 ? -1 : readU16(this.bytes, this.mssAt);
  }

  /** Window scale shift count, or -1. */
  get windowScale(): number {
    return this.windowScaleAt < 0 ? -1 : this.bytes[this.windowScaleAt]!;
  }

  /** Left edge of SACK block `i`, or -1 when there is no such block. */
  sackLeft(i: number): number {
    return i >= 0 && i < this.sackBlockCount ? readU32(this.bytes, this.sackOffset + 8 * i) : -1;
  }

  /** Right edge (first sequence number after the block) of SACK block `i`, or -1. */
  sackRight(i: number): number {
    return i >= 0 && i < this.sackBlockCount ? readU32(this.bytes, this.sackOffset + 8 * i + 4) : -1;
  }

  /** Timestamp value (TSval), or -1. */
  get tsVal(): number {
    return this.timestampOffset < 0 ? -1 : readU32(this.bytes, this.timestampOffset);
  }

  /** Timestamp echo reply (TSecr), or -1. */
  get tsEcr(): number {
    return this.timestampOffset < 0 ? -1 : readU32(this.bytes, this.timestampOffset + 4);
  }

  /** True when the stored checksum is correct after `pseudoSum` (from `pseudoSumV4`/`pseudoSumV6`). */
  verifyChecksum(pseudoSum: number): boolean {
    return verifyTransportChecksum(pseudoSum, this.bytes, this.offset, this.segmentLength);
  }

  /** Recomputes and stores the checksum after `pseudoSum`. */
  fillChecksum(pseudoSum: number): void {
    writeU16(this.bytes, this.offset + 16, transportChecksum(pseudoSum, this.bytes, this.offset, this.segmentLength, this.offset + 16));
  }

  /** Writes the sequence number and updates the checksum incrementally. */
  setSeq(value: number): void {
    rewriteU32(this.bytes, this.offset + 4, this.offset + 16, value);
  }

  /** Writes the acknowledgment number and updates the checksum incrementally. */
  setAck(value: number): void {
    rewriteU32(this.bytes, this.offset + 8, this.offset + 16, value);
  }

  /** Writes the left edge of SACK block `i`; false (nothing written) when there is no such block. */
  setSackLeft(i: number, value: number): boolean {
    if (i < 0 || i >= this.sackBlockCount) return false;
    rewriteU32(this.bytes, this.sackOffset + 8 * i, this.offset + 16, value);
    return true;
  }

  /** Writes the right edge of SACK block `i`; false (nothing written) when there is no such block. */
  setSackRight(i: number, value: number): boolean {
    if (i < 0 || i >= this.sackBlockCount) return false;
    rewriteU32(this.bytes, this.sackOffset + 8 * i + 4, this.offset + 16, value);
    return true;
  }

  /** Writes TSval; false (nothing written) without a timestamps option. */
  setTsVal(value: number): boolean {
    if (this.timestampOffset < 0) return false;
    rewriteU32(this.bytes, this.timestampOffset, this.offset + 16, value);
    return true;
  }

  /** Writes TSecr; false (nothing written) without a timestamps option. */
  setTsEcr(value: number): boolean {
    if (this.timestampOffset < 0) return false;
    rewriteU32(this.bytes, this.timestampOffset + 4, this.offset + 16, value);
    return true;
  }
}

/** The kinds of the options `t` carries, in order. A walk of the options apart from `reset`'s, for the few segments that need it (SYNs). */
export function tcpOptionKinds(t: TcpView): number[] {
  const kinds: number[] = [];
  const b = t.bytes;
  const end = t.offset + t.headerLength;
  for (let i = t.offset + TCP_HEADER_LEN; i < end;) {
    const k = b[i]!;
    if (k === TCP_OPTION_EOL) break;
    if (k === TCP_OPTION_NOP) {
      i++;
      continue;
    }
    kinds.push(k);
    i += b[i + 1]!; // `reset` checked every length
  }
  return kinds;
}
