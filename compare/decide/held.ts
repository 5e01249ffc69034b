/**
 * Held primary frames. Each connection releases its own frames in order from the front of its
 * queue; the global queue keeps every held frame in arrival order, so that the oldest one (for
 * timeouts) and the flush order after a checkpoint are both O(1) to find. The global queue is a
 * list threaded through the frames themselves, so a frame released from its connection's queue
 * leaves the global one at once, wherever it is in it, and nothing keeps a released frame alive.
 */

import type { Counters } from './counters.js';

/** What a held frame needs of its connection: a name to report, and whether it already diverged. */
export interface HeldOwner {
  readonly flow: string;
  diverged: boolean;
}

/** Recycled HeldFrames kept at most: a burst's worth, so a burst's frames do not stay for good. */
const MAX_SPARE = 256;
const NO_BYTES = new Uint8Array(0);
const NO_OWNER: HeldOwner = { flow: '', diverged: false };

/**
 * One held primary frame. `end` and `ack` are the TCP release conditions (-1 when not TCP).
 * Frames released in order from their connection's queue are reused for later holds, so every
 * field is set by `fill` (see `HeldQueue.recycle`).
 */
export class HeldFrame {
  /** Set when the frame leaves the held queue (released, or flushed by a checkpoint). */
  released = false;
  /** Neighbours in the held queue's arrival order, null at its ends and once released. */
  older: HeldFrame | null = null;
  newer: HeldFrame | null = null;
  frame: Uint8Array = NO_BYTES;
  /** The connection holding it (it may have left the table since). */
  owner: HeldOwner = NO_OWNER;
  /** Caller time when the frame arrived. */
  since = 0;
  /** TCP: relative stream offset the matcher must verify before release; -1 otherwise. */
  end = -1;
  /** TCP: acknowledgement number the SVM must have reached, or -1 when the ACK flag is clear. */
  ack = -1;
  /** TCP: a SYN or SYN-ACK, released once the handshakes of both sides agree. */
  syn = false;
  /** The caller's tag for the frame, handed back with its release. */
  tag: unknown = undefined;
  /** Which of the comparator's primary frames it is (or its last fragment), counting from 1: the order a checkpoint flushes in. */
  arrival = 0;

  /** Makes it `frame`'s record, held (a new record, or a recycled one). */
  fill(frame: Uint8Array, owner: HeldOwner, since: number, end: number, ack: number, syn: boolean, tag: unknown, arrival: number): this {
    this.frame = frame;
    this.owner = owner;
    this.since = since;
    this.end = end;
    this.ack = ack;
    this.syn = syn;
    this.tag = tag;
    this.arrival = arrival;
    this.released = false;
    return this;
  }
}

/** Ring capacity a `Fifo` starts with, and above which an emptied one gives its array back. */
const MIN_RING = 4;
const KEEP_RING = 64;
const NO_ITEMS: never[] = [];

/**
 * A FIFO with O(1) push and shift, for the comparator's queues: a ring buffer whose
 * capacity is a power of two, doubled when full. It replaced an array shifted by advancing a head
 * index and sliced every 64 shifts: with the ring the core ran the replay workload of
 * .prof/session.mts ~4-7 % faster and 64-byte lockstep pairs ~3 % faster. An emptied ring larger
 * than KEEP_RING slots is dropped, so a connection that once held a burst does not keep its array.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = NO_ITEMS;
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    let items = this.items;
    if (this.count === items.length) items = this.grow();
    items[(this.head + this.count) & (items.length - 1)] = item;
    this.count++;
  }

  /** The front item, or undefined when empty. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** The items, front first (not while the queue changes). */
  *[Symbol.iterator](): IterableIterator<T> {
    const items = this.items;
    for (let i = 0; i < this.count; i++) yield items[(this.head + i) & (items.length - 1)]!;
  }

  /** Removes and returns the front item, or undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const items = this.items;
    const item = items[this.head];
    items[this.head] = undefined;
    this.head = (this.head + 1) & (items.length - 1);
    if (--this.count === 0 && items.length > KEEP_RING) this.clear();
    return item;
  }

  /** Removes every item. */
  clear(): void {
    this.items = NO_ITEMS;
    this.head = 0;
    this.count = 0;
  }

  /** Doubles the ring (at least MIN_RING slots), the items moved to its start in order. */
  private grow(): (T | undefined)[] {
    const old = this.items;
    const items = new Array<T | undefined>(Math.max(MIN_RING, old.length * 2)).fill(undefined);
    for (let i = 0; i < this.count; i++) items[i] = old[(this.head + i) & (old.length - 1)];
    this.items = items;
    this.head = 0;
    return items;
  }
}

