/**
 * Pairing the PVM's and the SVM's SYNs of one guest-initiated (active-open) TCP connection, or
 * their first datagrams of one guest-initiated UDP flow (a DNS query, say), and the port map that
 * follows when the two guests chose different ephemeral ports.
 *
 * UDP has no handshake, so the caller offers the first datagram each guest sends on a flow
 * (`offerPrimaryDatagram`, `offerSecondaryDatagram`); they pair exactly as SYNs do. The caller
 * must not offer a flow the client opened (a guest-side server): its port is the client's
 * choice, and the two guests' answers, which may come in different orders, would pair across
 * ports by destination. ICMP and ICMPv6 echo messages are offered the same way, their identifier
 * standing for the guest's port (a ping run in each guest gets its own) and 0 for the remote's.
 * Protocols never pair with each other, and a mapping is per protocol.
 *
 * Contract. Offer each guest SYN (SYN set, ACK clear) of a connection the caller has no
 * translation for: `offerPrimarySyn` for the PVM's, `offerSecondarySyn` for the SVM's. SYNs wait
 * per destination (IP version, guest address, remote address, remote port; both guests have
 * the same address) and pair across sides in order of arrival, except that a waiting SYN from
 * the very same source port is taken first (after a checkpoint both guests usually pick the
 * same port, and that pairing is then certain). The offer that completes a pair returns a
 * `PairedOpen` with both ports, ISNs and TSvals; feed it to `learnFromPairedOpen`. A SYN
 * repeating a waiting one's source port on the same side (a retransmission) replaces it; a SYN
 * of an already remapped connection is ignored. Everything else returns null.
 *
 * A datagram on a flow that already has both guests' datagrams may be the first of a new flow
 * from a port a guest drew again (a resolver opens a socket per query), the other guest's port
 * being new, or more of the old flow. The caller offers it as resumed (with a tag of its own),
 * past any mapping of its port, and offers the other guest's next datagram on that flow as
 * resumed too (`waitingResumed` tells it one waits): pairing in order then tells the two cases
 * apart, and a pairing that completes with a resumed offer replaces the mappings of both its
 * ports (`PairedOpen.replaced`). A resumed offer never takes a waiting one for having its port
 * (its port is an old flow's, which the other guest may have drawn for a new one). The tags of
 * resumed offers dropped unpaired (expired, or evicted past `maxPending`) are left in
 * `droppedResumed` for the caller, whose datagrams of them wait for a twin that will not come;
 * past `maxPending` resumed offers are dropped before first ones, which have no flow to fall
 * back on.
 *
 * After a pairing with different ports, every later frame of that connection needs its
 * guest-side port looked up: `primaryPortOf` for SVM output, `secondaryPortOf` for client
 * frames to the SVM. Both are allocation-free, and with no remapped connection (same ports on
 * both sides, the usual case) they return the frame's own port at once. The caller removes a
 * mapping with `forget` when it drops the connection; `clear` after a checkpoint drops every
 * waiting SYN and mapping, since the SVM then uses the PVM's ports and ISNs.
 *
 * Time is the caller's (`now`, in the unit of `pendingTimeout`; no clock is read). A SYN still
 * unpaired when `now - arrival > pendingTimeout` is dropped by `expire` (also run by each
 * offer); expiry walks from the oldest, so it assumes `now` does not go backwards (if it does,
 * entries only expire later). At most `maxPending` SYNs wait and `maxMappings` mappings are
 * kept; beyond either the oldest is dropped and counted. Same-port connections of two guests
 * that were never offered are invisible here: the caller keys those by its own 5-tuple.
 */

import { copyBytes, toHex } from '../wire/bytes.js';
import type { Frame } from '../wire/frame.js';
import { Ipv4View } from '../wire/ipv4.js';
import { Ipv6View } from '../wire/ipv6.js';
import { TcpView } from '../wire/tcp.js';
import { UdpView } from '../wire/udp.js';
import { IcmpView } from '../wire/icmp.js';
import { Icmpv6View } from '../wire/icmpv6.js';
import { SequenceTranslation, learnFromHandshake } from './translation.js';

/** Limits of an `ActiveOpenPairing`. */
export interface ActiveOpenPairingOptions {
  /** How long an unpaired SYN waits, in the unit of `now`; default 3000 (ms, QEMU's compare_timeout). */
  pendingTimeout?: number;
  /** Most SYNs waiting on both sides together; default 1024. */
  maxPending?: number;
  /** Most remapped connections; default 16384 (QEMU's connection table size). */
  maxMappings?: number;
}

