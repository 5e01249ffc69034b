/**
 * IP fragment reassembly for one side's output: the comparator keeps one `FragmentReassembler`
 * for the primary and one for the secondary, so a datagram is compared whole however each VM's
 * stack split it.
 *
 * Contract: the caller passes every frame whose `Frame.isFragment` is true to `add`, with the
 * time it arrived (caller time, any unit-consistent clock; nothing here reads one). `add` returns
 * the outcomes it caused, in the order they happened, or the shared empty array (no allocation)
 * when the datagram is still incomplete and nothing was evicted:
 *  - `Reassembled`: a new whole frame (the offset-0 fragment's link and IP headers, lengths
 *    fixed, MF and offset cleared, the IPv4 header checksum recomputed; for IPv6 the Fragment
 *    header removed and the next-header chain relinked, RFC 8200 §4.5) plus the fragment frames;
 *  - `Rejected`: a datagram that can never be reassembled, with a stable dotted `code`. Limit
 *    evictions of other, older datagrams come back from the same call that caused them.
 * `expire(now)` rejects datagrams incomplete for longer than `timeoutMs`, `clear(now)` hands back
 * everything pending (after a checkpoint). Every frame passed to `add` comes back exactly once,
 * as the same object, in a `Reassembled`, a `Rejected` (from `add` or `expire`), an
 * `AfterCheckpoint` or from `clear`.
 *
 * A checkpoint cuts the datagrams pending at it: `clear` hands back the fragments in, and the
 * rest are still on their way. Those will never be reassembled (the first part is gone) nor
 * matched (the secondary, a copy of the primary since the checkpoint, does not send its own
 * copy again), so they must not wait for a timeout: `clear` remembers what payload ranges each
 * cut datagram had, and its later fragments come straight back from `add` as `AfterCheckpoint`,
 * until it is whole, or for `timeoutMs`. The SVM, a copy of the PVM from the checkpoint on, sends
 * the rest of the datagrams the PVM had begun too (they were in its copy of the PVM's transmit
 * queue), so the secondary's reassembler takes the primary's cut datagrams as its own
 * (`adoptCut`), and drops their rest the same way. A fragment overlapping what the datagram had, or
 * contradicting its end, is a new datagram that reused the identification (a stack cuts every
 * datagram of a size the same way, so its fragments land on the old ones' ranges), and is
 * reassembled as usual.
 *
 * Identity is (src, dst, protocol, identification) for IPv4 (RFC 791 §3.2) and (src, dst,
 * identification) for IPv6 (RFC 8200 §4.5). Payload lengths come from the IP length fields,
 * never the frame end, so Ethernet padding is never payload. Overlaps are never resolved by a
 * policy ("first wins", "last wins"): that is where stacks disagree and how overlap attacks
 * work (RFC 1858 §4), so an IPv4 overlap must carry the bytes already held
 * (`fragment.overlap_inconsistent`), and for IPv6 any overlap rejects the datagram
 * (`fragment.overlap_ipv6`, RFC 5722 §4) except an exact duplicate of one earlier fragment with
 * the same bytes, which is a network duplicate rather than an overlap (as Linux treats it).
 * Other codes: `fragment.bad_length` (an empty fragment, or a non-final one whose length is not
 * a multiple of 8, RFC 8200 §4.5), `fragment.end_inconsistent` (two final fragments with
 * different ends, or bytes beyond the final one), `fragment.too_big` (the datagram would exceed
 * 65535 bytes, the "ping of death"; RFC 8200 §4.5), `fragment.limit` (evicted, oldest first, to
 * stay within `maxDatagrams` pending datagrams and `maxBytes` held frame bytes, which may be the
 * datagram just added to) and `fragment.timeout`.
 *
 * Completion is RFC 815's hole list turned inside out: sorted, disjoint pieces of payload and
 * a count of the bytes they cover; the datagram is whole once the final fragment fixed its length
 * and the count reaches it. Frames are kept by reference, never copied.
 *
 * Limits: a rejected datagram is forgotten, so its later fragments start a new datagram that
 * ends in a timeout. Tiny fragments (RFC 1858 §3) are reassembled, not rejected: the comparator
 * only ever inspects the whole datagram. The link header of fragments other than the offset-0
 * one is ignored (so are their IPv4 options and IPv6 unfragmentable headers, RFC 8200 §4.5).
 * Incorrect use: a frame that is not an IPv4 or IPv6 fragment (throws `TypeError`); changing a
 * frame's bytes before it is handed back; a `now`
 * that goes backwards (expiry walks datagrams oldest first and stops at the first one not yet
 * due, so it comes late, though nothing is lost).
 */

