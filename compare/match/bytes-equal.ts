/**
 * Byte-range equality, the innermost operation of every comparison. The core cannot use Node's
 * `Buffer` (it is sans-I/O and Node-free), so it takes the function from its configuration: the
 * front ends pass one built on `Buffer.compare` (memcmp, ~20 GB/s), and `jsBytesEqual` is the
 * portable default. Either way it only says equal or not; `firstDifference` (mismatch.ts) finds
 * where, and runs only when a mismatch is being explained.
 */

/** True when `length` bytes of `a` from `aAt` equal those of `b` from `bAt`. Ranges must be in bounds. */
export type BytesEqual = (a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number) => boolean;

/** Portable `BytesEqual`: compares four bytes at a time where it can. */
export const jsBytesEqual: BytesEqual = (a, aAt, b, bAt, length) => {
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    if (a[aAt + i] !== b[bAt + i] || a[aAt + i + 1] !== b[bAt + i + 1] || a[aAt + i + 2] !== b[bAt + i + 2] || a[aAt + i + 3] !== b[bAt + i + 3]) {
      return false;
    }
  }
  for (; i < length; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
};
