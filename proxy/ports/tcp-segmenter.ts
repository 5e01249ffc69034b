/**
 * Software TCP segmentation: what a NIC's TSO or Linux's GSO does to a TCP frame longer than the
 * link allows. A guest with segmentation offload hands its tap (or veth) frames of up to 64 KiB,
 * the kernel would cut them on the way to a real wire, but a frame injected through a packet
 * socket is refused when it exceeds the MTU (EMSGSIZE; Linux lets a frame be 4 bytes longer only
 * for one 802.1Q tag). So a port that must inject such a frame cuts it first, as Linux's
 * tcp_gso_segment does:
 *
 * - every segment carries a copy of the frame's headers (Ethernet, VLAN tags, IP with its options,
 *   TCP with its options) and as much payload as the link allows, or less when the owner's
 *   `payloadLimit` knows a smaller one (the peer's MSS: Linux cuts at the connection's own segment
 *   size, which a capture does not carry);
 * - the sequence number advances by the payload before it; FIN and PSH stay on the last segment
 *   only, CWR on the first only; the IPv4 identification counts up from the frame's, one per
 *   segment; lengths and both checksums are computed afresh (the frame's own TCP checksum is
 *   typically partial, left to the device).
 *
 * Only plain data segments are cut: IP fragments, other protocols, SYN or RST segments, IPv6
 * with extension headers (a routing header changes the checksum's pseudo-header, AH covers the
 * lengths), and frames whose headers leave no room for payload are refused (0), and the caller
 * sends them as they are (the kernel's refusal is counted). Each segment is written into one
 * scratch buffer and handed to `send`, which must be done with it when it returns (a packet socket
 * send copies it); no allocation per segment beyond the scratch buffer's first growth.
 *
 * `offload` plans the same cut for the kernel to make instead (packet-socket.ts): the frame's
 * headers, copied, with the TCP checksum field holding the pseudo-header sum, as a stack using
 * TSO leaves it; the payload as a view; and the segment size. The kernel's tcp_gso_segment then
 * does what `segment` does (sequence numbers, FIN/PSH/CWR, IPv4 identification, lengths and
 * checksums). Only untagged frames: a VLAN-tagged one is cut here.
 */

import { GSO_ECN, GSO_TCPV4, GSO_TCPV6, type OffloadPlan } from './packet-socket.js';
import {
  Frame, FrameDecoder, Ipv4View, LINKTYPE_ETHERNET, TCP_CWR, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, fillIpv4HeaderChecksum, finishChecksum,
  onesSum, pseudoSumV4, pseudoSumV6, readU16, writeU16, writeU32, type TcpView,
} from '../../compare/index.js';

/** The Ethernet header without tags, and the one tag Linux lets a frame carry beyond the MTU. */
const ETHERNET_HEADER = 14;
const ETHERTYPE_8021Q = 0x8100;

/** Bytes a frame on a link of `mtu` may have: the MTU, the Ethernet header, and one 802.1Q tag if it has one. */
export function maxFrameBytes(frame: Uint8Array, mtu: number): number {
  const tagged = frame.length >= 14 && readU16(frame, 12) === ETHERTYPE_8021Q;
  return mtu + ETHERNET_HEADER + (tagged ? 4 : 0);
}

/** The most payload bytes one segment of this connection may carry (Infinity: no limit but the link's). */
export type PayloadLimit = (frame: Frame, tcp: TcpView) => number;

export class TcpSegmenter {
  private readonly decoder = new FrameDecoder();
  private scratch = new Uint8Array(2048);
  /** Set by `plan`: the decoded frame and the payload bytes per segment. */
  private frame: Frame | null = null;
  private tcp: TcpView | null = null;
  private room = 0;
  /**
   * The bytes and MTU of the last `plan` that said yes, until that frame is cut or offloaded:
   * a caller that asks `cuts` first (run's `sendsWhole`) does not pay a second decode. The
   * caller must not change the bytes in between (none does: a frame to be cut is sent as it is).
   */
  private plannedBytes: Uint8Array | null = null;
  private plannedMtu = 0;

  constructor(private readonly payloadLimit: PayloadLimit = () => Infinity) {}

  /**
   * True when `segment` would cut `frame` for a link of `mtu` (it is too long, and a TCP data
   * segment that can be cut); false when it goes out as it is.
   */
  cuts(frame: Uint8Array, mtu: number): boolean {
    if (frame === this.plannedBytes && mtu === this.plannedMtu) return true;
    return frame.length > maxFrameBytes(frame, mtu) && this.plan(frame, mtu);
  }

