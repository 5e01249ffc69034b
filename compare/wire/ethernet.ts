/**
 * Ethernet II frames (no FCS), with any number of stacked 802.1Q / 802.1ad VLAN tags.
 *
 * `EthernetView.parse` checks the lengths once; after that every getter reads in place and cannot
 * fail. `reset` re-runs the same checks on an existing view, for decoders that reuse one view
 * per frame (frame.ts `FrameDecoder`); `empty` makes such a view, which is to be read only after a
 * `reset` succeeded. `etherType` is the type after the last tag and `payloadOffset` is where that payload
 * starts in the underlying array. Frames shorter than 14 bytes, or whose tags run past the end,
 * are `decode.ethernet.*` errors. Tag stacks deeper than `MAX_VLAN_TAGS` are refused rather than
 * walked (`decode.ethernet.too_many_tags`): real networks use one or two.
 */

import { readU16 } from './bytes.js';
import { WireError } from './error.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100; // 802.1Q C-tag
export const ETHERTYPE_QINQ = 0x88a8; // 802.1ad S-tag
export const ETHERTYPE_QINQ_OLD = 0x9100; // pre-standard Q-in-Q, still seen in the wild
export const ETHERTYPE_IPV6 = 0x86dd;

export const ETHERNET_HEADER_LEN = 14;
export const VLAN_TAG_LEN = 4;
export const MAX_VLAN_TAGS = 4;

const NO_BYTES = new Uint8Array(0);

/** EthernetView with its fields writable, for `reset`. */
type Fields = { -readonly [K in keyof EthernetView]: EthernetView[K] };

function isTagType(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD;
}

export class EthernetView {
  private constructor(
    readonly bytes: Uint8Array,
    /** Offset of the destination MAC in `bytes`. */
    readonly offset: number,
    /** Number of VLAN tags between the source MAC and the final EtherType. */
    readonly tagCount: number,
    /** Offset just past the header and tags. */
    readonly payloadOffset: number,
    /** Bytes from `payloadOffset` to the end of the frame (may include Ethernet padding). */
    readonly payloadLength: number,
  ) {}

  /** Checks `length` bytes at `offset` and returns a view, or the coded reason it is not Ethernet. */
  static parse(bytes: Uint8Array, offset = 0, length = bytes.length - offset): EthernetView | WireError {
    return EthernetView.empty().reset(bytes, offset, length);
  }

  /** A view of no bytes, to be filled by `reset` before any other use. */
  static empty(): EthernetView {
    return new EthernetView(NO_BYTES, 0, 0, 0, 0);
  }

  /**
   * Makes this view describe `length` bytes at `offset`, with the checks of `parse`: returns this
   * view, or the coded error and the view is left as it was.
   */
  reset(bytes: Uint8Array, offset: number, length: number): EthernetView | WireError {
    if (length < ETHERNET_HEADER_LEN) return new WireError('decode.ethernet.too_short', offset + length);
    let at = offset + 12;
    let tags = 0;
    while (isTagType(readU16(bytes, at))) {
      if (tags === MAX_VLAN_TAGS) return new WireError('decode.ethernet.too_many_tags', at);
      if (at + VLAN_TAG_LEN + 2 > offset + length) return new WireError('decode.ethernet.vlan_truncated', offset + length);
      at += VLAN_TAG_LEN;
      tags++;
    }
    return this.set(bytes, offset, tags, at + 2, offset + length - (at + 2));
  }

  /**
   * Makes this view describe a header already known to pass `reset`'s checks with these values;
   * for a decoder that did those checks itself (frame.ts `FrameDecoder`'s fast path).
   */
  set(bytes: Uint8Array, offset: number, tagCount: number, payloadOffset: number, payloadLength: number): EthernetView {
    const f = this as Fields;
    f.bytes = bytes;
    f.offset = offset;
    f.tagCount = tagCount;
    f.payloadOffset = payloadOffset;
    f.payloadLength = payloadLength;
    return this;
  }

  /** Destination MAC as six bytes (a subarray, not a copy). */
  get destination(): Uint8Array {
    return this.bytes.subarray(this.offset, this.offset + 6);
  }

  /** Source MAC as six bytes (a subarray, not a copy). */
  get source(): Uint8Array {
    return this.bytes.subarray(this.offset + 6, this.offset + 12);
  }

  /** EtherType of the payload, after any VLAN tags. */
  get etherType(): number {
    return readU16(this.bytes, this.payloadOffset - 2);
  }

  /** Tag protocol identifier of tag `i` (0 = outermost). */
  tagProtocol(i: number): number {
    return readU16(this.bytes, this.offset + 12 + i * VLAN_TAG_LEN);
  }

  /** VLAN identifier (12 bits) of tag `i` (0 = outermost). */
  vlanId(i: number): number {
    return readU16(this.bytes, this.offset + 14 + i * VLAN_TAG_LEN) & 0x0fff;
  }

  /** Priority code point (3 bits) of tag `i`. */
  priority(i: number): number {
    return this.bytes[this.offset + 14 + i * VLAN_TAG_LEN]! >>> 5;
  }
}

/** Formats a MAC address as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(mac: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(mac[i]!.toString(16).padStart(2, '0'));
  return parts.join(':');
}
