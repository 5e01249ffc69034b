/**
 * A live network interface (a VM's tap, a veth, a NIC), read and written at layer 2 with libpcap
 * through the optional `cap` package, for `run` and `bridge`.
 *
 * Contract. `open()` starts capturing the frames the interface *receives* (on a tap that is the
 * VM's output, on the client-facing NIC the client's frames; see Direction below), and what this
 * port injects with `send` is never read back. Each captured frame goes to
 * `handlers.frame` as a view of the port's one receive buffer, valid only during that call: the
 * handler must finish with it (or copy it) before returning, and never across an `await`. That
 * buffer is owned here for the port's whole life, because cap's native side keeps only a raw
 * pointer to it (a buffer the GC frees under an open handle corrupts the heap). `send` writes one
 * frame at once (a system call), except that a TCP frame longer than the MTU goes out cut into
 * segments that fit, as a NIC's TSO would: handed whole to the kernel to cut through colo-proxy's
 * packet socket (packet-socket.ts) when that addon is built, else cut here (tcp-segmenter.ts). It
 * never throws: a frame the kernel refuses (interface down, queue full, too big) is counted in
 * `sendErrors` and lost, as on a wire.
 *
 * Limits, measured with cap 0.2.1 and libpcap 1.10: no drop counter is exposed, so `counters()`
 * reads the interface's own statistics from sysfs (the gap between what the interface received
 * and what was captured is what the capture ring lost). libpcap sizes the ring's slots by the MTU
 * only when the interface has no segmentation or receive offloads (snaplen is fixed at 65535),
 * so `disableOffloads` turns them off; a frame still longer than a slot arrives cut short and is
 * counted in `truncated` and dropped here (it cannot be forwarded whole), and the first one is
 * reported through `handlers.notice`: the guest is sending TSO/GSO frames, so either its
 * interface keeps its offloads (slots of 64 KiB, frames captured whole and segmented by `send`)
 * or the guest turns TSO/GSO off.
 *
 * Interfaces that go away. A watchdog reads sysfs every `watchMs`: when the interface goes
 * administratively down, disappears, or comes back as a new device (a tap recreated with the same
 * name), the handle is closed and reopened once it is up again; `handlers.state` is told both
 * times. An MTU raised while the handle is open reopens it as well (its slots were sized by the
 * MTU it was opened with: every longer frame would be cut and dropped). A libpcap handle is never
 * reused (cap cannot reopen one): each open makes a new one.
 *
 * Direction. Frames this handle injects never come back to it (a packet socket skips its own),
 * nor do those of the packet socket (its capture socket is set to ignore outgoing frames), but
 * the host's own output on the interface would (IPv6 router solicitations and MLD reports
 * on a tap with a link-local address, say). BPF `inbound` would exclude it, but libpcap 1.10 runs
 * the filter in userland for the first frame after `pcap_setfilter`, where `inbound` (an
 * ancillary load) cannot be evaluated, so the first frame of every handle was lost (measured; a
 * lost PVM ping reply then misaligns the ICMP comparison). The default filter is therefore
 * `not ether src <the interface's own MAC>`, which both the kernel and userland evaluate: the
 * host stack sends with the interface's MAC, guests and clients with their own.
 */

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { TcpSegmenter, type PayloadLimit } from './tcp-segmenter.js';
import { OffloadSocket, errnoName, ignoreOutgoing, loadPacketSocket, packetSocketUnavailable, type OffloadPlan } from './packet-socket.js';
import type { SendResult, SendThread } from './send-thread.js';

/** The part of cap's native `Cap` object used here. */
interface CapHandle {
  open(device: string, filter: string, bufferBytes: number, buffer: Buffer): string;
  close(): void;
  /**
   * Any Uint8Array: the binding checks node::Buffer::HasInstance, which takes every
   * ArrayBufferView, and sends from the view's own offset (checked on lo: a subarray at offset
   * 100 of a larger array went out byte for byte).
   */
  send(frame: Uint8Array, length?: number): void;
  on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): void;
}

interface CapModule {
  Cap: new () => CapHandle;
}

