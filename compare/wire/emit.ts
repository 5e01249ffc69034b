/**
 * Frame emitters: whole Ethernet frames built from fields, every checksum filled. For tests,
 * fixtures and the scripts that generate captures; the comparator itself never builds frames.
 *
 * `emitTcp`, `emitUdp`, `emitIcmpEcho` (ICMP or ICMPv6 by IP version) and `emitArp` each return
 * a fresh `Uint8Array`. Addresses are text: MACs `aa:bb:cc:dd:ee:ff` (or six bytes), IPv4
 * dotted quads, IPv6 in any RFC 4291 §2.2 form (`::`, embedded dotted quad; no zone). The IP
 * version defaults to 6 when `src` contains a colon, else 4. TCP options are laid out as Linux's
 * `tcp_options_write` does: MSS; SACK-permitted + timestamps together, or NOP NOP timestamps;
 * NOP NOP SACK-permitted when there are no timestamps; NOP window scale; NOP NOP SACK blocks. A
 * SYN from Linux is thus MSS, SACK-permitted, TS, NOP, WS and a data segment NOP NOP TS.
 * Defaults match the shared wire fixtures: MACs 52:54:00:ab:cd:ef -> 52:54:00:12:34:56, TTL
 * 64, DF set, IP ID 0, no VLAN tag, no padding.
 *
 * `padTo` appends zero bytes up to that frame length (60 is Ethernet's minimum without FCS);
 * the IP length fields exclude them, so they are never payload. Multiple VLAN tags use the
 * 802.1ad TPID (0x88a8) for every tag but the innermost, which is 802.1Q (0x8100).
 *
 * Limits: no IPv4 options, no IPv6 extension headers, no fragments. Incorrect use (a field out
 * of range, an unparsable address, TCP options over 40 bytes, an IP packet over 65535 bytes)
 * throws `EmitError` with a stable `code`; these are programmer errors, not packet bytes.
 */

import { writeU16, writeU32 } from './bytes.js';
import { fillIpv4HeaderChecksum, pseudoSumV4, pseudoSumV6, transportChecksum, udpChecksum } from './checksum.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN } from './ethernet.js';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST } from './icmp.js';
import { ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST } from './icmpv6.js';
import { IP_PROTOCOL_ICMP, IP_PROTOCOL_ICMPV6, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP } from './ip.js';
import { TCP_OPTION_MSS, TCP_OPTION_NOP, TCP_OPTION_SACK, TCP_OPTION_SACK_PERMITTED, TCP_OPTION_TIMESTAMPS, TCP_OPTION_WINDOW_SCALE } from './tcp.js';

/** Thrown for fields that cannot be emitted; `code` is `emit.bad_field`, `emit.bad_address`, `emit.options_too_long` or `emit.too_long`. */
export class EmitError extends RangeError {
  override name = 'EmitError';
  constructor(
    /** Stable dotted code. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A MAC address: `aa:bb:cc:dd:ee:ff` (or `-` separated), or six bytes. */
export type MacAddress = string | Uint8Array;

/** Ethernet framing shared by every emitter. */
export interface EthernetFields {
  /** Default 52:54:00:ab:cd:ef. */
  srcMac?: MacAddress;
  /** Default 52:54:00:12:34:56 (broadcast for an ARP request). */
  dstMac?: MacAddress;
  /** VLAN ids (0..4095), outermost first. */
  vlan?: number[];
  /** Zero-pad the frame up to this many bytes (60 = Ethernet minimum without FCS). */
  padTo?: number;
}

/** IP header fields shared by the IP emitters. */
export interface IpFields extends EthernetFields {
  /** Default: 6 when `src` contains ':', else 4. */
  ipVersion?: 4 | 6;
  src: string;
  dst: string;
  /** TTL or IPv6 hop limit; default 64. */
  ttl?: number;
  /** IPv4 TOS byte or IPv6 traffic class; default 0. */
  tos?: number;
  /** IPv4 identification; default 0. */
  ipId?: number;
  /** IPv4 Don't Fragment flag; default true. */
  dontFragment?: boolean;
  /** IPv6 flow label (20 bits); default 0. */
  flowLabel?: number;
  /** Bytes after the transport header; a string is encoded as UTF-8. */
  payload?: Uint8Array | string;
}

/** TCP options to emit; absent fields are left out. */
export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  /** 1..4 blocks of [left, right) edges (RFC 2018 §3); an empty list means no SACK option. */
  sack?: [number, number][];
  /** [TSval, TSecr] (RFC 7323 §3.2). */
  timestamp?: [number, number];
}

/** Fields of a TCP segment. */
export interface TcpFields extends IpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** The flags byte, an OR of `TCP_*` masks. */
  flags: number;
  /** Default 65535. */
  window?: number;
  /** Default 0. */
  urgentPointer?: number;
  options?: TcpOptions;
}

