/**
 * The Internet checksum (RFC 1071): full computation, verification, pseudo-headers, and the
 * incremental update of RFC 1624 used to rewrite TCP fields in place.
 *
 * Sums are built in two steps: `onesSum` adds 16-bit big-endian words of a byte range to a
 * running sum and returns it folded to 16 bits (so it can be chained), and `finishChecksum`
 * complements it into the value stored on the wire. When chaining ranges, every range but the
 * last must have an even length (an odd range pads with one zero byte, RFC 1071 §4.1).
 * Functions that take a `checksumAt` treat that 16-bit field as zero, so a stale value there
 * does not matter; `checksumAt - at` must be even (it is for TCP, UDP, ICMP and ICMPv6).
 *
 * Nothing here checks bounds: callers pass ranges a view has already validated. The IPv6
 * pseudo-header uses the destination in the fixed header, which is wrong for packets carrying a
 * routing header (RFC 8200 §8.1 wants the final destination); verifying those is out of scope.
 *
 * Incremental updates give exactly the value a full recomputation would, provided the stored
 * checksum was itself correct (RFC 1624 §3, eqn. 3); a wrong checksum stays wrong by the same
 * amount, so rewriting never hides corruption.
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';

/** Adds the bytes `[at, at + length)` as 16-bit words to `sum` (a folded sum) and returns the folded result. */
export function onesSum(b: Uint8Array, at: number, length: number, sum = 0): number {
  const end = at + length;
  const evenEnd = end - (length & 1);
  let s = sum;
  let i = at;
  for (; i + 8 <= evenEnd; i += 8) {
    s += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!)
      + ((b[i + 4]! << 8) | b[i + 5]!) + ((b[i + 6]! << 8) | b[i + 7]!);
  }
  for (; i < evenEnd; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (length & 1) s += b[end - 1]! << 8;
  return fold(s);
}

/** Folds a non-negative sum of any size to 16 bits with end-around carry. */
function fold(s: number): number {
  while (s > 0xffffffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

/** The checksum field value for a folded sum: its one's complement. */
export function finishChecksum(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** RFC 1071 checksum of `[at, at + length)`. */
export function internetChecksum(b: Uint8Array, at: number, length: number): number {
  return ~onesSum(b, at, length) & 0xffff;
}

/** Header checksum of the IPv4 header at `ipAt` (length from its IHL), checksum field taken as zero. */
export function ipv4HeaderChecksum(b: Uint8Array, ipAt: number): number {
  const headerLength = (b[ipAt]! & 0x0f) * 4;
  return ~onesSum(b, ipAt + 12, headerLength - 12, onesSum(b, ipAt, 10)) & 0xffff;
}

/** True when the IPv4 header at `ipAt` carries a correct header checksum. */
export function verifyIpv4HeaderChecksum(b: Uint8Array, ipAt: number): boolean {
  return onesSum(b, ipAt, (b[ipAt]! & 0x0f) * 4) === 0xffff;
}

/** Computes and stores the header checksum of the IPv4 header at `ipAt`. */
export function fillIpv4HeaderChecksum(b: Uint8Array, ipAt: number): void {
  writeU16(b, ipAt + 10, ipv4HeaderChecksum(b, ipAt));
}

/** Folded sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768) for `length` upper-layer bytes. */
export function pseudoSumV4(b: Uint8Array, ipAt: number, protocol: number, length: number): number {
  return onesSum(b, ipAt + 12, 8, protocol + length);
}

/** Folded sum of the IPv6 pseudo-header (RFC 8200 §8.1) for `length` upper-layer bytes. */
export function pseudoSumV6(b: Uint8Array, ipAt: number, nextHeader: number, length: number): number {
  return onesSum(b, ipAt + 8, 32, nextHeader + (length >>> 16) + (length & 0xffff));
}

/** Checksum of an upper-layer packet `[at, at + length)` after `pseudoSum`, the field at `checksumAt` taken as zero. */
export function transportChecksum(pseudoSum: number, b: Uint8Array, at: number, length: number, checksumAt: number): number {
  const head = onesSum(b, at, checksumAt - at, pseudoSum);
  return ~onesSum(b, checksumAt + 2, at + length - checksumAt - 2, head) & 0xffff;
}

/**
 * The UDP checksum to transmit: like `transportChecksum`, but a computed 0 is sent as 0xffff,
 * because 0 means "no checksum" over IPv4 (RFC 768) and is forbidden over IPv6 (RFC 8200 §8.1).
 */
export function udpChecksum(pseudoSum: number, b: Uint8Array, at: number, length: number, checksumAt: number): number {
  return transportChecksum(pseudoSum, b, at, length, checksumAt) || 0xffff;
}

/** True when `[at, at + length)` including its stored checksum sums correctly after `pseudoSum`. */
export function verifyTransportChecksum(pseudoSum: number, b: Uint8Array, at: number, length: number): boolean {
  return onesSum(b, at, length, pseudoSum) === 0xffff;
}

/** RFC 1624 eqn. 3: the checksum after one covered 16-bit word changes from `oldWord` to `newWord`. */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  return ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** RFC 1624 eqn. 3 applied to both halves of a covered 32-bit value changing from `oldValue` to `newValue`. */
export function updateChecksum32(checksum: number, oldValue: number, newValue: number): number {
  const s = (~checksum & 0xffff) + ((~oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff)
    + (newValue >>> 16) + (newValue & 0xffff);
  return ~fold(s) & 0xffff;
}

function swap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

function swapHalves(v: number): number {
  return (((v & 0x00ff00ff) << 8) | ((v >>> 8) & 0x00ff00ff)) >>> 0;
}

/**
 * Writes the 16-bit `value` at `fieldAt` and updates the checksum at `checksumAt` incrementally.
 *
 * The field need not be 16-bit aligned with the checksummed words: the parity is taken from
 * `fieldAt - checksumAt` (the checksum field is always at an even offset of the range it
 * covers). At an odd offset each field byte lands in the other half of a word, and since the
 * one's-complement sum commutes with byte swapping (RFC 1071 §2(B)) the update is done on the
 * byte-swapped old and new values. The field must not overlap the checksum, and must not be
 * used on IPv4 UDP with checksum 0 ("none").
 */
export function rewriteU16(b: Uint8Array, fieldAt: number, checksumAt: number, value: number): void {
  let oldWord = readU16(b, fieldAt);
  let newWord = value & 0xffff;
  writeU16(b, fieldAt, newWord);
  if ((fieldAt - checksumAt) & 1) {
    oldWord = swap16(oldWord);
    newWord = swap16(newWord);
  }
  writeU16(b, checksumAt, updateChecksum16(readU16(b, checksumAt), oldWord, newWord));
}

/** Writes the 32-bit `value` at `fieldAt` and updates the checksum at `checksumAt`; alignment rules as `rewriteU16`. */
export function rewriteU32(b: Uint8Array, fieldAt: number, checksumAt: number, value: number): void {
  let oldValue = readU32(b, fieldAt);
  let newValue = value >>> 0;
  writeU32(b, fieldAt, newValue);
  if ((fieldAt - checksumAt) & 1) {
    oldValue = swapHalves(oldValue);
    newValue = swapHalves(newValue);
  }
  writeU16(b, checksumAt, updateChecksum32(readU16(b, checksumAt), oldValue, newValue));
}
