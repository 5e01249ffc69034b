/**
 * IPv4 headers (RFC 791), with options kept as an opaque byte range.
 *
 * `Ipv4View.parse(bytes, offset, length)` takes the bytes available after the link header and
 * checks them once: version 4, IHL of at least 5 and within `length`, and a total length that
 * covers the header and fits in `length`. The packet ends at the total length, never at the end
 * of the frame: Ethernet pads short frames, and padding is not payload. After parse no getter can
 * fail. `reset` re-runs the same checks on an existing view, for decoders that reuse one view per
 * frame (frame.ts `FrameDecoder`); `empty` makes such a view, to be read only after a `reset`
 * succeeded. The header checksum is not checked at parse time (it is verified on demand with
 * `verifyChecksum`), and fragments are not reassembled: `isFragment` says whether the payload is
 * a piece of a larger datagram, and only the first fragment carries the upper-layer header.
 *
 * Error codes:
 * `decode.ipv4.header_too_short` (fewer than 20 bytes), `decode.ipv4.bad_version` (not 4),
 * `decode.ipv4.bad_ihl` (IHL < 5), `decode.ipv4.options_truncated` (IHL * 4 > available),
 * `decode.ipv4.total_length_too_small` (total length < IHL * 4),
 * `decode.ipv4.total_length_exceeds_frame` (total length > available).
 */

import { readU16, readU32 } from './bytes.js';
import { verifyIpv4HeaderChecksum } from './checksum.js';
import { WireError } from './error.js';

export const IPV4_HEADER_LEN = 20;

const NO_BYTES = new Uint8Array(0);

/** Ipv4View with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof Ipv4View]: Ipv4View[K] };

export class Ipv4View {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the version/IHL byte in `bytes`. */
    readonly offset: number,
    /** Header length in bytes (IHL * 4), including options. */
    readonly headerLength: number,
    /** Total length field: header plus payload, bounded by the bytes available. */
    readonly totalLength: number,
  ) {}

  /** Checks `length` bytes at `offset` and returns a view, or the coded reason it is not valid IPv4. */
  static parse(bytes: Uint8Array, offset = 0, length = bytes.length - offset): Ipv4View | WireError {
    return Ipv4View.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): Ipv4View {
    return new Ipv4View(NO_BYTES, 0, 0, 0);
  }

  /**
   * Makes this view describe `length` bytes at `offset`, with the checks of `parse`: returns this
   * view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): Ipv4View | WireError {
    if (length < IPV4_HEADER_LEN) return new WireError('decode.ipv4.header_too_short', offset + length);
    const vihl = bytes[offset]!;
    if (vihl >>> 4 !== 4) return new WireError('decode.ipv4.bad_version', offset);
    const headerLength = (vihl & 0x0f) * 4;
    if (headerLength < IPV4_HEADER_LEN) return new WireError('decode.ipv4.bad_ihl', offset);
    if (headerLength > length) return new WireError('decode.ipv4.options_truncated', offset + length);
    const totalLength = readU16(bytes, offset + 2);
    if (totalLength < headerLength) return new WireError('decode.ipv4.total_length_too_small', offset + 2);
    if (totalLength > length) return new WireError('decode.ipv4.total_length_exceeds_frame', offset + 2);
    return this.set(bytes, offset, headerLength, totalLength);
  }

  /**
   * Makes this view describe a header already known to pass `reset`'s checks with these values;
   * for a decoder that did those checks itself (frame.ts `FrameDecoder`'s fast path).
   */
  set(bytes: Uint8Array, offset: number, headerLength: number, totalLength: number): Ipv4View {
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.headerLength = headerLength;
    f.totalLength = totalLength;
    return this;
  }

  /** Discriminant shared by the network-layer views. */
  get kind(): 'ipv4' {
    return 'ipv4';
  }

  /** Always 4. */
  get version(): number {
    return 4;
  }

  /** Internet header length in 32-bit words (5..15). */
  get ihl(): number {
    return this.headerLength >>> 2;
  }

  /** The whole type-of-service byte (DSCP and ECN). */
  get tos(): number {
    return this.bytes[this.offset + 1]!;
  }

  /** Differentiated services code point, the upper 6 bits of the TOS byte (RFC 2474 §3). */
  get dscp(): number {
    return this.bytes[this.offset + 1]! >>> 2;
  }

  /** Explicit congestion notification, the lower 2 bits of the TOS byte (RFC 3168 §5). */
  get ecn(): number {
    return this.bytes[this.offset + 1]! & 0x03;
  }

  /** Identification, shared by all fragments of one datagram. */
  get identification(): number {
    return readU16(this.bytes, this.offset + 4);
  }

  /** Don't Fragment flag. */
  get dontFragment(): boolean {
    return (this.bytes[this.offset + 6]! & 0x40) !== 0;
  }

  /** More Fragments flag. */
  get moreFragments(): boolean {
    return (this.bytes[this.offset + 6]! & 0x20) !== 0;
  }

  /** Fragment offset in bytes (the header field counts 8-byte units, RFC 791 §3.1). */
  get fragmentOffset(): number {
    return (readU16(this.bytes, this.offset + 6) & 0x1fff) * 8;
  }

  /** True when this packet is a fragment (More Fragments set or a non-zero offset). */
  get isFragment(): boolean {
    return (readU16(this.bytes, this.offset + 6) & 0x3fff) !== 0;
  }

  /** True for the fragment at offset 0 of a fragmented datagram, the only one with an upper-layer header. */
  get isFirstFragment(): boolean {
    return (readU16(this.bytes, this.offset + 6) & 0x3fff) === 0x2000;
  }

  /** Time to live. */
  get ttl(): number {
    return this.bytes[this.offset + 8]!;
  }

  /** Upper-layer protocol number (6 = TCP, 17 = UDP, 1 = ICMP). */
  get protocol(): number {
    return this.bytes[this.offset + 9]!;
  }

  /** Header checksum as stored. */
  get checksum(): number {
    return readU16(this.bytes, this.offset + 10);
  }

  /** True when the stored header checksum is correct. */
  verifyChecksum(): boolean {
    return verifyIpv4HeaderChecksum(this.bytes, this.offset);
  }

  /** Source address as an unsigned 32-bit number. */
  get src(): number {
    return readU32(this.bytes, this.offset + 12);
  }

  /** Destination address as an unsigned 32-bit number. */
  get dst(): number {
    return readU32(this.bytes, this.offset + 16);
  }

  /** Source address in dotted-quad form. */
  get srcString(): string {
    return formatIpv4(this.src);
  }

  /** Destination address in dotted-quad form. */
  get dstString(): string {
    return formatIpv4(this.dst);
  }

  /** Offset of the options in `bytes` (equal to `payloadOffset` when there are none). */
  get optionsOffset(): number {
    return this.offset + IPV4_HEADER_LEN;
  }

  /** Length of the options in bytes. */
  get optionsLength(): number {
    return this.headerLength - IPV4_HEADER_LEN;
  }

  /** Offset of the payload in `bytes`. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }

  /** Payload length from the total length field; Ethernet padding is excluded. */
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }
}

/** Formats an unsigned 32-bit IPv4 address as `a.b.c.d`. */
export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}
