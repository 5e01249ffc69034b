/**
 * Which frames of a guest's capture the guest sent. A capture taken on a VM's tap device holds
 * both directions: the guest's output, which is what the comparator compares, and the client
 * traffic going to the guest. Replay tells them apart by the guest's MAC address (COLO twins
 * share one): given with `--guest-mac`, or found among the first frames of the guests' captures
 * as the sender of the first TCP SYN-ACK (guests usually serve) or, with no SYN-ACK there, the
 * most frequent source. Captures with a single source MAC between them are all guest output and
 * need no choice.
 * Frames without an Ethernet header (raw IP, Linux cooked) are all taken as guest output.
 */

import { LINKTYPE_ETHERNET, decodeFrame, Frame, type Side } from '../../compare/index.js';
import type { CapturedFrame } from '../framing/capture.js';

/** The guest's MAC, or undefined when every frame counts as guest output. */
export interface GuestChoice {
  mac: Uint8Array | undefined;
  /** How it was chosen, for the report ('' when there was nothing to choose). */
  how: string;
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

/**
 * Finds the guest's MAC among the first frames of the guests' captures as the replay reads them
 * (see the module header), so that each input is read once: a pipe or FIFO cannot be read
 * twice. The replay holds the frames back until `enough`, then asks for the `choice` and routes
 * them. At most DETECTION_FRAMES of each guest capture, or DETECTION_BYTES of frames in all, are
 * held.
 */
export class GuestDetector {
  private readonly count = new Map<number, number>();
  private synAckFrom: number | undefined;
  /** Frames looked at, of the primary and of the secondary capture. */
  private readonly seen = { primary: 0, secondary: 0 };
  private bytes = 0;

  /** Takes one frame of the input that plays `role`. */
  observe(f: CapturedFrame, role: Side): void {
    this.bytes += f.data.length;
    if (role === 'client' || this.seen[role] >= DETECTION_FRAMES) return;
    this.seen[role]++;
    if (f.linkType !== LINKTYPE_ETHERNET || f.data.length < 14) return;
    const src = sourceMac(f.data);
    this.count.set(src, (this.count.get(src) ?? 0) + 1);
    if (this.synAckFrom === undefined) {
      const d = decodeFrame(f.data);
      if (d instanceof Frame && d.transport?.kind === 'tcp' && d.transport.isSyn && d.transport.isAck) this.synAckFrom = src;
    }
  }

  /** True once the frames seen are all detection looks at. */
  get enough(): boolean {
    return (this.seen.primary >= DETECTION_FRAMES && this.seen.secondary >= DETECTION_FRAMES) || this.bytes >= DETECTION_BYTES;
  }

  /** The guest's MAC by the frames seen. */
  choice(): GuestChoice {
    if (this.count.size <= 1) return { mac: undefined, how: '' };
    if (this.synAckFrom !== undefined) {
      const mac = macText(this.synAckFrom);
      return { mac: parseMac(mac), how: `guest MAC ${mac}: the sender of the first TCP SYN-ACK in the captures (set --guest-mac to choose)` };
    }
    const mac = macText([...this.count.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0]);
    return { mac: parseMac(mac), how: `guest MAC ${mac}: the most frequent source in the captures (set --guest-mac to choose)` };
  }
}

/** The source MAC of an Ethernet frame as one number (48 bits fit a double exactly). */
function sourceMac(d: Uint8Array): number {
  return ((d[6]! << 8) | d[7]!) * 2 ** 32 + (((d[8]! << 24) | (d[9]! << 16) | (d[10]! << 8) | d[11]!) >>> 0);
}

function macText(mac: number): string {
  const b = new Uint8Array(6);
  for (let i = 5, v = mac; i >= 0; i--, v = Math.floor(v / 256)) b[i] = v % 256;
  return formatMac(b);
}

/** True when the guest sent `f` (always true without a guest MAC or without an Ethernet header). */
export function sentByGuest(f: CapturedFrame, mac: Uint8Array | undefined): boolean {
  if (mac === undefined || f.linkType !== LINKTYPE_ETHERNET) return true;
  const d = f.data;
  return d.length >= 12 && d[6] === mac[0] && d[7] === mac[1] && d[8] === mac[2] && d[9] === mac[3] && d[10] === mac[4] && d[11] === mac[5];
}

/** The guest MAC given with `--guest-mac`. */
export function givenGuest(mac: Uint8Array): GuestChoice {
  return { mac, how: `guest MAC ${formatMac(mac)} (--guest-mac)` };
}
