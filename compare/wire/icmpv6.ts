/**
 * ICMPv6 (RFC 4443): `Icmpv6View`, the icmp-family.ts view with ICMPv6's echo and error types and
 * its checksum, which covers the IPv6 pseudo-header (RFC 4443 §2.3).
 *
 * `Icmpv6View.parse(bytes, offset, length)` takes the upper-layer length from the IPv6 walk as
 * `length` and checks only that the 8-byte header fits (every ICMPv6 message has at least 8);
 * after that no getter can fail. Error messages are types 0..127 (RFC 4443 §2.1) and embed an
 * IPv6 header. Neighbour Discovery bodies are not interpreted. The checksum is not verified at
 * parse time. `reset` re-runs the check on an existing view, for decoders that reuse one view per
 * frame (frame.ts `FrameDecoder`); `empty` makes such a view, to be read only after a `reset`
 * succeeded.
 *
 * Error codes: `decode.icmpv6.header_too_short` (fewer than 8 bytes).
 */

import { writeU16 } from './bytes.js';
import { transportChecksum, verifyTransportChecksum } from './checksum.js';
import type { WireError } from './error.js';
import { IcmpFamilyView } from './icmp-family.js';

export { ICMP_HEADER_LEN as ICMPV6_HEADER_LEN } from './icmp-family.js';
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

const NO_BYTES = new Uint8Array(0);

export class Icmpv6View extends IcmpFamilyView {
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
    return this.resetOrFail(bytes, offset, length, 'decode.icmpv6.header_too_short');
  }

  /** Discriminant shared by the transport-layer views. */
  get kind(): 'icmpv6' {
    return 'icmpv6';
  }

  /** True for echo request (128) and echo reply (129). */
  override get isEcho(): boolean {
    const t = this.type;
    return t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY;
  }

  /** True for error messages (types below 128), which embed the offending packet. */
  override get isError(): boolean {
    return this.type < 128;
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