/** One active open seen from both guests; also the port mapping when the ports differ. */
export class PairedOpen {
  constructor(
    /** IP_PROTOCOL_TCP or IP_PROTOCOL_UDP. */
    readonly protocol: number,
    readonly ipVersion: 4 | 6,
    /** The guests' (shared) address, 4 or 16 bytes. */
    readonly guestAddress: Uint8Array,
    /** The destination address, 4 or 16 bytes. */
    readonly remoteAddress: Uint8Array,
    readonly remotePort: number,
    /** The PVM's guest-side source port. */
    readonly primaryPort: number,
    /** The SVM's guest-side source port. */
    readonly secondaryPort: number,
    /** The ISNs of the SYNs; 0 for UDP. */
    readonly primaryIsn: number,
    readonly secondaryIsn: number,
    /** TSval of the PVM's SYN, or -1 without timestamps (and for UDP). */
    readonly primaryTsVal: number,
    /** TSval of the SVM's SYN, or -1 without timestamps (and for UDP). */
    readonly secondaryTsVal: number,
    /** One of the two was offered as resumed: the mappings of both ports before it are gone. */
    readonly replaced = false,
  ) {}
}

/** Learns a translation from a pairing: offsets, and the ports when they differ. */
export function learnFromPairedOpen(t: SequenceTranslation, p: PairedOpen): void {
  learnFromHandshake(t, p.primaryIsn, p.secondaryIsn, p.primaryTsVal, p.secondaryTsVal);
  const remapped = p.primaryPort !== p.secondaryPort;
  t.primaryPort = remapped ? p.primaryPort : -1;
  t.secondaryPort = remapped ? p.secondaryPort : -1;
}

const PRIMARY = 0;
const SECONDARY = 1;

/** A SYN (or first datagram) waiting for its twin from the other guest. */
class PendingSyn {
  constructor(
    readonly key: string,
    readonly side: number,
    readonly ipVersion: 4 | 6,
    readonly guestAddress: Uint8Array,
    readonly remoteAddress: Uint8Array,
    readonly remotePort: number,
    readonly port: number,
    public isn: number,
    public tsVal: number,
    readonly arrival: number,
    /** The caller's tag of an offer as resumed (see the module header); undefined for a first datagram or SYN. */
    readonly resumed: unknown,
    readonly protocol: number,
  ) {}
}

/** The SYNs waiting for one destination, by side, oldest first. */
class DestinationQueue {
  readonly bySide: [PendingSyn[], PendingSyn[]] = [[], []];
}

export class ActiveOpenPairing {
  private readonly pendingTimeout: number;
  private readonly maxPending: number;
  private readonly maxMappings: number;
  private readonly queues = new Map<string, DestinationQueue>();
  /** Every waiting SYN in arrival order. */
  private readonly pending = new Set<PendingSyn>();
  /** Every remapped connection in pairing order. */
  private readonly mappings = new Set<PairedOpen>();
  /** Mappings by `portsKey(protocol, secondaryPort, remotePort)`. */
  private readonly bySecondary = new Map<number, PairedOpen[]>();
  /** Mappings by `portsKey(protocol, primaryPort, remotePort)`. */
  private readonly byPrimary = new Map<number, PairedOpen[]>();
  /** SYNs dropped unpaired by `expire`. */
  expiredSyns = 0;
  /** SYNs dropped unpaired because `maxPending` were waiting. */
  evictedSyns = 0;
  /** Mappings dropped because `maxMappings` were kept. */
  evictedMappings = 0;
  /** Offers as resumed waiting for a twin. */
  resumedWaiting = 0;
  /** The tags of offers as resumed dropped unpaired, oldest first, for the caller to take (and empty). */
  readonly droppedResumed: unknown[] = [];
  /** Offers as resumed waiting, by `resumedKey`: `waitingResumed` builds no string for a port with none. */
  private readonly resumedPorts = new Map<number, number>();

  /** Throws RangeError when `pendingTimeout` is not a positive finite number or a maximum not a positive integer. */
  constructor(options: ActiveOpenPairingOptions = {}) {
    this.pendingTimeout = positive('pendingTimeout', options.pendingTimeout ?? 3000, false);
    this.maxPending = positive('maxPending', options.maxPending ?? 1024, true);
    this.maxMappings = positive('maxMappings', options.maxMappings ?? 16384, true);
  }

  /** SYNs waiting for a twin. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Connections whose guest-side ports differ. */
  get mappingCount(): number {
    return this.mappings.size;
  }

