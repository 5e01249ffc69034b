/**
 * Software TCP segmentation: what a NIC's TSO or Linux's GSO does to a TCP frame longer than the
 * link's MTU. A guest with segmentation offload hands its tap (or veth) frames of up to 64 KiB,
 * the kernel would cut them on the way to a real wire, but a frame injected through a packet
 * socket is refused when it exceeds the MTU (EMSGSIZE). So a port that must inject such a frame
 * cuts it first, as Linux's tcp_gso_segment does:
 *
 * - every segment carries a copy of the frame's headers (Ethernet, VLAN tags, IP with its options
 *   or extension headers, TCP with its options) and at most `mtu - IP and TCP headers` payload bytes;
 * - the sequence number advances by the payload before it; FIN and PSH stay on the last segment
 *   only, CWR on the first only; the IPv4 identification counts up from the frame's, one per
 *   segment; lengths and both checksums are computed afresh (the frame's own TCP checksum is
 *   typically partial, left to the device).
 *
 * Only whole TCP segments are cut: IP fragments, other protocols, and frames whose headers leave
 * no room for payload are refused (0), and the caller sends them as they are (and counts the
 * kernel's refusal). Each segment is written into one scratch buffer and handed to `send`, which
 * must be done with it when it returns (a packet socket send copies it); no allocation per
 * segment beyond the scratch buffer's first growth.
 */

import {
  Frame, FrameDecoder, Ipv4View, LINKTYPE_ETHERNET, TCP_CWR, TCP_FIN, TCP_PSH, fillIpv4HeaderChecksum, finishChecksum, onesSum, pseudoSumV4,
  pseudoSumV6, writeU16, writeU32,
} from '../../compare/index.js';

export class TcpSegmenter {
  private readonly decoder = new FrameDecoder();
  private scratch = new Uint8Array(2048);

  /**
   * When `frame`'s IP packet is longer than `mtu`, cuts it into segments whose IP packets fit and
   * calls `send` with each (a view of the scratch buffer, valid during the call); returns how many
   * segments were sent, or 0 when the frame fits or cannot be cut (see the module header).
   */
  segment(frame: Uint8Array, mtu: number, send: (segment: Uint8Array) => void): number {
    const f = this.decoder.decode(frame, LINKTYPE_ETHERNET);
    if (!(f instanceof Frame) || f.isFragment) return 0;
    const tcp = f.transport;
    const net = f.network;
    if (tcp === null || tcp.kind !== 'tcp' || net === null || net.kind === 'arp') return 0;
    const ipAt = net.offset;
    const headersEnd = tcp.payloadOffset;
    const payload = tcp.payloadLength;
    const ipHeaders = headersEnd - ipAt; // IP header(s) and TCP header
    const room = mtu - ipHeaders;
    if (ipHeaders + payload <= mtu || room <= 0) return 0;

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
}