/**
 * Every held frame of the comparator in arrival order; keeps `counters.heldFrames` and
 * `counters.heldBytes` up to date.
 * It was a FIFO of frames whose released ones were skipped when they reached the front, so a
 * frame held long (a connection whose secondary is late) kept every frame released after it
 * alive, and each one's read buffer, until it left: 13 GB of buffers over 200,000 pairs of
 * 1448-byte frames, each read into a 64 KiB buffer, while another connection held one frame.
 * Unlinking a frame from this list costs the same and keeps nothing (comparator.test.ts,
 * "memory", checks that released frames are collected).
 */
export class HeldQueue {
  private oldestFrame: HeldFrame | null = null;
  private newestFrame: HeldFrame | null = null;

  /**
   * Frames released in order, for reuse: one HeldFrame per held primary frame was the core's only
   * allocation per frame pair in lockstep TCP (56 bytes a pair at 64 B, 2.7 with reuse; sampling
   * heap profiler), and reusing them ran 64-byte pairs 1.06x as fast (alternating rounds).
   */
  private readonly spare: HeldFrame[] = [];

  constructor(private readonly counters: Counters) {}

  /** Holds `frame` as the newest: a new HeldFrame or a recycled one. */
  add(frame: Uint8Array, owner: HeldOwner, since: number, end: number, ack: number, syn: boolean, tag: unknown, arrival: number): HeldFrame {
    const h = (this.spare.pop() ?? new HeldFrame()).fill(frame, owner, since, end, ack, syn, tag, arrival);
    this.link(h);
    return h;
  }

  /**
   * Keeps a released frame for a later `add`. Only for one nothing refers to any more (taken off
   * its connection's queue); it lets go of the frame's bytes, tag and connection.
   */
  recycle(h: HeldFrame): void {
    if (this.spare.length >= MAX_SPARE) return;
    h.frame = NO_BYTES;
    h.owner = NO_OWNER;
    h.tag = undefined;
    this.spare.push(h);
  }

  private link(h: HeldFrame): void {
    const newest = this.newestFrame;
    h.older = newest;
    h.newer = null;
    if (newest === null) this.oldestFrame = h;
    else newest.newer = h;
    this.newestFrame = h;
    this.counters.heldFrames++;
    this.counters.heldBytes += h.frame.length;
  }

  /** Takes `h` out of the queue and marks it released; a frame already released is left alone. */
  release(h: HeldFrame): void {
    if (h.released) return;
    h.released = true;
    const { older, newer } = h;
    if (older === null) this.oldestFrame = newer;
    else older.newer = newer;
    if (newer === null) this.newestFrame = older;
    else newer.older = older;
    h.older = null;
    h.newer = null;
    this.counters.heldFrames--;
    this.counters.heldBytes -= h.frame.length;
  }

  /** The oldest frame still held, or undefined. */
  oldest(): HeldFrame | undefined {
    return this.oldestFrame ?? undefined;
  }

  /** Removes and returns every frame still held, oldest first, marking each released. */
  drain(): HeldFrame[] {
    const out: HeldFrame[] = [];
    for (let h = this.oldestFrame; h !== null; ) {
      const next: HeldFrame | null = h.newer;
      h.released = true;
      h.older = null;
      h.newer = null;
      out.push(h);
      h = next;
    }
    this.oldestFrame = null;
    this.newestFrame = null;
    this.counters.heldFrames = 0;
    this.counters.heldBytes = 0;
    return out;
  }
}
