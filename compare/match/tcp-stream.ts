/**
 * The comparison of one direction of one TCP connection: the guest's output from the primary
 * (PVM) against the secondary's (SVM), both already in the primary's sequence space. Bytes are
 * compared by sequence range, so segmentation, retransmission, overlap and reordering never make
 * a difference by themselves; only the byte streams and where they end do.
 *
 * Relative offsets. Every position is a plain JS number relative to a base, so wraparound at 2^32
 * stays in `relative` (RFC 9293 §3.4; arithmetic through wire/seq). After `startAt(isn)` offset 0
 * is `isn + 1`, the first data byte of both sides. Without it (mid-stream pickup) offset 0 is the
 * sequence number of the first segment with payload, FIN or RST seen on either side. A sequence number is unwrapped to the
 * offset nearest `verified`, so segments must lie within 2^31 of it (TCP windows are below 2^30).
 *
 * Units. Each payload byte is one unit. A FIN is one unit just after the last byte (RFC 9293
 * §3.4), so a primary segment carrying FIN becomes releasable only once the secondary has sent
 * its FIN at the same point. An RST consumes no sequence space (RFC 9293 §3.4), but it is
 * compared the same way, as one unit at its point, so the primary's RST frame is released only
 * when the secondary has reset at the same point. The point of an RST is its sequence number or,
 * if higher, the end of everything that side has sent so far: Linux sends RSTs at snd_nxt, but
 * an RST answering a segment may carry any in-window number (RFC 9293 §3.5.2 lets it carry the
 * segment's ACK), and the end of the stream is what both sides must agree on. Its payload
 * (diagnostic text, RFC 1122 §4.2.2.12) and a FIN flag on it are ignored; every later RST of the
 * same side is a duplicate. Segments without payload, FIN or RST (pure ACKs, window updates,
 * keepalives) change nothing; their end is their own offset, or NO_UNITS before their side has
 * started (see Mid-stream pickup).
 *
 * Comparison runs in stream order: `verified` advances over units both sides have sent and that
 * are equal, and a difference is found the moment both sides' units at `verified` are known, so
 * the reported position is always the first divergence and `verified` never passes a differing
 * unit. Reasons (events.ts): differing bytes `tcp.payload`; FIN against data `tcp.length` (FINs at
 * two different points are this case too: at the earlier one the other side has data, whether or
 * not those bytes have arrived, so the reason never depends on arrival order); FIN against RST,
 * RST against data or FIN, RSTs at different points `tcp.fin_rst`; one side resending different
 * bytes for a range still buffered `tcp.retransmit_inconsistent`. A side contradicting itself is
 * reported as soon as seen: data past its own FIN or a FIN below its data `tcp.length`, a second
 * FIN elsewhere or anything after its RST `tcp.fin_rst`. Urgent data (`urgentMark`) is part of the
 * stream too: where the urgent pointers point, `tcp.urgent`. Bytes below `verified` are not kept: like a TCP receiver keeping the first
 * copy, a resend of verified bytes is ignored unchecked. After a mismatch nothing is compared and
 * only the secondary's bytes are buffered (for `resynchronize`), until a reset.
 *
 * Mid-stream pickup (no `startAt`): each side starts at its first segment with payload, FIN or
 * RST (one without says nothing of where the stream is: `NO_UNITS`); comparison begins at the
 * later of the two starts once both are known. Primary bytes below that point count as
 * verified (their range is added to `unverifiedBytes`); secondary bytes below it are discarded.
 * Until the secondary's first segment, nothing of the primary is verified. FIN and RST points
 * below the comparison start are not compared.
 *
 * Ownership. Every secondary byte kept is copied (the caller drops secondary frames at once),
 * unless `copySecondary` is false, when secondary payloads are kept like the primary's. Of a
 * primary payload only a view of the part not yet compared is kept: the caller must leave those
 * bytes unchanged until `verified` reaches the segment's end or `resetAfterCheckpoint`. When
 * `secondaryCovers` says true just before `addPrimary`, nothing of that payload is kept after the
 * call, so it need not be copied (but a caller that holds the frame past the call, as it must if
 * `verified` stays below the end, needs its own copy).
 *
 * Limits: a side whose buffered bytes would exceed `maxBytesPerSide` does not store the excess
 * segment (as if it were lost) and `overLimit` becomes true until the next reset; nothing throws.
 * Call order: optional `startAt` first (ignored once any segment was added), then `addPrimary` and
 * `addSecondary` in arrival order, `resetAfterCheckpoint` whenever a checkpoint completes.
 */

