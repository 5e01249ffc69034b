/**
 * The incremental framer shared by every length-prefixed stream format here (pcap, pcapng, QEMU
 * socket framing, the notify protocol): a stream is a sequence of units, each announcing its length
 * in its first bytes (its head). A `UnitFormat` says how long a unit is and what it contains;
 * `UnitFramer` turns it into a decoder that accepts any chunking.
 *
 * Contract of every such decoder: push chunks of any size (a chunk may end anywhere, even inside a
 * head); each `push` returns the items that chunk completed, in stream order, whatever the
 * chunking. Corrupt input is the format's `FramingError`, never anything else, found as soon as
 * the bytes that show it are in. Items before the damage are all delivered: a `push` that
 * completed some returns them and sets `error`, and the error is thrown by the next call. After an
 * error the decoder is dead and rethrows it on every call. `end()` reports input that stopped
 * inside a unit. `push` after `end` is incorrect use and throws a plain Error.
 *
 * Zero-copy: `unit` sees the pushed chunk itself when the unit (less its prefix) lies wholly
 * inside it, and a private copy otherwise, with a `ChunkViews` over the same bytes for the views
 * it hands out. The framer never writes to a chunk and never keeps one after `push` returns.
 * The copy of a straddling unit starts at min(its length, 128 KiB) and doubles as bytes arrive, so
 * a lying length field costs at most 128 KiB or twice the bytes actually received.
 */

/** Corrupt input of some format; `offset` is the stream offset of the unit, field or byte at fault. */
export abstract class FramingError<Code extends string = string> extends Error {
  constructor(
    /** Stable dotted code, `<format>.<problem>`. */
    readonly code: Code,
    /** Stream offset of the faulty unit, field or byte. */
    readonly offset: number,
    /** One-line description of the problem, without the offset. */
    readonly problem: string,
    /** What the input is (a file path), prefixed to the message when known. */
    context?: string,
  ) {
    super(`${context !== undefined ? `${context}: ` : ''}${problem} at byte ${offset} (${code})`);
  }
}

const NO_BYTES = new Uint8Array(0);

/**
 * Views into the bytes a `unit` call decodes, made with the Uint8Array constructor on their
 * ArrayBuffer, which the framer reads once per chunk. `subarray` on a Node Buffer reads `.buffer`
 * (a call into C++) and constructs through Buffer's species constructor: measured ~85 ns a view
 * against ~35 ns this way (~60 ns for `subarray` on a plain Uint8Array), once for every frame
 * decoded. The views are plain Uint8Arrays over the same memory.
 */
export class ChunkViews {
  private buffer: ArrayBufferLike = NO_BYTES.buffer;
  private base = 0;

  /** `length` bytes from `at` of the bytes given to `unit`: `b.subarray(at, at + length)`. */
  of(at: number, length: number): Uint8Array {
    return new Uint8Array(this.buffer, this.base + at, length);
  }

  /** Points the views at `b` (the framer, before each `unit` call on other bytes). */
  over(b: Uint8Array): void {
    this.buffer = b.buffer;
    this.base = b.byteOffset;
  }
}

/**
 * The per-format half of a `UnitFramer`. The framer calls `unit` right after the `unitLength` call
 * that measured the same unit, with no call in between, so `unitLength` may keep what it read
 * from the head for `unit`.
 */
export interface UnitFormat<F, E extends FramingError> {
  /**
   * Leading bytes of every unit that `unit` is not given (what it needs of them, `unitLength`
   * keeps), so that a unit of which only these straddled chunks is still not copied; 0 when `unit`
   * decodes whole units.
   */
  readonly prefixLength: number;
  /**
   * Total length of the unit whose first `have` bytes are at `b[at]` (`have` may run past the
   * unit), or 0 while they are too few to tell; a format never needs more than 32. Throws E as
   * soon as they show the head corrupt.
   */
  unitLength(b: Uint8Array, at: number, have: number, streamOffset: number): number;
  /**
   * Decodes the complete unit at `streamOffset`, less its prefix: `b[at, at + length)`; appends its
   * items, if any, to `out`. Views into `b` come from `views.of`. Throws E.
   */
  unit(b: Uint8Array, at: number, length: number, streamOffset: number, out: F[], views: ChunkViews): void;
  /**
   * The error for input that ends `have` bytes into the unit at `streamOffset` (`length` 0 while
   * its length is unknown); `have` 0 means between units, which the format may accept (undefined).
   */
  truncated(streamOffset: number, have: number, length: number): E | undefined;
}

/** First allocation for a unit that straddles chunks; it doubles from here up to the unit's length. */
const STRADDLE_START = 1 << 17;