/** Fields of a UDP datagram. */
export interface UdpFields extends IpFields {
  srcPort: number;
  dstPort: number;
  /** Send checksum 0, "none" (RFC 768; invalid over IPv6, RFC 8200 §8.1, which makes a useful bad frame). */
  noChecksum?: boolean;
}

/** Fields of an ICMP (IPv4) or ICMPv6 (IPv6) echo message. */
export interface IcmpEchoFields extends IpFields {
  id: number;
  sequence: number;
  /** Echo reply instead of echo request. */
  reply?: boolean;
}

/** Fields of an Ethernet/IPv4 ARP packet (RFC 826). */
export interface ArpFields extends EthernetFields {
  /** 1 = request (default), 2 = reply. */
  operation?: number;
  /** Default: `srcMac`. */
  senderMac?: MacAddress;
  senderIp: string;
  /** Default 00:00:00:00:00:00 for a request, else 52:54:00:12:34:56. */
  targetMac?: MacAddress;
  targetIp: string;
}

const DEFAULT_SRC_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0xab, 0xcd, 0xef);
const DEFAULT_DST_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const ZERO_MAC = new Uint8Array(6);
const MAX_TCP_OPTIONS = 40;

/** Builds an Ethernet TCP segment; see the module header for defaults and option layout. */
export function emitTcp(f: TcpFields): Uint8Array {
  const o = f.options;
  const optionsLength = tcpOptionsLength(o);
  const headerLength = 20 + optionsLength;
  const payload = payloadBytes(f.payload);
  const ip = ipFrame(f, IP_PROTOCOL_TCP, headerLength + payload.length);
  const b = ip.bytes;
  const at = ip.upperAt;
  writeU16(b, at, checkUint('srcPort', f.srcPort, 0xffff));
  writeU16(b, at + 2, checkUint('dstPort', f.dstPort, 0xffff));
  writeU32(b, at + 4, checkUint('seq', f.seq, 0xffffffff));
  writeU32(b, at + 8, checkUint('ack', f.ack, 0xffffffff));
  b[at + 12] = (headerLength / 4) << 4;
  b[at + 13] = checkUint('flags', f.flags, 0xff);
  writeU16(b, at + 14, checkUint('window', f.window ?? 0xffff, 0xffff));
  writeU16(b, at + 18, checkUint('urgentPointer', f.urgentPointer ?? 0, 0xffff));
  if (o !== undefined) writeTcpOptions(b, at + 20, o);
  b.set(payload, at + headerLength);
  fillTransportChecksum(ip, 16, ip.pseudoSum);
  return b;
}

/** Builds an Ethernet UDP datagram with its checksum filled (or 0 with `noChecksum`). */
export function emitUdp(f: UdpFields): Uint8Array {
  const payload = payloadBytes(f.payload);
  const length = 8 + payload.length;
  const ip = ipFrame(f, IP_PROTOCOL_UDP, length);
  const b = ip.bytes;
  const at = ip.upperAt;
  writeU16(b, at, checkUint('srcPort', f.srcPort, 0xffff));
  writeU16(b, at + 2, checkUint('dstPort', f.dstPort, 0xffff));
  writeU16(b, at + 4, length);
  b.set(payload, at + 8);
  if (f.noChecksum !== true) writeU16(b, at + 6, udpChecksum(ip.pseudoSum, b, at, length, at + 6));
  return b;
}

