/**
 * One side's byte store for one direction of one TCP connection: the bytes that side has sent
 * above the point both sides agree on, possibly out of order, kept in relative offsets (plain
 * JS numbers from a base chosen by the owner, Zeek-style), so sequence wraparound at 2^32 never
 * reaches this code. Chunks are sorted, never overlap and all lie at or above the owner's floor
 * (the bytes below it were consumed or discarded).
 *
 * A byte offered twice is kept once: the first copy stays (as a TCP receiver keeps it) and the
 * second is compared with it, and `insert` reports the first differing offset instead of storing
 * anything. Nothing below the floor is remembered, so a resend of consumed bytes cannot be checked
 * here; the owner trims such resends before calling.
 *
 * Ownership: a store made with `copy = true` copies every byte it keeps (the caller may reuse its
 * buffer at once) into one arena, allocated on first use, reused from its start whenever the store
 * empties, and reallocated (live bytes moved, at most twice the room they need rounded up to a
 * power of two, 4 KiB at least) when full; `clear`, and `trim` when empty, free it. With `copy = false` the store keeps a
 * view, and the caller must leave those bytes unchanged until they are consumed, discarded or
 * cleared. Appending at the end is O(1) amortized and, once the store has held as many chunks
 * before, allocates nothing: a chunk that is used up stays in the array as a spare (its bytes
 * reference dropped) for a later append to fill, until `clear` or `trim` frees the spares. An
 * out-of-order insert costs a binary search plus a splice. Incorrect use: offsets that are not
 * integers, `consume` beyond the first chunk, ranges outside the given array, keeping a `Chunk`
 * across calls that store or consume (its bytes may move, or it may be reused).
 */

import type { BytesEqual } from '../match/bytes-equal.js';
import { firstDifference, hexWindow } from '../match/mismatch.js';

/** A run of stored bytes: `length` bytes of `bytes` from `at`, holding offsets [start, start + length). */
export class Chunk {
  constructor(
    public start: number,
    public bytes: Uint8Array,
    public at: number,
    public length: number,
    /** Index in `bytes` from which, up to `at + length`, the bytes are this side's, consecutive. */
    public base: number,
  ) {}

  /** `hexWindow` around the byte `index` places after `at`, never showing bytes that are not this side's. */
  hex(index: number): string {
    return hexWindow(this.bytes.subarray(this.base, this.at + this.length), this.at - this.base + index);
  }
}

/** Consumed chunks left at the front of the array before it is compacted. */
const COMPACT_AFTER = 32;

/** Smallest copy arena; it grows to a power of two at least twice the bytes it must hold. */
const MIN_ARENA = 4096;

/** What a spare chunk points to, so that it keeps no frame alive. */
const NO_BYTES = new Uint8Array(0);

/** The sorted, non-overlapping chunks of one side; see the module header. */
export class Reassembly {
  /** Live chunks in [head, end); the chunks from `end` on are spares for `insert` to reuse. */
  private chunks: Chunk[] = [];
  private head = 0;
  private end = 0;
  private bytesHeld = 0;
  /** Copy mode: the buffer copies are appended to (allocated on first use), and its fill level. */
  private arena: Uint8Array | null = null;
  private arenaUsed = 0;

  constructor(
    private readonly copy: boolean,
    private readonly bytesEqual: BytesEqual,
  ) {}

  /** Bytes stored. */
  get held(): number {
    return this.bytesHeld;
  }

  /** True when nothing is stored. */
  get empty(): boolean {
    return this.head === this.end;
  }

  /** The lowest chunk when it starts exactly at `offset`, else null. */
  chunkAt(offset: number): Chunk | null {
    if (this.head === this.end) return null;
    const c = this.chunks[this.head]!;
    return c.start === offset ? c : null;
  }

  /** Start of the lowest chunk, Infinity when empty. */
  firstStart(): number {
    return this.head === this.end ? Infinity : this.chunks[this.head]!.start;
  }

  /**
   * End of the run of contiguous bytes beginning at `from` (`from` itself when no chunk starts
   * there), or, once the run reaches `upTo`, the end of the chunk that got it there: the walk stops
   * at that chunk, so asking whether the front of a long backlog is covered costs only the chunks
   * the answer needs.
   */
  contiguousEnd(from: number, upTo = Infinity): number {
    let end = from;
    for (let i = this.head; i < this.end && end < upTo; i++) {
      const c = this.chunks[i]!;
      if (c.start !== end) break;
      end = c.start + c.length;
    }
    return end;
  }