import { readU16, readU32, writeU16 } from '../wire/bytes.js';
import { fillIpv4HeaderChecksum } from '../wire/checksum.js';
import type { Frame } from '../wire/frame.js';
import { IP_PROTOCOL_AH } from '../wire/ip.js';
import { Ipv4View } from '../wire/ipv4.js';
import { IPV6_HEADER_LEN, Ipv6View } from '../wire/ipv6.js';

/** Largest IPv4 total length and IPv6 payload length. */
const MAX_IP_LENGTH = 65535;
/** Length of the IPv6 Fragment header (RFC 8200 §4.5). */
const FRAGMENT_HEADER_LEN = 8;

/** Limits of a `FragmentReassembler`; every field is optional. */
export interface FragmentOptions {
  /** A datagram still incomplete this long after its first fragment is rejected by `expire`; default 3000. */
  timeoutMs?: number;
  /** Most datagrams pending at once; default 256. */
  maxDatagrams?: number;
  /** Most frame bytes held at once (whole fragment frames, duplicates included); default 4 MiB. */
  maxBytes?: number;
}

/** The defaults of `FragmentOptions`. */
export const FRAGMENT_DEFAULTS: Readonly<Required<FragmentOptions>> = {
  timeoutMs: 3000,
  maxDatagrams: 256,
  maxBytes: 4 * 1024 * 1024,
};

/** A datagram put back together: `bytes` is a new frame, `fragments` the frames passed in, in arrival order. */
export class Reassembled {
  constructor(
    /** The datagram's identity, stable for logs. */
    readonly key: string,
    /** The whole frame, freshly allocated. */
    readonly bytes: Uint8Array,
    /** The original fragment frames, exactly as passed to `add`, in arrival order. */
    readonly fragments: Uint8Array[],
  ) {}
}

/** A datagram given up on; `fragments` are the frames passed in, in arrival order. */
export class Rejected {
  constructor(
    /** The datagram's identity, stable for logs. */
    readonly key: string,
    /** Why: a stable dotted `fragment.*` code (see the module header). */
    readonly code: string,
    /** The original fragment frames, exactly as passed to `add`, in arrival order. */
    readonly fragments: Uint8Array[],
  ) {}
}

/** Later fragments of a datagram that a checkpoint cut (see the module header), in arrival order. */
export class AfterCheckpoint {
  constructor(
    /** The datagram's identity, stable for logs. */
    readonly key: string,
    /** The fragment frames, exactly as passed to `add`. */
    readonly fragments: Uint8Array[],
  ) {}
}

/** What one `add` call produced. */
export type FragmentOutcome = Reassembled | Rejected | AfterCheckpoint;

const NO_OUTCOMES: readonly FragmentOutcome[] = Object.freeze([]);
const NO_REJECTIONS: readonly Rejected[] = Object.freeze([]);

/** Payload bytes [start, end) of the datagram, found at `at` in `bytes`. */
class Piece {
  constructor(
    readonly start: number,
    readonly end: number,
    readonly bytes: Uint8Array,
    readonly at: number,
  ) {}
}

/** One incomplete datagram. `pieces` are sorted, non-empty and never overlap. */
class Pending {
  readonly frames: Uint8Array[] = [];
  /** Arrival serial of each frame in `frames`, for `clear`. */
  readonly serials: number[] = [];
  readonly pieces: Piece[] = [];
  /** Sum of the lengths of `frames`. */
  frameBytes = 0;
  /** Payload bytes covered by `pieces`. */
  covered = 0;
  /** Largest piece end seen. */
  maxEnd = 0;
  /** Payload length once the final fragment is in, else -1. */
  lastEnd = -1;
  /** The offset-0 fragment (the first copy to arrive), whose headers the whole frame takes. */
  head: Uint8Array | null = null;
  /** In `head`: where the network layer starts. */
  networkAt = 0;
  /** In `head`: where the copied headers end (IPv4: the payload; IPv6: the Fragment header). */
  headersEnd = 0;

  constructor(
    readonly key: string,
    readonly v6: boolean,
    /** `now` of the first fragment. */
    readonly since: number,
  ) {}
}

/** What a datagram cut by a checkpoint had of its payload, to know its later fragments by. */
class CutDatagram {
  constructor(
    readonly key: string,
    /** Payload ranges [start, end) gone so far, pairwise disjoint. */
    readonly ranges: [number, number][],
    public covered: number,
    public maxEnd: number,
    public lastEnd: number,
    /** `now` of the checkpoint. */
    readonly since: number,
  ) {}

