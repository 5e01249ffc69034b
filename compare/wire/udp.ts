/**
 * UDP datagrams (RFC 768).
 *
 * `UdpView.parse(bytes, offset, length)` takes the IP payload length as `length` and checks the
 * UDP length field against it: below 8 or above `length` is an error; below `length` is allowed
 * and the datagram ends at the UDP length (the rest is trailing junk, as Linux treats it).
 * After parse no getter can fail. `reset` re-runs the same checks on an existing view, for
 * decoders that reuse one view per frame (frame.ts `FrameDecoder`); `empty` makes such a view, to
 * be read only after a `reset` succeeded. A checksum of 0 means "none" over IPv4 (RFC 768) and is
 * invalid over IPv6 (RFC 8200 §8.1); `verifyChecksum` only does the arithmetic, so check
 * `hasChecksum` first. `setDstPort` rewrites the destination port in place (a sequence-space
 * rewriter's port mapping), checksum included. Jumbograms (length field 0, RFC 2675) are not supported.
 *
 * Error codes: `decode.udp.header_too_short` (fewer than 8 bytes), `decode.udp.bad_length`
 * (length field < 8), `decode.udp.length_exceeds_ip_payload`.
 */

import { readU16, writeU16 } from './bytes.js';
import { rewriteU16, udpChecksum, verifyTransportChecksum } from './checksum.js';
import { WireError } from './error.js';

export const UDP_HEADER_LEN = 8;

const NO_BYTES = new Uint8Array(0);

/** UdpView with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof UdpView]: UdpView[K] };

export class UdpView {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the source port in `bytes`. */
    readonly offset: number,
    /** The length field: header plus payload. */
    readonly length: number,
  ) {}

  /**
   * Checks the datagram at `offset` within `length` IP payload bytes; returns a view or a coded
   * error. In the first fragment of a fragmented datagram (`firstFragment`) the length field
   * counts the whole datagram, so it may exceed `length`; the view then ends with the fragment.
   */
  static parse(bytes: Uint8Array, offset: number, length: number, firstFragment = false): UdpView | WireError {
    return UdpView.empty().reset(bytes, offset, length, firstFragment);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): UdpView {
    return new UdpView(NO_BYTES, 0, 0);
  }

  /**
   * Makes this view describe the datagram at `offset` (as `parse` does), with the checks of `parse`:
   * returns this view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number, firstFragment = false): UdpView | WireError {
    if (length < UDP_HEADER_LEN) return new WireError('decode.udp.header_too_short', offset + length);
    let udpLength = readU16(bytes, offset + 4);
    if (udpLength < UDP_HEADER_LEN) return new WireError('decode.udp.bad_length', offset + 4);
    if (udpLength > length) {
      if (!firstFragment) return new WireError('decode.udp.length_exceeds_ip_payload', offset + 4);
      udpLength = length;
    }
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.length = udpLength;
    return this;
  }

  /** Discriminant shared by the transport-layer views. */
  get kind(): 'udp' {
    return 'udp';
  }

  /** Source port. */
  get srcPort(): number {
    return readU16(this.bytes, this.offset);
  }

  /** Destination port. */
  get dstPort(): number {
    return readU16(this.bytes, this.offset + 2);
  }

  /** Checksum as stored. */
  get checksum(): number {
    return readU16(this.bytes, this.offset + 6);
  }

  /** False when the checksum field is 0 (no checksum, IPv4 only). */
  get hasChecksum(): boolean {
    return this.checksum !== 0;
  }

  /** Offset of the payload in `bytes`. */
  get payloadOffset(): number {
    return this.offset + UDP_HEADER_LEN;
  }

  /** Payload length in bytes, from the UDP length field. */
  get payloadLength(): number {
    return this.length - UDP_HEADER_LEN;
  }

  /** True when the stored checksum is correct after `pseudoSum` (from `pseudoSumV4`/`pseudoSumV6`). */
  verifyChecksum(pseudoSum: number): boolean {
    return verifyTransportChecksum(pseudoSum, this.bytes, this.offset, this.length);
  }

  /**
   * Rewrites the destination port, fixing the checksum incrementally (RFC 1624): a datagram
   * without one (0) keeps none, and a result of 0 is stored as 0xffff (RFC 768).
   */
  setDstPort(port: number): void {
    const checksumAt = this.offset + 6;
    if (readU16(this.bytes, checksumAt) === 0) {
      writeU16(this.bytes, this.offset + 2, port);
      return;
    }
    rewriteU16(this.bytes, this.offset + 2, checksumAt, port);
    if (readU16(this.bytes, checksumAt) === 0) writeU16(this.bytes, checksumAt, 0xffff);
  }

  /** Recomputes and stores the checksum after `pseudoSum` (a computed 0 is stored as 0xffff). */
  fillChecksum(pseudoSum: number): void {
    writeU16(this.bytes, this.offset + 6, udpChecksum(pseudoSum, this.bytes, this.offset, this.length, this.offset + 6));
  }
}
