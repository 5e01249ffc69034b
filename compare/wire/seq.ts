/**
 * 32-bit TCP sequence-number arithmetic: the only place in colo-proxy that compares or moves
 * sequence numbers (and timestamps, which wrap the same way).
 *
 * Inputs are unsigned 32-bit integers in [0, 2^32) as returned by `readU32`; results of
 * `seqAdd`/`seqMax`/`seqMin` are in the same range. Comparisons follow RFC 793 §3.3 and
 * RFC 1982 serial-number arithmetic with SERIAL_BITS = 32: `a` is before `b` when the signed
 * 32-bit distance `a - b` is negative, exactly as Linux's `before()`/`after()` do.
 *
 * Limit: the order is only meaningful for numbers less than 2^31 apart. For two numbers exactly
 * 2^31 apart RFC 1982 leaves the order undefined; here `seqLt(a, b)` and `seqLt(b, a)` are then
 * both true and `seqDiff` returns -2^31 both ways. Callers must keep windows far below 2^31
 * (TCP's maximum window is 2^30) and must never compare plain `<` on sequence numbers.
 * Passing a value outside [0, 2^32) or a non-integer is incorrect use (results are reduced
 * modulo 2^32 but not defined further).
 */

/** Signed distance `a - b` in [-2^31, 2^31): positive when `a` is after `b`. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a + n` modulo 2^32; `n` may be negative or larger than 2^32 (any safe integer). */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** True when `a` is strictly before `b` in sequence space. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** True when `a` is before or equal to `b` in sequence space. */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** True when `a` is strictly after `b` in sequence space. */
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** True when `a` is after or equal to `b` in sequence space. */
export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of `a` and `b` in sequence space. */
export function seqMax(a: number, b: number): number {
  return ((a - b) | 0) < 0 ? b : a;
}

/** The earlier of `a` and `b` in sequence space. */
export function seqMin(a: number, b: number): number {
  return ((a - b) | 0) < 0 ? a : b;
}

/** True when `x` lies in the half-open window `[start, start + length)`, for `length` in [0, 2^32). */
export function seqInWindow(x: number, start: number, length: number): boolean {
  return (x - start) >>> 0 < length;
}