  /** What pending datagram `p` had when a checkpoint at `since` cut it. */
  static of(p: Pending, since: number): CutDatagram {
    return new CutDatagram(p.key, p.pieces.map((c): [number, number] => [c.start, c.end]), p.covered, p.maxEnd, p.lastEnd, since);
  }

  /** Takes payload [start, end) when it is the rest of this datagram (no overlap, ends agree); false otherwise. */
  takes(start: number, end: number, more: boolean): boolean {
    if (this.lastEnd >= 0 ? end > this.lastEnd || (!more && end !== this.lastEnd) : !more && end < this.maxEnd) return false;
    if (this.ranges.some(([s, e]) => start < e && s < end)) return false;
    this.ranges.push([start, end]);
    this.covered += end - start;
    if (end > this.maxEnd) this.maxEnd = end;
    if (!more) this.lastEnd = end;
    return true;
  }

  get whole(): boolean {
    return this.covered === this.lastEnd;
  }

  /** A copy whose ranges grow apart from this one's. */
  copy(): CutDatagram {
    return new CutDatagram(this.key, this.ranges.map(([s, e]): [number, number] => [s, e]), this.covered, this.maxEnd, this.lastEnd, this.since);
  }
}

/** Reassembles one side's IPv4 and IPv6 fragments; see the module header for the contract. */
export class FragmentReassembler {
  private readonly timeoutMs: number;
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;
  /** Pending datagrams in creation order, so the first is the oldest. */
  private readonly pending = new Map<string, Pending>();
  /** Datagrams cut by a checkpoint whose rest may still come, oldest first (see the module header). */
  private readonly cut = new Map<string, CutDatagram>();
  private bytesHeld = 0;
  private serial = 0;

  /** Throws `RangeError` naming the first option out of range. */
  constructor(options: FragmentOptions = {}) {
    this.timeoutMs = option('timeoutMs', options.timeoutMs ?? FRAGMENT_DEFAULTS.timeoutMs, 0);
    this.maxDatagrams = option('maxDatagrams', options.maxDatagrams ?? FRAGMENT_DEFAULTS.maxDatagrams, 1);
    this.maxBytes = option('maxBytes', options.maxBytes ?? FRAGMENT_DEFAULTS.maxBytes, 1);
  }

  /** Datagrams waiting for fragments. */
  get pendingDatagrams(): number {
    return this.pending.size;
  }

  /** Datagrams cut by a checkpoint whose later fragments are still expected (they hold no frames). */
  get cutDatagrams(): number {
    return this.cut.size;
  }

  /** Frame bytes held (whole fragment frames). */
  get pendingBytes(): number {
    return this.bytesHeld;
  }

  /**
   * Takes one fragment frame received at `now` and returns what it caused, in order: datagrams
   * evicted to make room, then this datagram's `Reassembled` or `Rejected`, then evictions to
   * get back under `maxBytes`. Empty (a shared, frozen array) while the datagram is incomplete.
   */
  add(frame: Frame, now: number): readonly FragmentOutcome[] {
    const ip = frame.network;
    const bytes = frame.bytes;
    let key: string;
    let v6: boolean;
    let start: number;
    let dataAt: number;
    let length: number;
    let more: boolean;
    let headersEnd: number;
    // What the whole datagram's length field counts besides the payload.
    let overhead: number;
    if (ip instanceof Ipv4View && ip.isFragment) {
      key = `4 ${ip.src} ${ip.dst} ${ip.protocol} ${ip.identification}`;
      v6 = false;
      start = ip.fragmentOffset;
      dataAt = ip.payloadOffset;
      length = ip.payloadLength;
      more = ip.moreFragments;
      headersEnd = dataAt;
      overhead = ip.headerLength;
    } else if (ip instanceof Ipv6View && ip.isFragment) {
      key = ipv6Key(bytes, ip);
      v6 = true;
      start = ip.fragmentOffset;
      headersEnd = ip.fragmentHeaderOffset;
      dataAt = headersEnd + FRAGMENT_HEADER_LEN;
      length = ip.offset + IPV6_HEADER_LEN + ip.payloadLength - dataAt;
      more = ip.moreFragments;
      overhead = headersEnd - ip.offset - IPV6_HEADER_LEN;
    } else {
      throw new TypeError('FragmentReassembler.add: the frame is not an IPv4 or IPv6 fragment');
    }
    const invalid = length === 0 || (more && (length & 7) !== 0)
      ? 'fragment.bad_length'
      : overhead + start + length > MAX_IP_LENGTH ? 'fragment.too_big' : '';
    const cut = this.cut.get(key);
    if (cut !== undefined) {
      if (invalid === '' && cut.takes(start, start + length, more)) {
        if (cut.whole) this.cut.delete(key);
        return [new AfterCheckpoint(key, [bytes])];
      }
      this.cut.delete(key);
    }
    const serial = this.serial++;
    let p = this.pending.get(key);
    if (invalid !== '' && p === undefined) return [new Rejected(key, invalid, [bytes])];

    let out: FragmentOutcome[] | null = null;
    if (p === undefined) {
      if (this.pending.size >= this.maxDatagrams) out = [this.reject(this.oldest(), 'fragment.limit')];
      p = new Pending(key, v6, now);
      this.pending.set(key, p);
    }
    p.frames.push(bytes);
    p.serials.push(serial);
    p.frameBytes += bytes.length;
    this.bytesHeld += bytes.length;

    const code = invalid !== '' ? invalid : place(p, bytes, start, start + length, dataAt, more);
    if (code !== '') return append(out, this.reject(p, code));
    if (start === 0 && p.head === null) {
      p.head = bytes;
      p.networkAt = frame.networkOffset;
      p.headersEnd = headersEnd;
    }
    if (p.covered === p.lastEnd) return append(out, this.complete(p));
    while (this.bytesHeld > this.maxBytes) {
      const victim = this.oldest();
      out = append(out, this.reject(victim, 'fragment.limit'));
      if (victim === p) break;
    }
    return out ?? NO_OUTCOMES;
  }

