/**
 * Header fields a user may ask to compare. By default the comparator ignores all of them (QEMU
 * does too): they differ between two correct guests for reasons that change nothing the client
 * sees as data. An operator who wants them checked lists them in `compareHeaders`.
 *
 * Messages (UDP, ICMP, other IP) pair one to one, so every listed field is compared between the
 * paired primary and secondary frames. TCP segments do not pair one to one (that is the point of
 * comparing by sequence range), so for TCP only the fields a connection keeps constant are
 * checked, `ip.ttl`, `ip.tos` (its DSCP: the ECN bits are left out) and `ip.flow_label`: every segment, from either guest, must carry
 * the value of the connection's first primary segment. The per-segment fields (`ip.id`,
 * `tcp.window`, `tcp.options`, `checksum`) apply to messages only. `checksum` is the IPv4 header
 * checksum and the transport checksum: the first covers the IP ID, TTL and TOS too, so listing it
 * compares those in effect (and IPv4 datagrams of guests that number their IP IDs differently,
 * as two twins do, always differ by it).
 */

import { toHex } from '../wire/bytes.js';
import type { Frame } from '../wire/frame.js';

export const HEADER_FIELDS = ['ip.ttl', 'ip.tos', 'ip.id', 'ip.flow_label', 'tcp.window', 'tcp.options', 'checksum'] as const;
export type HeaderField = (typeof HEADER_FIELDS)[number];

/** The fields a TCP connection keeps constant, the only ones checked for TCP. */
export const CONNECTION_CONSTANT_FIELDS: readonly HeaderField[] = ['ip.ttl', 'ip.tos', 'ip.flow_label'];

function value(frame: Frame, field: HeaderField): string {
  const net = frame.network;
  const t = frame.transport;
  switch (field) {
    case 'ip.ttl':
      return net?.kind === 'ipv4' ? String(net.ttl) : net?.kind === 'ipv6' ? String(net.hopLimit) : '-';
    case 'ip.tos':
      // The DSCP only: the ECN bits change from segment to segment within one connection (ECT on
      // new data, not on retransmissions and pure ACKs, RFC 3168 §6.1.5).
      return net?.kind === 'ipv4' ? String(net.tos & 0xfc) : net?.kind === 'ipv6' ? String(net.trafficClass & 0xfc) : '-';
    case 'ip.id':
      return net?.kind === 'ipv4' ? String(net.identification) : '-';
    case 'ip.flow_label':
      return net?.kind === 'ipv6' ? String(net.flowLabel) : '-';
    case 'tcp.window':
      return t?.kind === 'tcp' ? String(t.window) : '-';
    case 'tcp.options':
      return t?.kind === 'tcp' ? toHex(t.bytes, t.offset + 20, t.headerLength - 20) : '-';
    case 'checksum':
      return `${net?.kind === 'ipv4' ? net.checksum : '-'}/${t !== null ? t.checksum : '-'}`;
  }
}

/** The listed fields of `frame` as one comparable string, `ip.ttl=64 ip.tos=0`; '' when none are listed. */
export function headerSignature(frame: Frame, fields: readonly HeaderField[]): string {
  let s = '';
  for (const f of fields) s += `${s === '' ? '' : ' '}${f}=${value(frame, f)}`;
  return s;
}
