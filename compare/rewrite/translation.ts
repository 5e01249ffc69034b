/**
 * Per-connection translation between the PVM's and the SVM's TCP spaces: the guest-side
 * sequence numbers (ISN offset), the guest's TCP timestamp clock (TSval offset), and, for
 * guest-initiated connections, the guest's ephemeral port.
 *
 * The client only ever talks to the PVM, so every client frame is in the PVM's space. Frames
 * mirrored to the SVM go through `translateClientToSecondary` (ack, SACK edges, TSecr and the
 * destination port moved into the SVM's space); copies of the SVM's output go through
 * `mapSecondaryToPrimary` (seq, TSval and the source port moved into the PVM's space) before
 * they are compared or written to a mismatch capture. `translateSecondaryToClient` and
 * `mapPrimaryToSecondary` are their exact inverses on frames of the connection (whose guest-side
 * port is the one being mapped, or neither of the two). All four work IN PLACE on a frame the caller
 * has already copied, touch only TCP fields, keep the TCP checksum correct incrementally
 * (RFC 1624; a wrong checksum stays wrong by the same amount) and never change the IP header,
 * so IPv4 and IPv6 are handled alike. Non-TCP frames are left alone. Arithmetic is modulo 2^32
 * through `wire/seq`, so offsets and fields may wrap.
 *
 * Learning and call order. A translation starts with `known` false and zero offsets. Passive
 * open (the client connects to the guest): learn from the PVM's and the SVM's SYN-ACKs
 * (`learnFromSegments`). Active open (the guest connects out): learn from the two guests' SYNs,
 * paired by `ActiveOpenPairing` (pairing.ts), with `learnFromPairedOpen`, which also sets the
 * ports when the guests chose different ones. The client's SYN needs no translation (its ACK
 * flag is clear) and must reach the SVM at once, since the SVM's SYN-ACK depends on it. Every
 * later client frame for the SVM must wait until `known` is true: QEMU's filter-rewriter races
 * there, forwarding a client ACK untranslated when it beats the SVM's SYN-ACK. The caller holds
 * such frames; a translation that is not `known` applies zero offsets. After a checkpoint the
 * SVM's TCP state is the PVM's: `reset()` makes the translation the identity and `known`.
 *
 * Beyond QEMU's filter-rewriter (COLO-REFERENCE §6), which rewrites only seq/ack of connections
 * the guest accepts, never SYN or SYN-ACK, never SACK or timestamps: here SYN/SYN-ACK are
 * translated, SACK blocks (RFC 2018 §3) and TSecr (RFC 7323 §3.2) too, and active opens work.
 *
 * Limits and incorrect use. The TS offset is fixed at the handshake (so it includes how much
 * later one guest answered than the other) and assumes both guests' timestamp clocks tick at the
 * same rate. Where Linux checks TSecr for acceptance, the client's SYN-ACK to an active open
 * (it must echo a value between the SYN's first send and now), the translated TSecr is exactly
 * the SVM's own SYN TSval; later on TSecr feeds only RTT estimates and spurious-retransmission
 * detection, and PAWS (RFC 7323 §5) checks the client's TSval, which is never changed.
 * Frames whose TCP checksum is left to the device (virtio-net NEEDS_CSUM, checksum
 * field holding only the pseudo-header sum) must not be passed: an incremental update is wrong
 * for them. A view must not be reused after its bytes were changed by anything but its setters.
 */

import { rewriteU16 } from '../wire/checksum.js';
import type { Frame } from '../wire/frame.js';
import { seqAdd } from '../wire/seq.js';
import { TcpView } from '../wire/tcp.js';

/** How one connection's SVM-side TCP spaces relate to the PVM's; plain fields, one per connection. */
export class SequenceTranslation {
  /** SVM_ISN - PVM_ISN modulo 2^32 for the guest's sequence space. */
  seqOffset = 0;
  /** SVM_TSval - PVM_TSval modulo 2^32 for the guest's timestamp clock (0 without timestamps). */
  tsOffset = 0;
  /** True once the offsets are learned (or after `reset`); until then client frames for the SVM should be held. */
  known = false;
  /** The PVM's guest-side port when the SVM chose a different one (active open), else -1. */
  primaryPort = -1;
  /** The SVM's guest-side port when it differs from `primaryPort`, else -1. */
  secondaryPort = -1;

  /** The identity after a checkpoint: the SVM's TCP state (ISNs, clock, ports) now equals the PVM's. */
  reset(): void {
    this.seqOffset = 0;
    this.tsOffset = 0;
    this.known = true;
    this.primaryPort = -1;
    this.secondaryPort = -1;
  }
}

/**
 * Learns the offsets from the two handshake segments' ISNs and TSvals (-1 = no timestamps
 * option); the TS offset is set only when both carry one, else it is 0. Sets `known`.
 */
