/**
 * Which frames of a guest's capture the guest sent. A capture taken on a VM's tap device holds
 * both directions: the guest's output, which is what the comparator compares, and the traffic
 * going to the guest. Replay tells them apart by the guest's MAC address (COLO twins share
 * one): given with `--guest-mac`, or found in the first frames of the guests' captures. Captures
 * with a single source MAC between them are all guest output and need no choice.
 *
 * What tells the guest from the other side: the secondary's input is a copy of the primary's
 * (QEMU's filter-mirror), while the two guests produce their output each on its own. So, in
 * order, the guest is
 * 1. the one source whose TCP SYNs or SYN-ACKs carry different sequence numbers in the two
 *    captures: each guest picks its own initial sequence numbers, whereas the other side's
 *    handshakes reach both guests with the same (in which direction the connection was opened
 *    does not matter);
 * 2. else the one source, of those in both captures, whose frames are not all found byte for
 *    byte in the other capture (the guests' output differs somewhere; mirrored input does not);
 * 3. else the sender of the first TCP SYN-ACK (guests usually serve), or, with no SYN-ACK, the
 *    most frequent source. These are guesses: when it matters (frames of more than one source
 *    differ between the captures) or the handshakes point both ways (SYNs or SYN-ACKs from more
 *    than one source), the choice comes with a warning to set --guest-mac.
 * The report gives the rule that decided.
 * The sender's MAC is the Ethernet source address, or in a Linux cooked capture (SLL, SLL2, as
 * `tcpdump -i any` writes) the link-layer address, which is the sender's for frames received and
 * the interface's own for frames sent: the sender's either way. Frames without one (raw IP, a
 * cooked capture of an interface without 6-byte addresses) are all taken as guest output.
 */

import { createHash } from 'node:crypto';
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, decodeFrame, Frame, type Side } from '../../compare/index.js';
import type { CapturedFrame } from '../framing/capture.js';

/** The guest's MAC, or undefined when every frame counts as guest output. */
export interface GuestChoice {
  mac: Uint8Array | undefined;
  /** How it was chosen, for the report ('' when there was nothing to choose). */
  how: string;
  /** Set when the choice is a guess the captures do not settle, for the replay to warn of. */
  warning?: string;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or with dashes); undefined when it is not a MAC address. */
export function parseMac(text: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text.trim());
  return m ? Uint8Array.from(m.slice(1), (h) => parseInt(h, 16)) : undefined;
}

