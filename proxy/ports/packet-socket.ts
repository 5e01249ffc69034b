/**
 * colo-proxy's own packet socket (native/packet-socket, a small Node-API addon in C), for the one
 * send `cap` cannot make: a TCP frame longer than the MTU handed to the kernel whole, marked for
 * segmentation offload with a virtio-net header (PACKET_VNET_HDR), its TCP checksum left to the
 * kernel. The kernel passes it whole to an interface with TSO (a veth, most NICs) or cuts it in
 * C; without this, `run` cuts a guest's 64 KiB TSO frame into ~45 segments in JavaScript, with a
 * checksum over every byte and a system call and a pass through the receiver's stack for each
 * (measured: under half the throughput; see the README's performance table). libpcap has no way
 * to send with a vnet header, and no npm package offers packet sockets, so this is written here.
 *
 * It is optional, like cap: `npm run setup` builds it; when it is not built, `loadPacketSocket`
 * says why and `run` cuts frames in JavaScript as before.
 *
 * A second socket on an interface changes one thing for the capture there: Linux shows every
 * frame sent on an interface to its other packet sockets as outgoing, so libpcap's handle would
 * capture what this socket sends (its own sends it never sees). `ignoreOutgoing` sets
 * PACKET_IGNORE_OUTGOING on the capture sockets: cap exposes no file descriptor, so they are
 * found the way `ss` finds sockets, by inode: /proc/net/packet names this namespace's packet
 * sockets with their interface, protocol and inode, and /proc/self/fd links each of this
 * process's descriptors to its inode.
 */

import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** The addon's functions (native/packet-socket/packet_socket.c). */
export interface PacketSocketAddon {
  open(ifindex: number): number;
  send(fd: number, ifindex: number, headers: Uint8Array, payload: Uint8Array, gsoType: number, gsoSize: number, hdrLen: number, csumStart: number, csumOffset: number): number;
  ignoreOutgoing(fd: number): number;
  copy(target: Uint8Array, at: number, source: Uint8Array): void;
  close(fd: number): void;
}

/** Where the addon is built, from this file in the sources (proxy/ports) or in dist/proxy/ports. */
const CANDIDATES = ['../../native/packet-socket/build/Release/packet_socket.node', '../../../native/packet-socket/build/Release/packet_socket.node'];

let addon: PacketSocketAddon | null | undefined;
let addonPath = '';
let unavailable = '';

/** The addon, or null when it is not built (`packetSocketUnavailable` says why). */
export function loadPacketSocket(): PacketSocketAddon | null {
  if (addon !== undefined) return addon;
  const require = createRequire(import.meta.url);
  const reasons: string[] = [];
  for (const path of CANDIDATES) {
    try {
      addon = require(path) as PacketSocketAddon;
      addonPath = require.resolve(path);
      return addon;
    } catch (e) {
      reasons.push(e instanceof Error ? e.message.split('\n')[0]! : String(e));
    }
  }
  addon = null;
  unavailable = `colo-proxy's packet socket addon is not built (npm run setup builds it): ${reasons.at(-1)}`;
  return null;
}

/** The file `loadPacketSocket` loaded ('' before, or when it is not built): for a thread to load it too. */
export function packetSocketPath(): string {
  return addonPath;
}

/** Why `loadPacketSocket` returned null ('' when it did not). */
export function packetSocketUnavailable(): string {
  return unavailable;
}

/** The name of an errno value (`EMSGSIZE`), or the number. */
export function errnoName(err: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === err) return name;
  return `errno ${err}`;
}

/** VIRTIO_NET_HDR_GSO_* (linux/virtio_net.h). */
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_ECN = 0x80;

/** What a frame handed over for segmentation needs besides its bytes (see TcpSegmenter.offload). */
export interface OffloadPlan {
  /** The frame's headers (Ethernet to TCP) with the TCP checksum field holding the pseudo-header sum. */
  headers: Uint8Array;
  payload: Uint8Array;
  gsoType: number;
  /** Payload bytes per segment. */
  gsoSize: number;
  /** Where the TCP header starts (the checksum covers from there to the end). */
  tcpOffset: number;
  /** How many segments the kernel will make. */
  segments: number;
}

/** Where the checksum lies in a TCP header: the kernel's `csum_offset` for a frame it segments. */
export const TCP_CHECKSUM_OFFSET = 16;

/** A send-only packet socket on one interface. */
export class OffloadSocket {
  private fd: number;

  /** Throws (with the system's reason) when the socket cannot be opened. */
  constructor(
    private readonly addon: PacketSocketAddon,
    private readonly ifindex: number,
  ) {
    this.fd = addon.open(ifindex);
  }

  /** Sends one frame for the kernel to segment; 0 or the errno of the refusal. */
  send(plan: OffloadPlan): number {
    if (this.fd < 0) return 9; // EBADF
    return this.addon.send(this.fd, this.ifindex, plan.headers, plan.payload, plan.gsoType, plan.gsoSize, plan.headers.length, plan.tcpOffset, TCP_CHECKSUM_OFFSET);
  }

  close(): void {
    if (this.fd >= 0) this.addon.close(this.fd);
    this.fd = -1;
  }
}

/** ETH_P_ALL, the protocol libpcap binds its capture sockets to, as /proc/net/packet prints it. */
const ETH_P_ALL = 0x0003;

/**
 * Sets PACKET_IGNORE_OUTGOING on every packet socket of this process that captures all protocols
 * on `ifindex` (see the module header); returns how many, or throws naming what failed.
 */
export function ignoreOutgoing(addon: PacketSocketAddon, ifindex: number): number {
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/packet', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sk RefCnt Type Proto Iface R Rmem User Inode
    if (f.length >= 9 && Number.parseInt(f[3]!, 16) === ETH_P_ALL && Number(f[4]) === ifindex) inodes.add(f[8]!);
  }
  let set = 0;
  for (const name of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // closed meanwhile (the directory's own descriptor, say)
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m === null || !inodes.has(m[1]!)) continue;
    const err = addon.ignoreOutgoing(Number(name));
    if (err !== 0) throw new Error(`PACKET_IGNORE_OUTGOING on a capture socket failed: ${errnoName(err)} (the option needs Linux 4.20 or later)`);
    set++;
  }
  return set;
}