import { seqAdd, seqDiff } from '../wire/seq.js';
import type { MismatchReason } from '../events.js';
import type { BytesEqual } from './bytes-equal.js';
import { firstDifference, hexWindow, type Mismatch } from './mismatch.js';
import { Reassembly } from '../stream/reassembly.js';

/** Default for `maxBytesPerSide`: 4 MiB, above any TCP send window Linux uses by default. */
export const DEFAULT_MAX_BYTES_PER_SIDE = 4 * 1024 * 1024;

/** Settings of a `TcpStreamMatch`. */
export interface TcpStreamMatchOptions {
  /** Byte-range equality (see bytes-equal.ts). */
  bytesEqual: BytesEqual;
  /** Buffered bytes allowed per side before `overLimit` (default DEFAULT_MAX_BYTES_PER_SIDE). */
  maxBytesPerSide?: number;
  /**
   * False: secondary payloads are kept as views, like the primary's, and the caller must leave
   * those bytes unchanged until they are consumed (see Ownership). Default true: they are copied.
   */
  copySecondary?: boolean;
}

/**
 * What `addPrimary` and `addSecondary` return for a segment without payload, FIN or RST seen
 * before its side's start: it occupies no unit and waits for none (see `add`).
 */
export const NO_UNITS = -Infinity;

/** "No FIN (or RST) seen"; below every offset, which can be negative in a mid-stream pickup. */
const NONE = -Infinity;

const UNIT_NONE = 0;
const UNIT_DATA = 1;
const UNIT_FIN = 2;
const UNIT_RST = 3;
const UNIT_NAMES = ['nothing', 'data', 'FIN', 'RST'];

/** A segment sent with URG: the range of stream offsets it carried and its urgent mark (`urgentMark`). */
class UrgentSegment {
  checked = false;
  constructor(
    public start: number,
    public end: number,
    readonly mark: number,
  ) {}
}

/** What one side has sent, above the verified point and in summary below it. */
class Side {
  readonly store: Reassembly;
  started = false;
  /** Offset of the first segment seen (mid-stream) or 0 (after startAt). */
  start = 0;
  /** Highest end of this side's data, FIN or RST unit seen; `start` before any. */
  end = 0;
  fin = NONE;
  rst = NONE;

  constructor(
    readonly name: 'primary' | 'secondary',
    copy: boolean,
    bytesEqual: BytesEqual,
  ) {
    this.store = new Reassembly(copy, bytesEqual);
  }

  begin(at: number): void {
    this.started = true;
    this.start = at;
    this.end = at;
  }

  forget(): void {
    this.store.clear();
    this.started = false;
    this.start = 0;
    this.end = 0;
    this.fin = NONE;
    this.rst = NONE;
  }

  unitAt(offset: number): number {
    if (this.store.chunkAt(offset) !== null) return UNIT_DATA;
    if (this.fin === offset) return UNIT_FIN;
    return this.rst === offset ? UNIT_RST : UNIT_NONE;
  }
}

/** The byte-stream comparison of one direction of one TCP connection; see the module header. */
export class TcpStreamMatch {
  /** Buffered bytes allowed per side. */
  readonly maxBytesPerSide: number;
  private found: Mismatch | null = null;
  private compared = 0;
  private unverified = 0;
  private over = false;
  private readonly bytesEqual: BytesEqual;
  private readonly primary: Side;
  private readonly secondary: Side;
  private based = false;
  private baseSeq = 0;
  private comparing = false;
  private verifiedEnd = 0;
  /** The segment being added (for mismatch windows only), null between calls. */
  private incoming: Uint8Array | null = null;
  private incomingAt = 0;
  private incomingLength = 0;
  private incomingSide: Side | null = null;
  private incomingStart = 0;
  /** Urgent segments (`urgentMark`), primary's and secondary's; null until either side sends one. */
  private urgent: [UrgentSegment[], UrgentSegment[]] | null = null;
  /** The lowest urgent mark not yet checked (Infinity: none): below it `compareUrgent` has nothing to do. */
  private nextUrgentMark = Infinity;

