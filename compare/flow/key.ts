/**
 * Connection keys. The comparator always knows which side a frame came from, so instead of
 * ordering the two endpoints by address it orders them by role: guest endpoint first, remote
 * endpoint second. A PVM or SVM output frame has the guest as its source, a client frame has the
 * guest as its destination; both directions of a flow therefore meet under one key, and the PVM's
 * and the SVM's frames (the twins share IP and MAC) meet too.
 *
 * Keys are short strings of 16-bit character codes (address halves, ports, protocol), built with
 * one `String.fromCharCode` call: measured here, building and looking up such a key costs ~60 ns
 * against ~290 ns for a readable `"tcp 10.0.0.2:80 ..."` key, and this runs for every frame. They
 * are not meant for people; `describeKey` turns one back into a readable name, for the rare
 * mismatch or event that needs it, so connections keep only the key. Ports are TCP/UDP ports, the
 * echo identifier for ICMP/ICMPv6 echo (0 for other ICMP types), and 0 for other IP protocols.
 * VLAN tags are deliberately not part of the key: the tags are compared, so a tag difference is a
 * mismatch instead of two flows that each wait for the other. Non-IP frames key by EtherType;
 * undecodable frames share one key.
 */

import { formatIpv6 } from '../wire/ipv6.js';
import type { Frame } from '../wire/frame.js';

/** The comparison class of a flow, which decides how its frames are matched. */
export type FlowClass = 'tcp' | 'udp' | 'icmp' | 'ip' | 'frame';

/** The class a decoded frame is compared as. */
export function flowClassOf(frame: Frame): FlowClass {
  const t = frame.transport;
  if (t !== null) return t.kind === 'icmpv6' ? 'icmp' : t.kind;
  if (frame.network === null || frame.network.kind === 'arp') return 'frame';
  return 'ip';
}

/** Key of all frames that could not be decoded: they are compared as whole frames, in order. */
export const UNDECODABLE_KEY = String.fromCharCode(0xfffe);

/** Key of fragments of datagrams that could not be reassembled: compared one by one, in order. */
export const FRAGMENTS_KEY = String.fromCharCode(0xfffd);

/**
 * Put before a flow's key for an SVM's unpaired SYN, or first datagram (echo message), whose port
 * (identifier) the PVM uses for a live flow to the same peer (translate mode: the guests'
 * ephemeral ports crossed); see the comparator.
 */
export const SECONDARY_APART_PREFIX = String.fromCharCode(0xfffc);

/**
 * Key of `frame`'s flow. `guestIsSource` is true for PVM/SVM output and false for client frames.
 * `guestPort`, when not -1, replaces the guest-side port (an SVM whose ephemeral port differs
 * from the PVM's is keyed under the PVM's port); for an echo message it replaces the identifier,
 * which stands for both ports.
 */
export function flowKey(frame: Frame, guestIsSource: boolean, guestPort = -1): string {
  const net = frame.network;
  if (net === null) return String.fromCharCode(0xffff, frame.etherType & 0xffff);
  if (net.kind === 'arp') {
    // One flow per operation and target: guests resolving two neighbours in a different order,
    // or answering two askers, send the same messages in each flow.
    const target = net.targetIp;
    if (target === -1) return String.fromCharCode(0xffff, frame.etherType & 0xffff);
    return String.fromCharCode(0xffff, frame.etherType & 0xffff, net.operation, target >>> 16, target & 0xffff);
  }
  const ports = portsOf(frame);
  const srcPort = ports >>> 16;
  const dstPort = ports & 0xffff;
  let gPort = guestIsSource ? srcPort : dstPort;
  let rPort = guestIsSource ? dstPort : srcPort;
  if (guestPort !== -1) {
    gPort = guestPort;
    if (isEcho(frame)) rPort = guestPort; // the echo identifier is both "ports"
  }
  if (net.kind === 'ipv4') {
    const g = guestIsSource ? net.src : net.dst;
    const r = guestIsSource ? net.dst : net.src;
    return String.fromCharCode(4, frame.protocol, g >>> 16, g & 0xffff, gPort, r >>> 16, r & 0xffff, rPort);
  }
  const b = net.bytes;
  const gAt = guestIsSource ? net.srcOffset : net.dstOffset;
  const rAt = guestIsSource ? net.dstOffset : net.srcOffset;
  let key = String.fromCharCode(6, frame.protocol, gPort, rPort);
  for (let i = 0; i < 16; i += 2) key += String.fromCharCode((b[gAt + i]! << 8) | b[gAt + i + 1]!, (b[rAt + i]! << 8) | b[rAt + i + 1]!);
  return key;
}

