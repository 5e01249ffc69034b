/**
 * The packet an ICMP or ICMPv6 error quotes (RFC 792, RFC 4443 §2.4): its IPv4 or IPv6 header and
 * as much of the rest as fits, often only 8 bytes (ports and, for TCP, the sequence number).
 * `quotedTransport` finds a quoted TCP or UDP header and checks which way the quoted packet went
 * relative to the error: translate mode needs to know whether a quote is of a packet the guest
 * sent (a client-side error about guest output) or one it received (a guest's error about a
 * client packet). `quotedEchoRequest` finds a quoted echo request of a guest's ping, whose
 * identifier translate mode maps like a port. IPv6 extension headers in the quote are not followed
 * (such a quote is not found).
 */

import type { Frame } from './frame.js';

/** A quoted transport header: its protocol (TCP or UDP; ICMP or ICMPv6 for an echo), its offset in the frame, the end of the quote, and the quoted IP header's offset and version. */
export interface QuotedTransport {
  readonly protocol: number;
  readonly at: number;
  readonly end: number;
  readonly ipAt: number;
  readonly v6: boolean;
}

/**
 * The TCP or UDP header quoted by `frame`, an ICMP or ICMPv6 error, when the quoted packet was
 * sent by the error's destination (`sentBy: 'destination'`, e.g. a router's error about a guest's
 * packet) or to the error's source (`'source-received'`, e.g. a guest's error about a packet it
 * received); null for anything else, or a quote too short to hold the transport's first 8 bytes.
 */
export function quotedTransport(frame: Frame, sentBy: 'destination' | 'source-received'): QuotedTransport | null {
  const q = quotedHeader(frame, sentBy);
  return q !== null && (q.protocol === 6 || q.protocol === 17) ? q : null;
}

/**
 * The echo request quoted by `frame`, an ICMP or ICMPv6 error about a ping the error's destination
 * sent (a router's time exceeded about a guest's ping, say): `at` is the quoted echo header (its
 * identifier is 4 bytes in); null otherwise.
 */
export function quotedEchoRequest(frame: Frame): QuotedTransport | null {
  const q = quotedHeader(frame, 'destination');
  if (q === null || q.protocol !== (q.v6 ? 58 : 1)) return null;
  return frame.bytes[q.at] === (q.v6 ? 128 : 8) ? q : null;
}

/** The header after the quoted IP header, whatever its protocol, when 8 bytes of it are quoted (`sentBy` as in `quotedTransport`). */
function quotedHeader(frame: Frame, sentBy: 'destination' | 'source-received'): QuotedTransport | null {
  const t = frame.transport;
  if (t === null || (t.kind !== 'icmp' && t.kind !== 'icmpv6') || !t.isError) return null;
  const b = frame.bytes;
  const q = t.embeddedOffset;
  const end = t.offset + t.length;
  const ip = frame.networkOffset;
  let protocol: number;
  let at: number;
  if (t.kind === 'icmp') {
    // Quoted source (q+12) against the error's destination (ip+16), or quoted destination (q+16) against its source (ip+12).
    if (q + 20 > end || b[q]! >> 4 !== 4) return null;
    if (!(sentBy === 'destination' ? same(b, q + 12, ip + 16, 4) : same(b, q + 16, ip + 12, 4))) return null;
    protocol = b[q + 9]!;
    at = q + (b[q]! & 0x0f) * 4;
  } else {
    if (q + 40 > end || b[q]! >> 4 !== 6) return null;
    if (!(sentBy === 'destination' ? same(b, q + 8, ip + 24, 16) : same(b, q + 24, ip + 8, 16))) return null;
    protocol = b[q + 6]!;
    at = q + 40;
  }
  if (at + 8 > end) return null;
  return { protocol, at, end, ipAt: q, v6: t.kind === 'icmpv6' };
}

function same(b: Uint8Array, x: number, y: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}
