/**
 * ARP packets (RFC 826), parsed generically for any hardware and protocol address sizes.
 *
 * `ArpView.parse` checks the 8-byte fixed header and that both address pairs
 * (`2 * (hlen + plen)` bytes) fit in `length`; after that no getter can fail. Anything after the
 * addresses (Ethernet padding) is ignored. Address sizes other than Ethernet/IPv4 are not errors:
 * the address getters return `hlen`/`plen`-byte subarrays, and the IPv4 convenience getters
 * return -1 unless `plen` is 4. `isEthernetIpv4` tells the common case (htype 1, ptype 0x0800,
 * hlen 6, plen 4) apart. `reset` re-runs the checks of `parse` on an existing view, for decoders
 * that reuse one view per frame (frame.ts `FrameDecoder`); `empty` makes such a view, to be read
 * only after a `reset` succeeded.
 *
 * Error codes: `decode.arp.header_too_short` (fewer than 8 bytes),
 * `decode.arp.addresses_truncated` (the address fields run past `length`).
 */

import { readU16, readU32 } from './bytes.js';
import { WireError } from './error.js';

export const ARP_HEADER_LEN = 8;
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

const NO_BYTES = new Uint8Array(0);

/** ArpView with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof ArpView]: ArpView[K] };

export class ArpView {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the hardware type field in `bytes`. */
    readonly offset: number,
    /** Bytes of the packet up to the end of the target protocol address. */
    readonly length: number,
  ) {}

  /** Checks `length` bytes at `offset` and returns a view, or the coded reason it is not ARP. */
  static parse(bytes: Uint8Array, offset = 0, length = bytes.length - offset): ArpView | WireError {
    return ArpView.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): ArpView {
    return new ArpView(NO_BYTES, 0, 0);
  }

  /**
   * Makes this view describe `length` bytes at `offset`, with the checks of `parse`: returns this
   * view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): ArpView | WireError {
    if (length < ARP_HEADER_LEN) return new WireError('decode.arp.header_too_short', offset + length);
    const needed = ARP_HEADER_LEN + 2 * (bytes[offset + 4]! + bytes[offset + 5]!);
    if (needed > length) return new WireError('decode.arp.addresses_truncated', offset + length);
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.length = needed;
    return this;
  }

  /** Discriminant shared by the network-layer views. */
  get kind(): 'arp' {
    return 'arp';
  }

  /** Hardware type (1 = Ethernet). */
  get hardwareType(): number {
    return readU16(this.bytes, this.offset);
  }

  /** Protocol type, an EtherType (0x0800 = IPv4). */
  get protocolType(): number {
    return readU16(this.bytes, this.offset + 2);
  }

  /** Hardware address length in bytes. */
  get hardwareLength(): number {
    return this.bytes[this.offset + 4]!;
  }

  /** Protocol address length in bytes. */
  get protocolLength(): number {
    return this.bytes[this.offset + 5]!;
  }

  /** Operation (1 = request, 2 = reply). */
  get operation(): number {
    return readU16(this.bytes, this.offset + 6);
  }

  /** True for the Ethernet/IPv4 layout (htype 1, ptype 0x0800, hlen 6, plen 4). */
  get isEthernetIpv4(): boolean {
    return this.hardwareType === ARP_HTYPE_ETHERNET && this.protocolType === 0x0800
      && this.hardwareLength === 6 && this.protocolLength === 4;
  }

  /** Sender hardware address (a subarray, not a copy). */
  get senderHardware(): Uint8Array {
    const at = this.offset + ARP_HEADER_LEN;
    return this.bytes.subarray(at, at + this.hardwareLength);
  }

  /** Sender protocol address (a subarray, not a copy). */
  get senderProtocol(): Uint8Array {
    const at = this.offset + ARP_HEADER_LEN + this.hardwareLength;
    return this.bytes.subarray(at, at + this.protocolLength);
  }

  /** Target hardware address (a subarray, not a copy). */
  get targetHardware(): Uint8Array {
    const at = this.offset + ARP_HEADER_LEN + this.hardwareLength + this.protocolLength;
    return this.bytes.subarray(at, at + this.hardwareLength);
  }

  /** Target protocol address (a subarray, not a copy). */
  get targetProtocol(): Uint8Array {
    const at = this.offset + ARP_HEADER_LEN + 2 * this.hardwareLength + this.protocolLength;
    return this.bytes.subarray(at, at + this.protocolLength);
  }

  /** Sender IPv4 address as an unsigned 32-bit number, or -1 when `plen` is not 4. */
  get senderIp(): number {
    if (this.protocolLength !== 4) return -1;
    return readU32(this.bytes, this.offset + ARP_HEADER_LEN + this.hardwareLength);
  }

  /** Target IPv4 address as an unsigned 32-bit number, or -1 when `plen` is not 4. */
  get targetIp(): number {
    if (this.protocolLength !== 4) return -1;
    return readU32(this.bytes, this.offset + ARP_HEADER_LEN + 2 * this.hardwareLength + 4);
  }
}