function isEcho(frame: Frame): boolean {
  const t = frame.transport;
  return t !== null && (t.kind === 'icmp' || t.kind === 'icmpv6') && t.isEcho;
}

/** The frame's source and destination ports as `src << 16 | dst` (see the module header for what a port is). */
function portsOf(frame: Frame): number {
  const t = frame.transport;
  if (t === null) return 0;
  if (t.kind === 'tcp' || t.kind === 'udp') return ((t.srcPort << 16) | t.dstPort) >>> 0;
  return t.isEcho ? ((t.echoId << 16) | t.echoId) >>> 0 : 0;
}

/**
 * `flowKey` with a memory of the last IPv4 key it made: when the next frame's protocol,
 * addresses and ports are the same, it returns the same string instead of building one. Both
 * guests' frames of one connection usually arrive back to back, so at 64-byte payloads on one
 * connection this halves the keys built (~110 of the ~410 bytes allocated per frame pair, and
 * 5-6 % of the core's CPU), and the connection table then recognises the very same string.
 *
 * `tuple` gives an IPv4 frame's key as four numbers instead (the `tuple*` fields), for the
 * connection table's tuple index, which finds a connection without a string being built.
 */
export class FlowKeys {
  private key = '';
  /** Protocol, guest address, remote address and guest << 16 | remote port of `key`; -1 before any. */
  private protocol = -1;
  private guest = 0;
  private remote = 0;
  private ports = 0;
  /** What `tuple` found last: protocol, guest and remote address, guest << 16 | remote port. */
  tupleProtocol = 0;
  tupleGuest = 0;
  tupleRemote = 0;
  tuplePorts = 0;

  /** `flowKey(frame, guestIsSource, guestPort)`. */
  of(frame: Frame, guestIsSource: boolean, guestPort = -1): string {
    if (!this.tuple(frame, guestIsSource, guestPort)) return flowKey(frame, guestIsSource, guestPort);
    const protocol = this.tupleProtocol;
    const g = this.tupleGuest;
    const r = this.tupleRemote;
    const ports = this.tuplePorts;
    if (protocol !== this.protocol || g !== this.guest || r !== this.remote || ports !== this.ports) {
      this.key = String.fromCharCode(4, protocol, g >>> 16, g & 0xffff, ports >>> 16, r >>> 16, r & 0xffff, ports & 0xffff);
      this.protocol = protocol;
      this.guest = g;
      this.remote = r;
      this.ports = ports;
    }
    return this.key;
  }

  /**
   * For an IPv4 frame, sets the `tuple*` fields to the tuple its key encodes (`tupleOfKey` of
   * `flowKey(frame, guestIsSource, guestPort)`) and returns true; false for any other frame.
   */
  tuple(frame: Frame, guestIsSource: boolean, guestPort = -1): boolean {
    const net = frame.network;
    if (net === null || net.kind !== 'ipv4') return false;
    const both = portsOf(frame);
    const gPort = guestPort !== -1 ? guestPort : guestIsSource ? both >>> 16 : both & 0xffff;
    const rPort = guestPort !== -1 && isEcho(frame) ? guestPort : guestIsSource ? both & 0xffff : both >>> 16;
    this.tupleProtocol = frame.protocol;
    this.tupleGuest = guestIsSource ? net.src : net.dst;
    this.tupleRemote = guestIsSource ? net.dst : net.src;
    this.tuplePorts = ((gPort << 16) | rPort) >>> 0;
    return true;
  }
}