/** Turns a `UnitFormat` into an incremental decoder of items F. Call order: `push`* then `end` once. */
export class UnitFramer<F, E extends FramingError> {
  /** Stream offset of the first byte of the chunk being pushed. */
  private base = 0;
  /** Bytes of a unit that started in an earlier chunk: in `head` until its length is known, then in `buf`. */
  private pendLen = 0;
  private pendStart = 0;
  /** Length of the pending unit, 0 while its head is incomplete. */
  private unitLen = 0;
  private readonly head = new Uint8Array(32);
  private buf = this.head;
  private failure: E | undefined = undefined;
  private ended = false;
  private readonly views = new ChunkViews();

  constructor(
    private readonly units: UnitFormat<F, E>,
    /** The decoder's name, for the message of incorrect use. */
    private readonly name: string,
  ) {}

  /** The error that killed the decoder, set as soon as it is found (possibly before `push` throws it). */
  get error(): E | undefined {
    return this.failure;
  }

  /** Bytes of a unit begun in the input and not complete yet (0 once ended or failed). */
  get pendingBytes(): number {
    return this.failure !== undefined || this.ended ? 0 : this.pendLen;
  }

  /** Decodes the next chunk; returns the items it completed. Throws E (see the module header for when). */
  push(chunk: Uint8Array): F[] {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error(`${this.name}: push() after end()`);
    const out: F[] = [];
    try {
      let pos = 0;
      if (this.pendLen > 0) pos = this.fill(chunk, 0, out);
      if (this.pendLen === 0) pos = this.scan(chunk, pos, out);
      if (pos < chunk.length) {
        this.pendStart = this.base + pos;
        this.fill(chunk, pos, out);
      }
    } catch (e) {
      if (!(e instanceof FramingError)) throw e;
      this.failure = e as E; // a format throws only its own E
      if (out.length === 0) throw e;
    } finally {
      this.views.over(NO_BYTES);
    }
    this.base += chunk.length;
    return out;
  }

  /** Declares the input over; throws the format's truncation error if it stopped inside a unit. */
  end(): void {
    if (this.failure) throw this.failure;
    this.ended = true;
    this.failure = this.units.truncated(this.pendLen > 0 ? this.pendStart : this.base, this.pendLen, this.unitLen);
    if (this.failure) throw this.failure;
  }

  /** Decodes every unit lying wholly in `chunk` from `pos`; returns where the first incomplete one starts. */
  private scan(chunk: Uint8Array, pos: number, out: F[]): number {
    const units = this.units;
    const prefix = units.prefixLength;
    const views = this.views;
    views.over(chunk);
    for (;;) {
      const avail = chunk.length - pos;
      const len = units.unitLength(chunk, pos, avail, this.base + pos);
      if (len === 0 || avail < len) return pos;
      units.unit(chunk, pos + prefix, len - prefix, this.base + pos, out, views);
      pos += len;
    }
  }

  /** Adds bytes from `chunk[pos..]` to the pending unit, decoding it if complete; returns the new position. */
  private fill(chunk: Uint8Array, pos: number, out: F[]): number {
    const units = this.units;
    const prefix = units.prefixLength;
    if (this.unitLen === 0) {
      do {
        if (pos === chunk.length) return pos;
        this.head[this.pendLen++] = chunk[pos++]!;
        this.unitLen = units.unitLength(this.head, 0, this.pendLen, this.pendStart);
      } while (this.unitLen === 0);
      const rest = this.unitLen - this.pendLen;
      if (this.pendLen === prefix && chunk.length - pos >= rest) {
        this.pendLen = 0;
        this.unitLen = 0;
        this.views.over(chunk);
        units.unit(chunk, pos, rest, this.pendStart, out, this.views);
        return pos + rest;
      }
      this.buf = new Uint8Array(Math.min(this.unitLen, STRADDLE_START));
      this.buf.set(this.head.subarray(0, this.pendLen));
    }
    const n = Math.min(this.unitLen - this.pendLen, chunk.length - pos);
    if (this.pendLen + n > this.buf.length) {
      const grown = new Uint8Array(Math.min(this.unitLen, Math.max(this.pendLen + n, 2 * this.buf.length)));
      grown.set(this.buf.subarray(0, this.pendLen));
      this.buf = grown;
    }
    this.buf.set(chunk.subarray(pos, pos + n), this.pendLen);
    this.pendLen += n;
    pos += n;
    if (this.pendLen === this.unitLen) {
      const unit = this.buf;
      this.pendLen = 0;
      this.unitLen = 0;
      this.buf = this.head;
      this.views.over(unit);
      units.unit(unit, prefix, unit.length - prefix, this.pendStart, out, this.views);
    }
    return pos;
  }
}
