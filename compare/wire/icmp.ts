/**
 * ICMP for IPv4 (RFC 792): `IcmpView`, the icmp-family.ts view with ICMP's echo and error types
 * and its checksum, which has no pseudo-header.
 *
 * `IcmpView.parse(bytes, offset, length)` takes the IP payload length as `length` and checks only
 * that the 8-byte header fits; after that no getter can fail. The message ends at `length`.
 * `reset` re-runs the check on an existing view, for decoders that reuse one view per frame
 * (frame.ts `FrameDecoder`); `empty` makes such a view, to be read only after a `reset` succeeded.
 * The error messages are destination unreachable, source quench, redirect, time exceeded and
 * parameter problem; their embedded IP header is usually truncated, so parse it on demand with
 * `Ipv4View.parse` and expect errors. The checksum is not verified at parse time.
 *
 * Error codes: `decode.icmp.header_too_short` (fewer than 8 bytes).
 */

import { writeU16 } from './bytes.js';
import { onesSum, transportChecksum } from './checksum.js';
import type { WireError } from './error.js';
import { IcmpFamilyView } from './icmp-family.js';

export { ICMP_HEADER_LEN } from './icmp-family.js';
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

const NO_BYTES = new Uint8Array(0);

export class IcmpView extends IcmpFamilyView {
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
    return this.resetOrFail(bytes, offset, length, 'decode.icmp.header_too_short');
  }

  /** Discriminant shared by the transport-layer views. */
  get kind(): 'icmp' {
    return 'icmp';
  }

  /** True for echo request and echo reply. */
  override get isEcho(): boolean {
    const t = this.type;
    return t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY;
  }

  /** True for the error messages that embed the offending datagram's header. */
  override get isError(): boolean {
    const t = this.type;
    return t === ICMP_DEST_UNREACHABLE || t === ICMP_SOURCE_QUENCH || t === ICMP_REDIRECT
      || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETER_PROBLEM;
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