/**
 * The tuple an IPv4 key encodes, as `FlowKeys.tuple` sets it: protocol, guest address, remote
 * address, guest << 16 | remote port; undefined for any other key.
 */
export function tupleOfKey(key: string): [number, number, number, number] | undefined {
  if (key.length !== 8 || key.charCodeAt(0) !== 4) return undefined;
  const c = (i: number): number => key.charCodeAt(i);
  return [c(1), ((c(2) << 16) | c(3)) >>> 0, ((c(5) << 16) | c(6)) >>> 0, ((c(4) << 16) | c(7)) >>> 0];
}

const PROTOCOL_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

function ipv4Text(hi: number, lo: number): string {
  return `${hi >>> 8}.${hi & 0xff}.${lo >>> 8}.${lo & 0xff}`;
}

function ipv6Text(key: string, from: number): string {
  const b = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const word = key.charCodeAt(from + 2 * i);
    b[2 * i] = word >>> 8;
    b[2 * i + 1] = word & 0xff;
  }
  return formatIpv6(b, 0);
}

/** What `describeKey` adds to the name of a flow keyed apart (SECONDARY_APART_PREFIX). */
const APART_NOTE = ' (the SVM\'s new flow on this port, not paired yet)';

/**
 * The name of the flow whose frames a `describeKey` name covers: the name itself, or for a flow
 * keyed apart the name its frames have on their own (`flowKey` of them; the PVM's other flow on
 * that port has it too).
 */
export function framesFlowName(name: string): string {
  return name.endsWith(APART_NOTE) ? name.slice(0, -APART_NOTE.length) : name;
}

/** The readable name of the flow a key was made for, guest first: `tcp 10.0.0.2:80 <> 10.0.0.1:40000`. */
export function describeKey(key: string): string {
  const tag = key.charCodeAt(0);
  if (key === UNDECODABLE_KEY) return 'undecodable frames';
  if (key === FRAGMENTS_KEY) return 'ip fragments';
  if (tag === 0xfffc) return `${describeKey(key.slice(1))}${APART_NOTE}`;
  if (tag === 0xffff) {
    const etherType = key.charCodeAt(1);
    if (etherType !== 0x0806) return `ethertype 0x${etherType.toString(16).padStart(4, '0')}`;
    if (key.length === 2) return 'arp';
    const op = key.charCodeAt(2);
    const target = ipv4Text(key.charCodeAt(3), key.charCodeAt(4));
    return op === 1 ? `arp request for ${target}` : op === 2 ? `arp reply to ${target}` : `arp op ${op} target ${target}`;
  }
  const protocol = key.charCodeAt(1);
  const v4 = tag === 4;
  const gPort = key.charCodeAt(v4 ? 4 : 2);
  const rPort = key.charCodeAt(v4 ? 7 : 3);
  const guest = v4 ? ipv4Text(key.charCodeAt(2), key.charCodeAt(3)) : `[${ipv6Text(key, 4)}]`;
  const remote = v4 ? ipv4Text(key.charCodeAt(5), key.charCodeAt(6)) : `[${ipv6Text(key, 5)}]`;
  const name = PROTOCOL_NAMES[protocol];
  if (name === 'tcp' || name === 'udp') return `${name} ${guest}:${gPort} <> ${remote}:${rPort}`;
  if (name === 'icmp' || name === 'icmpv6') return `${name}${gPort !== 0 ? ` id ${gPort}` : ''} ${guest} <> ${remote}`;
  return `ip proto ${protocol} ${guest} <> ${remote}`;
}
