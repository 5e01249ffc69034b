/**
 * `decodeFrame`, the single entry point from raw frame bytes to layered views:
 * link -> network -> transport.
 *
 * Link types: Ethernet (with VLAN tags), LINKTYPE_RAW (version from the first nibble),
 * LINKTYPE_IPV4, LINKTYPE_IPV6, Linux SLL (16-byte header, protocol at 14) and SLL2 (20-byte
 * header, protocol at 0). SLL headers are not exposed as views (`link` is null) and VLAN tags
 * inside SLL payloads are not walked. Network layers: IPv4, IPv6 (with its extension chain) and
 * ARP; transport layers: TCP, UDP, ICMP over IPv4 and ICMPv6 over IPv6.
 *
 * Anything unknown (link type, EtherType, IP protocol) is not an error: the layers that are
 * known are decoded and the rest left null, and `payloadOffset`/`payloadLength` then cover the
 * undecoded bytes. Any malformed known layer is returned as that layer's `WireError`. Non-first
 * fragments carry no transport header, so none is parsed; a first fragment's transport header
 * is parsed, and its payload is only this fragment's share. Packet bytes never throw.
 *
 * Error codes, besides those of the layer views: `decode.raw.empty` (a raw-IP frame of 0 bytes),
 * `decode.raw.bad_version` (first nibble neither 4 nor 6), `decode.sll.header_too_short`,
 * `decode.sll2.header_too_short`.
 *
 * This is the hot path: `decodeFrame` makes one object per decoded layer plus the `Frame`, no
 * closures or arrays. A `FrameDecoder` makes none: it owns one `Frame` and one view of each kind
 * and re-initialises them (views' `reset`) on every `decode`, so what it returns is valid only
 * until its next `decode` call, which overwrites it in place. It is for callers that keep nothing
 * of a decoded frame past that point (values read from it are theirs, the Frame and views are
 * not); anything else uses `decodeFrame`. Both return equal results; the decoder first tries a
 * shortcut for the common untagged Ethernet / IPv4 / TCP frame (`untaggedIpv4Tcp`), and runs the
 * same code as `decodeFrame` for everything else.
 * Parse results are told apart by `instanceof` on the expected view class: on Node 20 that is
 * several times cheaper than `instanceof WireError` when errors are rare (measured with
 * bench/parse.ts).
 */

import { readU16, readU32 } from './bytes.js';
import { WireError } from './error.js';
import { ArpView } from './arp.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetView } from './ethernet.js';
import { IcmpView } from './icmp.js';
import { Icmpv6View } from './icmpv6.js';
import { IP_PROTOCOL_ICMP, IP_PROTOCOL_ICMPV6, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP } from './ip.js';
import { Ipv4View } from './ipv4.js';
import { Ipv6View } from './ipv6.js';
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from './link.js';
import { TCP_HEADER_LEN, TcpView } from './tcp.js';
import { UdpView } from './udp.js';

export const SLL_HEADER_LEN = 16;
export const SLL2_HEADER_LEN = 20;

/** A decoded network layer; narrow on `kind` ('ipv4' | 'ipv6' | 'arp'). */
export type NetworkView = Ipv4View | Ipv6View | ArpView;
/** A decoded transport layer; narrow on `kind` ('tcp' | 'udp' | 'icmp' | 'icmpv6'). */
export type TransportView = TcpView | UdpView | IcmpView | Icmpv6View;

/**
 * One decoded frame. Made by `decodeFrame`, or reused by a `FrameDecoder` (then valid until its
 * next `decode`); every field is set, unknown layers are null.
 */
