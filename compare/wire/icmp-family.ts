/**
 * What ICMP (RFC 792) and ICMPv6 (RFC 4443) messages share: the 8-byte common header (type,
 * code, checksum, then the echo identifier and sequence number), the offset of the packet an
 * error message quotes, and the data after the header. `IcmpFamilyView` is the base of
 * `IcmpView` (icmp.ts) and `Icmpv6View` (icmpv6.ts), which say which types are echo and error
 * messages, name their error code and own the checksum (ICMPv6 covers a pseudo-header).
 *
 * Echo fields read -1 for other types and `embeddedOffset` is -1 unless the type is an error; the
 * embedded header is not parsed here.
 */

import { readU16 } from './bytes.js';
import { rewriteU16 } from './checksum.js';
import { WireError } from './error.js';

/** Length of the common header of every ICMP and ICMPv6 message. */
export const ICMP_HEADER_LEN = 8;

/** IcmpFamilyView with its fields writable, for `resetOrFail`. */
type Fields = { -readonly [K in keyof IcmpFamilyView]: IcmpFamilyView[K] };

export abstract class IcmpFamilyView {
  protected constructor(
    readonly bytes: Uint8Array,
    /** Offset of the type byte in `bytes`. */
    readonly offset: number,
    /** Message length (the upper-layer length from the IP layer). */
    readonly length: number,
  ) {}

  /** True for echo request and echo reply. */
  abstract get isEcho(): boolean;

  /** True for the error messages, which embed the header of the packet that caused them. */
  abstract get isError(): boolean;

  /**
   * The subclasses' `reset`: makes this view describe the `length`-byte message at `offset` and
   * returns it, or returns a `code` error when the 8-byte header does not fit (the view unchanged).
   */
  protected resetOrFail(bytes: Uint8Array, offset: number, length: number, code: string): this | WireError {
    if (length < ICMP_HEADER_LEN) return new WireError(code, offset + length);
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.length = length;
    return this;
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

  /** Echo identifier, or -1 for other types. */
  get echoId(): number {
    return this.isEcho ? readU16(this.bytes, this.offset + 4) : -1;
  }

  /** Echo sequence number, or -1 for other types. */
  get echoSequence(): number {
    return this.isEcho ? readU16(this.bytes, this.offset + 6) : -1;
  }

  /**
   * Rewrites the echo identifier of an echo message, fixing the checksum incrementally (RFC 1624;
   * ICMPv6's pseudo-header does not cover the identifier, so both families update alike).
   */
  setEchoId(id: number): void {
    rewriteU16(this.bytes, this.offset + 4, this.offset + 2, id);
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
}
