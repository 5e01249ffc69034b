/**
 * The byte equality the front ends give the comparator core: Node's `Buffer.compare` (memcmp in
 * C++) for ranges long enough to pay for the call into the binding, which costs ~100-130 ns
 * whatever the length with its argument checks, and the core's portable loop (~1.2 ns a byte
 * here) below that. Measured inside the core on the development machine (64-byte lockstep pairs,
 * alternating runs): with 64-byte payloads the loop ran the whole core 12-15 % faster, at 128
 * bytes `Buffer.compare` was as fast or faster, at 96 it was a toss-up. So ranges under 96 bytes
 * stay in JavaScript.
 */

import { jsBytesEqual, type BytesEqual } from '../../compare/index.js';

const bufferCompare = Buffer.prototype.compare;

/** Below this many bytes the JavaScript loop is as fast as the call into Buffer.compare. */
export const NATIVE_COMPARE_FROM = 96;

/** `BytesEqual` for Node.js: Buffer.compare for long ranges, a loop for short ones. */
export const nodeBytesEqual: BytesEqual = (a, aAt, b, bAt, length) =>
  length < NATIVE_COMPARE_FROM
    ? jsBytesEqual(a, aAt, b, bAt, length)
    : bufferCompare.call(a, b, bAt, bAt + length, aAt, aAt + length) === 0;