  /** Offers a PVM SYN seen at `now`; returns the pairing it completes, or null. */
  offerPrimarySyn(frame: Frame, now: number): PairedOpen | null {
    return isActiveSyn(frame) ? this.offer(PRIMARY, frame, now) : null;
  }

  /** Offers an SVM SYN seen at `now`; returns the pairing it completes, or null. */
  offerSecondarySyn(frame: Frame, now: number): PairedOpen | null {
    return isActiveSyn(frame) ? this.offer(SECONDARY, frame, now) : null;
  }

  /**
   * Offers the PVM's first UDP datagram (or echo message) of a flow, seen at `now`, or one that
   * may be, tagged `resumed` (see the module header); returns the pairing it completes, or null.
   */
  offerPrimaryDatagram(frame: Frame, now: number, resumed?: unknown): PairedOpen | null {
    return isPairableDatagram(frame) ? this.offer(PRIMARY, frame, now, resumed) : null;
  }

  /** `offerPrimaryDatagram` for the SVM's. */
  offerSecondaryDatagram(frame: Frame, now: number, resumed?: unknown): PairedOpen | null {
    return isPairableDatagram(frame) ? this.offer(SECONDARY, frame, now, resumed) : null;
  }

  /**
   * Whether a datagram the PVM (`primary`) or the SVM offered as resumed from guest port `port`
   * waits for its twin at `now`, to `frame`'s destination (a datagram of either guest to it).
   */
  waitingResumed(primary: boolean, frame: Frame, port: number, now: number): boolean {
    this.expire(now);
    if (this.resumedWaiting === 0 || !this.resumedPorts.has(resumedKey(primary ? PRIMARY : SECONDARY, frame.protocol, port, remotePortOf(frame, true)))) return false;
    const key = destinationKey(frame);
    const queue = key === null ? undefined : this.queues.get(key);
    return queue?.bySide[primary ? PRIMARY : SECONDARY].some((w) => w.port === port && w.resumed !== undefined) ?? false;
  }

  /**
   * The PVM's port for an SVM output frame (guest -> remote): its source port (echo identifier),
   * mapped when remapped; -1 for neither TCP, UDP nor echo.
   */
  primaryPortOf(frame: Frame): number {
    const port = guestPortOf(frame, true);
    if (port === -1 || this.mappings.size === 0) return port;
    const m = findMapping(this.bySecondary, frame, portsKey(frame.protocol, port, remotePortOf(frame, true)), true);
    return m === null ? port : m.primaryPort;
  }

  /**
   * The SVM's port for a client frame (remote -> guest): its destination port (echo identifier),
   * mapped when remapped; -1 for neither TCP, UDP nor echo.
   */
  secondaryPortOf(frame: Frame): number {
    const port = guestPortOf(frame, false);
    if (port === -1 || this.mappings.size === 0) return port;
    const m = findMapping(this.byPrimary, frame, portsKey(frame.protocol, port, remotePortOf(frame, false)), false);
    return m === null ? port : m.secondaryPort;
  }

  /** Removes a mapping returned by an offer (the connection is gone); false when it was not kept. */
  forget(p: PairedOpen): boolean {
    if (!this.mappings.delete(p)) return false;
    removeFrom(this.bySecondary, portsKey(p.protocol, p.secondaryPort, p.remotePort), p);
    removeFrom(this.byPrimary, portsKey(p.protocol, p.primaryPort, p.remotePort), p);
    return true;
  }

  /** Drops unpaired SYNs older than `pendingTimeout` at `now`; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const s of this.pending) {
      if (!(now - s.arrival > this.pendingTimeout)) break;
      this.unqueue(s);
      if (s.resumed !== undefined) this.droppedResumed.push(s.resumed);
      n++;
    }
    this.expiredSyns += n;
    return n;
  }

  /** Forgets every waiting SYN and mapping (after a checkpoint). Counters are kept. */
  clear(): void {
    this.queues.clear();
    this.pending.clear();
    this.resumedWaiting = 0;
    this.resumedPorts.clear();
    this.droppedResumed.length = 0;
    this.mappings.clear();
    this.bySecondary.clear();
    this.byPrimary.clear();
  }

