/**
 * A small seeded PRNG, and the draws made with it, for property tests that derive a whole schedule
 * from one fast-check integer (so a counterexample prints as a short record that replays exactly).
 */

/** `r(n)` is uniform-ish in [0, n). */
export type Rng = (n: number) => number;

/** xorshift32 from `seed` (0 is replaced, xorshift never leaves it). */
export function rng(seed: number): Rng {
  let s = seed >>> 0 || 0x9e3779b9;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return n <= 1 ? 0 : (s >>> 0) % n;
  };
}

/** One of `xs`, drawn with `r`. */
export function pick<T>(r: Rng, xs: readonly T[]): T {
  return xs[r(xs.length)]!;
}

/** A random merge of `a` and `b` keeping each list's own order; `q` (0..1) is the chance to take from `a`. */
export function merge<T>(a: readonly T[], b: readonly T[], q: number, r: Rng): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const takeA = j >= b.length || (i < a.length && r(1000) < q * 1000);
    out.push(takeA ? a[i++]! : b[j++]!);
  }
  return out;
}