export class Frame {
  constructor(
    readonly bytes: Uint8Array,
    /** The LINKTYPE_* the frame was decoded as. */
    readonly linkType: number,
    /** The Ethernet view for Ethernet frames, else null. */
    readonly link: EthernetView | null,
    /** Protocol type after any VLAN tags (synthesised for raw IP), or -1 for an unknown link type. */
    readonly etherType: number,
    /** Offset where the network layer starts in `bytes`. */
    readonly networkOffset: number,
    /** The network-layer view, or null for an EtherType not decoded. */
    readonly network: NetworkView | null,
    /** The transport-layer view, or null (unknown protocol, non-first fragment, no IP). */
    readonly transport: TransportView | null,
    /** Final IP protocol number (after IPv6 extension headers), or -1 without IP. */
    readonly protocol: number,
    /** True when the IP packet is a fragment (first or not). */
    readonly isFragment: boolean,
    /** Offset of the innermost payload: after the transport header, else after the last decoded header. */
    readonly payloadOffset: number,
    /** Length of that payload, bounded by the IP and transport length fields, never by the frame end. */
    readonly payloadLength: number,
  ) {}
}

/** Frame with its fields writable, for `FrameDecoder`. */
type FrameFields = { -readonly [K in keyof Frame]: Frame[K] };

const NO_BYTES = new Uint8Array(0);

/** The Frame and views a `FrameDecoder` reuses. */
class Reused {
  readonly frame = new Frame(NO_BYTES, 0, null, -1, 0, null, null, -1, false, 0, 0);
  readonly ethernet = EthernetView.empty();
  readonly ipv4 = Ipv4View.empty();
  readonly ipv6 = Ipv6View.empty();
  readonly arp = ArpView.empty();
  readonly tcp = TcpView.empty();
  readonly udp = UdpView.empty();
  readonly icmp = IcmpView.empty();
  readonly icmpv6 = Icmpv6View.empty();
}

/**
 * A decoder that allocates nothing for a well-formed frame: `decode` returns what `decodeFrame`
 * would, but as its own `Frame` and views, re-initialised by every call. A result (the Frame and
 * every view reachable from it) is valid only until the next `decode` on the same decoder; after
 * that it describes the newer frame. Errors are fresh `WireError`s, the caller's to keep.
 */
export class FrameDecoder {
  private readonly reused = new Reused();

  /** `decodeFrame(bytes, linkType)`, into this decoder's Frame and views; see the class comment. */
  decode(bytes: Uint8Array, linkType = LINKTYPE_ETHERNET): Frame | WireError {
    if (linkType === LINKTYPE_ETHERNET) {
      const f = untaggedIpv4Tcp(bytes, this.reused);
      if (f !== null) return f;
    }
    return decode(bytes, linkType, this.reused);
  }
}

/** Offsets in an untagged Ethernet frame carrying IPv4 without options. */
const IPV4_AT = 14;
const TCP_AT = IPV4_AT + 20;

/**
 * The common case of `decode`, untagged Ethernet / IPv4 without options / TCP without options or
 * with only the usual timestamps layout, not fragmented: the same checks and the same result in a
 * few byte reads, or null for anything else (malformed frames included), which `decode` then
 * handles. On the replay workload of .prof/session.mts it took decoding from ~78 to ~31 ns a
 * frame (of which ~21 ns is the first touch of the frame's bytes).
 */