export function learnFromHandshake(t: SequenceTranslation, primaryIsn: number, secondaryIsn: number, primaryTsVal = -1, secondaryTsVal = -1): void {
  t.seqOffset = seqAdd(secondaryIsn, -primaryIsn);
  t.tsOffset = primaryTsVal >= 0 && secondaryTsVal >= 0 ? seqAdd(secondaryTsVal, -primaryTsVal) : 0;
  t.known = true;
}

/** `learnFromHandshake` from the PVM's and the SVM's SYN-ACKs (passive open) or SYNs (active open). */
export function learnFromSegments(t: SequenceTranslation, primary: TcpView, secondary: TcpView): void {
  learnFromHandshake(t, primary.seq, secondary.seq, primary.tsVal, secondary.tsVal);
}

/**
 * Client -> SVM, in place: ack, every SACK edge and TSecr move into the SVM's spaces, only when
 * the ACK flag is set (RFC 9293 §3.1, RFC 2018 §3, RFC 7323 §3.2: without it none of them
 * refer to the guest; so a client SYN is untouched, while the client's SYN-ACK to a guest's
 * active open, which acknowledges the guest's ISN and echoes its TSval, is translated). The
 * destination port becomes `secondaryPort` when it is `primaryPort`. Returns whether any byte changed.
 */
export function translateClientToSecondary(frame: Frame, t: SequenceTranslation): boolean {
  return shiftClientFrame(frame, t.seqOffset, t.tsOffset, t.primaryPort, t.secondaryPort);
}

/** The exact inverse of `translateClientToSecondary`: a frame sent to the SVM back into the PVM's spaces. */
export function translateSecondaryToClient(frame: Frame, t: SequenceTranslation): boolean {
  return shiftClientFrame(frame, -t.seqOffset, -t.tsOffset, t.secondaryPort, t.primaryPort);
}

/**
 * SVM -> client, in place on a copy of SVM output: seq and TSval move into the PVM's spaces (SYN
 * and SYN-ACK included), the source port becomes `primaryPort` when it is `secondaryPort`. The
 * ack, SACK edges and TSecr are left alone: they refer to the client's sequence space and the
 * client's timestamp clock, which both guests see identically, because the client's frames reach
 * them with the client's own seq and TSval. Returns whether any byte changed.
 */
export function mapSecondaryToPrimary(frame: Frame, t: SequenceTranslation): boolean {
  return shiftGuestFrame(frame, -t.seqOffset, -t.tsOffset, t.secondaryPort, t.primaryPort);
}

/** The exact inverse of `mapSecondaryToPrimary`: a guest frame in the PVM's spaces moved into the SVM's. */
export function mapPrimaryToSecondary(frame: Frame, t: SequenceTranslation): boolean {
  return shiftGuestFrame(frame, t.seqOffset, t.tsOffset, t.primaryPort, t.secondaryPort);
}

/** Adds `seqDelta` to ack and SACK edges and `tsDelta` to TSecr when ACK is set; destination port `fromPort` -> `toPort`. */
function shiftClientFrame(frame: Frame, seqDelta: number, tsDelta: number, fromPort: number, toPort: number): boolean {
  const tcp = frame.transport;
  if (!(tcp instanceof TcpView)) return false;
  let changed = false;
  if (tcp.isAck) {
    if ((seqDelta >>> 0) !== 0) {
      tcp.setAck(seqAdd(tcp.ack, seqDelta));
      for (let i = 0; i < tcp.sackBlockCount; i++) {
        tcp.setSackLeft(i, seqAdd(tcp.sackLeft(i), seqDelta));
        tcp.setSackRight(i, seqAdd(tcp.sackRight(i), seqDelta));
      }
      changed = true;
    }
    if ((tsDelta >>> 0) !== 0 && tcp.timestampOffset >= 0) {
      tcp.setTsEcr(seqAdd(tcp.tsEcr, tsDelta));
      changed = true;
    }
  }
  if (fromPort !== toPort && tcp.dstPort === fromPort) {
    rewriteU16(tcp.bytes, tcp.offset + 2, tcp.offset + 16, toPort);
    changed = true;
  }
  return changed;
}

/** Adds `seqDelta` to seq and `tsDelta` to TSval; source port `fromPort` -> `toPort`. */
function shiftGuestFrame(frame: Frame, seqDelta: number, tsDelta: number, fromPort: number, toPort: number): boolean {
  const tcp = frame.transport;
  if (!(tcp instanceof TcpView)) return false;
  let changed = false;
  if ((seqDelta >>> 0) !== 0) {
    tcp.setSeq(seqAdd(tcp.seq, seqDelta));
    changed = true;
  }
  if ((tsDelta >>> 0) !== 0 && tcp.timestampOffset >= 0) {
    tcp.setTsVal(seqAdd(tcp.tsVal, tsDelta));
    changed = true;
  }
  if (fromPort !== toPort && tcp.srcPort === fromPort) {
    rewriteU16(tcp.bytes, tcp.offset, tcp.offset + 16, toPort);
    changed = true;
  }
  return changed;
}
