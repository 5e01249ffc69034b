/**
 * ICMPv6 (RFC 4443): the common header, echo identifiers, and where an error message carries
 * the header of the packet that caused it.
 *
 * `Icmpv6View.parse(bytes, offset, length)` takes the upper-layer length from the IPv6 walk as
 * `length` and checks only that the 8-byte header fits (every ICMPv6 message has at least 8);
 * after that no getter can fail. Echo fields read -1 for other types; `embeddedOffset` is -1
 * unless the type is an error message (types 0..127, RFC 4443 §2.1), and the embedded IPv6
 * header is not parsed here. Neighbour Discovery bodies are not interpreted. The checksum
 * covers the IPv6 pseudo-header (RFC 4443 §2.3) and is not verified at parse time. `reset`
 * re-runs the check on an existing view, for decoders that reuse one view per frame (frame.ts
 * `FrameDecoder`); `empty` makes such a view, to be read only after a `reset` succeeded.
 *
 * Error codes: `decode.icmpv6.header_too_short` (fewer than 8 bytes).
 */

import { readU16, writeU16 } from './bytes.js';
import { transportChecksum, verifyTransportChecksum } from './checksum.js';
import { WireError } from './error.js';

export const ICMPV6_HEADER_LEN = 8;
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

const NO_BYTES = new Uint8Array(0);

/** Icmpv6View with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof Icmpv6View]: Icmpv6View[K] };

export class Icmpv6View {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the type byte in `bytes`. */
    readonly offset: number,
    /** Message length (the upper-layer length). */
    readonly length: number,
  ) {}

  /** Checks the `length`-byte message at `offset`; returns a view or a coded error. */
  static parse(bytes: Uint8Array, offset: number, length: number): Icmpv6View | WireError {
    return Icmpv6View.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): Icmpv6View {
    return new Icmpv6View(NO_BYTES, 0, 0);
  }

  /**
   * Makes this view describe the `length`-byte message at `offset`, with the checks of `parse`:
   * returns this view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): Icmpv6View | WireError {
    if (length < ICMPV6_HEADER_LEN) return new WireError('decode.icmpv6.header_too_short', offset + length);
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.length = length;
    return this;
  }

  /** Discriminant shared by the transport-layer views. */
  get kind(): 'icmpv6' {
    return 'icmpv6';
  }

  /** Message type. */
  get type(): number {
    return this.bytes[this.offset]!;
  }

  /** Message code. */
  get code(): number {
    return this.bytes[this.offset + 1]!;
  }

  /** Checksum as stored. */
  get checksum(): number {
    return readU16(this.bytes, this.offset + 2);
  }

  /** True for echo request (128) and echo reply (129). */
  get isEcho(): boolean {
    const t = this.type;
    return t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY;
  }

  /** True for error messages (types below 128), which embed the offending packet. */
  get isError(): boolean {
    return this.type < 128;
  }

  /** Echo identifier, or -1 for other types. */
  get echoId(): number {
    return this.isEcho ? readU16(this.bytes, this.offset + 4) : -1;
  }

  /** Echo sequence number, or -1 for other types. */
  get echoSequence(): number {
    return this.isEcho ? readU16(this.bytes, this.offset + 6) : -1;
  }

  /** Offset of the embedded original IPv6 header for error messages, or -1. */
  get embeddedOffset(): number {
    return this.isError ? this.offset + ICMPV6_HEADER_LEN : -1;
  }

  /** Offset of the data after the 8-byte header in `bytes`. */
  get payloadOffset(): number {
    return this.offset + ICMPV6_HEADER_LEN;
  }

  /** Length of the data after the 8-byte header. */
  get payloadLength(): number {
    return this.length - ICMPV6_HEADER_LEN;
  }

  /** True when the stored checksum is correct after `pseudoSum` (from `pseudoSumV6`). */
  verifyChecksum(pseudoSum: number): boolean {
    return verifyTransportChecksum(pseudoSum, this.bytes, this.offset, this.length);
  }

  /** Recomputes and stores the checksum after `pseudoSum`. */
  fillChecksum(pseudoSum: number): void {
    writeU16(this.bytes, this.offset + 2, transportChecksum(pseudoSum, this.bytes, this.offset, this.length, this.offset + 2));
  }
}