function untaggedIpv4Tcp(bytes: Uint8Array, r: Reused): Frame | null {
  const length = bytes.length;
  // EtherType 0x0800 right after the MACs (so no VLAN tag), version 4 with IHL 5, TCP, neither
  // More Fragments nor a fragment offset.
  if (length < TCP_AT + TCP_HEADER_LEN || bytes[12] !== 0x08 || bytes[13] !== 0x00 || bytes[IPV4_AT] !== 0x45) return null;
  if (bytes[IPV4_AT + 9] !== IP_PROTOCOL_TCP || (bytes[IPV4_AT + 6]! & 0x3f) !== 0 || bytes[IPV4_AT + 7] !== 0) return null;
  const totalLength = readU16(bytes, IPV4_AT + 2);
  if (totalLength < 20 + TCP_HEADER_LEN || totalLength > length - IPV4_AT) return null;
  const segmentLength = totalLength - 20;
  const headerLength = (bytes[TCP_AT + 12]! >>> 4) * 4;
  let timestampOffset = -1;
  if (headerLength !== TCP_HEADER_LEN) {
    // TcpView.reset's own fast case: NOP, NOP, timestamps.
    if (headerLength !== TCP_HEADER_LEN + 12 || segmentLength < headerLength || readU32(bytes, TCP_AT + TCP_HEADER_LEN) !== 0x0101080a) return null;
    timestampOffset = TCP_AT + TCP_HEADER_LEN + 4;
  }
  const f = r.frame as FrameFields;
  f.bytes = bytes;
  f.linkType = LINKTYPE_ETHERNET;
  f.link = r.ethernet.set(bytes, 0, 0, IPV4_AT, length - IPV4_AT);
  f.etherType = ETHERTYPE_IPV4;
  f.networkOffset = IPV4_AT;
  f.network = r.ipv4.set(bytes, IPV4_AT, 20, totalLength);
  f.transport = r.tcp.set(bytes, TCP_AT, headerLength, segmentLength, -1, -1, false, -1, 0, timestampOffset);
  f.protocol = IP_PROTOCOL_TCP;
  f.isFragment = false;
  f.payloadOffset = TCP_AT + headerLength;
  f.payloadLength = segmentLength - headerLength;
  return r.frame;
}

/**
 * Decodes `bytes` as a frame of `linkType`; returns a `Frame` or the first malformed layer's
 * `WireError`. On the hot path test the result with `instanceof Frame`, not `isWireError`.
 */
export function decodeFrame(bytes: Uint8Array, linkType = LINKTYPE_ETHERNET): Frame | WireError {
  return decode(bytes, linkType, null);
}

/** A fresh Frame, or `r`'s re-initialised. */
function frameOf(
  r: Reused | null, bytes: Uint8Array, linkType: number, link: EthernetView | null, etherType: number, networkOffset: number,
  network: NetworkView | null, transport: TransportView | null, protocol: number, isFragment: boolean, payloadOffset: number, payloadLength: number,
): Frame {
  if (r === null) return new Frame(bytes, linkType, link, etherType, networkOffset, network, transport, protocol, isFragment, payloadOffset, payloadLength);
  const f = r.frame as FrameFields;
  f.bytes = bytes;
  f.linkType = linkType;
  f.link = link;
  f.etherType = etherType;
  f.networkOffset = networkOffset;
  f.network = network;
  f.transport = transport;
  f.protocol = protocol;
  f.isFragment = isFragment;
  f.payloadOffset = payloadOffset;
  f.payloadLength = payloadLength;
  return r.frame;
}