export function formatMac(mac: Uint8Array, at = 0): string {
  return Array.from(mac.subarray(at, at + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Frames of each guest capture looked at to find the guest's MAC. */
const DETECTION_FRAMES = 10_000;
/** Frame bytes held back, all inputs together, while the guest's MAC is being found. */
const DETECTION_BYTES = 64 << 20;

/** What the frames of one source MAC say about it. */
class Source {
  frames = 0;
  /** Frames seen from it in the primary's and the secondary's capture. */
  inPrimary = 0;
  inSecondary = 0;
  /** Its frames by content: primary copies count +1, secondary copies -1 (so mirrored frames cancel out). */
  readonly copies = new Map<string, number>();
  /** Sequence numbers of its SYNs and SYN-ACKs in each capture. */
  readonly isnPrimary = new Set<number>();
  readonly isnSecondary = new Set<number>();
  sentSyn = false;
  sentSynAck = false;

  /** Frames of it not found byte for byte in the other capture. */
  get differing(): number {
    let n = 0;
    for (const c of this.copies.values()) n += Math.abs(c);
    return n;
  }

  /** Its handshakes carry sequence numbers in one capture that the other lacks. */
  get ownIsns(): boolean {
    if (this.isnPrimary.size === 0 || this.isnSecondary.size === 0) return false;
    for (const isn of this.isnPrimary) if (!this.isnSecondary.has(isn)) return true;
    for (const isn of this.isnSecondary) if (!this.isnPrimary.has(isn)) return true;
    return false;
  }
}

/**
 * Finds the guest's MAC among the first frames of the guests' captures as the replay reads them
 * (see the module header), so that each input is read once: a pipe or FIFO cannot be read
 * twice. The replay holds the frames back until `enough`, then asks for the `choice` and routes
 * them. At most DETECTION_FRAMES of each guest capture, or DETECTION_BYTES of frames in all, are
 * held.
 */
export class GuestDetector {
  private readonly sources = new Map<number, Source>();
  private synAckFrom: number | undefined;
  /** Frames looked at, of the primary and of the secondary capture. */
  private readonly seen = { primary: 0, secondary: 0 };
  private bytes = 0;

  /** Takes one frame of the input that plays `role`. */
  observe(f: CapturedFrame, role: Side): void {
    this.bytes += f.data.length;
    if (role === 'client' || this.seen[role] >= DETECTION_FRAMES) return;
    this.seen[role]++;
    const at = senderMacAt(f);
    if (at < 0) return;
    const mac = sourceMac(f.data, at);
    let src = this.sources.get(mac);
    if (src === undefined) this.sources.set(mac, (src = new Source()));
    const primary = role === 'primary';
    src.frames++;
    if (primary) src.inPrimary++;
    else src.inSecondary++;
    const digest = createHash('sha1').update(f.data).digest('base64');
    src.copies.set(digest, (src.copies.get(digest) ?? 0) + (primary ? 1 : -1));
    const d = decodeFrame(f.data, f.linkType);
    if (d instanceof Frame && d.transport?.kind === 'tcp' && d.transport.isSyn) {
      (primary ? src.isnPrimary : src.isnSecondary).add(d.transport.seq);
      if (d.transport.isAck) {
        src.sentSynAck = true;
        this.synAckFrom ??= mac;
      } else {
        src.sentSyn = true;
      }
    }
  }

  /** True once the frames seen are all detection looks at. */
  get enough(): boolean {
    return (this.seen.primary >= DETECTION_FRAMES && this.seen.secondary >= DETECTION_FRAMES) || this.bytes >= DETECTION_BYTES;
  }

  /** The guest's MAC by the frames seen (see the module header). */
  choice(): GuestChoice {
    if (this.sources.size <= 1) return { mac: undefined, how: '' };
    const all = [...this.sources.entries()];
    const inBoth = all.filter(([, s]) => s.inPrimary > 0 && s.inSecondary > 0);
    const ownIsns = inBoth.filter(([, s]) => s.ownIsns);
    const differing = inBoth.filter(([, s]) => s.differing > 0);
    const chosen = (mac: number, why: string, warning?: string): GuestChoice => {
      const text = macText(mac);
      return { mac: parseMac(text), how: `guest MAC ${text}: ${why} (set --guest-mac to choose)`, ...(warning !== undefined ? { warning } : {}) };
    };
    if (ownIsns.length === 1) {
      return chosen(ownIsns[0]![0], 'its TCP handshakes carry different sequence numbers in the two captures, where the other side\'s, mirrored, do not');
    }
    if (differing.length === 1) {
      return chosen(differing[0]![0], 'the one source whose frames differ between the two captures, where the other side\'s, mirrored, do not');
    }
    const bySynAck = 'the sender of the first TCP SYN-ACK in the captures';
    const synSenders = all.filter(([, s]) => s.sentSyn).length;
    const synAckSenders = all.filter(([, s]) => s.sentSynAck).length;
    const [mac, why] = this.synAckFrom !== undefined
      ? [this.synAckFrom, bySynAck]
      : [all.sort((a, b) => b[1].frames - a[1].frames || a[0] - b[0])[0]![0], 'the most frequent source in the captures'];
    if (differing.length < 2 && synSenders < 2 && synAckSenders < 2) return chosen(mac, why);
    const evidence = [
      differing.length >= 2 ? `frames of ${differing.length} sources differ between the captures` : '',
      synSenders >= 2 ? `${synSenders} sources send TCP SYNs` : '',
      synAckSenders >= 2 ? `${synAckSenders} sources send SYN-ACKs` : '',
    ].filter((t) => t !== '').join(', ');
    return chosen(mac, why, `guest MAC ${macText(mac)} is a guess (${why}), and the captures do not settle it: ${evidence}; if the guests are not ${macText(mac)}, this replay compared the wrong frames: give --guest-mac`);
  }
}

/**
 * Where the sender's MAC is in a captured frame (see the module header): Ethernet's source
 * address, a Linux cooked capture's link-layer address when it is 6 bytes long; -1 for none.
 */
function senderMacAt(f: CapturedFrame): number {
  const d = f.data;
  switch (f.linkType) {
    case LINKTYPE_ETHERNET:
      return d.length >= 14 ? 6 : -1;
    case LINKTYPE_LINUX_SLL: // packet type, ARPHRD type, address length (2 bytes each), address (8), protocol
      return d.length >= 16 && d[4] === 0 && d[5] === 6 ? 6 : -1;
    case LINKTYPE_LINUX_SLL2: // protocol, reserved (2 each), ifindex (4), ARPHRD type (2), packet type, address length (1 each), address (8)
      return d.length >= 20 && d[11] === 6 ? 12 : -1;
    default:
      return -1;
  }
}

/** The 6-byte MAC at `at` of `d` as one number (48 bits fit a double exactly). */
function sourceMac(d: Uint8Array, at: number): number {
  return ((d[at]! << 8) | d[at + 1]!) * 2 ** 32 + (((d[at + 2]! << 24) | (d[at + 3]! << 16) | (d[at + 4]! << 8) | d[at + 5]!) >>> 0);
}

function macText(mac: number): string {
  const b = new Uint8Array(6);
  for (let i = 5, v = mac; i >= 0; i--, v = Math.floor(v / 256)) b[i] = v % 256;
  return formatMac(b);
}

/** True when the guest sent `f` (always true without a guest MAC, or for a frame that names no sender's MAC). */
export function sentByGuest(f: CapturedFrame, mac: Uint8Array | undefined): boolean {
  if (mac === undefined) return true;
  const at = senderMacAt(f);
  if (at < 0) return true;
  const d = f.data;
  return d[at] === mac[0] && d[at + 1] === mac[1] && d[at + 2] === mac[2] && d[at + 3] === mac[3] && d[at + 4] === mac[4] && d[at + 5] === mac[5];
}

/** The guest MAC given with `--guest-mac`. */
export function givenGuest(mac: Uint8Array): GuestChoice {
  return { mac, how: `guest MAC ${formatMac(mac)} (--guest-mac)` };
}
