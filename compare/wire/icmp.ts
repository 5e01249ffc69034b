/**
 * ICMP for IPv4 (RFC 792): the common 8-byte header, echo identifiers, and where an error
 * message carries the header of the datagram that caused it.
 *
 * `IcmpView.parse(bytes, offset, length)` takes the IP payload length as `length` and checks only
 * that the 8-byte header fits; after that no getter can fail. The message ends at `length`.
 * `reset` re-runs the check on an existing view, for decoders that reuse one view per frame
 * (frame.ts `FrameDecoder`); `empty` makes such a view, to be read only after a `reset` succeeded.
 * Echo fields read -1 for other types; `embeddedOffset` is -1 unless the type is an error
 * (destination unreachable, source quench, redirect, time exceeded, parameter problem), and the
 * embedded IP header is not parsed here (it is usually truncated, so parse it on demand with
 * `Ipv4View.parse` and expect errors). The checksum is not verified at parse time.
 *
 * Error codes: `decode.icmp.header_too_short` (fewer than 8 bytes).
 */

import { readU16, writeU16 } from './bytes.js';
import { onesSum, transportChecksum } from './checksum.js';
import { WireError } from './error.js';

export const ICMP_HEADER_LEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

const NO_BYTES = new Uint8Array(0);

/** IcmpView with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof IcmpView]: IcmpView[K] };

export class IcmpView {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the type byte in `bytes`. */
    readonly offset: number,
    /** Message length (the IP payload length). */
    readonly length: number,
  ) {}

  /** Checks the `length`-byte message at `offset`; returns a view or a coded error. */
  static parse(bytes: Uint8Array, offset: number, length: number): IcmpView | WireError {
    return IcmpView.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): IcmpView {
    return new IcmpView(NO_BYTES, 0, 0);
  }

  /**
   * Makes this view describe the `length`-byte message at `offset`, with the checks of `parse`:
   * returns this view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): IcmpView | WireError {
    if (length < ICMP_HEADER_LEN) return new WireError('decode.icmp.header_too_short', offset + length);
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.length = length;
    return this;
  }

  /** Discriminant shared by the transport-layer views. */
  get kind(): 'icmp' {
    return 'icmp';
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

  /** True for echo request and echo reply. */
  get isEcho(): boolean {
    const t = this.type;
    return t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY;
  }

  /** True for the error messages that embed the offending datagram's header. */
  get isError(): boolean {
    const t = this.type;
    return t === ICMP_DEST_UNREACHABLE || t === ICMP_SOURCE_QUENCH || t === ICMP_REDIRECT
      || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETER_PROBLEM;
  }

  /** Echo identifier, or -1 for other types. */
  get echoId(): number {
    return this.isEcho ? readU16(this.bytes, this.offset + 4) : -1;
  }

  /** Echo sequence number, or -1 for other types. */
  get echoSequence(): number {
    return this.isEcho ? readU16(this.bytes, this.offset + 6) : -1;
  }

  /** Offset of the embedded original IP header for error messages, or -1. */
  get embeddedOffset(): number {
    return this.isError ? this.offset + ICMP_HEADER_LEN : -1;
  }

  /** Offset of the data after the 8-byte header in `bytes`. */
  get payloadOffset(): number {
    return this.offset + ICMP_HEADER_LEN;
  }

  /** Length of the data after the 8-byte header. */
  get payloadLength(): number {
    return this.length - ICMP_HEADER_LEN;
  }

  /** True when the stored checksum is correct (ICMP has no pseudo-header). */
  verifyChecksum(): boolean {
    return onesSum(this.bytes, this.offset, this.length) === 0xffff;
  }

  /** Recomputes and stores the checksum. */
  fillChecksum(): void {
    writeU16(this.bytes, this.offset + 2, transportChecksum(0, this.bytes, this.offset, this.length, this.offset + 2));
  }
}
