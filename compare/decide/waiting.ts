/**
 * Secondary TCP segments waiting for their primary counterparts, oldest first: each one's
 * relative end (where the matcher's verified point must reach for it to stop waiting) and its
 * arrival time (the head's is how long the SVM has been ahead, for the timeout).
 *
 * Speed: the pairs are numbers in one array that is reused, not an object per segment in a queue
 * made afresh whenever it emptied. With the SVM one segment ahead at a time, that was an object
 * and a queue per secondary segment: ~130 of the ~410 bytes the core allocated per frame pair at
 * 64-byte payloads.
 */
export class WaitingSegments {
  /** end, since, end, since ... from `head` (inclusive) to `tail` (exclusive). */
  private items: number[] = [];
  private head = 0;
  private tail = 0;
  /** How many of the oldest segments the last `waitFrom` timed afresh, still waiting. */
  private keptCount = 0;

  /** Segments waiting. */
  get length(): number {
    return (this.tail - this.head) / 2;
  }

  /** Adds a segment ending at relative offset `end`, arrived at caller time `since`. */
  push(end: number, since: number): void {
    this.items[this.tail] = end;
    this.items[this.tail + 1] = since;
    this.tail += 2;
  }

  /** Relative end of the newest segment waiting, or -Infinity when none waits. */
  newestEnd(): number {
    return this.head === this.tail ? Number.NEGATIVE_INFINITY : this.items[this.tail - 2]!;
  }

  /** Arrival time of the oldest segment waiting, or -1 when none waits. */
  oldestSince(): number {
    return this.head === this.tail ? -1 : this.items[this.head + 1]!;
  }

  /**
   * Times every waiting segment from `now` (a request about them was ended without a checkpoint)
   * and marks them kept: `kept` is true while the oldest of them still waits.
   */
  waitFrom(now: number): void {
    for (let i = this.head + 1; i < this.tail; i += 2) this.items[i] = now;
    this.keptCount = this.length;
  }

  /** Whether the oldest segment waiting was already there at the last `waitFrom`. */
  get kept(): boolean {
    return this.keptCount > 0;
  }

  /** Removes the segments at the front whose end is at most `verified`; returns how many. */
  dropVerified(verified: number): number {
    const start = this.head;
    while (this.head !== this.tail && this.items[this.head]! <= verified) this.head += 2;
    const dropped = (this.head - start) / 2;
    this.keptCount = Math.max(0, this.keptCount - dropped);
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
    } else if (this.head >= 128 && this.head * 2 >= this.tail) {
      this.items.copyWithin(0, this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    return dropped;
  }
}