/** What to install when cap cannot be loaded; printed by `run` and `bridge`. */
export const CAP_INSTALL_HINT = 'apt-get install libpcap-dev && npm install cap (the optional dependency; `npm run setup` does both as root)';

/** Live capture cannot work on this machine or for this user; the message says why and what to do. */
export class LiveCaptureError extends Error {
  override name = 'LiveCaptureError';
  constructor(
    message: string,
    /** Stable code: `live.no_cap`, `live.permission`, `live.no_interface`, `live.interface_down`, `live.open`. */
    readonly code: string,
  ) {
    super(message);
  }
}

let capModule: CapModule | null = null;

/** Loads cap once; throws LiveCaptureError naming what to install when it is missing or not built. */
export function loadCap(): CapModule {
  if (capModule !== null) return capModule;
  try {
    capModule = createRequire(import.meta.url)('cap') as CapModule;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new LiveCaptureError(`live capture needs libpcap and the cap package, which cannot be loaded (${why}); install them: ${CAP_INSTALL_HINT}`, 'live.no_cap');
  }
  return capModule;
}

const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;

/** Null when this process may capture and inject (CAP_NET_RAW) and change offloads (CAP_NET_ADMIN); else why not. */
export function capturePermissionProblem(): string | null {
  let eff: bigint;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    eff = m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    eff = 0n;
  }
  const has = (bit: number): boolean => ((eff >> BigInt(bit)) & 1n) === 1n;
  if (has(CAP_NET_RAW) && has(CAP_NET_ADMIN)) return null;
  return 'live capture needs root (or the capabilities CAP_NET_RAW and CAP_NET_ADMIN): run it with sudo';
}

/** What sysfs says about an interface right now; null when there is no such interface. */
export interface InterfaceState {
  ifindex: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Has carrier (a tap with no VM attached, or a veth whose peer is down, has none). */
  carrier: boolean;
  mtu: number;
}

function sysfs(name: string, file: string): string | null {
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Reads an interface's state from sysfs (the interface must be in this process's network namespace). */
export function interfaceState(name: string): InterfaceState | null {
  if (name === '' || name.includes('/') || name === '.' || name === '..') return null;
  const ifindex = sysfs(name, 'ifindex');
  if (ifindex === null) return null;
  const flags = Number.parseInt(sysfs(name, 'flags') ?? '0', 16);
  return {
    ifindex: Number(ifindex),
    up: (flags & 1) === 1,
    carrier: sysfs(name, 'carrier') === '1',
    mtu: Number(sysfs(name, 'mtu') ?? '1500'),
  };
}

/** Throws LiveCaptureError when `name` (given to `flag`) does not exist or is down. */
export function checkInterface(flag: string, name: string): InterfaceState {
  const s = interfaceState(name);
  if (s === null) throw new LiveCaptureError(`${flag}: no interface named "${name}" (see \`ip link\`)`, 'live.no_interface');
  if (!s.up) throw new LiveCaptureError(`${flag}: interface ${name} is down; bring it up with: ip link set ${name} up`, 'live.interface_down');
  return s;
}

/** The interface's own counters (sysfs statistics), the only drop counts libpcap gives us through cap. */
export interface InterfaceCounters {
  rxPackets: number;
  rxDropped: number;
  txPackets: number;
  txDropped: number;
}

export function interfaceCounters(name: string): InterfaceCounters | null {
  const read = (f: string): number | null => {
    const v = sysfs(name, `statistics/${f}`);
    return v === null ? null : Number(v);
  };
  const rxPackets = read('rx_packets');
  if (rxPackets === null) return null;
  return { rxPackets, rxDropped: read('rx_dropped') ?? 0, txPackets: read('tx_packets') ?? 0, txDropped: read('tx_dropped') ?? 0 };
}

/** The offloads that make an interface deliver frames larger than its MTU (or make libpcap size its ring for them). */
const OFFLOADS = ['gro', 'lro', 'tso', 'gso', 'ufo', 'rx-gro-hw', 'rx-gro-list', 'rx-udp-gro-forwarding'];

/**
 * Whether libpcap sizes a new handle's ring slots on `name` by its MTU: when none of the offloads
 * libpcap asks the driver about (TSO, UFO, GSO, GRO) is on; otherwise they hold 64 KiB frames.
 */