  /**
   * Stores `length` bytes of `bytes` from `at` at offset `start` (none when 0). Parts already stored are compared
   * with the new copy, not replaced. Returns -1, or (storing nothing) the offset of the first byte
   * whose new copy differs from the stored one.
   */
  insert(start: number, bytes: Uint8Array, at: number, length: number): number {
    if (length === 0) return -1;
    const chunks = this.chunks;
    const n = this.end;
    const end = start + length;
    if (this.head === n || chunks[n - 1]!.start + chunks[n - 1]!.length <= start) {
      if (n < chunks.length) this.fill(chunks[n]!, start, bytes, at, length);
      else chunks.push(this.fill(new Chunk(0, NO_BYTES, 0, 0, 0), start, bytes, at, length));
      this.end = n + 1;
      this.bytesHeld += length;
      return -1;
    }
    let lo = this.head;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (c.start + c.length <= start) lo = mid + 1;
      else hi = mid;
    }
    let last = lo;
    for (; last < n && chunks[last]!.start < end; last++) {
      const c = chunks[last]!;
      const from = Math.max(start, c.start);
      const count = Math.min(end, c.start + c.length) - from;
      const stored = c.at + from - c.start;
      const offered = at + from - start;
      if (!this.bytesEqual(c.bytes, stored, bytes, offered, count)) {
        return from + firstDifference(c.bytes, stored, bytes, offered, count);
      }
    }
    const merged: Chunk[] = [];
    let added = 0;
    let cur = start;
    for (let i = lo; i < last; i++) {
      const c = chunks[i]!;
      if (c.start > cur) {
        merged.push(this.piece(cur, bytes, at + cur - start, c.start - cur));
        added += c.start - cur;
      }
      merged.push(c);
      cur = c.start + c.length;
    }
    if (cur < end) {
      merged.push(this.piece(cur, bytes, at + cur - start, end - cur));
      added += end - cur;
    }
    chunks.splice(lo, last - lo, ...merged);
    this.end = n + merged.length - (last - lo);
    this.bytesHeld += added;
    return -1;
  }

  /** Drops `count` bytes from the front of the lowest chunk; `count` must not exceed its length. */
  consume(count: number): void {
    const c = this.chunks[this.head]!;
    c.start += count;
    c.at += count;
    c.length -= count;
    this.bytesHeld -= count;
    if (c.length === 0) this.dropHead();
  }

  /** Drops every byte below `offset`. */
  discardBelow(offset: number): void {
    while (this.head !== this.end && this.chunks[this.head]!.start < offset) {
      const c = this.chunks[this.head]!;
      if (c.start + c.length <= offset) {
        this.bytesHeld -= c.length;
        this.dropHead();
      } else {
        this.consume(offset - c.start);
      }
    }
  }

  /** Frees the copy arena and the spare chunks if nothing is stored (they are made again when needed). */
  trim(): void {
    // Most stores a scan passes over are empty and hold nothing to free: leave those untouched.
    if (this.head === this.end && (this.chunks.length > 0 || this.arena !== null)) {
      this.chunks.length = 0;
      this.head = 0;
      this.end = 0;
      this.arena = null;
      this.arenaUsed = 0;
    }
  }

  /** Drops everything, the copy arena included. */
  clear(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.end = 0;
    this.bytesHeld = 0;
    this.arena = null;
    this.arenaUsed = 0;
  }

  /** Hex around `offset` (see `hexWindow`) from the chunk holding it, '' when none does. */
  hexAround(offset: number): string {
    for (let i = this.head; i < this.end; i++) {
      const c = this.chunks[i]!;
      if (offset < c.start) break;
      if (offset < c.start + c.length) return c.hex(offset - c.start);
    }
    return '';
  }

  private piece(start: number, bytes: Uint8Array, at: number, length: number): Chunk {
    return this.fill(new Chunk(0, NO_BYTES, 0, 0, 0), start, bytes, at, length);
  }

  /** Makes `c` hold `bytes[at, at + length)` (a view of it, or its copy in the arena) at offset `start`. */
  private fill(c: Chunk, start: number, bytes: Uint8Array, at: number, length: number): Chunk {
    c.start = start;
    c.length = length;
    if (!this.copy) {
      c.bytes = bytes;
      c.at = at;
      // A view into the caller's frame: what precedes `at` there is headers, not this side's stream.
      c.base = at;
      return c;
    }
    let arena = this.arena;
    if (arena === null || this.arenaUsed + length > arena.length) arena = this.regrow(length);
    const to = this.arenaUsed;
    arena.set(bytes.subarray(at, at + length), to);
    this.arenaUsed = to + length;
    c.bytes = arena;
    c.at = to;
    c.base = to;
    return c;
  }

  /**
   * A fresh arena with room for `extra` more bytes, the live chunks copied to its front. Pieces made
   * earlier in the same `insert` keep pointing into the old arena, which stays valid for them.
   */
  private regrow(extra: number): Uint8Array {
    let capacity = MIN_ARENA;
    while (capacity < 2 * (this.bytesHeld + extra)) capacity *= 2;
    const next = new Uint8Array(capacity);
    let used = 0;
    for (let i = this.head; i < this.end; i++) {
      const c = this.chunks[i]!;
      next.set(c.bytes.subarray(c.at, c.at + c.length), used);
      c.bytes = next;
      c.at = used;
      c.base = used;
      used += c.length;
    }
    this.arena = next;
    this.arenaUsed = used;
    return next;
  }

  private dropHead(): void {
    this.chunks[this.head]!.bytes = NO_BYTES;
    this.head++;
    if (this.head === this.end) {
      this.head = 0;
      this.end = 0;
      this.arenaUsed = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.end) {
      this.chunks.splice(0, this.head);
      this.end -= this.head;
      this.head = 0;
    }
  }
}