/** `decodeFrame`, with fresh objects when `r` is null, else with `r`'s. */
function decode(bytes: Uint8Array, linkType: number, r: Reused | null): Frame | WireError {
  const length = bytes.length;
  let link: EthernetView | null = null;
  let etherType: number;
  let at: number;
  if (linkType === LINKTYPE_ETHERNET) {
    const e = (r === null ? EthernetView.empty() : r.ethernet).reset(bytes, 0, length);
    if (!(e instanceof EthernetView)) return e;
    link = e;
    at = e.payloadOffset;
    etherType = readU16(bytes, at - 2);
  } else if (linkType === LINKTYPE_RAW) {
    if (length === 0) return new WireError('decode.raw.empty', 0);
    const version = bytes[0]! >>> 4;
    if (version === 4) etherType = ETHERTYPE_IPV4;
    else if (version === 6) etherType = ETHERTYPE_IPV6;
    else return new WireError('decode.raw.bad_version', 0);
    at = 0;
  } else if (linkType === LINKTYPE_IPV4) {
    etherType = ETHERTYPE_IPV4;
    at = 0;
  } else if (linkType === LINKTYPE_IPV6) {
    etherType = ETHERTYPE_IPV6;
    at = 0;
  } else if (linkType === LINKTYPE_LINUX_SLL) {
    if (length < SLL_HEADER_LEN) return new WireError('decode.sll.header_too_short', length);
    etherType = readU16(bytes, 14);
    at = SLL_HEADER_LEN;
  } else if (linkType === LINKTYPE_LINUX_SLL2) {
    if (length < SLL2_HEADER_LEN) return new WireError('decode.sll2.header_too_short', length);
    etherType = readU16(bytes, 0);
    at = SLL2_HEADER_LEN;
  } else {
    return frameOf(r, bytes, linkType, null, -1, 0, null, null, -1, false, 0, length);
  }

  let ip: Ipv4View | Ipv6View;
  let protocol: number;
  let isFragment: boolean;
  let fragmentOffset: number;
  let upperAt: number;
  let upperLength: number;
  if (etherType === ETHERTYPE_IPV4) {
    const v4 = (r === null ? Ipv4View.empty() : r.ipv4).reset(bytes, at, length - at);
    if (!(v4 instanceof Ipv4View)) return v4;
    const flags = readU16(bytes, at + 6);
    ip = v4;
    protocol = bytes[at + 9]!;
    isFragment = (flags & 0x3fff) !== 0;
    fragmentOffset = flags & 0x1fff;
    upperAt = at + v4.headerLength;
    upperLength = v4.totalLength - v4.headerLength;
  } else if (etherType === ETHERTYPE_IPV6) {
    const v6 = (r === null ? Ipv6View.empty() : r.ipv6).reset(bytes, at, length - at);
    if (!(v6 instanceof Ipv6View)) return v6;
    ip = v6;
    protocol = v6.upperProtocol;
    isFragment = v6.isFragment;
    fragmentOffset = v6.fragmentOffset;
    upperAt = v6.upperOffset;
    upperLength = v6.upperLength;
  } else if (etherType === ETHERTYPE_ARP) {
    const arp = (r === null ? ArpView.empty() : r.arp).reset(bytes, at, length - at);
    if (!(arp instanceof ArpView)) return arp;
    return frameOf(r, bytes, linkType, link, etherType, at, arp, null, -1, false, at + arp.length, 0);
  } else {
    return frameOf(r, bytes, linkType, link, etherType, at, null, null, -1, false, at, length - at);
  }

  // One transport parse for both IP versions; none for non-first fragments. In a first fragment
  // (isFragment) UDP's length field counts the whole datagram, not this fragment. A first fragment
  // too short for its transport header (tiny fragments, RFC 1858; its options may run past it)
  // is still a fragment, without a transport view: the header is parsed once it is reassembled.
  let transport: TransportView | null = null;
  if (fragmentOffset === 0) {
    if (protocol === IP_PROTOCOL_TCP) {
      const t = (r === null ? TcpView.empty() : r.tcp).reset(bytes, upperAt, upperLength);
      if (t instanceof TcpView) transport = t;
      else if (!isFragment) return t;
    } else if (protocol === IP_PROTOCOL_UDP) {
      const u = (r === null ? UdpView.empty() : r.udp).reset(bytes, upperAt, upperLength, isFragment);
      if (u instanceof UdpView) transport = u;
      else if (!isFragment) return u;
    } else if (protocol === IP_PROTOCOL_ICMP && etherType === ETHERTYPE_IPV4) {
      const c = (r === null ? IcmpView.empty() : r.icmp).reset(bytes, upperAt, upperLength);
      if (c instanceof IcmpView) transport = c;
      else if (!isFragment) return c;
    } else if (protocol === IP_PROTOCOL_ICMPV6 && etherType === ETHERTYPE_IPV6) {
      const c = (r === null ? Icmpv6View.empty() : r.icmpv6).reset(bytes, upperAt, upperLength);
      if (c instanceof Icmpv6View) transport = c;
      else if (!isFragment) return c;
    }
  }
  if (transport === null) return frameOf(r, bytes, linkType, link, etherType, at, ip, null, protocol, isFragment, upperAt, upperLength);
  return frameOf(r, bytes, linkType, link, etherType, at, ip, transport, protocol, isFragment, transport.payloadOffset, transport.payloadLength);
}