function slotsSizedByMtu(name: string): boolean {
  const f = offloadFeatures(name);
  return !['tcp-segmentation-offload', 'udp-fragmentation-offload', 'generic-segmentation-offload', 'generic-receive-offload'].some((k) => f.get(k) === true);
}

/**
 * Turns off receive and segmentation offloads on `name` with ethtool, one feature at a time
 * (a driver lacking one refuses only that one). Returns the features still on that matter
 * (gro, lro, tso, gso), empty when all is well; never throws.
 */
export function disableOffloads(name: string): string[] {
  for (const f of OFFLOADS) spawnSync('ethtool', ['-K', name, f, 'off'], { stdio: 'ignore' });
  const r = spawnSync('ethtool', ['-k', name], { encoding: 'utf8' });
  if (r.status !== 0) return ['(ethtool -k failed: is ethtool installed?)'];
  const on: string[] = [];
  const names: Record<string, string> = {
    'generic-receive-offload': 'gro', 'large-receive-offload': 'lro', 'tcp-segmentation-offload': 'tso', 'generic-segmentation-offload': 'gso',
  };
  for (const line of r.stdout.split('\n')) {
    const m = /^([a-z-]+): on(?! \[fixed\])/.exec(line);
    if (m && names[m[1]!] !== undefined) on.push(names[m[1]!]!);
  }
  return on;
}

/** The features of `name` that ethtool may change (not `[fixed]`), on or off; empty when ethtool cannot tell. Never throws. */
export function offloadFeatures(name: string): Map<string, boolean> {
  const r = spawnSync('ethtool', ['-k', name], { encoding: 'utf8' });
  const features = new Map<string, boolean>();
  if (r.status !== 0) return features;
  for (const line of r.stdout.split('\n')) {
    const m = /^([a-z0-9-]+): (on|off)$/.exec(line.trim());
    if (m) features.set(m[1]!, m[2] === 'on');
  }
  return features;
}

/**
 * Puts back the features of `name` that differ from `before` (`offloadFeatures` taken before they
 * were changed); returns those it could not, empty when all is as it was. Never throws.
 */
export function restoreOffloads(name: string, before: ReadonlyMap<string, boolean>): string[] {
  const now = offloadFeatures(name);
  const changed = [...before].filter(([f, on]) => now.has(f) && now.get(f) !== on);
  for (const [f, on] of changed) spawnSync('ethtool', ['-K', name, f, on ? 'on' : 'off'], { stdio: 'ignore' });
  if (changed.length === 0) return [];
  const after = offloadFeatures(name);
  return changed.filter(([f, on]) => after.get(f) !== on).map(([f]) => f);
}

/**
 * Turns generic receive offload on for `name`: the kernel then merges a TCP flow's consecutive
 * segments as they arrive, and the capture sees frames of up to 64 KiB (on a veth this also puts
 * the device in NAPI mode). Returns null when GRO is on, else why not; never throws.
 */
export function enableGro(name: string): string | null {
  spawnSync('ethtool', ['-K', name, 'gro', 'on'], { stdio: 'ignore' });
  const r = spawnSync('ethtool', ['-k', name], { encoding: 'utf8' });
  if (r.status !== 0) return 'ethtool -k failed: is ethtool installed?';
  return /^generic-receive-offload: on/m.test(r.stdout) ? null : 'the driver refuses GRO';
}

/** The BPF filter that drops the host's own output on `name` (frames from the interface's own MAC). */
export function ownOutputFilter(name: string): string {
  const mac = sysfs(name, 'address');
  return mac !== null && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) ? `not ether src ${mac}` : '';
}

/**
 * Whether a captured Ethernet frame holds its whole IP packet (a ring slot smaller than the frame
 * cuts it short without telling). Non-IP frames are taken as whole. Up to two VLAN tags.
 */