  /**
   * When `frame` is too long for a link of `mtu`, cuts it into segments that fit (and keep to
   * the payload limit), and calls `send` with each (a view of the scratch buffer, valid during
   * the call); returns how many segments were sent, or 0 when the frame fits or cannot be cut
   * (see the module header).
   */
  segment(frame: Uint8Array, mtu: number, send: (segment: Uint8Array) => void): number {
    if (!this.cuts(frame, mtu)) return 0;
    this.plannedBytes = null;
    const f = this.frame!;
    const tcp = this.tcp!;
    const room = this.room;
    const net = f.network!;
    const ipAt = net.offset;
    const headersEnd = tcp.payloadOffset;
    const payload = tcp.payloadLength;
    const ipHeaders = headersEnd - ipAt; // IP header and TCP header
    if (this.scratch.length < headersEnd + room) this.scratch = new Uint8Array(headersEnd + room);
    const s = this.scratch;
    s.set(frame.subarray(0, headersEnd));
    const tcpAt = tcp.offset;
    const tcpHeader = tcp.headerLength;
    const seq = tcp.seq;
    const flags = tcp.flags;
    const v4 = net instanceof Ipv4View;
    const id = v4 ? net.identification : 0;
    let segments = 0;
    for (let done = 0; done < payload; segments++) {
      const size = Math.min(room, payload - done);
      const last = done + size === payload;
      s.set(frame.subarray(headersEnd + done, headersEnd + done + size), headersEnd);
      if (v4) {
        writeU16(s, ipAt + 2, ipHeaders + size);
        writeU16(s, ipAt + 4, (id + segments) & 0xffff);
        fillIpv4HeaderChecksum(s, ipAt);
      } else {
        writeU16(s, ipAt + 4, ipHeaders - 40 + size);
      }
      writeU32(s, tcpAt + 4, (seq + done) >>> 0);
      let segmentFlags = flags;
      if (!last) segmentFlags &= ~(TCP_FIN | TCP_PSH);
      if (segments > 0) segmentFlags &= ~TCP_CWR;
      s[tcpAt + 13] = segmentFlags;
      writeU16(s, tcpAt + 16, 0);
      const length = tcpHeader + size;
      const pseudo = v4 ? pseudoSumV4(s, ipAt, 6, length) : pseudoSumV6(s, ipAt, 6, length);
      writeU16(s, tcpAt + 16, finishChecksum(onesSum(frame, headersEnd + done, size, onesSum(s, tcpAt, tcpHeader, pseudo))));
      send(s.subarray(0, headersEnd + size));
      done += size;
    }
    return segments;
  }

  /**
   * The plan for the kernel to cut `frame` as `segment` would (see the module header), or null
   * when it fits the link, cannot be cut, or is VLAN-tagged. `headers` is a view of the scratch
   * buffer, valid until the next call.
   */
  offload(frame: Uint8Array, mtu: number): OffloadPlan | null {
    if (!this.cuts(frame, mtu)) return null;
    const f = this.frame!;
    const tcp = this.tcp!;
    const net = f.network!;
    if (net.offset !== ETHERNET_HEADER) return null; // the plan stays for `segment`
    this.plannedBytes = null;
    const headersEnd = tcp.payloadOffset;
    if (this.scratch.length < headersEnd) this.scratch = new Uint8Array(headersEnd);
    const headers = this.scratch.subarray(0, headersEnd);
    headers.set(frame.subarray(0, headersEnd));
    const v4 = net instanceof Ipv4View;
    const tcpLength = tcp.headerLength + tcp.payloadLength; // not frame.length: trailing bytes past the IP packet are not sent
    writeU16(headers, tcp.offset + 16, v4 ? pseudoSumV4(headers, net.offset, 6, tcpLength) : pseudoSumV6(headers, net.offset, 6, tcpLength));
    return {
      headers,
      payload: frame.subarray(headersEnd, headersEnd + tcp.payloadLength),
      gsoType: (v4 ? GSO_TCPV4 : GSO_TCPV6) | ((tcp.flags & TCP_CWR) !== 0 ? GSO_ECN : 0),
      gsoSize: this.room,
      tcpOffset: tcp.offset,
      segments: Math.ceil(tcp.payloadLength / this.room),
    };
  }

  /** Decodes `frame` and decides whether it can be cut; on true, `frame`, `tcp` and `room` are set. */
  private plan(bytes: Uint8Array, mtu: number): boolean {
    this.plannedBytes = null; // the decoder reuses its views: an earlier plan is gone now
    const f = this.decoder.decode(bytes, LINKTYPE_ETHERNET);
    if (!(f instanceof Frame) || f.isFragment) return false;
    const tcp = f.transport;
    const net = f.network;
    if (tcp === null || tcp.kind !== 'tcp' || net === null || net.kind === 'arp') return false;
    if ((tcp.flags & (TCP_SYN | TCP_RST)) !== 0) return false;
    if (net.kind === 'ipv6' && tcp.offset !== net.offset + 40) return false;
    const headersEnd = tcp.payloadOffset;
    const room = Math.min(maxFrameBytes(bytes, mtu) - headersEnd, this.payloadLimit(f, tcp));
    if (room <= 0 || tcp.payloadLength <= room) return false;
    this.plannedBytes = bytes;
    this.plannedMtu = mtu;
    this.frame = f;
    this.tcp = tcp;
    this.room = room;
    return true;
  }
}