/** Builds an echo request (or reply): ICMP over IPv4, ICMPv6 over IPv6. */
export function emitIcmpEcho(f: IcmpEchoFields): Uint8Array {
  const v6 = ipVersionOf(f) === 6;
  const payload = payloadBytes(f.payload);
  const ip = ipFrame(f, v6 ? IP_PROTOCOL_ICMPV6 : IP_PROTOCOL_ICMP, 8 + payload.length);
  const b = ip.bytes;
  const at = ip.upperAt;
  const reply = f.reply === true;
  b[at] = v6 ? (reply ? ICMPV6_ECHO_REPLY : ICMPV6_ECHO_REQUEST) : (reply ? ICMP_ECHO_REPLY : ICMP_ECHO_REQUEST);
  writeU16(b, at + 4, checkUint('id', f.id, 0xffff));
  writeU16(b, at + 6, checkUint('sequence', f.sequence, 0xffff));
  b.set(payload, at + 8);
  // ICMPv4 has no pseudo-header (RFC 792); ICMPv6 has one (RFC 4443 §2.3).
  fillTransportChecksum(ip, 2, v6 ? ip.pseudoSum : 0);
  return b;
}

/** Builds an Ethernet/IPv4 ARP request or reply. */
export function emitArp(f: ArpFields): Uint8Array {
  const operation = checkUint('operation', f.operation ?? 1, 0xffff);
  const request = operation === 1;
  const senderMac = macBytes('senderMac', f.senderMac, macBytes('srcMac', f.srcMac, DEFAULT_SRC_MAC));
  const targetMac = macBytes('targetMac', f.targetMac, request ? ZERO_MAC : DEFAULT_DST_MAC);
  const dstMac = macBytes('dstMac', f.dstMac, request ? BROADCAST_MAC : targetMac);
  const link = linkFrame(f, dstMac, ETHERTYPE_ARP, 28);
  const b = link.bytes;
  const at = link.networkAt;
  writeU16(b, at, 1);
  writeU16(b, at + 2, ETHERTYPE_IPV4);
  b[at + 4] = 6;
  b[at + 5] = 4;
  writeU16(b, at + 6, operation);
  b.set(senderMac, at + 8);
  writeU32(b, at + 14, parseIpv4(f.senderIp));
  b.set(targetMac, at + 18);
  writeU32(b, at + 24, parseIpv4(f.targetIp));
  return b;
}

/** Parses a dotted-quad IPv4 address into an unsigned 32-bit number; throws `EmitError` when malformed. */
export function parseIpv4(text: string): number {
  const v = ipv4OrMinusOne(text);
  if (v < 0) throw badAddress('IPv4', text);
  return v;
}

/** Parses IPv6 text (RFC 4291 §2.2: `::` at most once, optional dotted-quad tail) into 16 bytes; throws `EmitError` when malformed. */
export function parseIpv6(text: string): Uint8Array {
  const halves = text.split('::');
  const compressed = halves.length === 2;
  const head = halves.length <= 2 ? ipv6Words(halves[0]!, !compressed) : null;
  const tail = compressed ? ipv6Words(halves[1]!, true) : [];
  if (head === null || tail === null || (compressed ? head.length + tail.length > 7 : head.length !== 8)) {
    throw badAddress('IPv6', text);
  }
  const out = new Uint8Array(16);
  head.forEach((w, i) => writeU16(out, 2 * i, w));
  tail.forEach((w, i) => writeU16(out, 16 - 2 * (tail.length - i), w));
  return out;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated) into six bytes, or checks a six-byte array; throws `EmitError`. */
export function parseMac(mac: MacAddress): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw badAddress('MAC', `${mac.length} bytes`);
    return mac;
  }
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(mac)) throw badAddress('MAC', mac);
  return Uint8Array.from(mac.split(/[:-]/), (h) => parseInt(h, 16));
}

function ipv4OrMinusOne(text: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return -1;
  const parts = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  if (parts.some((p) => p > 255)) return -1;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** The 16-bit words of colon-separated hex groups ('' is none), the last may be a dotted quad when `v4TailAllowed`; null when malformed. */
function ipv6Words(groups: string, v4TailAllowed: boolean): number[] | null {
  if (groups === '') return [];
  const parts = groups.split(':');
  const words: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const g = parts[i]!;
    if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
      words.push(parseInt(g, 16));
    } else if (v4TailAllowed && i === parts.length - 1) {
      const v4 = ipv4OrMinusOne(g);
      if (v4 < 0) return null;
      words.push(v4 >>> 16, v4 & 0xffff);
    } else {
      return null;
    }
  }
  return words;
}