  /**
   * Rejects, oldest first, every datagram whose first fragment came more than `timeoutMs` before
   * `now`, and forgets the datagrams cut by a checkpoint more than `timeoutMs` before.
   */
  expire(now: number): readonly Rejected[] {
    for (const c of this.cut.values()) {
      if (now - c.since <= this.timeoutMs) break;
      this.cut.delete(c.key);
    }
    let out: Rejected[] | null = null;
    for (const p of this.pending.values()) {
      if (now - p.since <= this.timeoutMs) break;
      (out ??= []).push(this.reject(p, 'fragment.timeout'));
    }
    return out ?? NO_REJECTIONS;
  }

  /**
   * A checkpoint at `now`: returns the frames of every pending datagram in arrival order, and
   * remembers those datagrams as cut (see the module header), the oldest forgotten beyond
   * `maxDatagrams`.
   */
  clear(now: number): Uint8Array[] {
    const held: { serial: number; frame: Uint8Array }[] = [];
    for (const p of this.pending.values()) {
      for (let i = 0; i < p.frames.length; i++) held.push({ serial: p.serials[i]!, frame: p.frames[i]! });
      this.cut.delete(p.key);
      this.cut.set(p.key, CutDatagram.of(p, now));
    }
    this.forgetOldestCut();
    this.pending.clear();
    this.bytesHeld = 0;
    return held.sort((a, b) => a.serial - b.serial).map((h) => h.frame);
  }

  /**
   * Takes `other`'s cut datagrams as its own (a copy of each; over one of the same identity): for
   * the secondary's reassembler at a checkpoint, given the primary's. The SVM, a copy of the PVM
   * from then on, sends the rest of the datagrams the PVM had begun, which its own first
   * fragments never began here.
   */
  adoptCut(other: FragmentReassembler): void {
    for (const c of other.cut.values()) {
      this.cut.delete(c.key);
      this.cut.set(c.key, c.copy());
    }
    this.forgetOldestCut();
  }

  /** Forgets the oldest cut datagrams beyond `maxDatagrams`. */
  private forgetOldestCut(): void {
    for (const c of this.cut.values()) {
      if (this.cut.size <= this.maxDatagrams) break;
      this.cut.delete(c.key);
    }
  }

  private oldest(): Pending {
    return this.pending.values().next().value!;
  }

  private reject(p: Pending, code: string): Rejected {
    this.forget(p);
    return new Rejected(p.key, code, p.frames);
  }

  private forget(p: Pending): void {
    this.pending.delete(p.key);
    this.bytesHeld -= p.frameBytes;
  }

