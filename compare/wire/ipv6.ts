/**
 * IPv6 headers (RFC 8200) and the walk along their extension-header chain.
 *
 * `Ipv6View.parse(bytes, offset, length)` checks the fixed header, bounds the packet by its
 * payload length (never by the frame end: padding is not payload), and walks the extension
 * headers to the upper-layer protocol: Hop-by-Hop (0, first only, RFC 8200 §4.1), Routing (43),
 * Fragment (44), Destination Options (60), AH (51, length in 4-byte units + 2, RFC 4302 §2.2)
 * and the RFC 7045 headers with the generic layout (Mobility 135, HIP 139, Shim6 140). The walk
 * stops at anything else, including ESP (50), No Next Header (59) and upper-layer protocols;
 * `upperProtocol`, `upperOffset` and `upperLength` describe what it stopped at. It also stops
 * after the Fragment header of a non-first fragment, whose later headers are in fragment 0.
 * After parse no getter can fail. `reset` re-runs the same checks and walk on an existing view,
 * for decoders that reuse one view per frame (frame.ts `FrameDecoder`); `empty` makes such a
 * view, to be read only after a `reset` succeeded.
 *
 * Limits: jumbograms (RFC 2675) are refused; at most `MAX_EXTENSION_HEADERS` extension headers
 * are walked; a second Fragment header is refused. Option contents are not interpreted.
 *
 * Error codes:
 * `decode.ipv6.header_too_short` (fewer than 40 bytes), `decode.ipv6.bad_version` (not 6),
 * `decode.ipv6.jumbogram_unsupported` (payload length 0 with a Hop-by-Hop header),
 * `decode.ipv6.payload_length_exceeds_frame`, `decode.ipv6.hop_by_hop_not_first`,
 * `decode.ipv6.extension_truncated` (an extension header runs past the payload),
 * `decode.ipv6.extension_chain_too_long`, `decode.ipv6.duplicate_fragment_header`.
 */

import { readU16, readU32 } from './bytes.js';
import { WireError } from './error.js';
import { formatIpv4 } from './ipv4.js';
import {
  IP_PROTOCOL_AH, IP_PROTOCOL_HIP, IP_PROTOCOL_HOP_BY_HOP, IP_PROTOCOL_IPV6_DEST_OPTS,
  IP_PROTOCOL_IPV6_FRAGMENT, IP_PROTOCOL_IPV6_ROUTING, IP_PROTOCOL_MOBILITY, IP_PROTOCOL_SHIM6,
} from './ip.js';

export const IPV6_HEADER_LEN = 40;
/** Longest extension-header chain walked; real traffic carries one or two. */
export const MAX_EXTENSION_HEADERS = 8;

const NO_BYTES = new Uint8Array(0);