export function wholeFrame(f: Uint8Array, length: number): boolean {
  let off = 12;
  let type = length >= 14 ? (f[12]! << 8) | f[13]! : 0;
  for (let i = 0; i < 2 && (type === 0x8100 || type === 0x88a8) && length >= off + 6; i++) {
    off += 4;
    type = (f[off]! << 8) | f[off + 1]!;
  }
  const ip = off + 2;
  if (type === 0x0800 && length >= ip + 4) return ip + ((f[ip + 2]! << 8) | f[ip + 3]!) <= length;
  if (type === 0x86dd && length >= ip + 6) return ip + 40 + ((f[ip + 4]! << 8) | f[ip + 5]!) <= length;
  return true;
}

export interface PcapInterfaceHandlers {
  /** Every frame the capture hands over, before anything else is done with it (one cut short too): see capture-stall.ts. */
  packet?(): void;
  /** One received frame (not sent by this host): a view valid only during this call (see the module header). */
  frame(frame: Buffer): void;
  /** The interface went away or came back (the handle was closed or reopened); `detail` is for the log. */
  state(up: boolean, detail: string): void;
  /** Something the operator must know that is not a state change (the first truncated frame); for the log. */
  notice(detail: string): void;
}

export interface PcapInterfaceOptions {
  /** Kernel ring size in bytes (default 64 MiB). */
  ringBytes?: number;
  /** BPF filter (default `not ether src <the interface's MAC>`, see the module header). */
  filter?: string;
  /** How often sysfs is checked for the interface going down or away (and its MTU), ms (default 500). */
  watchMs?: number;
  /** A smaller payload limit than the MTU's for segments `send` cuts (the peer's MSS, when known). */
  payloadLimit?: PayloadLimit;
  /** False: cut frames over the MTU here even when the packet socket addon is built (default true). */
  kernelSegmentation?: boolean;
  /**
   * Send through this thread (send-thread.ts) instead of in the caller's thread, when the packet
   * socket addon is built (else, or if the thread dies, frames go out through cap as without it).
   */
  sendThread?: SendThread;
}

const DEFAULT_RING = 64 * 1024 * 1024;