  /** Offers a SYN or first datagram (the caller checked which); see the module header. */
  private offer(side: number, frame: Frame, now: number, resumed?: unknown): PairedOpen | null {
    const t = frame.transport;
    const ip = frame.network;
    const key = destinationKey(frame);
    if (key === null || !(ip instanceof Ipv4View || ip instanceof Ipv6View)) return null;
    this.expire(now);
    const protocol = frame.protocol;
    const port = guestPortOf(frame, true);
    const remotePort = remotePortOf(frame, true);
    if (resumed === undefined && this.mappings.size !== 0 && findMapping(side === PRIMARY ? this.byPrimary : this.bySecondary, frame, portsKey(protocol, port, remotePort), true) !== null) {
      return null;
    }
    const isn = t instanceof TcpView ? t.seq : 0;
    const tsVal = t instanceof TcpView ? t.tsVal : -1;
    const v4 = ip instanceof Ipv4View;
    const addressLength = v4 ? 4 : 16;
    const srcAt = v4 ? ip.offset + 12 : ip.offset + 8;
    const dstAt = srcAt + addressLength;
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = new DestinationQueue();
      this.queues.set(key, queue);
    }
    const others = queue.bySide[1 - side]!;
    if (others.length > 0) {
      // The same port first, between first datagrams (SYNs) only (see the module header).
      const i = resumed !== undefined ? 0 : Math.max(0, others.findIndex((s) => s.port === port && s.resumed === undefined));
      const twin = others[i]!;
      this.unqueue(twin);
      const primary = side === PRIMARY;
      const p = new PairedOpen(
        protocol, twin.ipVersion, twin.guestAddress, twin.remoteAddress, remotePort,
        primary ? port : twin.port, primary ? twin.port : port,
        primary ? isn : twin.isn, primary ? twin.isn : isn,
        primary ? tsVal : twin.tsVal, primary ? twin.tsVal : tsVal,
        resumed !== undefined || twin.resumed !== undefined,
      );
      if (p.replaced) {
        // A flow anew from a port drawn again: the old flow's mappings of either port are over.
        this.forgetMapping(this.byPrimary, frame, portsKey(protocol, p.primaryPort, remotePort));
        this.forgetMapping(this.bySecondary, frame, portsKey(protocol, p.secondaryPort, remotePort));
      }
      if (p.primaryPort !== p.secondaryPort) this.addMapping(p);
      return p;
    }
    const mine = queue.bySide[side]!;
    const repeated = mine.find((s) => s.port === port);
    if (repeated !== undefined) {
      repeated.isn = isn;
      repeated.tsVal = tsVal;
      return null;
    }
    const s = new PendingSyn(
      key, side, v4 ? 4 : 6, copyBytes(ip.bytes, srcAt, srcAt + addressLength), copyBytes(ip.bytes, dstAt, dstAt + addressLength),
      remotePort, port, isn, tsVal, now, resumed, protocol,
    );
    mine.push(s);
    this.pending.add(s);
    if (resumed !== undefined) {
      this.resumedWaiting++;
      const k = resumedKey(side, protocol, port, remotePort);
      this.resumedPorts.set(k, (this.resumedPorts.get(k) ?? 0) + 1);
    }
    if (this.pending.size > this.maxPending) {
      // The oldest resumed offer first: its datagram has a flow to fall back on, a first one none.
      let oldest = this.pending.values().next().value!;
      if (this.resumedWaiting > 0 && oldest.resumed === undefined) {
        for (const w of this.pending) {
          if (w.resumed !== undefined) {
            oldest = w;
            break;
          }
        }
      }
      this.unqueue(oldest);
      if (oldest.resumed !== undefined) this.droppedResumed.push(oldest.resumed);
      this.evictedSyns++;
    }
    return null;
  }

  private unqueue(s: PendingSyn): void {
    this.pending.delete(s);
    if (s.resumed !== undefined) {
      this.resumedWaiting--;
      const k = resumedKey(s.side, s.protocol, s.port, s.remotePort);
      const n = this.resumedPorts.get(k)! - 1;
      if (n === 0) this.resumedPorts.delete(k);
      else this.resumedPorts.set(k, n);
    }
    const queue = this.queues.get(s.key)!;
    const list = queue.bySide[s.side]!;
    list.splice(list.indexOf(s), 1);
    if (queue.bySide[0].length === 0 && queue.bySide[1].length === 0) this.queues.delete(s.key);
  }

  /** Forgets the mapping under `key` in `map` whose addresses are `frame`'s (guest the source), if any. */
  private forgetMapping(map: Map<number, PairedOpen[]>, frame: Frame, key: number): void {
    const m = findMapping(map, frame, key, true);
    if (m !== null) this.forget(m);
  }

  private addMapping(p: PairedOpen): void {
    this.mappings.add(p);
    addTo(this.bySecondary, portsKey(p.protocol, p.secondaryPort, p.remotePort), p);
    addTo(this.byPrimary, portsKey(p.protocol, p.primaryPort, p.remotePort), p);
    if (this.mappings.size > this.maxMappings) {
      this.forget(this.mappings.values().next().value!);
      this.evictedMappings++;
    }
  }
}

