/**
 * The IP-layer choices a guest makes besides the addresses, compared always (unlike the header
 * noise of headers.ts, which differs between two correct guests): IPv4 options (RFC 791 §3.1) and
 * the IPv6 extension headers a sender chooses, Hop-by-Hop, Routing, Destination Options and the
 * RFC 7045 ones with the generic layout (Mobility, HIP, Shim6). A source route, a router alert or
 * a mobility binding that differs between the guests is a real difference, which comparing only
 * addresses, ports and payload would let pass.
 *
 * Left out, because they vary by themselves: the stamps of an IPv4 Timestamp option (its
 * originator may write its own clock; its type, length, pointer and flags are still compared),
 * the IPv6 Fragment header (gone once reassembled, and placed by each guest's own MTU view) and
 * AH (its sequence number and integrity value cover fields the comparator ignores, such as TCP
 * timestamps). IPv4 options after End of Option List are padding and not compared.
 *
 * `ipOptionsOf` gives the compared bytes as hex, '' when there are none (nearly every frame: that
 * case costs one or two field reads).
 */

import { toHex } from '../wire/bytes.js';
import type { Frame } from '../wire/frame.js';
import { IP_PROTOCOL_AH, IP_PROTOCOL_IPV6_FRAGMENT } from '../wire/ip.js';
import { IPV6_HEADER_LEN } from '../wire/ipv6.js';

const OPTION_END = 0;
const OPTION_NOP = 1;
const OPTION_TIMESTAMP = 68;
/** Type, length, pointer and overflow/flags: the part of a Timestamp option that is compared. */
const TIMESTAMP_HEAD = 4;

/** The frame's IPv4 options or chosen IPv6 extension headers as hex (see the module header); '' when none. */
export function ipOptionsOf(frame: Frame): string {
  const net = frame.network;
  if (net === null) return '';
  if (net.kind === 'ipv4') return net.headerLength === 20 ? '' : ipv4Options(frame.bytes, net.optionsOffset, net.optionsOffset + net.optionsLength);
  if (net.kind !== 'ipv6' || net.extensionCount === 0) return '';
  let s = '';
  let next = frame.bytes[net.offset + 6]!;
  for (let at = net.offset + IPV6_HEADER_LEN; at < net.upperOffset;) {
    const b = frame.bytes;
    const length = next === IP_PROTOCOL_IPV6_FRAGMENT ? 8 : next === IP_PROTOCOL_AH ? (b[at + 1]! + 2) * 4 : (b[at + 1]! + 1) * 8;
    if (next !== IP_PROTOCOL_IPV6_FRAGMENT && next !== IP_PROTOCOL_AH) s += `${s === '' ? '' : ' '}${next}:${toHex(b, at, length)}`;
    next = b[at]!;
    at += length;
  }
  return s;
}

/** Options from `at` to `end`, Timestamp stamps left out; a malformed option ends the walk with the rest as it is. */
function ipv4Options(b: Uint8Array, at: number, end: number): string {
  let s = '';
  while (at < end) {
    const type = b[at]!;
    if (type === OPTION_END) break;
    if (type === OPTION_NOP) {
      s += '01';
      at++;
      continue;
    }
    const length = at + 1 < end ? b[at + 1]! : 0;
    if (length < 2 || at + length > end) return s + toHex(b, at, end - at);
    s += toHex(b, at, type === OPTION_TIMESTAMP ? Math.min(length, TIMESTAMP_HEAD) : length);
    at += length;
  }
  return s;
}
