/**
 * A small seeded PRNG for property tests that derive a whole schedule from one fast-check integer
 * (so a counterexample prints as a short record that replays exactly).
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