function positive(name: string, v: number, integer: boolean): number {
  if (!(integer ? Number.isInteger(v) : Number.isFinite(v)) || v <= 0) {
    throw new RangeError(`ActiveOpenPairing: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
  }
  return v;
}

/** The destination a guest output frame's SYN or datagram waits for its twin under (see the module header); null for neither IPv4 nor IPv6. */
function destinationKey(frame: Frame): string | null {
  const ip = frame.network;
  if (!(ip instanceof Ipv4View || ip instanceof Ipv6View)) return null;
  const v4 = ip instanceof Ipv4View;
  const addressLength = v4 ? 4 : 16;
  const srcAt = v4 ? ip.offset + 12 : ip.offset + 8;
  return `${frame.protocol}|${v4 ? 4 : 6}|${toHex(ip.bytes, srcAt, addressLength)}|${toHex(ip.bytes, srcAt + addressLength, addressLength)}|${remotePortOf(frame, true)}`;
}

/** True for what pairs by its first message: a UDP datagram or an ICMP/ICMPv6 echo message. */
export function isPairableDatagram(frame: Frame): boolean {
  const t = frame.transport;
  return t instanceof UdpView || ((t instanceof IcmpView || t instanceof Icmpv6View) && t.isEcho);
}

/** The guest's port of a TCP or UDP frame, or its echo identifier; -1 for anything else. */
export function guestPortOf(frame: Frame, guestIsSource: boolean): number {
  const t = frame.transport;
  if (t instanceof TcpView || t instanceof UdpView) return guestIsSource ? t.srcPort : t.dstPort;
  if ((t instanceof IcmpView || t instanceof Icmpv6View) && t.isEcho) return t.echoId;
  return -1;
}

/** The remote's port of a TCP or UDP frame; 0 for echo messages (the identifier is the guest's). */
function remotePortOf(frame: Frame, guestIsSource: boolean): number {
  const t = frame.transport;
  if (t instanceof TcpView || t instanceof UdpView) return guestIsSource ? t.dstPort : t.srcPort;
  return 0;
}

function isActiveSyn(frame: Frame): boolean {
  const t = frame.transport;
  return t instanceof TcpView && t.isSyn && !t.isAck;
}

/** `ActiveOpenPairing.resumedPorts`'s key: a side and portsKey (below 2^42: exact in a double). */
function resumedKey(side: number, protocol: number, guestPort: number, remotePort: number): number {
  return side * 2 ** 41 + portsKey(protocol, guestPort, remotePort);
}

/** One number for a protocol and a connection's two ports (below 2^41: exact in a double). */
function portsKey(protocol: number, guestPort: number, remotePort: number): number {
  return (protocol * 65536 + guestPort) * 65536 + remotePort;
}

function addTo(map: Map<number, PairedOpen[]>, key: number, p: PairedOpen): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [p]);
  else list.push(p);
}

function removeFrom(map: Map<number, PairedOpen[]>, key: number, p: PairedOpen): void {
  const list = map.get(key)!;
  list.splice(list.indexOf(p), 1);
  if (list.length === 0) map.delete(key);
}

/**
 * The mapping in `map` under `key` (portsKey) whose addresses match `frame`'s; the guest is the
 * IP source when `guestIsSource`, else the destination. Allocation-free.
 */
function findMapping(map: Map<number, PairedOpen[]>, frame: Frame, key: number, guestIsSource: boolean): PairedOpen | null {
  const list = map.get(key);
  if (list === undefined) return null;
  const ip = frame.network;
  let srcAt: number;
  let addressLength: number;
  if (ip instanceof Ipv4View) {
    srcAt = ip.offset + 12;
    addressLength = 4;
  } else if (ip instanceof Ipv6View) {
    srcAt = ip.offset + 8;
    addressLength = 16;
  } else {
    return null;
  }
  const guestAt = guestIsSource ? srcAt : srcAt + addressLength;
  const remoteAt = guestIsSource ? srcAt + addressLength : srcAt;
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    if (m.guestAddress.length === addressLength && sameBytes(m.guestAddress, ip.bytes, guestAt) && sameBytes(m.remoteAddress, ip.bytes, remoteAt)) return m;
  }
  return null;
}

function sameBytes(a: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[at + i]) return false;
  return true;
}