function badAddress(kind: string, text: string): EmitError {
  return new EmitError('emit.bad_address', `not a valid ${kind} address: ${JSON.stringify(text)}`);
}

function checkUint(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new EmitError('emit.bad_field', `${name} must be an integer in 0..${max}, got ${value}`);
  }
  return value;
}

function macBytes(name: string, mac: MacAddress | undefined, fallback: Uint8Array): Uint8Array {
  if (mac === undefined) return fallback;
  try {
    return parseMac(mac);
  } catch (e) {
    throw e instanceof EmitError ? new EmitError(e.code, `${name}: ${e.message}`) : e;
  }
}

function payloadBytes(p: Uint8Array | string | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array(0);
  return typeof p === 'string' ? utf8(p) : p;
}

/** UTF-8 encoding (RFC 3629); lone surrogates become U+FFFD as with TextEncoder. */
function utf8(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    let c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >>> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >>> 12), 0x80 | ((c >>> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >>> 18), 0x80 | ((c >>> 12) & 0x3f), 0x80 | ((c >>> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Uint8Array.from(out);
}

function ipVersionOf(f: IpFields): 4 | 6 {
  return f.ipVersion ?? (f.src.includes(':') ? 6 : 4);
}

/** A frame being built: Ethernet header written, the rest zero. */
interface LinkFrame {
  bytes: Uint8Array;
  networkAt: number;
}

/** Allocates the frame (padded) and writes the Ethernet header and VLAN tags before `networkLength` bytes. */
function linkFrame(f: EthernetFields, dstMac: Uint8Array, etherType: number, networkLength: number): LinkFrame {
  const vlan = f.vlan ?? [];
  const networkAt = 14 + 4 * vlan.length;
  const padTo = checkUint('padTo', f.padTo ?? 0, 0xffff);
  const b = new Uint8Array(Math.max(networkAt + networkLength, padTo));
  b.set(dstMac, 0);
  b.set(macBytes('srcMac', f.srcMac, DEFAULT_SRC_MAC), 6);
  let at = 12;
  for (let i = 0; i < vlan.length; i++) {
    writeU16(b, at, i === vlan.length - 1 ? ETHERTYPE_VLAN : ETHERTYPE_QINQ);
    writeU16(b, at + 2, checkUint('vlan id', vlan[i]!, 0x0fff));
    at += 4;
  }
  writeU16(b, at, etherType);
  return { bytes: b, networkAt };
}

/** A frame being built with its IP header written: where the upper layer goes and its pseudo-header sum. */
interface IpFrame {
  bytes: Uint8Array;
  upperAt: number;
  upperLength: number;
  pseudoSum: number;
}

/** Allocates the frame and writes the link and IP headers (IPv4 header checksum included) for `upperLength` bytes of `protocol`. */
function ipFrame(f: IpFields, protocol: number, upperLength: number): IpFrame {
  const v6 = ipVersionOf(f) === 6;
  const headerLength = v6 ? 40 : 20;
  if (upperLength > 0xffff - (v6 ? 0 : headerLength)) {
    throw new EmitError('emit.too_long', `IP payload of ${upperLength} bytes does not fit the ${v6 ? 'IPv6 payload' : 'IPv4 total'} length field`);
  }
  const link = linkFrame(f, macBytes('dstMac', f.dstMac, DEFAULT_DST_MAC), v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4, headerLength + upperLength);
  const b = link.bytes;
  const at = link.networkAt;
  const ttl = checkUint('ttl', f.ttl ?? 64, 0xff);
  const tos = checkUint('tos', f.tos ?? 0, 0xff);
  let pseudoSum: number;
  if (v6) {
    writeU32(b, at, (0x60000000 | (tos << 20) | checkUint('flowLabel', f.flowLabel ?? 0, 0xfffff)) >>> 0);
    writeU16(b, at + 4, upperLength);
    b[at + 6] = protocol;
    b[at + 7] = ttl;
    b.set(parseIpv6(f.src), at + 8);
    b.set(parseIpv6(f.dst), at + 24);
    pseudoSum = pseudoSumV6(b, at, protocol, upperLength);
  } else {
    b[at] = 0x45;
    b[at + 1] = tos;
    writeU16(b, at + 2, headerLength + upperLength);
    writeU16(b, at + 4, checkUint('ipId', f.ipId ?? 0, 0xffff));
    b[at + 6] = f.dontFragment === false ? 0 : 0x40;
    b[at + 8] = ttl;
    b[at + 9] = protocol;
    writeU32(b, at + 12, parseIpv4(f.src));
    writeU32(b, at + 16, parseIpv4(f.dst));
    fillIpv4HeaderChecksum(b, at);
    pseudoSum = pseudoSumV4(b, at, protocol, upperLength);
  }
  return { bytes: b, upperAt: at + headerLength, upperLength, pseudoSum };
}

/** Fills the checksum at `checksumField` (relative to the upper layer) after `pseudoSum`. */
function fillTransportChecksum(ip: IpFrame, checksumField: number, pseudoSum: number): void {
  const at = ip.upperAt;
  writeU16(ip.bytes, at + checksumField, transportChecksum(pseudoSum, ip.bytes, at, ip.upperLength, at + checksumField));
}

function tcpOptionsLength(o: TcpOptions | undefined): number {
  if (o === undefined) return 0;
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.timestamp !== undefined || o.sackPermitted === true) n += o.timestamp !== undefined ? 12 : 4;
  if (o.windowScale !== undefined) n += 4;
  const blocks = o.sack?.length ?? 0;
  if (blocks > 4) throw new EmitError('emit.bad_field', `sack must have 1..4 blocks, got ${blocks}`);
  if (blocks > 0) n += 4 + 8 * blocks;
  if (n > MAX_TCP_OPTIONS) throw new EmitError('emit.options_too_long', `TCP options need ${n} bytes, at most ${MAX_TCP_OPTIONS} fit`);
  return n;
}

/** Writes the options in Linux's order (see the module header); lengths as `tcpOptionsLength`. */
function writeTcpOptions(b: Uint8Array, at: number, o: TcpOptions): void {
  let i = at;
  if (o.mss !== undefined) {
    b[i] = TCP_OPTION_MSS;
    b[i + 1] = 4;
    writeU16(b, i + 2, checkUint('mss', o.mss, 0xffff));
    i += 4;
  }
  if (o.timestamp !== undefined) {
    if (o.sackPermitted === true) {
      b[i] = TCP_OPTION_SACK_PERMITTED;
      b[i + 1] = 2;
    } else {
      b[i] = TCP_OPTION_NOP;
      b[i + 1] = TCP_OPTION_NOP;
    }
    b[i + 2] = TCP_OPTION_TIMESTAMPS;
    b[i + 3] = 10;
    writeU32(b, i + 4, checkUint('timestamp TSval', o.timestamp[0], 0xffffffff));
    writeU32(b, i + 8, checkUint('timestamp TSecr', o.timestamp[1], 0xffffffff));
    i += 12;
  } else if (o.sackPermitted === true) {
    b[i] = TCP_OPTION_NOP;
    b[i + 1] = TCP_OPTION_NOP;
    b[i + 2] = TCP_OPTION_SACK_PERMITTED;
    b[i + 3] = 2;
    i += 4;
  }
  if (o.windowScale !== undefined) {
    b[i] = TCP_OPTION_NOP;
    b[i + 1] = TCP_OPTION_WINDOW_SCALE;
    b[i + 2] = 3;
    b[i + 3] = checkUint('windowScale', o.windowScale, 0xff);
    i += 4;
  }
  const sack = o.sack ?? [];
  if (sack.length > 0) {
    b[i] = TCP_OPTION_NOP;
    b[i + 1] = TCP_OPTION_NOP;
    b[i + 2] = TCP_OPTION_SACK;
    b[i + 3] = 2 + 8 * sack.length;
    i += 4;
    for (const [left, right] of sack) {
      writeU32(b, i, checkUint('sack left edge', left, 0xffffffff));
      writeU32(b, i + 4, checkUint('sack right edge', right, 0xffffffff));
      i += 8;
    }
  }
}