/** Ipv6View with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof Ipv6View]: Ipv6View[K] };

function isGenericExtension(next: number): boolean {
  return next === IP_PROTOCOL_HOP_BY_HOP || next === IP_PROTOCOL_IPV6_ROUTING
    || next === IP_PROTOCOL_IPV6_DEST_OPTS || next === IP_PROTOCOL_MOBILITY
    || next === IP_PROTOCOL_HIP || next === IP_PROTOCOL_SHIM6;
}

export class Ipv6View {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the version byte in `bytes`. */
    readonly offset: number,
    /** The payload length field: bytes after the fixed header, extension headers included. */
    readonly payloadLength: number,
    /** Protocol number where the extension-header walk stopped (6 = TCP, 59 = no next header...). */
    readonly upperProtocol: number,
    /** Offset of that upper-layer header in `bytes`. */
    readonly upperOffset: number,
    /** Bytes from `upperOffset` to the end of the IPv6 payload. */
    readonly upperLength: number,
    /** Number of extension headers walked. */
    readonly extensionCount: number,
    /** Offset of the Fragment header, or -1 when there is none. */
    readonly fragmentHeaderOffset: number,
  ) {}

  /** Checks `length` bytes at `offset` and returns a view, or the coded reason it is not valid IPv6. */
  static parse(bytes: Uint8Array, offset = 0, length = bytes.length - offset): Ipv6View | WireError {
    return Ipv6View.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): Ipv6View {
    return new Ipv6View(NO_BYTES, 0, 0, 0, 0, 0, 0, -1);
  }

  /**
   * Makes this view describe `length` bytes at `offset`, with the checks and the walk of `parse`:
   * returns this view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): Ipv6View | WireError {
    if (length < IPV6_HEADER_LEN) return new WireError('decode.ipv6.header_too_short', offset + length);
    if (bytes[offset]! >>> 4 !== 6) return new WireError('decode.ipv6.bad_version', offset);
    const payloadLength = readU16(bytes, offset + 4);
    let next = bytes[offset + 6]!;
    if (payloadLength === 0 && next === IP_PROTOCOL_HOP_BY_HOP) {
      return new WireError('decode.ipv6.jumbogram_unsupported', offset + 4);
    }
    if (payloadLength > length - IPV6_HEADER_LEN) return new WireError('decode.ipv6.payload_length_exceeds_frame', offset + 4);
    const end = offset + IPV6_HEADER_LEN + payloadLength;
    let at = offset + IPV6_HEADER_LEN;
    let count = 0;
    let fragmentAt = -1;
    for (;;) {
      let headerLength: number;
      if (isGenericExtension(next)) {
        if (next === IP_PROTOCOL_HOP_BY_HOP && count !== 0) return new WireError('decode.ipv6.hop_by_hop_not_first', at);
        if (at + 2 > end) return new WireError('decode.ipv6.extension_truncated', end);
        headerLength = (bytes[at + 1]! + 1) * 8;
      } else if (next === IP_PROTOCOL_IPV6_FRAGMENT) {
        if (fragmentAt >= 0) return new WireError('decode.ipv6.duplicate_fragment_header', at);
        headerLength = 8;
      } else if (next === IP_PROTOCOL_AH) {
        if (at + 2 > end) return new WireError('decode.ipv6.extension_truncated', end);
        headerLength = (bytes[at + 1]! + 2) * 4;
      } else {
        break;
      }
      if (count === MAX_EXTENSION_HEADERS) return new WireError('decode.ipv6.extension_chain_too_long', at);
      if (at + headerLength > end) return new WireError('decode.ipv6.extension_truncated', end);
      if (next === IP_PROTOCOL_IPV6_FRAGMENT) fragmentAt = at;
      next = bytes[at]!;
      at += headerLength;
      count++;
      if (fragmentAt >= 0 && (readU16(bytes, fragmentAt + 2) & 0xfff8) !== 0) break;
    }
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.payloadLength = payloadLength;
    f.upperProtocol = next;
    f.upperOffset = at;
    f.upperLength = end - at;
    f.extensionCount = count;
    f.fragmentHeaderOffset = fragmentAt;
    return this;
  }

  /** Discriminant shared by the network-layer views. */
  get kind(): 'ipv6' {
    return 'ipv6';
  }

  /** Always 6. */
  get version(): number {
    return 6;
  }

  /** Traffic class byte (DSCP and ECN, RFC 8200 §7). */
  get trafficClass(): number {
    return (readU16(this.bytes, this.offset) >>> 4) & 0xff;
  }

  /** Differentiated services code point, the upper 6 bits of the traffic class. */
  get dscp(): number {
    return this.trafficClass >>> 2;
  }

  /** Explicit congestion notification, the lower 2 bits of the traffic class. */
  get ecn(): number {
    return this.trafficClass & 0x03;
  }

  /** Flow label (20 bits, RFC 6437). */
  get flowLabel(): number {
    return readU32(this.bytes, this.offset) & 0xfffff;
  }

  /** Next header of the fixed header (the first extension header or the upper layer). */
  get nextHeader(): number {
    return this.bytes[this.offset + 6]!;
  }

  /** Hop limit. */
  get hopLimit(): number {
    return this.bytes[this.offset + 7]!;
  }

  /** Offset of the 16-byte source address in `bytes`. */
  get srcOffset(): number {
    return this.offset + 8;
  }

  /** Offset of the 16-byte destination address in `bytes`. */
  get dstOffset(): number {
    return this.offset + 24;
  }

  /** Source address (a subarray, not a copy). */
  get src(): Uint8Array {
    return this.bytes.subarray(this.offset + 8, this.offset + 24);
  }

  /** Destination address (a subarray, not a copy). */
  get dst(): Uint8Array {
    return this.bytes.subarray(this.offset + 24, this.offset + 40);
  }

  /** Source address in RFC 5952 text form. */
  get srcString(): string {
    return formatIpv6(this.bytes, this.offset + 8);
  }

  /** Destination address in RFC 5952 text form. */
  get dstString(): string {
    return formatIpv6(this.bytes, this.offset + 24);
  }

  /** Offset just past the fixed header, where the first extension header or upper layer starts. */
  get payloadOffset(): number {
    return this.offset + IPV6_HEADER_LEN;
  }

  /** True when a Fragment header was seen. */
  get hasFragmentHeader(): boolean {
    return this.fragmentHeaderOffset >= 0;
  }

  /**
   * True when the packet is a real fragment: a Fragment header with a non-zero offset or the M
   * flag set. An "atomic fragment" (offset 0, M clear, RFC 6946) is a whole datagram.
   */
  get isFragment(): boolean {
    return this.fragmentHeaderOffset >= 0 && (readU16(this.bytes, this.fragmentHeaderOffset + 2) & 0xfff9) !== 0;
  }

  /** True for fragment 0 of a fragmented datagram (offset 0, M set). */
  get isFirstFragment(): boolean {
    return this.fragmentHeaderOffset >= 0 && (readU16(this.bytes, this.fragmentHeaderOffset + 2) & 0xfff9) === 1;
  }

  /** Fragment offset in bytes (0 without a Fragment header). */
  get fragmentOffset(): number {
    return this.fragmentHeaderOffset < 0 ? 0 : readU16(this.bytes, this.fragmentHeaderOffset + 2) & 0xfff8;
  }

  /** The M (more fragments) flag (false without a Fragment header). */
  get moreFragments(): boolean {
    return this.fragmentHeaderOffset >= 0 && (this.bytes[this.fragmentHeaderOffset + 3]! & 1) !== 0;
  }

  /** Fragment identification, or -1 without a Fragment header. */
  get fragmentId(): number {
    return this.fragmentHeaderOffset < 0 ? -1 : readU32(this.bytes, this.fragmentHeaderOffset + 4);
  }
}

/**
 * Formats the 16-byte address at `at` per RFC 5952: lowercase, no leading zeros, the longest
 * run of two or more zero groups (the first on a tie) as `::`, and IPv4-mapped addresses with a
 * dotted-quad tail (§5).
 */
export function formatIpv6(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(readU16(b, at + 2 * i));
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${formatIpv4(readU32(b, at + 12))}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