  /** Builds the whole frame of a fully covered datagram (RFC 791 §3.2, RFC 8200 §4.5). */
  private complete(p: Pending): FragmentOutcome {
    const head = p.head!;
    const ipAt = p.networkAt;
    const headersEnd = p.headersEnd;
    const ipLength = (p.v6 ? headersEnd - ipAt - IPV6_HEADER_LEN : headersEnd - ipAt) + p.lastEnd;
    if (ipLength > MAX_IP_LENGTH) return this.reject(p, 'fragment.too_big');
    this.forget(p);
    const whole = new Uint8Array(headersEnd + p.lastEnd);
    whole.set(head.subarray(0, headersEnd));
    for (const c of p.pieces) whole.set(c.bytes.subarray(c.at, c.at + c.end - c.start), headersEnd + c.start);
    if (p.v6) {
      writeU16(whole, ipAt + 4, ipLength);
      whole[nextHeaderFieldBefore(whole, ipAt, headersEnd)] = head[headersEnd]!;
    } else {
      writeU16(whole, ipAt + 2, ipLength);
      // Keep the reserved and DF bits; clear MF and the offset.
      writeU16(whole, ipAt + 6, readU16(whole, ipAt + 6) & 0xc000);
      fillIpv4HeaderChecksum(whole, ipAt);
    }
    return new Reassembled(p.key, whole, p.frames);
  }
}

/**
 * Adds payload [start, end) found at `dataAt` in `bytes` to `p`'s pieces and end bookkeeping;
 * returns '' or the code that rejects the datagram (then `p` is left inconsistent and dropped).
 */
function place(p: Pending, bytes: Uint8Array, start: number, end: number, dataAt: number, more: boolean): string {
  // RFC 791 §3.2 and RFC 8200 §4.5: one final fragment fixes the length; nothing may lie beyond it.
  if (p.lastEnd >= 0 ? end > p.lastEnd || (!more && end !== p.lastEnd) : !more && end < p.maxEnd) {
    return 'fragment.end_inconsistent';
  }
  if (!more) p.lastEnd = end;
  if (end > p.maxEnd) p.maxEnd = end;
  const pieces = p.pieces;
  let lo = 0;
  let hi = pieces.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pieces[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  let last = lo;
  for (; last < pieces.length && pieces[last]!.start < end; last++) {
    const c = pieces[last]!;
    const from = Math.max(start, c.start);
    const count = Math.min(end, c.end) - from;
    if (p.v6) {
      // RFC 5722 §4: any overlap drops the datagram; an exact duplicate is not an overlap.
      if (c.start !== start || c.end !== end || !sameBytes(c.bytes, c.at, bytes, dataAt, count)) return 'fragment.overlap_ipv6';
    } else if (!sameBytes(c.bytes, c.at + from - c.start, bytes, dataAt + from - start, count)) {
      return 'fragment.overlap_inconsistent';
    }
  }
  // The new bytes fill the gaps between the overlapped pieces, which stay as they are.
  const merged: Piece[] = [];
  let at = start;
  for (let i = lo; i < last; i++) {
    const c = pieces[i]!;
    if (c.start > at) {
      merged.push(new Piece(at, c.start, bytes, dataAt + at - start));
      p.covered += c.start - at;
    }
    merged.push(c);
    at = c.end;
  }
  if (at < end) {
    merged.push(new Piece(at, end, bytes, dataAt + at - start));
    p.covered += end - at;
  }
  pieces.splice(lo, last - lo, ...merged);
  return '';
}

function sameBytes(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

/** IPv6 datagram identity: source, destination and fragment identification (RFC 8200 §4.5). */
function ipv6Key(b: Uint8Array, ip: Ipv6View): string {
  const s = ip.srcOffset;
  return `6 ${readU32(b, s)} ${readU32(b, s + 4)} ${readU32(b, s + 8)} ${readU32(b, s + 12)} ${readU32(b, s + 16)} ${readU32(b, s + 20)} ${readU32(b, s + 24)} ${readU32(b, s + 28)} ${ip.fragmentId}`;
}

/**
 * Offset of the next-header field that names the header starting at `target`: the fixed
 * header's, or that of the extension header just before. Every header before `target` was
 * walked by `Ipv6View.parse`, so each is AH or has the generic layout (RFC 8200 §4.2).
 */
function nextHeaderFieldBefore(b: Uint8Array, ipAt: number, target: number): number {
  let field = ipAt + 6;
  for (let at = ipAt + IPV6_HEADER_LEN; at < target;) {
    const type = b[field]!;
    field = at;
    at += type === IP_PROTOCOL_AH ? (b[at + 1]! + 2) * 4 : (b[at + 1]! + 1) * 8;
  }
  return field;
}

function append(out: FragmentOutcome[] | null, o: FragmentOutcome): FragmentOutcome[] {
  if (out === null) return [o];
  out.push(o);
  return out;
}

function option(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`FragmentReassembler: ${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}
