/**
 * One readable line per frame, in the spirit of `tcpdump -n`: VLAN tags, flow, protocol,
 * TCP flags, sequence and acknowledgement numbers (absolute, as on the wire), window, payload
 * length and TCP options. Used by `inspect` and by anything that has to show a person a frame.
 * A frame that does not decode is shown as its `WireError` code and byte offset.
 */

import {
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  ETHERTYPE_VLAN,
  WireError,
  formatIpv4,
  formatMac,
  type Frame,
  type TcpView,
} from '../../compare/index.js';

/** TCP flags as tcpdump prints them: S F R P U E W, and `.` for ACK. */
export function tcpFlagString(tcp: TcpView): string {
  let s = '';
  if (tcp.isSyn) s += 'S';
  if (tcp.isFin) s += 'F';
  if (tcp.isRst) s += 'R';
  if (tcp.isPsh) s += 'P';
  if (tcp.isUrg) s += 'U';
  if (tcp.isEce) s += 'E';
  if (tcp.isCwr) s += 'W';
  if (tcp.isAck) s += '.';
  return s === '' ? 'none' : s;
}

function tcpOptions(tcp: TcpView): string {
  const parts: string[] = [];
  if (tcp.mss !== -1) parts.push(`mss ${tcp.mss}`);
  if (tcp.sackPermitted) parts.push('sackOK');
  for (let i = 0; i < tcp.sackBlockCount; i++) parts.push(`sack ${tcp.sackLeft(i)}:${tcp.sackRight(i)}`);
  if (tcp.tsVal !== -1) parts.push(`ts ${tcp.tsVal} ${tcp.tsEcr}`);
  if (tcp.windowScale !== -1) parts.push(`wscale ${tcp.windowScale}`);
  return parts.length === 0 ? '' : ` <${parts.join(',')}>`;
}

function vlanPrefix(frame: Frame): string {
  const link = frame.link;
  if (link === null || link.tagCount === 0) return '';
  let s = '';
  for (let i = 0; i < link.tagCount; i++) s += `${link.tagProtocol(i) === ETHERTYPE_VLAN ? 'vlan' : 'svlan'} ${link.vlanId(i)} `;
  return s;
}

function endpoint(address: string, port: number, v6: boolean): string {
  return v6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Describes a decoded frame (or the error that stopped its decoding) on one line. */
export function describeFrame(frame: Frame | WireError, length: number): string {
  if (frame instanceof WireError) return `! ${frame.code} at byte ${frame.at} (frame length ${length})`;
  const prefix = vlanPrefix(frame);
  const net = frame.network;
  if (net === null) {
    const type = frame.etherType === -1 ? `link type ${frame.linkType}` : `ethertype 0x${frame.etherType.toString(16).padStart(4, '0')}`;
    return `${prefix}${type} len ${length}`;
  }
  if (net.kind === 'arp') {
    if (!net.isEthernetIpv4) return `${prefix}arp op ${net.operation} htype ${net.hardwareType} ptype 0x${net.protocolType.toString(16)}`;
    if (net.operation === ARP_OP_REQUEST) return `${prefix}arp who-has ${formatIpv4(net.targetIp)} tell ${formatIpv4(net.senderIp)}`;
    if (net.operation === ARP_OP_REPLY) return `${prefix}arp reply ${formatIpv4(net.senderIp)} is-at ${formatMac(net.senderHardware)}`;
    return `${prefix}arp op ${net.operation} ${formatIpv4(net.senderIp)} > ${formatIpv4(net.targetIp)}`;
  }
  const v6 = net.kind === 'ipv6';
  const src = net.srcString;
  const dst = net.dstString;
  const frag = frame.isFragment ? ` frag id ${v6 ? net.fragmentId : net.identification} off ${net.fragmentOffset}${net.moreFragments ? '+' : ''}` : '';
  const t = frame.transport;
  if (t === null) return `${prefix}${src} > ${dst} proto ${frame.protocol} len ${frame.payloadLength}${frag}`;
  switch (t.kind) {
    case 'tcp':
      return (
        `${prefix}${endpoint(src, t.srcPort, v6)} > ${endpoint(dst, t.dstPort, v6)} tcp [${tcpFlagString(t)}] ` +
        `seq ${t.seq}${t.isAck ? ` ack ${t.ack}` : ''} win ${t.window} len ${t.payloadLength}${tcpOptions(t)}${frag}`
      );
    case 'udp':
      return `${prefix}${endpoint(src, t.srcPort, v6)} > ${endpoint(dst, t.dstPort, v6)} udp len ${t.payloadLength}${frag}`;
    case 'icmp':
    case 'icmpv6': {
      const echo = t.isEcho ? ` id ${t.echoId} seq ${t.echoSequence}` : '';
      return `${prefix}${src} > ${dst} ${t.kind} type ${t.type} code ${t.code}${echo} len ${t.payloadLength}${frag}`;
    }
  }
}
