/**
 * The explanation attached to every mismatch: a stable reason code, where the two sides first
 * differ, and a short hex window of each side around that point, so a person can see why
 * without opening a capture.
 */

import { toHex } from '../wire/bytes.js';
import type { MismatchReason } from '../events.js';

/** Bytes shown on each side of a difference: HEX_CONTEXT before it and HEX_CONTEXT after (it included). */
export const HEX_CONTEXT = 16;

export interface Mismatch {
  reason: MismatchReason;
  /**
   * Where the sides first differ. TCP: the 32-bit sequence number in the primary's space.
   * Datagrams and frames: the index of the datagram in its flow (0 = first seen). -1 when the
   * reason has no position (timeouts, queue limits).
   */
  position: number;
  /** Offset of the first differing byte: TCP, from the start of the compared stream; datagrams, within the datagram. */
  offset: number;
  /** Up to 2 * HEX_CONTEXT bytes of the primary around `offset`, in hex ('' when none). */
  primaryHex: string;
  /** The same window of the secondary ('' when it has no bytes there). */
  secondaryHex: string;
  /** One short human sentence with the specifics (lengths, flags). */
  detail: string;
}

/** Hex of `bytes` around index `at`: up to HEX_CONTEXT bytes before and HEX_CONTEXT from `at` on. */
export function hexWindow(bytes: Uint8Array, at: number): string {
  const from = Math.max(0, Math.min(at, bytes.length) - HEX_CONTEXT);
  const to = Math.min(bytes.length, at + HEX_CONTEXT);
  return toHex(bytes, from, to - from);
}

/** Index of the first byte where `a` and `b` differ, comparing `length` bytes from `aAt` and `bAt`; -1 if none. */
export function firstDifference(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): number {
  for (let i = 0; i < length; i++) if (a[aAt + i] !== b[bAt + i]) return i;
  return -1;
}
