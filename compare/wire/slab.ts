/**
 * Cheap copies of small byte ranges. The core copies what it keeps past a call (a held primary
 * frame, secondary bytes waiting for their primary counterparts), and a `Uint8Array.slice` of a
 * 100-byte frame costs ~950 ns here, almost all of it allocating a fresh ArrayBuffer. A
 * `SlabCopier` instead copies into the free end of a shared 64 KiB slab and returns a view
 * (~100 ns). Ranges of `MAX_SLAB_COPY` bytes or more get their own buffer.
 *
 * The price: a copy keeps its whole slab alive until every view into it is gone, so one frame
 * held for long can pin up to a slab's worth of memory. Held frames are released in order and
 * slabs fill in arrival order, so in practice slabs die together. Copies never overlap and are
 * never written again by the copier: a returned view is the caller's to keep.
 */

import { copyBytes } from './bytes.js';

export const SLAB_BYTES = 64 * 1024;
/** Copies this large or larger get a buffer of their own (they would waste much of a slab). */
export const MAX_SLAB_COPY = 8 * 1024;

export class SlabCopier {
  private slab = new Uint8Array(SLAB_BYTES);
  private used = 0;

  /** A copy of `bytes[from, to)` that stays valid and unchanged for as long as the caller keeps it. */
  copy(bytes: Uint8Array, from = 0, to = bytes.length): Uint8Array {
    const length = to - from;
    if (length >= MAX_SLAB_COPY) return copyBytes(bytes, from, to);
    if (this.used + length > SLAB_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.used = 0;
    }
    const at = this.used;
    this.slab.set(length === bytes.length ? bytes : bytes.subarray(from, to), at);
    this.used = (at + length + 7) & ~7;
    return this.slab.subarray(at, at + length);
  }
}