export class PcapInterface {
  /** Frames captured and handed to `frame`. */
  captured = 0;
  /** Frames injected here, not counting the send thread's (see `sent`). */
  private sentHere = 0;
  /** Frames the kernel refused here, not counting the send thread's (see `sendErrors`). */
  private sendErrorsHere = 0;
  /** Frames captured cut short (longer than a ring slot) and dropped. */
  truncated = 0;
  /** TCP frames longer than the MTU cut into segments here to be sent (each segment counts in `sent`). */
  segmented = 0;
  /** TCP frames longer than the MTU handed to the kernel to cut here, not counting the send thread's (see `kernelSegmented`). */
  private kernelSegmentedHere = 0;
  /** Times the handle was reopened after the interface went down or away, or its MTU was raised. */
  reopens = 0;
  private lastSendErrorHere = '';
  private readonly cap: CapModule;
  /** cap's receive buffer; see the module header for why it lives as long as this object. */
  private readonly buffer = Buffer.alloc(65535);
  private handle: CapHandle | null = null;
  private ifindex = -1;
  /** The interface's MTU, read at open and by the watchdog: longer TCP frames are segmented before sending. */
  private mtu = 1500;
  /** The MTU libpcap sized the handle's slots by when it opened it (see `check`); Infinity when it sized them for 64 KiB frames. */
  private slotMtu = 1500;
  private readonly segmenter: TcpSegmenter;
  /** The packet socket frames over the MTU go out through whole, or null: they are cut here. */
  private offloadSocket: OffloadSocket | null = null;
  /** True while frames go through the send thread (its slot is `threadSlot`). */
  private viaThread = false;
  private readonly threadSlot: number;
  /** Why there is no packet socket ('' while there is one or none was needed yet); said once, at the first frame cut here. */
  private offloadProblem = '';
  private offloadProblemSaid = false;
  /** `sendWhole` bound once, for the segmenter. */
  private readonly sendSegment = (segment: Uint8Array): void => {
    this.sendWhole(segment);
  };
  private watch: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly handlers: PcapInterfaceHandlers,
    private readonly options: PcapInterfaceOptions = {},
  ) {
    this.cap = loadCap();
    this.segmenter = new TcpSegmenter(options.payloadLimit);
    this.threadSlot = options.sendThread?.addPort() ?? -1;
  }

  /** Frames injected (each segment of a cut frame counts), by this port and by the send thread for it. */
  get sent(): number {
    return this.sentHere + (this.options.sendThread?.counters(this.threadSlot).sent ?? 0);
  }

  /** Frames the kernel refused to send (or the send thread could not take). */
  get sendErrors(): number {
    return this.sendErrorsHere + (this.options.sendThread?.counters(this.threadSlot).errors ?? 0);
  }

  /** TCP frames longer than the MTU handed to the kernel to cut (each segment counts in `sent`). */
  get kernelSegmented(): number {
    return this.kernelSegmentedHere + (this.options.sendThread?.counters(this.threadSlot).offloaded ?? 0);
  }

  /** The last send errors' messages, for the log: this thread's and the send thread's, when there are any. */
  get lastSendError(): string {
    const errno = this.options.sendThread?.counters(this.threadSlot).errno ?? 0;
    return [this.lastSendErrorHere, errno !== 0 ? `the send thread: ${errnoName(errno)}` : ''].filter((m) => m !== '').join('; ');
  }

  /** Opens the handle; throws LiveCaptureError when the interface is missing, down or cannot be opened. */
  open(): void {
    const s = checkInterface(this.name, this.name);
    this.openHandle(s);
    this.watch = setInterval(() => this.check(), this.options.watchMs ?? 500);
    this.watch.unref();
  }

  get isOpen(): boolean {
    return this.handle !== null;
  }

  /**
   * Injects one frame; false (counted) when the kernel refused it or the interface is away. A TCP
   * frame longer than the MTU (a guest's segmentation offload) goes out as segments that fit
   * (tcp-segmenter.ts): a packet socket refuses frames over the MTU. With a send thread, true
   * means queued: what the kernel refuses then is counted in `sendErrors` as it happens.
   */
  send(frame: Uint8Array): boolean {
    if (this.handle !== null) {
      if (this.offloadSocket !== null || (this.viaThread && this.options.kernelSegmentation !== false)) {
        const plan = this.segmenter.offload(frame, this.mtu);
        if (plan !== null) {
          const sent = this.sendOffloaded(plan);
          if (sent !== 'thread-gone') return sent;
          // The thread died: this frame and the next are cut here and go out through cap.
        }
      }
      const before = this.sendErrorsHere;
      if (this.segmenter.segment(frame, this.mtu, this.sendSegment) > 0) {
        if (this.segmented++ === 0 && this.offloadProblem !== '' && !this.offloadProblemSaid) {
          this.offloadProblemSaid = true;
          this.handlers.notice(`frames over the MTU are cut into segments in JavaScript, which is slower: ${this.offloadProblem}`);
        }
        return this.sendErrorsHere === before;
      }
    }
    return this.sendWhole(frame);
  }

  private sendOffloaded(plan: OffloadPlan): boolean | 'thread-gone' {
    const thread = this.options.sendThread;
    if (this.viaThread && thread !== undefined) return this.queued(thread, thread.sendOffloaded(this.threadSlot, this.ifindex, plan));
    const err = this.offloadSocket!.send(plan);
    if (err !== 0) {
      this.sendErrorsHere++;
      this.lastSendErrorHere = `sending a frame for the kernel to segment: ${errnoName(err)}`;
      return false;
    }
    this.kernelSegmentedHere++;
    this.sentHere += plan.segments;
    return true;
  }

  /** What a send thread's answer means here; when the thread is gone, later frames go out through cap. */
  private queued(thread: SendThread, result: SendResult): boolean | 'thread-gone' {
    if (result === 'queued') return true;
    if (result === 'too-long') {
      this.sendErrorsHere++;
      this.lastSendErrorHere = 'a frame longer than half the send thread\'s ring';
      return false;
    }
    this.viaThread = false;
    this.handlers.notice(`${thread.failure}: sending from the engine's thread from now on`);
    return 'thread-gone';
  }

  /** True when `send` would put `frame` on the wire as it is, not cut into segments (at the MTU as it is now). */
  sendsWhole(frame: Uint8Array): boolean {
    return !this.segmenter.cuts(frame, this.mtu);
  }

  private sendWhole(frame: Uint8Array): boolean {
    const h = this.handle;
    if (h === null) {
      this.sendErrorsHere++;
      return false;
    }
    const thread = this.options.sendThread;
    if (this.viaThread && thread !== undefined) {
      const sent = this.queued(thread, thread.send(this.threadSlot, this.ifindex, frame));
      if (sent !== 'thread-gone') return sent;
    }
    try {
      h.send(frame, frame.length);
      this.sentHere++;
      return true;
    } catch (e) {
      this.sendErrorsHere++;
      this.lastSendErrorHere = e instanceof Error ? e.message : String(e);
      return false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    this.closeHandle();
  }

  private openHandle(s: InterfaceState): void {
    const h = new this.cap.Cap();
    try {
      h.open(this.name, this.options.filter ?? ownOutputFilter(this.name), this.options.ringBytes ?? DEFAULT_RING, this.buffer);
    } catch (e) {
      throw new LiveCaptureError(`cannot capture on ${this.name}: ${e instanceof Error ? e.message : String(e)}`, 'live.open');
    }
    const buffer = this.buffer;
    h.on('packet', (nbytes) => {
      if (this.handle !== h) return;
      this.handlers.packet?.();
      if (!wholeFrame(buffer, nbytes)) {
        if (this.truncated++ === 0) {
          this.handlers.notice(
            `a frame longer than a capture slot was cut to ${nbytes} bytes and dropped (counted in colo_proxy_interface_truncated_total): `
            + `its sender uses segmentation offload: keep offloads on ${this.name} (--keep-offloads, with a larger --ring-mb), or turn TSO/GSO off on the sender`,
          );
        }
        return;
      }
      this.captured++;
      this.handlers.frame(buffer.subarray(0, nbytes));
    });
    this.handle = h;
    this.ifindex = s.ifindex;
    this.mtu = s.mtu;
    this.slotMtu = slotsSizedByMtu(this.name) ? s.mtu : Infinity;
    if (this.options.kernelSegmentation !== false || this.options.sendThread !== undefined) this.openKernelSends(s.ifindex);
  }

  /**
   * Sets up sending through the packet socket addon: the send thread, or a socket of this port's
   * own for frames over the MTU. Records why not when it cannot (frames then go through cap and
   * are cut here).
   */
  private openKernelSends(ifindex: number): void {
    const addon = loadPacketSocket();
    if (addon === null) {
      this.offloadProblem = packetSocketUnavailable();
      return;
    }
    try {
      // Before anything is sent, so that the capture never sees a frame another socket sends.
      if (ignoreOutgoing(addon, ifindex) === 0) throw new Error("libpcap's capture socket was not found in /proc/net/packet");
      const thread = this.options.sendThread;
      if (thread !== undefined && thread.failure === '') this.viaThread = true;
      else if (this.options.kernelSegmentation !== false) this.offloadSocket = new OffloadSocket(addon, ifindex);
    } catch (e) {
      this.offloadProblem = `no packet socket on ${this.name}: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private closeHandle(): void {
    const h = this.handle;
    this.handle = null;
    h?.close();
    this.offloadSocket?.close();
    this.offloadSocket = null;
    this.viaThread = false;
  }

  /** The watchdog: close on down or replaced, reopen on up or on a raised MTU. */
  private check(): void {
    if (this.closed) return;
    const s = interfaceState(this.name);
    let why = 'interface up again, capture reopened';
    if (this.handle !== null) {
      if (s === null || !s.up || s.ifindex !== this.ifindex) {
        this.closeHandle();
        this.handlers.state(false, s === null ? 'interface gone' : !s.up ? 'interface down' : 'interface replaced by a new device');
        if (s === null || !s.up) return;
      } else if (s.mtu > this.slotMtu) {
        // `ip link set IF mtu N` while up: this handle's slots are too small for the longer frames.
        why = `MTU raised from ${this.slotMtu} to ${s.mtu}: capture reopened for the longer frames`;
        this.closeHandle();
      } else {
        this.mtu = s.mtu;
        return;
      }
    }
    if (s === null || !s.up) return;
    try {
      this.openHandle(s);
      this.reopens++;
      this.handlers.state(true, why);
    } catch (e) {
      this.handlers.state(false, `reopening failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