  constructor(options: TcpStreamMatchOptions) {
    const max = options.maxBytesPerSide ?? DEFAULT_MAX_BYTES_PER_SIDE;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`TcpStreamMatch: maxBytesPerSide must be a positive integer (got ${max})`);
    if (typeof options.bytesEqual !== 'function') throw new TypeError('TcpStreamMatch: bytesEqual must be a function');
    this.maxBytesPerSide = max;
    this.bytesEqual = options.bytesEqual;
    this.primary = new Side('primary', false, options.bytesEqual);
    this.secondary = new Side('secondary', options.copySecondary ?? true, options.bytesEqual);
  }

  /** The first divergence, or null; set once, cleared only by `resetAfterCheckpoint`. */
  get mismatch(): Mismatch | null {
    return this.found;
  }

  /** Payload bytes compared equal on both sides. */
  get comparedBytes(): number {
    return this.compared;
  }

  /** Primary sequence range released uncompared because it lay below a mid-stream comparison start. */
  get unverifiedBytes(): number {
    return this.unverified;
  }

  /** True once a side's buffered bytes would have exceeded `maxBytesPerSide`; cleared by reset. */
  get overLimit(): boolean {
    return this.over;
  }

  /** Relative offset below which every unit (byte, FIN, RST) matched on both sides. */
  get verified(): number {
    return this.verifiedEnd;
  }

  /** True once both sides' starts are known and units are being compared. */
  get started(): boolean {
    return this.comparing;
  }

  /** Primary payload bytes buffered (views into the caller's frames). */
  get primaryBytesHeld(): number {
    return this.primary.store.held;
  }

  /** Secondary payload bytes buffered (copies). */
  get secondaryBytesHeld(): number {
    return this.secondary.store.held;
  }

  /** Highest relative end of the primary's data, FIN or RST seen (0 before any). */
  get primaryEnd(): number {
    return this.primary.end;
  }

  /** Relative offset of sequence number `seq` (0 before the base is known). */
  relative(seq: number): number {
    if (!this.based) return 0;
    const v = this.verifiedEnd;
    return v + seqDiff(seq, seqAdd(this.baseSeq, v));
  }

  /** A SYN with sequence number `isn` was seen: both sides' data starts at offset 0 = isn + 1. */
  startAt(isn: number): void {
    if (this.based) return;
    this.based = true;
    this.baseSeq = seqAdd(isn, 1);
    this.primary.begin(0);
    this.secondary.begin(0);
    this.comparing = true;
  }

  /**
   * Adds a primary segment whose payload is `bytes[at, at + length)` (by default all of `bytes`,
   * which must then be exactly the payload); returns its relative end.
   */
  addPrimary(seq: number, bytes: Uint8Array, fin: boolean, rst: boolean, at = 0, length = bytes.length - at): number {
    return this.track(this.primary, this.secondary, seq, bytes, at, length, fin, rst);
  }

  /** Adds a secondary segment (its bytes are copied if kept); returns its relative end. */
  addSecondary(seq: number, bytes: Uint8Array, fin: boolean, rst: boolean, at = 0, length = bytes.length - at): number {
    return this.track(this.secondary, this.primary, seq, bytes, at, length, fin, rst);
  }

  /**
   * True when the secondary's contiguous data (and FIN) from `verified` already reaches the end of
   * this primary segment, so `addPrimary` will compare all of it at once and keep no view of it.
   */
  secondaryCovers(seq: number, length: number, fin: boolean): boolean {
    if (!this.comparing || this.found !== null) return false;
    const v = this.verifiedEnd;
    const start = this.relative(seq);
    if (start + length + (fin ? 1 : 0) <= v) return true;
    if (start > v) return false;
    const dataEnd = start + length;
    return dataEnd <= this.secondary.store.contiguousEnd(v, dataEnd) && (!fin || this.secondary.fin === dataEnd);
  }

  /**
   * A checkpoint made the secondary a copy of the primary: forget every buffered byte and any
   * mismatch; both sides continue from the primary's highest end seen (with its FIN or RST, if
   * any). With no primary segment seen yet, the matcher starts over as if new.
   */
  resetAfterCheckpoint(): void {
    const p = this.primary;
    const s = this.secondary;
    if (!p.started) {
      this.restartMidStream();
      return;
    }
    this.clearVerdict();
    p.store.clear();
    s.forget();
    const at = Math.max(this.verifiedEnd, p.end);
    this.verifiedEnd = at;
    s.begin(at);
    s.fin = p.fin;
    s.rst = p.rst;
    this.comparing = true;
  }

  /**
   * Forgets where both streams are: the next segments pick the comparison up as in a mid-stream
   * pickup (see the module header). For a checkpoint after which neither side will send some
   * range of the primary's stream: a segment the primary sent in IP fragments that the checkpoint
   * cut, never whole here. Like `resetAfterCheckpoint`, it clears a mismatch and the limits.
   */
  restartMidStream(): void {
    this.clearVerdict();
    this.primary.forget();
    this.secondary.forget();
    this.based = false;
    this.baseSeq = 0;
    this.comparing = false;
    this.verifiedEnd = 0;
  }

  /**
   * A checkpoint request that no checkpoint answered (the SVM was not reset; see the comparator's
   * `resynchronize`): the primary's bytes so far went out to the client, so they count as
   * verified, whatever the secondary had of them; the secondary keeps what it sent beyond them,
   * to be compared with the primary's next bytes, and what it sends below them later is a resend
   * of verified bytes (ignored). Before the primary's first segment nothing of its stream went
   * out, and the secondary's bytes wait for it as they were. With `keepSecondary` false the
   * secondary's bytes go instead (the caller knows no primary counterpart is coming): it starts
   * over at the primary's end, or, before the primary's first segment, at its own next segment.
   * Returns whether any secondary bytes were kept.
   */
  resynchronize(keepSecondary = true): boolean {
    const p = this.primary;
    const s = this.secondary;
    this.clearVerdict();
    if (!p.started) {
      if (keepSecondary) return s.started;
      this.restartMidStream();
      return false;
    }
    p.store.clear();
    const at = Math.max(this.verifiedEnd, p.end);
    this.verifiedEnd = at;
    if (!keepSecondary) s.forget();
    const kept = s.started;
    if (!kept) s.begin(at);
    else {
      s.store.discardBelow(at);
      if (s.end < at) s.end = at;
      if (s.fin < at) s.fin = NONE;
      if (s.rst < at) s.rst = NONE;
    }
    this.comparing = true;
    if (this.found === null) this.advance();
    return kept;
  }

  /** Forgets the mismatch, the limit passed and the urgent marks (both resets). */
  private clearVerdict(): void {
    this.found = null;
    this.over = false;
    this.urgent = null;
    this.nextUrgentMark = Infinity;
  }

  /**
   * Frees what an idle matcher does not need: the secondary's copy arena (4 KiB or more) and both
   * sides' spare chunks, kept for reuse while data flows, when nothing is buffered. For the
   * caller's periodic scan.
   */
  trimMemory(): void {
    this.primary.store.trim();
    this.secondary.store.trim();
  }

  /**
   * The next segment `addPrimary` (`primary`) or `addSecondary` gets, at `seq` with `length`
   * payload bytes, has URG set with urgent pointer `pointer`; call just before adding it. Its mark,
   * `seq + pointer`, is where the urgent data ends (RFC 9293 §3.8.5, RFC 6093: Linux, the BSDs and
   * Windows by default point just past the urgent byte, which an application reads out of band
   * unless SO_OOBINLINE). A side sets the pointer on every segment it sends below its mark, so once
   * `verified` passes a mark, the other side's segment carrying the byte before it is in: it must
   * have pointed there or beyond (a later urgent write overtakes an earlier one, and a stack may
   * merge both into one segment), else `tcp.urgent`. A mark at or below `verified` is a resend's
   * and ignored, as is pointer 0xffff, Linux's placeholder for urgent data over 64 KiB ahead.
   */
  urgentMark(primary: boolean, seq: number, length: number, pointer: number): void {
    // A segment without payload carries no urgent byte: the one that does announces the same mark.
    if (this.found !== null || pointer === 0xffff || length === 0) return;
    const start = this.based ? this.relative(seq) : 0;
    const mark = start + pointer;
    if (mark <= this.verifiedEnd) return;
    const end = start + length;
    const list = (this.urgent ??= [[], []])[primary ? 0 : 1];
    // While urgent data is pending a side marks every segment alike: one entry per run of them.
    const last = list[list.length - 1];
    if (last !== undefined && last.mark === mark && !last.checked && start <= last.end && end >= last.start) {
      last.start = Math.min(last.start, start);
      last.end = Math.max(last.end, end);
    } else {
      list.push(new UrgentSegment(start, end, mark));
    }
    if (mark < this.nextUrgentMark) this.nextUrgentMark = mark;
  }

  private track(x: Side, y: Side, seq: number, bytes: Uint8Array, at: number, length: number, fin: boolean, rst: boolean): number {
    this.incoming = bytes;
    this.incomingAt = at;
    this.incomingLength = length;
    this.incomingSide = x;
    const end = this.add(x, y, seq, bytes, at, length, fin, rst);
    if (this.verifiedEnd >= this.nextUrgentMark && this.found === null) this.compareUrgent(this.urgent!);
    this.incoming = null;
    this.incomingSide = null;
    return end;
  }

  /** Checks the urgent marks `verified` has passed, lowest first, then forgets what it passed; see `urgentMark`. */
  private compareUrgent(sides: [UrgentSegment[], UrgentSegment[]]): void {
    const v = this.verifiedEnd;
    const due: [UrgentSegment, number][] = [];
    for (let x = 0; x < 2; x++) for (const u of sides[x]!) if (!u.checked && u.mark <= v) due.push([u, x]);
    due.sort((a, b) => a[0].mark - b[0].mark);
    for (const [u, x] of due) {
      u.checked = true;
      const byte = u.mark - 1;
      if (!sides[1 - x]!.some((o) => o.start <= byte && byte < o.end && o.mark >= u.mark)) {
        // The urgent byte itself is not verified: the segment carrying it must not be released.
        this.verifiedEnd = byte;
        const [name, other] = x === 0 ? ['primary', 'secondary'] : ['secondary', 'primary'];
        this.fail('tcp.urgent', byte, `${name} urgent data ends at offset ${u.mark}, ${other} marks no urgent data through offset ${byte}`);
        return;
      }
    }
    this.keepUrgent(sides, (u) => !u.checked || u.end > v);
  }

  /** Keeps the urgent segments `keep` says are still needed; the lowest unchecked mark follows. */
  private keepUrgent(sides: [UrgentSegment[], UrgentSegment[]], keep: (u: UrgentSegment) => boolean): void {
    let next = Infinity;
    for (let x = 0; x < 2; x++) {
      sides[x] = sides[x]!.filter(keep);
      for (const u of sides[x]!) if (!u.checked && u.mark < next) next = u.mark;
    }
    this.nextUrgentMark = next;
    if (sides[0].length === 0 && sides[1].length === 0) this.urgent = null;
  }

  private add(x: Side, y: Side, seq: number, bytes: Uint8Array, at: number, length: number, fin: boolean, rst: boolean): number {
    // A segment without payload, FIN or RST says nothing of where its side's stream is: a keepalive
    // or zero-window probe carries SND.UNA - 1, a sequence number used long ago (RFC 9293 §3.8.4).
    // Starting a side (in a mid-stream pickup) at one would begin the comparison at a unit no
    // segment ever fills again, and every later byte would wait there for the timeout.
    if (!x.started && length === 0 && !fin && !rst) return NO_UNITS;
    if (!this.based) {
      this.based = true;
      this.baseSeq = seq;
    }
    const s = this.relative(seq);
    this.incomingStart = s;
    if (!x.started) {
      x.begin(s);
      if (y.started) this.beginComparison();
    }
    if (rst) return this.addRst(x, s);
    const e = s + length;
    if (length === 0 && !fin) {
      if (this.comparing && this.found === null) this.advance();
      return s;
    }
    const end = fin ? e + 1 : e;
    const before = x.end;
    if (end > before) x.end = end;
    if (this.found !== null) {
      if (fin && x.fin === NONE) x.fin = e;
      if (x === this.secondary) this.keepWhileMismatched(x, s, e, bytes, at);
      return end;
    }

    if (x.rst !== NONE && end > x.rst) {
      const at = Math.max(s, x.rst);
      this.fail('tcp.fin_rst', at, `${x.name} sent ${e > at ? 'data' : 'FIN'} after its RST at offset ${x.rst}`);
      return end;
    }
    if (x.fin !== NONE) {
      if (fin && e !== x.fin) {
        this.fail('tcp.fin_rst', Math.min(e, x.fin), `${x.name} sent FIN at offsets ${x.fin} and ${e}`);
        return end;
      }
      if (e > x.fin) {
        this.fail('tcp.length', Math.max(s, x.fin), `${x.name} sent data past its own FIN at offset ${x.fin}`);
        return end;
      }
    } else if (fin && before > e && before > x.start) {
      this.fail('tcp.length', e, `${x.name} sent FIN at offset ${e} after data up to ${before}`);
      return end;
    }

    let from = Math.max(s, this.verifiedEnd);
    if (from < e && this.comparing && from === this.verifiedEnd && y.store.chunkAt(from) !== null) {
      from = this.compareIncoming(x, y, bytes, at - s, Math.min(e, x.store.firstStart()));
      if (this.found !== null) return end;
    }
    if (from < e) {
      if (x.store.held + (e - from) > this.maxBytesPerSide) {
        this.over = true;
      } else {
        const bad = x.store.insert(from, bytes, at + from - s, e - from);
        if (bad !== -1) {
          const now = hexWindow(bytes.subarray(at, at + length), bad - s);
          this.fail('tcp.retransmit_inconsistent', bad, `${x.name} resent offset ${bad} with different bytes (now ${now})`);
          return end;
        }
      }
    }
    if (fin && x.fin === NONE) x.fin = e;
    if (this.comparing) this.advance();
    return end;
  }

  /** RST: one unit at max(seq, end of everything sent); see the module header. */
  private addRst(x: Side, s: number): number {
    if (x.rst !== NONE) return x.rst + 1;
    const point = Math.max(s, x.end);
    x.rst = point;
    x.end = point + 1;
    if (this.found === null && this.comparing) this.advance();
    return point + 1;
  }

  /**
   * Compares the incoming bytes (relative offset `o` is at `bytes[shift + o]`) from `verified` up
   * to `limit` directly against the other side's buffered chunks, so bytes matched on arrival are
   * never stored. Returns the offset it stopped at.
   */
  private compareIncoming(x: Side, y: Side, bytes: Uint8Array, shift: number, limit: number): number {
    let v = this.verifiedEnd;
    for (let c = y.store.chunkAt(v); c !== null && v < limit; c = y.store.chunkAt(v)) {
      const n = Math.min(limit - v, c.length);
      if (!this.bytesEqual(bytes, shift + v, c.bytes, c.at, n)) {
        const i = firstDifference(bytes, shift + v, c.bytes, c.at, n);
        const xHex = hexWindow(bytes.subarray(this.incomingAt, this.incomingAt + this.incomingLength), v - this.incomingStart + i);
        const yHex = c.hex(i);
        this.payloadMismatch(v, i, x === this.primary ? xHex : yHex, x === this.primary ? yHex : xHex);
        return this.verifiedEnd;
      }
      y.store.consume(n);
      v += n;
      this.compared += n;
      this.verifiedEnd = v;
    }
    return v;
  }

  /** Moves `verified` over every unit both sides have and agree on; records the first divergence. */
  private advance(): void {
    const p = this.primary;
    const s = this.secondary;
    for (;;) {
      const v = this.verifiedEnd;
      const pc = p.store.chunkAt(v);
      const sc = s.store.chunkAt(v);
      if (pc !== null && sc !== null) {
        const n = Math.min(pc.length, sc.length);
        if (!this.bytesEqual(pc.bytes, pc.at, sc.bytes, sc.at, n)) {
          const i = firstDifference(pc.bytes, pc.at, sc.bytes, sc.at, n);
          this.payloadMismatch(v, i, pc.hex(i), sc.hex(i));
          return;
        }
        p.store.consume(n);
        s.store.consume(n);
        this.compared += n;
        this.verifiedEnd = v + n;
        continue;
      }
      const pu = pc !== null ? UNIT_DATA : p.unitAt(v);
      const su = sc !== null ? UNIT_DATA : s.unitAt(v);
      if (pu === su) {
        if (pu === UNIT_NONE) return;
        this.verifiedEnd = v + 1;
        continue;
      }
      if (pu !== UNIT_NONE && su !== UNIT_NONE) {
        const length = (pu === UNIT_FIN && su === UNIT_DATA) || (pu === UNIT_DATA && su === UNIT_FIN);
        this.fail(length ? 'tcp.length' : 'tcp.fin_rst', v, `primary ${UNIT_NAMES[pu]}, secondary ${UNIT_NAMES[su]} at offset ${v}`);
        return;
      }
      const known = pu !== UNIT_NONE ? pu : su;
      const silent = pu !== UNIT_NONE ? s : p;
      if (known === UNIT_DATA) return;
      // The silent side's unit here is not in yet, but a later FIN, or anything sent beyond this
      // point, proves it is data: a FIN here is then a length difference whatever arrives first.
      // A later RST proves a difference too. A FIN or RST below here already matched.
      const dataHere = silent.fin > v || (silent.fin === NONE && silent.rst === NONE && silent.end > v);
      if (!dataHere && silent.rst <= v) return;
      const knownName = silent === p ? 'secondary' : 'primary';
      const there = dataHere ? 'data' : `RST at offset ${silent.rst}`;
      this.fail(known === UNIT_FIN && dataHere ? 'tcp.length' : 'tcp.fin_rst', v, `${knownName} ${UNIT_NAMES[known]} at offset ${v}, ${silent.name} sent ${there}`);
      return;
    }
  }

  /** Both starts are known (mid-stream): compare from the later one; see the module header. */
  private beginComparison(): void {
    const at = Math.max(this.primary.start, this.secondary.start, this.verifiedEnd);
    this.unverified += at - this.primary.start;
    this.verifiedEnd = at;
    this.primary.store.discardBelow(at);
    this.secondary.store.discardBelow(at);
    if (this.urgent !== null) this.keepUrgent(this.urgent, (u) => u.mark > at);
    this.comparing = true;
  }

  /** Bytes from `v` matched for `equal` bytes, then differ: the equal ones count as verified. */
  private payloadMismatch(v: number, equal: number, primaryHex: string, secondaryHex: string): void {
    this.verifiedEnd = v + equal;
    this.compared += equal;
    this.record('tcp.payload', v + equal, primaryHex, secondaryHex, `payload differs at offset ${v + equal}`);
  }

  /**
   * Records a mismatch at `offset`. Each side's hex window comes from the segment being added when
   * it holds that offset (its stored copy may be only a remainder), else from that side's buffer.
   */
  private fail(reason: MismatchReason, offset: number, detail: string): void {
    const hex = (side: Side): string => {
      const bytes = this.incoming;
      const s = this.incomingStart;
      return side === this.incomingSide && bytes !== null && offset >= s && offset < s + this.incomingLength
        ? hexWindow(bytes.subarray(this.incomingAt, this.incomingAt + this.incomingLength), offset - s)
        : side.store.hexAround(offset);
    };
    this.record(reason, offset, hex(this.primary), hex(this.secondary), detail);
  }

  private record(reason: MismatchReason, offset: number, primaryHex: string, secondaryHex: string, detail: string): void {
    this.found = { reason, position: seqAdd(this.baseSeq, offset), offset, primaryHex, secondaryHex, detail };
    this.primary.store.clear();
  }

  /**
   * While a mismatch stands nothing is compared, but the secondary's bytes are still kept (within
   * `maxBytesPerSide`; a resend that disagrees is not stored again): a resynchronisation, which
   * does not reset the SVM, compares those beyond the primary's end with the primary's next bytes.
   * A checkpoint drops them (`resetAfterCheckpoint`).
   */
  private keepWhileMismatched(x: Side, s: number, e: number, bytes: Uint8Array, at: number): void {
    const from = Math.max(s, this.verifiedEnd);
    if (from < e && x.store.held + (e - from) <= this.maxBytesPerSide) x.store.insert(from, bytes, at + from - s, e - from);
  }
}
